"""The random train/validation split: by person, stratified by major emotion, deterministic per seed.

Whole groups (one person's dialogues) move together, so no person is on both sides. Each group is
filed under its most frequent major emotion; every stratum then gets its share of the validation
target (largest remainders, so the shares add up to round(ratio x total)), and groups are drawn in a
seeded order until the share is met. A group that would overshoot the share by more than it would
leave it short is passed over, and what a stratum falls short of (or overshoots) carries over to the
next, so large groups neither skew a small stratum nor starve a small corpus of validation dialogues.
"""

from __future__ import annotations

import math
import random
from collections import Counter, defaultdict
from collections.abc import Sequence

from data_prep.records import Dialogue


def split_dialogues(
    dialogues: Sequence[Dialogue], val_ratio: float, seed: int
) -> tuple[list[Dialogue], list[Dialogue]]:
    """(train, validation), each in input order."""
    if val_ratio <= 0 or not dialogues:
        return list(dialogues), []
    chosen = validation_groups(_groups(dialogues), val_ratio, seed)
    train = [d for d in dialogues if d.group not in chosen]
    validation = [d for d in dialogues if d.group in chosen]
    return train, validation


def _groups(dialogues: Sequence[Dialogue]) -> dict[str, tuple[str, int]]:
    """group -> (stratum, size); the stratum is the group's most frequent major (ties: the smallest)."""
    majors: dict[str, Counter[str]] = defaultdict(Counter)
    for dialogue in dialogues:
        majors[dialogue.group][dialogue.emotion["major"] or ""] += 1
    return {
        group: (min(counts, key=lambda major: (-counts[major], major)), sum(counts.values()))
        for group, counts in majors.items()
    }


def validation_groups(groups: dict[str, tuple[str, int]], val_ratio: float, seed: int) -> set[str]:
    """The groups drawn for validation."""
    by_stratum: dict[str, list[str]] = defaultdict(list)
    for group, (stratum, _size) in groups.items():
        by_stratum[stratum].append(group)
    sizes = {stratum: sum(groups[g][1] for g in members) for stratum, members in by_stratum.items()}
    targets = _apportion(sizes, val_ratio)
    rng = random.Random(seed)
    chosen: set[str] = set()
    owed = 0  # what earlier strata fell short of (or, negative, overshot) carries to the next
    for stratum in sorted(by_stratum):
        members = sorted(by_stratum[stratum])
        rng.shuffle(members)
        taken, target = 0, targets[stratum] + owed
        for group in members:
            if taken >= target:
                break
            size = groups[group][1]
            if taken + size - target > target - taken:
                continue
            chosen.add(group)
            taken += size
        owed = target - taken
    return chosen


def _apportion(sizes: dict[str, int], val_ratio: float) -> dict[str, int]:
    """Integer per-stratum targets that sum to round(ratio x total), by largest remainder."""
    total = round(val_ratio * sum(sizes.values()))
    exact = {stratum: val_ratio * size for stratum, size in sizes.items()}
    targets = {stratum: math.floor(value) for stratum, value in exact.items()}
    by_remainder = sorted(exact, key=lambda s: (-(exact[s] - targets[s]), s))
    for stratum in by_remainder[: max(0, total - sum(targets.values()))]:
        targets[stratum] += 1
    return targets
