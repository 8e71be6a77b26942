"""llama.cpp in process (`--gguf FILE`) through llama-cpp-python: a laptop's CPU, no GPU needed."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from gonggam.backends import Generated, Sampling, banned_next_tokens
from gonggam.chat import GENERATION_DEFAULTS, TURN_MARKER
from gonggam.errors import UserError

CONTEXT_TOKENS = 1024  # Polyglot-ko's own context; the server and infer.py keep histories within it
# Where export_gguf.py writes the generation defaults into the GGUF metadata.
GENERATION_KEY_PREFIX = "gonggam.generation."


class ReplyOnlyNoRepeat:
    """llama.cpp has no no_repeat_ngram_size; llama-cpp-python takes a logits processor, so the project's
    reply-only rule (see gonggam.backends.hf.ReplyNoRepeatNGram) runs here too, on the engine's own logits."""

    def __init__(self, ngram_size: int, prompt_length: int):
        self.ngram_size = ngram_size
        self.prompt_length = prompt_length

    def __call__(self, input_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        banned = banned_next_tokens(input_ids[self.prompt_length :].tolist(), self.ngram_size)
        if banned:
            scores[list(banned)] = -np.inf
        return scores


class LlamaCppBackend:
    name = "llama.cpp"

    def __init__(self, llm: Any, path: Path):
        self.llm = llm
        self.path = path
        self.generation_config = generation_config_of(llm.metadata)

    @classmethod
    def load(cls, path: str | os.PathLike[str], threads: int | None = None) -> LlamaCppBackend:
        path = Path(path)
        if not path.is_file():
            raise UserError(f"--gguf {path} does not exist: make one with `make gguf` (export_gguf.py).")
        try:
            from llama_cpp import Llama
        except ImportError as error:
            raise UserError(
                "--gguf needs llama-cpp-python: `.venv/bin/pip install -r requirements-llama.txt` (builds in minutes)."
            ) from error
        try:
            llm = Llama(model_path=str(path), n_ctx=CONTEXT_TOKENS, n_threads=threads, verbose=False)
        except (ValueError, RuntimeError) as error:
            raise UserError(f"llama.cpp could not load {path} ({error}): export it again (export_gguf.py).") from error
        return cls(llm, path)

    def tokenize(self, prompt: str) -> list[int]:
        # special=True: the <|endoftext|> that closes each earlier reply is the EOS token, as for the HF tokenizer.
        return self.llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)

    def _arguments(self, prompt_tokens: list[int], sampling: Sampling, stream: bool) -> dict[str, Any]:
        greedy = not sampling.do_sample
        return {
            "prompt": prompt_tokens,
            "max_tokens": sampling.max_new_tokens,
            "temperature": 0.0 if greedy else sampling.temperature,
            "top_p": 1.0 if greedy else sampling.top_p,
            "top_k": 1 if greedy else sampling.top_k,
            "min_p": 0.0,  # llama-cpp-python's default 0.05 is a filter transformers does not apply
            "repeat_penalty": sampling.repetition_penalty or 1.0,
            "seed": sampling.seed,
            "stop": [TURN_MARKER],
            "stream": stream,
            "logits_processor": [ReplyOnlyNoRepeat(sampling.no_repeat_ngram_size, len(prompt_tokens))],
        }

    def generate(self, prompts: list[str], sampling: Sampling) -> list[Generated]:
        results = []
        for prompt in prompts:  # llama.cpp's Python binding answers one sequence at a time
            self.llm.reset()
            answer = self.llm.create_completion(**self._arguments(self.tokenize(prompt), sampling, stream=False))
            choice = answer["choices"][0]
            ended = choice["finish_reason"] != "length"
            # llama.cpp does not count the EOS it stopped at; transformers does, and the metrics compare engines.
            results.append(
                Generated(choice["text"], "eos" if ended else "length", answer["usage"]["completion_tokens"] + ended)
            )
        return results

    def stream(self, prompt: str, sampling: Sampling) -> Iterator[str]:
        self.llm.reset()
        chunks = self.llm.create_completion(**self._arguments(self.tokenize(prompt), sampling, stream=True))
        try:
            for chunk in chunks:
                yield chunk["choices"][0]["text"]
        finally:
            chunks.close()  # stops llama.cpp's decoding loop

    def count_tokens(self, text: str) -> int | None:
        return len(self.tokenize(text))

    def unsupported(self, sampling: Sampling) -> list[str]:
        return []


def generation_config_of(metadata: dict[str, str]) -> dict[str, Any]:
    """The sampling defaults export_gguf.py stored in the file (GGUF metadata values arrive as strings)."""
    config = dict(GENERATION_DEFAULTS)
    for key, value in metadata.items():
        if key.startswith(GENERATION_KEY_PREFIX):
            try:
                config[key.removeprefix(GENERATION_KEY_PREFIX)] = json.loads(value)
            except (TypeError, ValueError):
                config[key.removeprefix(GENERATION_KEY_PREFIX)] = value
    return config
