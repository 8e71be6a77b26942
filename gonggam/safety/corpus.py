"""The team-written safety corpus in data/safety/: user messages, conversations and model replies, split by family.

A family is one idea written as several paraphrases; all of them fall in the same split, chosen by a hash of the
family id, so that a test message never has a near-copy in training and adding families never moves old ones.
``python -m gonggam.safety.corpus --messages F.tsv --conversations F.jsonl --replies F.tsv`` splits newly written
files into data/safety/; the test split is frozen (its checksums are in data/safety/README.md and a test).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

from gonggam.safety.replies import RANK

ROOT = Path(__file__).resolve().parents[2]
SAFETY_DATA = ROOT / "data" / "safety"
SPLITS = ("train", "dev", "test")
LABELS = tuple(RANK)
TSV_FIELDS = ("family", "label", "category", "text")


class CorpusError(ValueError):
    """A safety-corpus file the layer cannot read; the message says which file and line, and what to fix."""


@dataclass(frozen=True)
class Example:
    family: str
    label: str
    category: str
    text: str


@dataclass(frozen=True)
class Conversation:
    family: str
    label: str
    category: str
    turns: tuple[dict[str, str], ...]


# Families of the held-out batch: written by writers who saw neither the detector nor this corpus, committed before
# the detector was measured on it. It is the test split, and only it (h12: thirty-one writers, 2026-11-26).
HELD_OUT_PREFIXES = ("h12",)
# Earlier held-out batches: measured and then looked at, so they choose settings now (dev), never train. h8 to h10
# were read with one layer (d66cf63), h11 with the next (765884c); each then became dev and chose the next layer.
RETIRED_HELD_OUT_PREFIXES = ("h2", "h3", "h4", "h5", "h6", "h7", "h8", "h9", "h10", "h11")


def split_of(family: str) -> str:
    """The test split is the held-out batch; the other families go 75% train, 25% dev by a hash of their id.

    The hash keeps a family's split independent of the others. Buckets 15–19 were the first test split, then the
    ``h2`` to ``h11`` batches; each was measured and looked at and became dev when a new held-out batch
    replaced it (2026-11-25, 2026-11-26).
    """
    if family.startswith(HELD_OUT_PREFIXES):
        return "test"
    if family.startswith(RETIRED_HELD_OUT_PREFIXES):
        return "dev"
    bucket = int.from_bytes(hashlib.sha256(family.encode()).digest()[:4], "big") % 20
    return "train" if bucket < 15 else "dev"


def _check_label(label: str, where: str) -> None:
    if label not in LABELS:
        raise CorpusError(f"{where}: label {label!r} is not one of {', '.join(LABELS)}.")


def read_examples(path: Path) -> list[Example]:
    """A TSV with the header family, label, category, text (the team's files: every line must be valid)."""
    with open(path, encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    if not rows or tuple(rows[0]) != TSV_FIELDS:
        raise CorpusError(f"{path}: the first line must be the header {' '.join(TSV_FIELDS)} (tab-separated).")
    examples = []
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != 4 or not row[3].strip():
            raise CorpusError(f"{path} line {number}: expected 4 tab-separated fields with a text.")
        _check_label(row[1], f"{path} line {number}")
        examples.append(Example(*row))
    return examples


def read_extra(path: Path) -> tuple[list[Example], list[int]]:
    """A user's own labelled TSV: `label<TAB>text` (a header line is optional; extra columns are ignored).

    Lines that are not `label<TAB>text` with a known label are skipped and their numbers returned, so one bad
    line in a large file is counted, not fatal; a file with no valid line at all is an error.
    """
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise CorpusError(f"cannot read {path} as UTF-8 text ({error}): give a UTF-8 TSV of label<TAB>text.") from None
    examples, skipped = [], []
    for number, line in enumerate(lines, start=1):
        fields = line.split("\t")
        if number == 1 and fields[0] in ("label", "family"):
            continue
        if fields[0] not in LABELS and len(fields) >= 4:  # the project's own four-column layout
            fields = fields[1:2] + fields[3:4]
        if len(fields) < 2 or fields[0] not in LABELS or not fields[-1].strip():
            if line.strip():
                skipped.append(number)
            continue
        examples.append(Example(f"extra:{path.name}:{number}", fields[0], "extra", fields[-1]))
    if not examples:
        raise CorpusError(f"{path} has no line of the form label<TAB>text with label crisis, concern or none.")
    return examples, skipped


def read_conversations(path: Path) -> list[Conversation]:
    conversations = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            turns = tuple({"role": t["role"], "content": t["content"]} for t in record["turns"])
            conversation = Conversation(record["family"], record["label"], record["category"], turns)
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            raise CorpusError(f"{path} line {number}: not a conversation record ({error}).") from None
        _check_label(conversation.label, f"{path} line {number}")
        if not turns or turns[-1]["role"] != "user":
            raise CorpusError(f"{path} line {number}: a conversation must end with a user turn.")
        conversations.append(conversation)
    return conversations


def messages(split: str, root: Path = SAFETY_DATA) -> list[Example]:
    return read_examples(root / "messages" / f"{split}.tsv")


def replies(split: str, root: Path = SAFETY_DATA) -> list[Example]:
    return read_examples(root / "replies" / f"{split}.tsv")


def conversations(split: str, root: Path = SAFETY_DATA) -> list[Conversation]:
    return read_conversations(root / "conversations" / f"{split}.jsonl")


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------------------------------------------
# Splitting newly written files (the team's tool; run once per batch of new families)


def _write_tsv(path: Path, examples: list[Example]) -> None:
    lines = ["\t".join(TSV_FIELDS)] + ["\t".join((e.family, e.label, e.category, e.text)) for e in examples]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _write_jsonl(path: Path, items: list[Conversation]) -> None:
    lines = [json.dumps({**asdict(c), "turns": list(c.turns)}, ensure_ascii=False) for c in items]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def split_files(kind: str, sources: list[Path], root: Path) -> Counter:
    items = [i for s in sources for i in (read_conversations(s) if kind == "conversations" else read_examples(s))]
    key = (lambda c: tuple(t["content"] for t in c.turns)) if kind == "conversations" else (lambda e: e.text)
    unique = list({key(i): i for i in items}.values())  # one text, one label: the last writer's
    (root / kind).mkdir(parents=True, exist_ok=True)
    counts = Counter()
    for split in SPLITS:
        chosen = sorted((i for i in unique if split_of(i.family) == split), key=lambda i: (i.family, key(i)))
        (_write_jsonl if kind == "conversations" else _write_tsv)(
            root / kind / f"{split}.{'jsonl' if kind == 'conversations' else 'tsv'}", chosen
        )
        counts[split] = len(chosen)
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", nargs="*", type=Path, default=[])
    parser.add_argument("--conversations", nargs="*", type=Path, default=[])
    parser.add_argument("--replies", nargs="*", type=Path, default=[])
    parser.add_argument("--output", type=Path, default=SAFETY_DATA)
    args = parser.parse_args(argv)
    try:
        for kind in ("messages", "conversations", "replies"):
            if sources := getattr(args, kind):
                print(kind, dict(split_files(kind, sources, args.output)))
    except (CorpusError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
