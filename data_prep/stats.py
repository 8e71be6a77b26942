"""stats.json: what was read, what was kept, and why the rest was dropped.

The identity ``read == kept + sum(dropped.values())`` holds by construction: every record a reader
yields is counted once in ``read`` and ends in exactly one of the kept splits or one drop reason.

Fields about dirt in the input:

- ``dropped.duplicate``: a dialogue whose messages equal one seen before on the same side (train or
  validation). The first seen is kept: files in the order given, then records in file order.
- ``duplicate_label_conflict``: how many of those duplicates carried other labels (emotion code/major/minor,
  situation or persona) than the copy kept; they are resolved the same way, first seen wins.
- ``dropped.malformed`` and ``malformed_detail``: records that could not be used, counted by reason; a CSV/TSV
  row with bytes that are neither UTF-8 nor CP949 is one of them.
- ``undecodable_lines``: ``{source: [line, ...]}``, the 1-based lines (as a text editor numbers them) of each
  CSV/TSV file whose bytes did not decode; their rows are the malformed ones above.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from data_prep.codes import MAJORS
from data_prep.records import Dialogue, Malformed

DROP_REASONS = ("malformed", "no_complete_turn", "duplicate", "leakage")


@dataclass
class Tally:
    """Counts gathered while reading: per-file reads, drops by reason, malformed details."""

    files: dict[str, int] = field(default_factory=dict)
    dropped: Counter[str] = field(default_factory=Counter)
    malformed: Counter[str] = field(default_factory=Counter)
    undecodable: dict[str, list[int]] = field(default_factory=dict)
    label_conflicts: int = 0
    truncated: int = 0

    def read_one(self, source: str) -> None:
        self.files[source] = self.files.get(source, 0) + 1

    def drop(self, reason: str) -> None:
        self.dropped[reason] += 1

    def drop_malformed(self, item: Malformed) -> None:
        self.drop("malformed")
        self.malformed[item.detail] += 1
        if item.undecodable_lines:
            self.undecodable.setdefault(item.source, []).extend(item.undecodable_lines)


@dataclass
class Lengths:
    """Characters per message, by role (what the length histograms plot)."""

    user: list[int]
    assistant: list[int]


def build_stats(
    tally: Tally, splits: dict[str, Sequence[Dialogue]], lines: dict[str, int], settings: dict[str, Any]
) -> tuple[dict[str, Any], Lengths]:
    kept = [dialogue for dialogues in splits.values() for dialogue in dialogues]
    lengths = Lengths(
        user=[len(m["content"]) for d in kept for m in d.messages[0::2]],
        assistant=[len(m["content"]) for d in kept for m in d.messages[1::2]],
    )
    stats = {
        "read": sum(tally.files.values()),
        "kept": len(kept),
        "dropped": {reason: tally.dropped.get(reason, 0) for reason in DROP_REASONS},
        "duplicate_label_conflict": tally.label_conflicts,
        "splits": {name: len(dialogues) for name, dialogues in splits.items()},
        "lines": lines,
        "emotion_major": _counts(d.emotion["major"] or "" for d in kept),
        "emotion_major_by_split": {
            name: _counts(d.emotion["major"] or "" for d in dialogues) for name, dialogues in splits.items()
        },
        "turns": {str(k): v for k, v in sorted(Counter(len(d.messages) // 2 for d in kept).items())},
        "chars": {"user": summarise(lengths.user), "assistant": summarise(lengths.assistant)},
        "truncated": tally.truncated,
        "malformed_detail": dict(sorted(tally.malformed.items())),
        "undecodable_lines": tally.undecodable,
        "files": tally.files,
        "settings": settings,
    }
    return stats, lengths


def summarise(values: list[int]) -> dict[str, float | int]:
    """mean, median, p95 (nearest rank) and max; zeros for no values."""
    if not values:
        return {"mean": 0.0, "median": 0.0, "p95": 0, "max": 0}
    ordered = sorted(values)
    middle = len(ordered) // 2
    median = float(ordered[middle]) if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
    return {
        "mean": round(sum(ordered) / len(ordered), 2),
        "median": median,
        "p95": ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)],
        "max": ordered[-1],
    }


def _counts(labels: Any) -> dict[str, int]:
    """Counts in the table's order of majors, then any unknown label alphabetically."""
    counts = Counter(labels)
    order = {major: position for position, major in enumerate(MAJORS)}
    return {label: counts[label] for label in sorted(counts, key=lambda m: (order.get(m, len(order)), m))}
