"""The one exception a user can cause: the CLI turns it into one sentence on stderr and exit code 2."""


class DataError(Exception):
    """A missing, unreadable or unrecognised input, or an unusable setting; the message is one sentence
    that names the file (or flag), says what was expected and what to do."""
