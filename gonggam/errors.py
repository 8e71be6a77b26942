"""The errors a user can cause, and how every entry point turns them and interruptions into exit codes."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class UserError(Exception):
    """A problem the user can fix; its message is one sentence that says how. Entry points exit with 2."""


EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130  # what a shell reports for a Ctrl-C'd command


@contextmanager
def interrupts_unwind() -> Iterator[None]:
    """SIGTERM (kill, `docker stop`, a batch scheduler's time limit) unwinds like Ctrl-C does.

    Python's default for SIGTERM ends the process on the spot, so no `finally` would remove a staging folder;
    raising KeyboardInterrupt instead lets every cleanup run. Only the main thread may install handlers.
    """
    if sys.platform == "win32":
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)

    def raise_interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_command(body: Callable[[], int], interrupted: str = "nothing was left half-written.") -> int:
    """Run an entry point's work: a UserError is one line and exit 2, Ctrl-C or SIGTERM one line and exit 130.

    ``interrupted`` ends that line: what an interruption leaves behind (a command that writes no file says so).
    """
    try:
        with interrupts_unwind():
            return body()
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(f"interrupted: {interrupted}", file=sys.stderr)
        return EXIT_INTERRUPTED
