"""Does a model's reply depend on what the user said? The conditioning gap of the demo model, teacher-forced.

    .venv/bin/python bench/demo_conditioning.py models/tiny-polyglot merged/tiny-cpu

For a dialogue's first user line and a reply line of the sample drawn from the dialogue's major emotion, the loss
on the reply's tokens (summed, nats per reply) is measured three times: after that user line, after the first user
line of another dialogue of the same major, and after one of another major. Any other line moves the loss a little
(its length, its words); only a model that reads the user's feeling finds the reply likelier after a line of the
same major than after one of another. So the emotion gap is the loss after another major's line minus the loss after
the same major's. If the majors' reply lines had nothing in common, a model that knew each line's major would gain
up to log 6 = 1.8 nats; a model that ignores the feeling gains 0 (a random model measures the noise).
`bench/demo_model.py` scores the generated replies; this says why they fit or do not, with far less noise than 95
sampled replies.

Measured on the sample's training dialogues (user lines the pre-training saw, recombined) and on the validation
dialogues (lines it never saw). Eight reply lines per dialogue, the same for every model (seed 0). Only numbers are
written (bench/results/demo_conditioning.json).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import ROOT, record, write_json

SAMPLE = ROOT / "data" / "sample" / "sample_Training.json"
REPLIES_PER_DIALOGUE = 8


def first_lines(path: Path) -> list[tuple[str, str]]:
    """(first user line, major emotion) of each dialogue of a processed JSONL file."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return [(row["messages"][0]["content"], row["emotion"]["major"]) for row in rows]


def reply_loss(model: Any, tokenizer: Any, user: str, reply: str) -> float:
    """The summed loss of the reply's tokens (its EOS included) after one user turn, in the chat template."""
    import torch

    from gonggam.chat import chat_template

    rendered = tokenizer.apply_chat_template(
        [[{"role": "user", "content": user}, {"role": "assistant", "content": reply}]],
        chat_template=chat_template(),
        tokenize=True,
        return_dict=True,
        return_assistant_tokens_mask=True,
    )
    ids = torch.tensor(rendered["input_ids"])
    labels = ids.masked_fill(~torch.tensor(rendered["assistant_masks"]).bool(), -100)
    with torch.inference_mode():
        mean = model(input_ids=ids, labels=labels).loss
    return float(mean) * int((labels[:, 1:] != -100).sum())


Trial = tuple[str, str, str, str]  # own user line, another of the same major, one of another major, the reply


def trials(dialogues: list[tuple[str, str]], replies: dict[str, list[str]], seed: int) -> list[Trial]:
    """For each dialogue, replies of its major with the three user lines they are read after, fixed for a seed."""
    rng = random.Random(seed)
    found = []
    for user, major in dialogues:
        same = [line for line, other in dialogues if other == major and line != user]
        others = [line for line, other in dialogues if other != major]
        for reply in rng.sample(replies[major], min(REPLIES_PER_DIALOGUE, len(replies[major]))):
            found.append((user, rng.choice(same), rng.choice(others), reply))
    return found


def conditioning_gap(model_dir: Path, split_trials: dict[str, list[Trial]]) -> dict[str, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    results = {}
    for split, rows in split_trials.items():
        own = [reply_loss(model, tokenizer, user, reply) for user, _, _, reply in rows]
        same = [reply_loss(model, tokenizer, line, reply) for _, line, _, reply in rows]
        other = [reply_loss(model, tokenizer, line, reply) for _, _, line, reply in rows]
        gaps = [b - a for a, b in zip(same, other, strict=True)]
        results[split] = {
            "pairs": len(rows),
            "loss_after_own_line": sum(own) / len(own),
            "loss_after_same_major": sum(same) / len(same),
            "loss_after_other_major": sum(other) / len(other),
            "emotion_gap_nats_per_reply": sum(gaps) / len(gaps),
            "share_likelier_after_same_major": sum(g > 0 for g in gaps) / len(gaps),
        }
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", type=Path, help="model directories (a base or a merged model)")
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "processed", help="train.jsonl, validation.jsonl")
    parser.add_argument("--sample", type=Path, default=SAMPLE)
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results" / "demo_conditioning.json")
    args = parser.parse_args(argv)
    from demo_model import sample_reply_lines

    texts, lines = sample_reply_lines(args.sample)
    replies: dict[str, list[str]] = {}
    for text, (_, major) in zip(texts, lines, strict=True):
        replies.setdefault(major, []).append(text)
    split_trials = {
        "seen_user_lines": trials(first_lines(args.data / "train.jsonl"), replies, 0),
        "unseen_user_lines": trials(first_lines(args.data / "validation.jsonl"), replies, 0),
    }
    results = {str(model): conditioning_gap(model, split_trials) for model in args.models}
    print(f"{'model':<28}{'user lines':>12}{'pairs':>7}{'emotion gap (nats/reply)':>26}{'likelier, same major':>22}")
    for model, splits in results.items():
        for split, row in splits.items():
            print(
                f"{model:<28}{split.split('_')[0]:>12}{row['pairs']:>7}{row['emotion_gap_nats_per_reply']:>26.3f}"
                f"{row['share_likelier_after_same_major']:>22.3f}"
            )
    command = ["bench/demo_conditioning.py", *map(str, args.models)]
    write_json(args.output, record("demo_conditioning", command, results=results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
