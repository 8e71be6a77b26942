"""Export a merged model to GGUF files for llama.cpp and Ollama, each with an Ollama Modelfile beside it.

    python export_gguf.py --model merged/RUN --output exports/RUN                 # f16, q8_0 and q4_k_m
    python export_gguf.py --model merged/RUN --output exports/RUN --quant q4_k_m  # one file

The files carry the KoAlpaca chat template, EOS id 2 and the sampling defaults. The safety layer runs only when
answering through gonggam (infer.py), never inside llama.cpp or Ollama.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gonggam.errors import run_command
from gonggam.export.pipeline import DEFAULT_QUANTS, QUANTS, check_disk, export, make_plan, summary


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="a merged model folder (merged/RUN)")
    parser.add_argument("--output", type=Path, help="the folder for the files (default: exports/<model folder name>)")
    parser.add_argument("--quant", nargs="+", choices=QUANTS, default=list(DEFAULT_QUANTS), help="files to write")
    parser.add_argument("--name", help="file name stem (default: the output folder's name)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars (step lines remain)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def body() -> int:
        output = args.output or Path("exports") / args.model.resolve().name
        plan = make_plan(args.model, output, args.quant, args.name)
        check_disk(plan)
        files = export(plan, progress=not args.no_progress)
        print(summary(files))
        return 0

    return run_command(body)


if __name__ == "__main__":
    sys.exit(main())
