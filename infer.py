"""Answer with the fine-tuned model, behind the safety layer.

    python infer.py --prompt "오늘 시험 망쳐서 우울해"                 # the reply only, on stdout
    python infer.py --prompt "..." --json                             # reply, safety level, stop reason
    python infer.py --chat                                            # multi-turn, streamed
    python infer.py --input prompts.txt --output replies.jsonl        # a batch (lines, or JSONL with "messages")
    python infer.py --adapter adapters/RUN --prompt "..."             # base + adapter, unmerged
    python infer.py --gguf exports/RUN/RUN-q4_k_m.gguf --chat          # llama.cpp on a laptop
    python infer.py --upstream http://127.0.0.1:8001/v1 --prompt "..." # vLLM or llama.cpp's server

The model defaults to the newest run in merged/. Whatever the engine, the safety layer answers a crisis message
without calling it and checks every reply before it is shown. Logs go to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from gonggam.backends import SAMPLING_HELP, add_backend_arguments
from gonggam.errors import UserError, run_command


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=SAMPLING_HELP)
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--prompt", help="one user message")
    what.add_argument("--chat", action="store_true", help="an interactive multi-turn conversation")
    what.add_argument("--input", type=Path, help="a file of prompts: one a line, or JSONL with 'messages'")
    parser.add_argument("--output", type=Path, help="with --input: JSONL of replies (default: stdout)")
    add_backend_arguments(parser)
    parser.add_argument("--temperature", type=float, default=None, help="default: generation config (0.7)")
    parser.add_argument("--top-p", type=float, default=None)
    parser.add_argument("--max-new-tokens", type=int, default=None)
    parser.add_argument("--no-repeat-ngram-size", type=int, default=None, help="default 6, over the reply only")
    parser.add_argument("--repetition-penalty", type=float, default=None)
    parser.add_argument("--greedy", action="store_true", help="no sampling")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=16, help="with --input")
    parser.add_argument("--json", action="store_true", help="print the reply as JSON with its safety fields")
    return parser.parse_args(argv)


def read_conversations(path: Path) -> list[list[dict[str, str]]]:
    if not path.is_file():
        raise UserError(f"{path} does not exist: pass a file with one prompt a line, or JSONL with 'messages'.")
    conversations = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        if line.lstrip().startswith("{"):
            try:
                messages = json.loads(line)["messages"]
            except (json.JSONDecodeError, KeyError, TypeError) as error:
                raise UserError(f"{path}:{number} is not JSON with a 'messages' list: fix that line.") from error
            if messages and messages[-1]["role"] == "assistant":
                messages = messages[:-1]  # answer the last user turn
            conversations.append(messages)
        else:
            conversations.append([{"role": "user", "content": line.strip()}])
    return conversations


def chat(responder, overrides: dict) -> None:
    from gonggam.history import HistoryTooLong, fit_for_reply, reply_budget, token_counter

    # The model reads what fits its context (the oldest turns go first); the safety layer reads every turn.
    count, budget = token_counter(responder.backend), reply_budget(responder.sampling(**overrides).max_new_tokens)
    messages: list[dict[str, str]] = []
    print("공감 chat: 메시지를 입력하세요 (끝내려면 빈 줄이나 Ctrl-D).", file=sys.stderr)
    while True:
        try:
            text = input("> ").strip()
        except EOFError:
            break
        if not text:
            break
        messages.append({"role": "user", "content": text})
        try:
            fitted = fit_for_reply(messages, count, budget)
        except HistoryTooLong as error:
            print(f"error: {error}", file=sys.stderr)
            messages.pop()
            continue
        reply = responder.stream(
            messages, write=lambda piece: print(piece, end="", flush=True), model_messages=fitted.messages, **overrides
        )
        print()
        messages.append({"role": "assistant", "content": reply.response})


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)

    def body() -> int:
        from gonggam.generation import Responder

        conversations = read_conversations(args.input) if args.input else None
        responder = Responder.from_args(args)
        overrides = dict(
            temperature=args.temperature,
            top_p=args.top_p,
            max_new_tokens=args.max_new_tokens,
            no_repeat_ngram_size=args.no_repeat_ngram_size,
            repetition_penalty=args.repetition_penalty,
            do_sample=False if args.greedy else None,
            seed=args.seed,
        )
        if args.chat:
            chat(responder, overrides)
        elif args.prompt is not None:
            reply = responder.reply([{"role": "user", "content": args.prompt}], **overrides)
            print(json.dumps(reply.as_json(), ensure_ascii=False) if args.json else reply.response)
        else:
            answer_file(responder, conversations, args, overrides)
        return 0

    return run_command(body, "the conversation ended; nothing was written.")


def answer_file(responder, conversations, args, overrides) -> None:
    from tqdm import tqdm

    lines = []
    for start in tqdm(range(0, len(conversations), args.batch_size), desc="answering", unit="batch"):
        for reply in responder.reply_batch(conversations[start : start + args.batch_size], **overrides):
            lines.append(json.dumps(reply.as_json(), ensure_ascii=False))
    text = "\n".join(lines) + "\n"
    if args.output:
        tmp = args.output.with_suffix(args.output.suffix + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(args.output)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    sys.exit(main())
