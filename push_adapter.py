"""Publish a trained adapter to the Hugging Face Hub, after checking it holds nothing it must not.

    python push_adapter.py --adapter adapters/RUN --repo-id USER/NAME [--private] [--revision main]
    python push_adapter.py --adapter adapters/RUN --repo-id USER/NAME --dry-run     # checks and file list only

The token comes from HF_TOKEN or the saved `hf auth login`; it is never printed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gonggam.publish import HUB_ID, plan_upload, push


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--adapter", type=Path, required=True)
    parser.add_argument("--repo-id", required=True, help="USER/NAME on the Hub")
    parser.add_argument("--private", action="store_true")
    parser.add_argument("--revision", default="main")
    parser.add_argument("--dry-run", action="store_true", help="check and list the files, upload nothing")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None, api=None) -> int:
    args = parse(argv)
    if not HUB_ID.match(args.repo_id):
        print(f"error: --repo-id {args.repo_id!r} is not of the form USER/NAME.", file=sys.stderr)
        return 2
    plan = plan_upload(args.adapter)
    if plan.problems:
        print(f"error: {args.adapter} cannot be published: {'; '.join(plan.problems)}.", file=sys.stderr)
        return 2
    print("would upload:" if args.dry_run else "uploading:", file=sys.stderr)
    for name in plan.files:
        print(f"  {name}", file=sys.stderr)
    if plan.left_behind:
        print(f"left behind ({len(plan.left_behind)} files: checkpoints, pickles, logs)", file=sys.stderr)
    if args.dry_run:
        return 0
    from huggingface_hub import get_token

    token = get_token()
    if not token and api is None:
        print("error: no Hugging Face token: run `hf auth login` or set HF_TOKEN.", file=sys.stderr)
        return 2
    try:
        url = push(plan, args.repo_id, args.private, args.revision, token, api=api)
    except Exception as error:  # the Hub's errors (auth, network, quota) are the user's to fix
        message = str(error).replace(token, "***") if token else str(error)
        print(f"error: the upload to {args.repo_id} failed ({message.splitlines()[0][:160]}).", file=sys.stderr)
        return 2
    print(f"uploaded to https://huggingface.co/{args.repo_id} ({url})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
