"""Merge a LoRA adapter into a full-precision copy of its base and save it as a plain transformers model.

    python merge_adapter.py --adapter adapters/RUN --output merged/RUN
    python merge_adapter.py --adapter adapters/RUN --output merged/RUN --base /models/KoAlpaca --dtype float16

The merged model must give the same logits as base + adapter on fixed prompts before anything is written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gonggam.errors import run_command


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--adapter", type=Path, required=True, help="adapters/RUN from train_lora.py")
    parser.add_argument("--output", type=Path, required=True, help="where the merged model goes, e.g. merged/RUN")
    parser.add_argument("--base", help="base model id or path (default: the adapter's base_model_name_or_path)")
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    parser.add_argument("--max-shard-size", default="2GB")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an earlier merge in --output (a folder holding anything else is always refused)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    from gonggam.merge import merge_adapter

    def body() -> int:
        result = merge_adapter(args.adapter, args.output, args.base, args.dtype, args.max_shard_size, args.overwrite)
        print(f"merged model written to {result['output']} ({result['dtype']})", file=sys.stderr)
        return 0

    return run_command(body)


if __name__ == "__main__":
    sys.exit(main())
