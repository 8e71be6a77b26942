"""serve.py's work: check where it may listen, load the engine, and run the app under uvicorn."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import socket
import sys
import threading
from pathlib import Path

from gonggam.backends import SAMPLING_HELP, add_backend_arguments
from gonggam.errors import UserError, run_command
from gonggam.history import Counter

log = logging.getLogger("gonggam.serve")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="serve.py",
        description="The chatbot as an OpenAI-compatible API and a web chat, behind the safety layer.",
        epilog=SAMPLING_HELP,
    )
    add_backend_arguments(parser)
    where = parser.add_argument_group("server")
    where.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1; another address needs --api-key-env")
    where.add_argument("--port", type=int, default=8000, help="default 8000; 0 picks a free port (the log says which)")
    where.add_argument(
        "--api-key-env", metavar="VAR", help="environment variable holding the key /v1/* requests must send as Bearer"
    )
    where.add_argument(
        "--upstream-tokenizer",
        metavar="DIR|FILE.gguf",
        help="with --upstream: the served model's tokenizer, to count history tokens exactly (default: UTF-8 bytes, "
        "a safe upper bound)",
    )
    return parser.parse_args(argv)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name other than localhost may resolve to anything
        return False


def api_key(host: str, variable: str | None) -> str | None:
    """The key /v1/* requires, or None; refuses an address other machines can reach without one."""
    key = None
    if variable:
        key = os.environ.get(variable)
        if not key:
            raise UserError(f"--api-key-env {variable} is not set: export {variable}=SECRET or drop the flag.")
    if key is None and not is_loopback(host):
        raise UserError(
            f"refusing to listen on {host} without --api-key-env: anyone who can reach that address could use the "
            "model, so set an API key or keep the default --host 127.0.0.1."
        )
    return key


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, taken before the model loads so that a busy port fails in a second, not minutes."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise UserError(f"cannot listen on {host}:{port} ({error.strerror}): pass another --port or --host.") from None
    return sock


def tokenizer_counter(path: str) -> Counter:
    """Exact token counts for an upstream server's model: its folder (transformers) or its GGUF (vocabulary only)."""
    lock = threading.Lock()  # the turns of an upstream run side by side; the count is microseconds, so one at a time
    if path.endswith(".gguf"):
        if not Path(path).is_file():
            raise UserError(f"--upstream-tokenizer {path} does not exist: pass the GGUF the server serves.")
        from llama_cpp import Llama

        vocabulary = Llama(model_path=path, vocab_only=True, verbose=False)

        def count(text: str) -> int:
            with lock:
                return len(vocabulary.tokenize(text.encode("utf-8"), add_bos=False, special=True))

        return count
    if not Path(path, "tokenizer_config.json").is_file():
        raise UserError(f"--upstream-tokenizer {path} holds no tokenizer: pass the served model's folder or GGUF.")
    from gonggam.modeling import load_tokenizer

    tokenizer = load_tokenizer(path)

    def count_hf(text: str) -> int:
        with lock:
            return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    return count_hf


def configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per upstream call adds nothing to ours


def serve(args: argparse.Namespace) -> int:
    key = api_key(args.host, args.api_key_env)
    if args.upstream_tokenizer and not args.upstream:
        raise UserError("--upstream-tokenizer is for --upstream: the other engines count with their own tokenizer.")
    sock = bind(args.host, args.port)
    # The checks above come before these imports (seconds: torch, transformers), so a refusal is immediate.
    import uvicorn

    from gonggam.generation import Responder
    from gonggam.serve.app import create_app, model_name

    configure_logging()
    responder = Responder.from_args(args)
    counter = tokenizer_counter(args.upstream_tokenizer) if args.upstream_tokenizer else None
    app = create_app(responder, api_key=key, tokenizer=counter)
    sock.listen(128)  # from here connections wait in the backlog until uvicorn takes them
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    log.info(
        "serving %s (%s) on http://%s:%d/ (API key %s)",
        model_name(responder),
        responder.backend.name,
        shown,
        port,
        "required" if key else "off",
    )
    config = uvicorn.Config(app, log_config=None, access_log=False, timeout_graceful_shutdown=5, lifespan="on")
    uvicorn.Server(config).run(sockets=[sock])
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    return run_command(lambda: serve(args), "the server stopped; no conversation was kept.")
