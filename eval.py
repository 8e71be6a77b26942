"""Evaluate a model on processed dialogues: assistant-token loss, generated replies, the safety layer.

    python eval.py --adapter adapters/RUN --data data/processed/validation.jsonl      # base + adapter
    python eval.py --model merged/RUN --compare models/tiny-polyglot --limit 50       # two models side by side
    python eval.py --model merged/RUN --compare reports/OLD --greedy                  # against an earlier report
    python eval.py --gguf exports/RUN/RUN-q4_k_m.gguf --limit 50                    # replies via llama.cpp (no loss)

The model defaults to the newest run in merged/. Writes reports/NAME/ (metrics.json, report.md, metrics.png,
samples.jsonl) atomically; a short table goes to stdout, progress and errors to stderr. The report quotes
the AIHub corpus: keep it local.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gonggam.backends import add_backend_arguments
from gonggam.errors import run_command


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_backend_arguments(parser)
    parser.add_argument("--data", type=Path, default=Path("data/processed/validation.jsonl"))
    parser.add_argument("--limit", type=int, default=None, help="only the first N dialogues")
    parser.add_argument("--output", type=Path, default=None, help="report directory (default: reports/NAME)")
    parser.add_argument("--compare", help="a second model, adapter directory, or earlier report directory")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=None, help="default: generation config (128)")
    parser.add_argument("--greedy", action="store_true", help="no sampling")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-generate", action="store_true", help="teacher-forced loss and the safety layer only")
    args = parser.parse_args(argv)
    if args.no_generate and (args.gguf or args.upstream):
        parser.error("--no-generate leaves nothing to measure through --gguf or --upstream (they give no loss)")
    for name in ("limit", "batch_size", "max_new_tokens"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    from gonggam import evaluation

    def body() -> int:
        output, metrics = evaluation.run_evaluation(
            args.data,
            args.model,
            args.adapter,
            output=args.output,
            compare=args.compare,
            limit=args.limit,
            batch_size=args.batch_size,
            max_new_tokens=args.max_new_tokens,
            greedy=args.greedy,
            seed=args.seed,
            dtype=args.dtype,
            load_in_4bit=args.load_in_4bit,
            generate=not args.no_generate,
            engine=args,
        )
        evaluation.print_summary(metrics)
        print(f"report written to {output}/ (keep it local: it quotes the AIHub corpus)", file=sys.stderr)
        return 0

    return run_command(body)


if __name__ == "__main__":
    sys.exit(main())
