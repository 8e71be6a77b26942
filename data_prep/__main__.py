"""Prepare the AIHub 감성 대화 말뭉치 for fine-tuning: one whole dialogue per JSONL line.

    python -m data_prep --input 감성대화말뭉치(최종데이터)_Training.json \
        --validation 감성대화말뭉치(최종데이터)_Validation.json --output data/processed
    python -m data_prep --input 감성대화말뭉치(최종데이터)_Training.zip --output data/processed --val-ratio 0.05

Writes train.jsonl, validation.jsonl, stats.json and report.png into --output: only files an earlier data_prep
run wrote there are replaced, and only once the new ones are complete.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from data_prep.errors import DataError
from data_prep.pipeline import prepare, summary
from gonggam.errors import EXIT_INTERRUPTED, EXIT_USER_ERROR, interrupts_unwind


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m data_prep",
        description="Read AIHub 감성 대화 files (.json, .xlsx, .csv/.tsv, or .zip holding them) and write "
        "train/validation JSONL, stats.json and report.png.",
    )
    parser.add_argument(
        "--input",
        nargs="+",
        required=True,
        metavar="PATH",
        help="training-side files (all parts of a split .zip.partN)",
    )
    parser.add_argument(
        "--output",
        required=True,
        metavar="DIR",
        help="output directory (its earlier data_prep files are replaced on success; anything else in it is refused)",
    )
    parser.add_argument(
        "--validation",
        nargs="+",
        metavar="PATH",
        help="files that form the validation split as they are (no random split is then made)",
    )
    parser.add_argument(
        "--val-ratio",
        type=float,
        default=0.05,
        help="share of dialogues drawn for validation, whole persons at a time (default 0.05; 0 = none)",
    )
    parser.add_argument("--seed", type=int, default=42, help="seed of the random split (default 42)")
    parser.add_argument(
        "--expand-prefixes",
        action="store_true",
        help="write one sample per assistant turn with its whole history (the seed recipe's layout)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar and no summary")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        with interrupts_unwind():
            stats = prepare(
                args.input,
                args.output,
                validation=args.validation,
                val_ratio=args.val_ratio,
                seed=args.seed,
                expand_prefixes=args.expand_prefixes,
                quiet=args.quiet,
            )
    except DataError as err:
        print(f"data_prep: error: {err}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(f"data_prep: interrupted; {args.output} holds no half-written files.", file=sys.stderr)
        return EXIT_INTERRUPTED
    if not args.quiet:
        print(summary(stats, args.output))
    return 0


if __name__ == "__main__":
    sys.exit(main())
