"""The demo model's replies against the shipped sample: are they whole sentences, and do they fit the emotion?

    .venv/bin/python bench/demo_model.py reports/demo-model reports/tiny-base reports/old-demo

Each argument is an eval.py report directory (its samples.jsonl). eval.py's chrF, EOS rate and distinct-n cannot
say whether a reply is made of whole sentences or which emotion it speaks to; the tiny model can only write
sentences it has seen (the synthetic corpus it is pre-trained on recombines the sample's), so each reply is
compared with the reply lines of data/sample/sample_Training.json:

- whole_sentences: the share of replies every sentence of which occurs verbatim in some sample reply line;
- emotion_fit: the share whose nearest sample reply line (character-bigram Jaccard) belongs to the dialogue's
  major emotion; chance_fit: what that share would be if the replies' emotions had nothing to do with the
  dialogues' (the sum over majors of the two shares' product). The corpus's own reference replies, scored the
  same way, show how high the measure can go.

Replies the safety layer replaced are left out. Only numbers are written (bench/results/demo_model_fit.json).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import ROOT, record, write_json

SAMPLE = ROOT / "data" / "sample" / "sample_Training.json"
SENTENCE_END = re.compile(r"(?<=[.?!])\s*")

Line = tuple[frozenset[str], str]  # (character bigrams, major emotion)


def sample_reply_lines(sample: Path) -> tuple[list[str], list[Line]]:
    """The sample's assistant lines, read by data_prep like any corpus, with their bigrams and major emotion."""
    from data_prep.readers import read_any
    from data_prep.records import Dialogue

    texts, lines = [], []
    for dialogue in read_any(sample):
        if not isinstance(dialogue, Dialogue):
            continue
        for message in dialogue.messages:
            if message["role"] == "assistant":
                texts.append(message["content"])
                lines.append((bigrams(message["content"]), dialogue.emotion["major"]))
    return texts, lines


def bigrams(text: str) -> frozenset[str]:
    """Character bigrams without whitespace: Korean spacing varies, syllables carry the content."""
    joined = "".join(text.split())
    return frozenset(joined[i : i + 2] for i in range(len(joined) - 1))


def nearest_major(reply: str, lines: list[Line]) -> str:
    grams = bigrams(reply)
    return max(lines, key=lambda line: len(grams & line[0]) / (len(grams | line[0]) or 1))[1]


def whole_sentences(reply: str, texts: list[str]) -> bool:
    sentences = [s for s in SENTENCE_END.split(reply.strip()) if s]
    return bool(sentences) and all(any(s in text for text in texts) for s in sentences)


def score(replies: list[tuple[str, str]], texts: list[str], lines: list[Line]) -> dict[str, Any]:
    """replies: (text, the dialogue's major emotion)."""
    guessed = [nearest_major(text, lines) for text, _ in replies]
    wanted = [major for _, major in replies]
    n = len(replies)
    wanted_share, guessed_share = Counter(wanted), Counter(guessed)
    return {
        "replies": n,
        "whole_sentences": sum(whole_sentences(text, texts) for text, _ in replies) / n,
        "emotion_fit": sum(g == w for g, w in zip(guessed, wanted, strict=True)) / n,
        "chance_fit": sum(wanted_share[m] * guessed_share[m] for m in wanted_share) / n**2,
        "positive_reply_share": guessed_share["기쁨"] / n,
        "positive_dialogue_share": wanted_share["기쁨"] / n,
    }


def report_replies(report: Path) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(model replies the safety layer let through, every reference reply), each with its dialogue's emotion."""
    rows = [json.loads(line) for line in (report / "samples.jsonl").read_text(encoding="utf-8").splitlines()]
    model = [(row["response"], row["emotion"]) for row in rows if row["stopped_by"] != "safety"]
    return model, [(row["reference"], row["emotion"]) for row in rows]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("reports", nargs="+", type=Path, help="eval.py report directories")
    parser.add_argument("--sample", type=Path, default=SAMPLE)
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results" / "demo_model_fit.json")
    args = parser.parse_args(argv)
    texts, lines = sample_reply_lines(args.sample)
    results: dict[str, Any] = {}
    for report in args.reports:
        model, references = report_replies(report)
        name = json.loads((report / "metrics.json").read_text(encoding="utf-8"))["name"]
        results[name] = score(model, texts, lines)
        results.setdefault("references", score(references, texts, lines))
    print(f"{'replies of':<22}{'n':>5}{'whole sentences':>17}{'emotion fit':>13}{'chance':>8}{'positive':>10}")
    for name, row in results.items():
        print(
            f"{name:<22}{row['replies']:>5}{row['whole_sentences']:>17.3f}{row['emotion_fit']:>13.3f}"
            f"{row['chance_fit']:>8.3f}{row['positive_reply_share']:>10.3f}"
        )
    command = ["bench/demo_model.py", *map(str, args.reports)]
    write_json(args.output, record("demo_model_fit", command, results=results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
