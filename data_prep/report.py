"""report.png: the major-emotion distribution per split, turns per dialogue, and message lengths.

Every label is English (a major outside the table is drawn as "other"): matplotlib's bundled font has
no Hangul, and drawing Korean with it prints a warning per missing glyph. The Figure is built without
pyplot, so no GUI backend is ever touched.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

from data_prep.codes import MAJOR_ENGLISH, MAJORS
from data_prep.stats import Lengths


def write_report(path: Path, stats: dict[str, Any], lengths: Lengths) -> bool:
    """Draw the report; False (and no file) when matplotlib is not installed."""
    # Before the import: a first import in a fresh environment logs that it is building its font cache.
    logging.getLogger("matplotlib").setLevel(logging.ERROR)
    try:
        from matplotlib.figure import Figure  # lazily: ~0.5 s of import
    except ImportError:
        return False
    figure = Figure(figsize=(11, 7.5), layout="constrained")
    axes = figure.subplots(2, 2)
    _emotions(axes[0][0], stats["emotion_major_by_split"])
    _turns(axes[0][1], stats["turns"])
    _lengths(axes[1][0], lengths.user, "user messages")
    _lengths(axes[1][1], lengths.assistant, "assistant messages")
    figure.suptitle(f"{stats['kept']:,} dialogues kept of {stats['read']:,} read")
    figure.savefig(path, dpi=90)
    return True


def _emotions(ax: Any, by_split: dict[str, dict[str, int]]) -> None:
    labels = [*MAJORS, "other"]
    width = 0.8 / max(1, len(by_split))
    for offset, (split, counts) in enumerate(by_split.items()):
        total = sum(counts.values()) or 1
        other = sum(n for major, n in counts.items() if major not in MAJORS)
        shares = [100 * counts.get(major, 0) / total for major in MAJORS] + [100 * other / total]
        positions = [i + offset * width for i in range(len(labels))]
        ax.bar(positions, shares, width=width, label=f"{split} ({sum(counts.values()):,})")
    ax.set_xticks([i + width * (len(by_split) - 1) / 2 for i in range(len(labels))])
    ax.set_xticklabels([MAJOR_ENGLISH.get(label, label) for label in labels], rotation=30, ha="right")
    ax.set_ylabel("% of split")
    ax.set_title("major emotion")
    ax.legend()


def _turns(ax: Any, turns: dict[str, int]) -> None:
    ax.bar(list(turns), list(turns.values()), color="tab:green")
    ax.set_xlabel("turns (user + assistant pairs)")
    ax.set_ylabel("dialogues")
    ax.set_title("turns per dialogue")


def _lengths(ax: Any, values: list[int], what: str) -> None:
    import numpy as np  # already loaded by matplotlib

    if values:
        # Integer bin edges: a character count has no fractions to spread over.
        low, high = min(values), max(values)
        step = max(1, math.ceil((high - low + 1) / 60))
        # An array, not the list: matplotlib reshapes a list element by element (~0.4 s per 100k).
        ax.hist(np.asarray(values), bins=range(low, high + step + 1, step), color="tab:purple")
    ax.set_xlabel("characters")
    ax.set_ylabel("messages")
    ax.set_title(f"length of {what}")
