"""Sampled replies behind the safety layer: one prompt, a batch, or a streamed chat turn.

infer.py and eval.py both answer through `Responder`, so that both see the same prompt bytes, stopping rule,
cleaning and safety checks.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import LogitsProcessor, LogitsProcessorList

from gonggam.chat import EOS_TOKEN, EOS_TOKEN_ID, TURN_MARKER, clean_reply
from gonggam.modeling import UserError, load_base, load_tokenizer, load_with_adapter


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


@dataclass
class Reply:
    prompt: str
    response: str
    safety: dict[str, Any]
    stopped_by: str  # "eos" | "length" | "safety"
    new_tokens: int
    messages: list[dict[str, str]] = field(default_factory=list, repr=False)

    def as_json(self) -> dict[str, Any]:
        record = asdict(self)
        record.pop("messages")
        return record


def newest_merged(root: Path = Path("merged")) -> Path:
    runs = [p for p in root.glob("*") if (p / "config.json").is_file()] if root.is_dir() else []
    if not runs:
        raise UserError("there is no merged model in merged/: run `make merge` (or pass --model or --adapter).")
    return max(runs, key=lambda p: p.stat().st_mtime)


def load_safety_layer() -> None:
    """The safety layer's classifiers and analyser; a missing or damaged model file is a UserError (exit 2)."""
    from gonggam import safety

    try:
        safety.load()
    except safety.SafetyModelError as error:
        raise UserError(str(error)) from None


class Responder:
    """A model, its tokenizer and its generation config, answering chat messages."""

    def __init__(self, model: Any, tokenizer: Any):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.tokenizer.padding_side = "left"  # replies of a batch all start at the same column

    @classmethod
    def load(
        cls, model: str | None = None, adapter: str | None = None, dtype: str = "auto", load_in_4bit: bool = False
    ) -> Responder:
        load_safety_layer()  # before the model: no answer path runs without the layer's classifiers
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
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def encode(self, conversations: list[list[dict[str, str]]]) -> dict[str, torch.Tensor]:
        texts = [
            self.tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in conversations
        ]
        # The template writes every special token itself; token_type_ids are never produced (see gonggam.chat).
        encoded = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        return {k: v.to(self.device) for k, v in encoded.items() if k in ("input_ids", "attention_mask")}

    def generation_kwargs(self, prompt_length: int, **overrides: Any) -> dict[str, Any]:
        settings = {k: v for k, v in overrides.items() if v is not None}
        ngram = settings.pop("no_repeat_ngram_size", self.model.generation_config.no_repeat_ngram_size) or 0
        if not settings.get("do_sample", self.model.generation_config.do_sample):
            settings.pop("temperature", None)
            settings.pop("top_p", None)
        return {
            **settings,
            "no_repeat_ngram_size": 0,
            "logits_processor": LogitsProcessorList([ReplyNoRepeatNGram(ngram, prompt_length)]),
            "eos_token_id": EOS_TOKEN_ID,
            "pad_token_id": EOS_TOKEN_ID,
        }

    @torch.inference_mode()
    def generate(self, conversations: list[list[dict[str, str]]], **overrides: Any) -> list[tuple[str, str, int]]:
        """Raw model replies: (cleaned text, "eos" | "length", new token count) per conversation."""
        inputs = self.encode(conversations)
        prompt_length = inputs["input_ids"].shape[1]
        output = self.model.generate(**inputs, **self.generation_kwargs(prompt_length, **overrides))
        results = []
        for row in output[:, prompt_length:].tolist():
            ended = EOS_TOKEN_ID in row
            tokens = row[: row.index(EOS_TOKEN_ID)] if ended else row
            text = clean_reply(self.tokenizer.decode(tokens, skip_special_tokens=False))
            results.append((text, "eos" if ended else "length", len(tokens) + int(ended)))
        return results

    def reply_batch(self, conversations: list[list[dict[str, str]]], **overrides: Any) -> list[Reply]:
        """Answer each conversation's last user message, with the safety layer before and after the model."""
        from gonggam import safety

        assessments = [safety.assess_conversation(c) for c in conversations]
        to_model = [i for i, a in enumerate(assessments) if a.level != "crisis"]
        generated = {}
        if to_model:
            answers = self.generate([conversations[i] for i in to_model], **overrides)
            generated = dict(zip(to_model, answers, strict=True))
        replies = []
        for i, (conversation, assessment) in enumerate(zip(conversations, assessments, strict=True)):
            text, stopped_by, new_tokens = generated.get(i, (None, "safety", 0))
            final, replaced = safety.guard_reply(assessment, text)
            replies.append(
                Reply(
                    prompt=conversation[-1]["content"],
                    response=final,
                    safety={"level": assessment.level, "reasons": list(assessment.reasons)},
                    stopped_by="safety" if replaced or text is None else stopped_by,
                    new_tokens=new_tokens,
                    messages=conversation,
                )
            )
        return replies

    def reply(self, messages: list[dict[str, str]], **overrides: Any) -> Reply:
        return self.reply_batch([messages], **overrides)[0]

    def stream(self, messages: list[dict[str, str]], write: Any, **overrides: Any) -> Reply:
        """One chat turn, written piece by piece as tokens arrive; each piece is safety-checked before it shows."""
        from threading import Event, Thread

        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        from gonggam import safety

        assessment = safety.assess_conversation(messages)
        if assessment.level == "crisis":
            reply = self.reply(messages, **overrides)
            write(reply.response)
            return reply
        inputs = self.encode([messages])
        prompt_length = inputs["input_ids"].shape[1]
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=False)
        halt = Event()

        class Halt(StoppingCriteria):  # lets the reader stop generation once a piece fails the output check
            def __call__(
                self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any
            ) -> torch.BoolTensor:
                return torch.full((input_ids.shape[0],), halt.is_set(), device=input_ids.device)

        kwargs = {
            **inputs,
            **self.generation_kwargs(prompt_length, **overrides),
            "streamer": streamer,
            "stopping_criteria": StoppingCriteriaList([Halt()]),
        }
        worker = Thread(target=self.model.generate, kwargs=kwargs, daemon=True)
        worker.start()
        shown, raw, stopped_by = "", "", "length"
        for piece in streamer:
            raw += piece
            text = clean_reply(raw)
            if safety.check_output(text).level == "crisis":
                write("\n" + safety.CRISIS_REPLY)
                shown, stopped_by = safety.CRISIS_REPLY, "safety"
                halt.set()
                break
            if text.startswith(shown) and len(text) > len(shown):
                write(text[len(shown) :] if shown else text)
                shown = text
            if EOS_TOKEN in raw or TURN_MARKER in raw:
                stopped_by = "eos"
                halt.set()
                break
        worker.join()
        if stopped_by != "safety" and assessment.level == "concern":
            footer = safety.guard_reply(assessment, shown)[0][len(shown) :]
            write(footer)
            shown += footer
        new_tokens = len(self.tokenizer(raw, add_special_tokens=False)["input_ids"])
        return Reply(
            prompt=messages[-1]["content"],
            response=shown,
            safety={"level": assessment.level, "reasons": list(assessment.reasons)},
            stopped_by=stopped_by,
            new_tokens=new_tokens,
            messages=messages,
        )
