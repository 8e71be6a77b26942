"""transformers in process: a merged model or base + adapter, on the CPU or a GPU, 4-bit optional."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from threading import Event, Thread
from typing import Any

import torch
from transformers import LogitsProcessor, LogitsProcessorList, StoppingCriteria, StoppingCriteriaList

from gonggam.backends import Generated, Sampling
from gonggam.chat import EOS_TOKEN_ID
from gonggam.errors import UserError
from gonggam.modeling import load_base, load_tokenizer, load_with_adapter


class ReplyNoRepeatNGram(LogitsProcessor):
    """no_repeat_ngram_size over the reply only.

    transformers' NoRepeatNGramLogitsProcessor also counts the prompt: in a multi-turn chat a reply that ends
    like an earlier one ("...어떠세요?<|endoftext|>") would have its EOS banned and never stop, and a reply
    could not reflect the user's own words back. No library offers the reply-only variant, hence this one.
    """

    def __init__(self, ngram_size: int, prompt_length: int):
        self.ngram_size = ngram_size
        self.prompt_length = prompt_length

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        n = self.ngram_size
        generated = input_ids[:, self.prompt_length :]
        if n <= 0 or generated.shape[1] < n:
            return scores
        windows = generated.unfold(1, n, 1)  # (batch, positions, n)
        tail = generated[:, -(n - 1) :].unsqueeze(1)  # the n-1 tokens a new token would complete
        repeats = (windows[:, :, :-1] == tail).all(dim=2)
        for row, position in repeats.nonzero().tolist():
            scores[row, windows[row, position, -1]] = -float("inf")
        return scores


class HaltOnEvent(StoppingCriteria):
    """Lets a reader stop generation from another thread (a piece failed the output check, the client left)."""

    def __init__(self, event: Event):
        self.event = event

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any) -> torch.BoolTensor:
        return torch.full((input_ids.shape[0],), self.event.is_set(), device=input_ids.device)


def newest_merged(root: Path = Path("merged")) -> Path:
    runs = [p for p in root.glob("*") if (p / "config.json").is_file()] if root.is_dir() else []
    if not runs:
        raise UserError(
            "there is no merged model in merged/: run `make merge` (or pass --model, --adapter, --gguf or --upstream)."
        )
    return max(runs, key=lambda p: p.stat().st_mtime)


class TransformersBackend:
    """A model, its tokenizer and its generation config."""

    name = "transformers"

    def __init__(self, model: Any, tokenizer: Any):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.tokenizer.padding_side = "left"  # replies of a batch all start at the same column

    @classmethod
    def load(
        cls, model: str | None = None, adapter: str | None = None, dtype: str = "auto", load_in_4bit: bool = False
    ) -> TransformersBackend:
        # Quantised weights are placed at load time; a full-precision model goes to the GPU when there is one.
        device_map = "default" if load_in_4bit else ("cuda" if torch.cuda.is_available() else None)
        kwargs = dict(dtype=dtype, load_in_4bit=load_in_4bit, device_map=device_map)
        if adapter:
            loaded, tokenizer = load_with_adapter(model, adapter, **kwargs)
            generation_dir = Path(adapter)
        else:
            path = model or str(newest_merged())
            loaded, tokenizer = load_base(path, **kwargs), load_tokenizer(path)
            generation_dir = Path(path)
        if (generation_dir / "generation_config.json").is_file():
            from transformers import GenerationConfig

            saved = GenerationConfig.from_pretrained(generation_dir)
            if saved.eos_token_id == EOS_TOKEN_ID:  # a base's own config (EOS 0, greedy) is not the project's
                loaded.generation_config = saved
        return cls(loaded, tokenizer)

    @property
    def generation_config(self) -> dict[str, Any]:
        return self.model.generation_config.to_dict()

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def encode(self, prompts: list[str]) -> dict[str, torch.Tensor]:
        # The template writes every special token itself; token_type_ids are never produced (see gonggam.chat).
        encoded = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        return {k: v.to(self.device) for k, v in encoded.items() if k in ("input_ids", "attention_mask")}

    def generation_kwargs(self, prompt_length: int, sampling: Sampling) -> dict[str, Any]:
        settings = asdict(sampling)
        ngram = settings.pop("no_repeat_ngram_size") or 0
        settings.pop("seed")  # set on the global generator by the caller: transformers has no per-call seed
        if settings["repetition_penalty"] is None:
            settings.pop("repetition_penalty")
        if not settings["do_sample"]:
            for name in ("temperature", "top_p", "top_k"):
                settings.pop(name)
        return {
            **settings,
            "no_repeat_ngram_size": 0,
            "logits_processor": LogitsProcessorList([ReplyNoRepeatNGram(ngram, prompt_length)]),
            "eos_token_id": EOS_TOKEN_ID,
            "pad_token_id": EOS_TOKEN_ID,
        }

    @torch.inference_mode()
    def generate(self, prompts: list[str], sampling: Sampling) -> list[Generated]:
        _seed(sampling)
        inputs = self.encode(prompts)
        prompt_length = inputs["input_ids"].shape[1]
        output = self.model.generate(**inputs, **self.generation_kwargs(prompt_length, sampling))
        results = []
        for row in output[:, prompt_length:].tolist():
            ended = EOS_TOKEN_ID in row
            tokens = row[: row.index(EOS_TOKEN_ID)] if ended else row
            text = self.tokenizer.decode(tokens, skip_special_tokens=False)
            results.append(Generated(text, "eos" if ended else "length", len(tokens) + int(ended)))
        return results

    def stream(self, prompt: str, sampling: Sampling) -> Iterator[str]:
        from transformers import TextIteratorStreamer

        _seed(sampling)
        inputs = self.encode([prompt])
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=False)
        halt = Event()
        kwargs = {
            **inputs,
            **self.generation_kwargs(inputs["input_ids"].shape[1], sampling),
            "streamer": streamer,
            "stopping_criteria": StoppingCriteriaList([HaltOnEvent(halt)]),
        }
        worker = Thread(target=torch.inference_mode()(self.model.generate), kwargs=kwargs, daemon=True)
        worker.start()
        ended = False
        try:
            yield from streamer
            ended = True  # the streamer's stop signal came: nothing is left to drain
        finally:  # the reader stopped early (a failed check, a client gone): stop generating too
            halt.set()
            if not ended:  # drain, so the worker is never blocked on a full queue (after the end it would wait forever)
                for _ in streamer:
                    pass
            worker.join()

    def count_tokens(self, text: str) -> int | None:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def unsupported(self, sampling: Sampling) -> list[str]:
        return []


def _seed(sampling: Sampling) -> None:
    if sampling.seed is not None:
        from transformers import set_seed

        set_seed(sampling.seed)
