"""The safety layer on the frozen test split of data/safety/: recall, false crises, conversations, output check,
per-message and per-conversation latency, load time and model size; the rules alone and the classifier alone beside
the whole layer.

    .venv/bin/python bench/safety.py            # writes bench/results/safety.json and safety_*.png

The test split was written and frozen before the detector was built (its checksums: data/safety/README.md);
nothing here tunes anything. Only labels, categories and counts are recorded, never message text.
"""

from __future__ import annotations

import re
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import ROOT, record, write_json

from gonggam import safety
from gonggam.safety import combine, corpus, evaluate, morph, rules
from gonggam.safety.classifier import CONTEXT_MODEL, MESSAGE_MODEL, REPLY_MODEL
from gonggam.safety.normalise import normalise_view
from gonggam.safety.replies import Assessment, worst

RESULTS = ROOT / "bench" / "results"
BARS = {
    "crisis_recall": 0.98,
    "false_crisis_rate": 0.05,
    "conversation_accuracy": 0.95,
    "output_recall": 0.98,
    "output_false_positive_rate": 0.05,
    "latency_p95_ms": 10.0,
    "load_s": 3.0,
    "model_mb": 20.0,
}
LOAD_SNIPPET = (
    "import time; t = time.perf_counter(); from gonggam import safety; safety.load(); "
    "safety.assess_message('오늘 좀 힘들었어'); print(time.perf_counter() - t)"
)


def rules_only(text: str, signals: frozenset[str] = frozenset()) -> Assessment:
    """The rules' own verdict: every rule, or without the crisis rules that are only signals."""
    kept, _ = combine.without_signals(tuple(rules.message_hits(normalise_view(text))), signals)
    return Assessment(worst(*(h.level for h in kept)), ())


def classifier_only(text: str) -> Assessment:
    model = safety.load()[0]
    thresholds = {name: head.threshold for name, head in model.heads.items()}
    return Assessment(combine.classifier_level(model.score(text), thresholds), ())


def latency_ms(texts: list[str]) -> dict[str, float]:
    for text in texts[:20]:
        safety.assess_message(text)
    times = []
    for text in texts:
        morph.sentences.cache_clear()  # the analysis of a message is cached; a new message is never in the cache
        start = time.perf_counter()
        safety.assess_message(text)
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return {
        "p50": statistics.median(times),
        "p95": times[int(0.95 * (len(times) - 1))],
        "max": times[-1],
        "messages": len(times),
    }


def conversation_latency_ms(conversations: list[corpus.Conversation]) -> dict[str, float]:
    """Per conversation, as serve.py calls it: every recent user turn is graded in its context (context.py)."""
    times = []
    for item in conversations:
        morph.sentences.cache_clear()
        start = time.perf_counter()
        safety.assess_conversation(list(item.turns))
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return {"p50": statistics.median(times), "p95": times[int(0.95 * (len(times) - 1))], "max": times[-1]}


def sample_corpus() -> dict:
    """The layer on the shipped sample corpus (data/sample/), the counselling corpus's own style (first-person 반말
    statements about an everyday trouble, and warm replies), which the safety corpus under-represented. The sample has
    no suicide or self-harm talk (its README): every crisis among its user turns and every reply the output check
    replaces is a false one."""
    from data_prep.readers import read_any
    from data_prep.records import Dialogue

    paths = sorted((ROOT / "data" / "sample").glob("*.json"))
    dialogues = [d for path in paths for d in read_any(path) if isinstance(d, Dialogue)]
    alone = in_context = turns = replies = flagged = 0
    for dialogue in dialogues:
        for k, message in enumerate(dialogue.messages):
            if message["role"] == "assistant":
                replies += 1
                flagged += safety.check_output(message["content"]).level != "none"
                continue
            turns += 1
            alone += safety.assess_message(message["content"]).level == "crisis"
            in_context += safety.assess_conversation(list(dialogue.messages[: k + 1])).level == "crisis"
    return {
        "user_turns": turns,
        "false_crisis_alone": alone / turns,
        "false_crisis_in_context": in_context / turns,
        "replies": {"replies": replies, "false_positive_rate": flagged / replies},
    }


