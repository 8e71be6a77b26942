"""The AIHub 감성 대화 말뭉치 as training data: readers, code tables, normalisation, splitting, the CLI.

Library use::

    from data_prep import prepare
    stats = prepare(["Training.json"], "data/processed", validation=["Validation.json"])

Import ``data_prep.codes`` for the emotion / situation / persona tables.
"""

from data_prep.errors import DataError
from data_prep.pipeline import prepare
from data_prep.readers import read_any

__all__ = ["DataError", "prepare", "read_any"]
