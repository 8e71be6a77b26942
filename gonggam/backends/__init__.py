"""The engines behind `gonggam.generation.Responder`: each turns rendered prompt text into reply text.

- ``transformers`` (`--model DIR|ID`, `--adapter DIR`): in process, CPU or GPU, 4-bit optional;
- ``llama.cpp`` (`--gguf FILE`): in process through llama-cpp-python;
- ``upstream`` (`--upstream URL`): any OpenAI-compatible /v1 server (vLLM on a GPU, llama.cpp's server on a CPU).

The chat template, the stopping rule, reply cleaning and the safety layer stay in the Responder, whatever the engine:
no engine runs them for us. A backend only generates, and says which sampling settings it cannot honour.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from dataclasses import dataclass, fields, replace
from typing import Any, Protocol

from gonggam.chat import GENERATION_DEFAULTS
from gonggam.errors import UserError

SAMPLING_HELP = (
    "Sampling maps onto each engine: transformers honours every setting; llama.cpp (--gguf) every one, with "
    "no_repeat_ngram_size applied over the reply by the project and repetition_penalty as llama.cpp's "
    "repeat_penalty over its last 64 tokens; an --upstream server gets temperature, top_p, top_k, max_tokens, seed "
    "and repetition_penalty, but no_repeat_ngram_size cannot be sent, which the reply's JSON says under 'engine'."
)


@dataclass(frozen=True)
class Sampling:
    """One reply's generation settings; defaults come from the model's generation_config.json."""

    do_sample: bool = True
    temperature: float = 0.7
    top_p: float = 0.9
    top_k: int = 50  # transformers' default when sampling; other engines are told it explicitly
    max_new_tokens: int = 128
    no_repeat_ngram_size: int = 6
    repetition_penalty: float | None = None
    seed: int | None = None

    @classmethod
    def from_config(cls, config: dict[str, Any] | None = None, **overrides: Any) -> Sampling:
        known = {f.name for f in fields(cls)}
        base = {k: v for k, v in {**GENERATION_DEFAULTS, **(config or {})}.items() if k in known and v is not None}
        sampling = cls(**base)
        return replace(sampling, **{k: v for k, v in overrides.items() if k in known and v is not None})


@dataclass
class Generated:
    """Raw text as the engine produced it (before `clean_reply`), why it stopped, and how many tokens it took."""

    text: str
    stopped_by: str  # "eos" | "length"
    new_tokens: int


class Backend(Protocol):
    name: str
    generation_config: dict[str, Any]  # the model's sampling defaults

    def generate(self, prompts: list[str], sampling: Sampling) -> list[Generated]:
        """One reply per prompt; a batch where the engine batches."""

    def stream(self, prompt: str, sampling: Sampling) -> Iterator[str]:
        """Text pieces as they are generated; closing the iterator stops the generation."""

    def count_tokens(self, text: str) -> int | None:
        """Tokens in generated text, or None where the engine cannot say (then streamed pieces are counted)."""

    def unsupported(self, sampling: Sampling) -> list[str]:
        """The settings of `sampling` this engine cannot apply (shown in the reply's JSON, never silently dropped)."""


def add_backend_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags every entry point that answers shares (infer.py, eval.py, serve.py)."""
    group = parser.add_argument_group("engine", "which engine generates (default: the newest model in merged/)")
    group.add_argument("--model", help="transformers: a merged model directory or Hub id")
    group.add_argument("--adapter", help="transformers: an adapter directory, applied to its base without merging")
    group.add_argument("--dtype", default="auto", choices=["auto", "bfloat16", "float16", "float32"])
    group.add_argument("--load-in-4bit", action="store_true", help="transformers: quantise the base (small GPUs)")
    group.add_argument("--gguf", metavar="FILE", help="llama.cpp in process: a .gguf file from export_gguf.py")
    group.add_argument("--upstream", metavar="URL", help="an OpenAI-compatible server, e.g. http://127.0.0.1:8001/v1")
    group.add_argument("--upstream-model", metavar="NAME", help="the model name the server serves (default: its first)")
    group.add_argument(
        "--upstream-key-env", metavar="VAR", help="environment variable holding the server's API key (never a flag)"
    )
    group.add_argument("--upstream-timeout", type=float, default=120.0, help="seconds per request (default 120)")


def open_backend(args: argparse.Namespace) -> Backend:
    """The backend the flags name; a UserError (one sentence) for conflicting or unusable flags."""
    chosen = [flag for flag, value in (("--gguf", args.gguf), ("--upstream", args.upstream)) if value]
    if args.model or args.adapter:
        chosen.insert(0, "--model/--adapter")
    if len(chosen) > 1:
        raise UserError(f"{' and '.join(chosen)} name different engines: pass only one of them.")
    if args.gguf:
        from gonggam.backends.llama import LlamaCppBackend

        return LlamaCppBackend.load(args.gguf)
    if args.upstream:
        from gonggam.backends.upstream import UpstreamBackend

        key = None
        if args.upstream_key_env:
            key = os.environ.get(args.upstream_key_env)
            if not key:
                raise UserError(f"--upstream-key-env {args.upstream_key_env} is not set: export it or drop the flag.")
        return UpstreamBackend.connect(args.upstream, args.upstream_model, key, args.upstream_timeout)
    from gonggam.backends.hf import TransformersBackend

    return TransformersBackend.load(args.model, args.adapter, args.dtype, args.load_in_4bit)


def banned_next_tokens(generated: list[int], ngram_size: int) -> set[int]:
    """Tokens that would repeat an n-gram already in the reply (the reply only, never the prompt)."""
    n = ngram_size
    if n <= 0 or len(generated) < n:
        return set()
    tail = generated[len(generated) - n + 1 :]
    return {generated[i + n - 1] for i in range(len(generated) - n + 1) if generated[i : i + n - 1] == tail}