def by_batch() -> dict[str, dict[str, float | int | None]]:
    """The headline figures of each held-out batch in the test split (family ids start with the batch: h8a-001),
    so that a batch read for the first time is reported apart from one read before."""

    def batch(family: str) -> str:
        found = re.match(r"h\d+", family)
        return found.group(0) if found else family.split("-")[0]

    kinds = {
        "messages": corpus.messages("test"),
        "conversations": corpus.conversations("test"),
        "replies": corpus.replies("test"),
    }
    grouped: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for kind, items in kinds.items():
        for item in items:
            grouped[batch(item.family)][kind].append(item)
    found = {}
    for name, items in sorted(grouped.items()):
        messages = evaluate.message_metrics(items["messages"], safety.assess_message)
        conversations = evaluate.conversation_metrics(items["conversations"], safety.assess_conversation)
        output = evaluate.output_metrics(items["replies"], safety.check_output)
        found[name] = {
            "messages": messages["n"],
            "conversations": conversations["n"],
            "replies": output["n"],
            "crisis_recall": messages["crisis_recall"],
            "false_crisis_rate": messages["false_crisis_rate"],
            "conversation_accuracy": conversations["accuracy"],
            "output_recall": output["recall"],
            "output_false_positive_rate": output["false_positive_rate"],
        }
    return found


def batch_line(name: str, b: dict) -> str:
    def shown(key: str) -> str:  # a batch without replies (or without crises) has no such figure
        return "n/a" if b[key] is None else f"{b[key]:.3f}"

    return (
        f"batch {name}: {b['messages']} messages, {b['conversations']} conversations, {b['replies']} replies: "
        f"recall {shown('crisis_recall')}, false crisis {shown('false_crisis_rate')}, conversations "
        f"{shown('conversation_accuracy')}, output {shown('output_recall')} / {shown('output_false_positive_rate')}"
    )


def load_seconds(runs: int = 3) -> float:
    """A fresh interpreter: import, load both classifiers and the analyser, answer one message (median of runs)."""
    found = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", LOAD_SNIPPET], cwd=ROOT, capture_output=True, text=True, check=True)
        found.append(float(out.stdout.strip()))
    return statistics.median(found)


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layer = results["layer"]["messages"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 6), gridspec_kw={"width_ratios": [1, 1.6]})
    order = ("crisis", "concern", "none")
    grid = [[layer["confusion"][gold][pred] for pred in order] for gold in order]
    left.imshow(grid, cmap="Blues")
    for i, row in enumerate(grid):
        for j, value in enumerate(row):
            left.text(j, i, str(value), ha="center", va="center", fontsize=12)
    left.set_xticks(range(3), order)
    left.set_yticks(range(3), order)
    left.set_xlabel("layer's level")
    left.set_ylabel("label")
    left.set_title(f"messages, test split (n={layer['n']})")
    names, values, colours = [], [], []
    for category, entry in layer["categories"].items():
        names.append(f"{entry['label']}: {category} ({entry['n']})")
        if entry["label"] == "crisis":
            values.append(entry["recall"])
            colours.append("tab:red")
        else:
            values.append(entry["false_crisis_rate"])
            colours.append("tab:blue" if entry["label"] == "none" else "tab:orange")
    right.barh(names[::-1], values[::-1], color=colours[::-1])
    right.axvline(0.98, color="tab:red", linestyle=":", linewidth=1)
    right.axvline(0.05, color="tab:blue", linestyle=":", linewidth=1)
    right.set_xlim(0, 1)
    right.set_xlabel("crisis recall (red) / false-crisis rate (blue: none, orange: concern)")
    right.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"wrote {path}")


