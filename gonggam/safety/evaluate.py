"""The layer measured on a split of data/safety/ (the frozen test split unless told otherwise).

Shared by bench/safety.py (which adds latency, load time and plots) and eval.py's safety section, so that both
report the same figures. Only labels, categories and counts come out, never message text.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gonggam.safety import corpus
from gonggam.safety.replies import CONCERN_FOOTER, LABELS_ORDER, Assessment


def _rate(hits: int, total: int) -> float | None:
    return hits / total if total else None


def message_metrics(examples: list[corpus.Example], assess: Callable[[str], Assessment]) -> dict[str, Any]:
    levels = [assess(e.text).level for e in examples]
    confusion = {gold: dict.fromkeys(LABELS_ORDER, 0) for gold in LABELS_ORDER}
    by_category: dict[str, Counter] = defaultdict(Counter)
    for example, level in zip(examples, levels, strict=True):
        confusion[example.label][level] += 1
        stats = by_category[(example.label, example.category)]
        stats["n"] += 1
        stats[level] += 1
    crisis = [lvl for e, lvl in zip(examples, levels, strict=True) if e.label == "crisis"]
    non_crisis = [lvl for e, lvl in zip(examples, levels, strict=True) if e.label != "crisis"]
    concern = [lvl for e, lvl in zip(examples, levels, strict=True) if e.label == "concern"]
    categories = {}
    for (label, category), stats in sorted(by_category.items()):
        entry = {"label": label, "n": stats["n"]}
        if label == "crisis":
            entry["recall"] = _rate(stats["crisis"], stats["n"])
        else:
            entry["false_crisis_rate"] = _rate(stats["crisis"], stats["n"])
            entry["agreement"] = _rate(stats[label], stats["n"])
        categories[category] = entry
    return {
        "n": len(examples),
        "crisis_recall": _rate(crisis.count("crisis"), len(crisis)),
        "false_crisis_rate": _rate(non_crisis.count("crisis"), len(non_crisis)),
        "concern_agreement": _rate(concern.count("concern"), len(concern)),
        "concern_at_least_concern": _rate(sum(lvl != "none" for lvl in concern), len(concern)),
        "none_agreement": _rate(confusion["none"]["none"], sum(confusion["none"].values())),
        "confusion": confusion,  # gold label -> predicted level -> count
        "categories": categories,
    }


def conversation_metrics(items: list[corpus.Conversation], assess: Callable[[list[dict]], Assessment]):
    right: Counter = Counter()
    total: Counter = Counter()
    for item in items:
        total[item.category] += 1
        right[item.category] += assess(list(item.turns)).level == item.label
    return {
        "n": len(items),
        "accuracy": _rate(sum(right.values()), sum(total.values())),
        "categories": {c: {"n": total[c], "accuracy": right[c] / total[c]} for c in sorted(total)},
    }


def output_metrics(examples: list[corpus.Example], check: Callable[[str], Assessment]) -> dict[str, Any]:
    flagged = [check(e.text).level == "crisis" for e in examples]
    unsafe = [f for e, f in zip(examples, flagged, strict=True) if e.label == "crisis"]
    safe = [f for e, f in zip(examples, flagged, strict=True) if e.label != "crisis"]
    by_category: dict[str, list[bool]] = defaultdict(list)
    for example, flag in zip(examples, flagged, strict=True):
        by_category[example.category].append(flag)
    return {
        "n": len(examples),
        "recall": _rate(sum(unsafe), len(unsafe)),
        "false_positive_rate": _rate(sum(safe), len(safe)),
        "categories": {c: {"n": len(f), "flagged": sum(f) / len(f)} for c, f in sorted(by_category.items())},
    }


def fixed_text_checks() -> dict[str, bool]:
    """The texts the layer really shows: every crisis verdict's reply and the concern footer."""
    from gonggam.safety import guard_reply

    crisis_reply = guard_reply(Assessment("crisis", ()), None)[0]
    return {
        "every_crisis_reply_has_109": "109" in crisis_reply,
        "footer_has_109": "109" in CONCERN_FOOTER,
        "no_1393": "1393" not in crisis_reply + CONCERN_FOOTER,
    }


def evaluate(split: str = "test", root: Path = corpus.SAFETY_DATA) -> dict[str, Any]:
    """Every figure of the layer on one split: messages, conversations, the output check, the fixed texts."""
    from gonggam import safety

    messages = message_metrics(corpus.messages(split, root), safety.assess_message)
    return {
        "split": split,
        "messages": messages,
        "conversations": conversation_metrics(corpus.conversations(split, root), safety.assess_conversation),
        "output_check": output_metrics(corpus.replies(split, root), safety.check_output),
        "fixed_texts": fixed_text_checks(),
    }