def main() -> None:
    test_messages = corpus.messages("test")
    layer = evaluate.evaluate("test")
    signals = safety.load()[0].signal_rules
    stages = {
        "every rule alone": evaluate.message_metrics(test_messages, rules_only),
        "rules that decide, alone": evaluate.message_metrics(test_messages, lambda text: rules_only(text, signals)),
        "classifier only": evaluate.message_metrics(test_messages, classifier_only),
        "the layer": layer["messages"],
    }
    latency = latency_ms([e.text for e in test_messages])
    per_conversation = conversation_latency_ms(corpus.conversations("test"))
    corpus_style = sample_corpus()
    batches = by_batch()
    load_s = load_seconds()
    model_mb = sum(path.stat().st_size for path in (MESSAGE_MODEL, REPLY_MODEL, CONTEXT_MODEL)) / 1e6
    measured = {
        "crisis_recall": layer["messages"]["crisis_recall"],
        "false_crisis_rate": layer["messages"]["false_crisis_rate"],
        "conversation_accuracy": layer["conversations"]["accuracy"],
        "output_recall": layer["output_check"]["recall"],
        "output_false_positive_rate": layer["output_check"]["false_positive_rate"],
        "latency_p95_ms": latency["p95"],
        "load_s": load_s,
        "model_mb": model_mb,
    }
    met = {
        k: (v <= BARS[k])
        if k in ("false_crisis_rate", "output_false_positive_rate", "latency_p95_ms", "load_s", "model_mb")
        else v >= BARS[k]
        for k, v in measured.items()
    }
    frozen = {
        p.relative_to(ROOT).as_posix(): corpus.file_digest(p)
        for p in sorted((ROOT / "data" / "safety").glob("*/test.*"))
    }
    results = record(
        "safety",
        sys.argv,
        measured=measured,
        bars=BARS,
        met=met,
        layer=layer,
        latency_ms=latency,
        conversation_latency_ms=per_conversation,
        sample_corpus_turns=corpus_style,
        by_batch=batches,
        stages={
            k: {m: v[m] for m in ("crisis_recall", "false_crisis_rate", "concern_agreement", "none_agreement")}
            for k, v in stages.items()
        },
        signal_rules=sorted(signals),
        test_split_sha256=frozen,
    )
    write_json(RESULTS / "safety.json", results)
    plot(results | {"layer": layer}, RESULTS / "safety_confusion.png")
    print(f"{'':24}{'crisis recall':>14}{'false crisis':>14}{'concern agree':>15}")
    for name, m in stages.items():
        print(f"{name:24}{m['crisis_recall']:>14.3f}{m['false_crisis_rate']:>14.3f}{m['concern_agreement']:>15.3f}")
    for key, value in measured.items():
        print(f"{key:28} {value:8.3f}  bar {BARS[key]}  {'met' if met[key] else 'MISSED'}")
    print(f"per conversation: p50 {per_conversation['p50']:.1f} ms, p95 {per_conversation['p95']:.1f} ms")
    for name, figures in batches.items():
        print(batch_line(name, figures))
    print(
        f"the sample corpus's {corpus_style['user_turns']} user turns (none a crisis): false crises "
        f"{corpus_style['false_crisis_alone']:.3f} alone, {corpus_style['false_crisis_in_context']:.3f} in context; "
        f"its {corpus_style['replies']['replies']} replies: output check false positives "
        f"{corpus_style['replies']['false_positive_rate']:.3f}"
    )
    for category, entry in layer["messages"]["categories"].items():
        figure = entry.get("recall", entry.get("false_crisis_rate"))
        name = "recall" if "recall" in entry else "false crisis"
        print(f"  {entry['label']:8} {category:22} n={entry['n']:4}  {name} {figure:.3f}")
    for category, entry in layer["conversations"]["categories"].items():
        print(f"  conversation {category:22} n={entry['n']:4}  accuracy {entry['accuracy']:.3f}")
    for category, entry in layer["output_check"]["categories"].items():
        print(f"  reply {category:22} n={entry['n']:4}  flagged {entry['flagged']:.3f}")


if __name__ == "__main__":
    main()
