"""Sampled replies behind the safety layer: one prompt, a batch, or a streamed chat turn.

infer.py, eval.py and serve.py all answer through `Responder`, whatever engine generates (transformers, llama.cpp,
an upstream server; see gonggam.backends), so that all of them see the same prompt bytes, stopping rule, cleaning
and safety checks.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from gonggam.backends import Backend, Sampling, open_backend
from gonggam.backends.hf import ReplyNoRepeatNGram, TransformersBackend, newest_merged
from gonggam.chat import EOS_TOKEN, TURN_MARKER, clean_reply, render_prompt
from gonggam.errors import UserError

__all__ = ["Reply", "ReplyNoRepeatNGram", "Responder", "newest_merged"]


@dataclass
class Reply:
    prompt: str
    response: str
    safety: dict[str, Any]
    stopped_by: str  # "eos" | "length" | "safety"
    new_tokens: int
    messages: list[dict[str, str]] = field(default_factory=list, repr=False)
    engine: dict[str, Any] = field(default_factory=dict, repr=False)

    def as_json(self) -> dict[str, Any]:
        record = asdict(self)
        record.pop("messages")
        if not record["engine"]:
            record.pop("engine")
        return record


def load_safety_layer() -> None:
    """The safety layer's classifiers and analyser; a missing or damaged model file is a UserError (exit 2)."""
    from gonggam import safety

    try:
        safety.load()
    except safety.SafetyModelError as error:
        raise UserError(str(error)) from None


class Responder:
    """An engine behind the project's chat template, stopping rule, reply cleaning and safety layer."""

    def __init__(self, backend: Backend):
        self.backend = backend

    @classmethod
    def load(
        cls, model: str | None = None, adapter: str | None = None, dtype: str = "auto", load_in_4bit: bool = False
    ) -> Responder:
        """transformers in process (what eval.py's teacher-forced metrics need)."""
        load_safety_layer()  # before the model: no answer path runs without the layer's classifiers
        return cls(TransformersBackend.load(model, adapter, dtype, load_in_4bit))

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Responder:
        """The engine named by gonggam.backends.add_backend_arguments' flags."""
        load_safety_layer()
        return cls(open_backend(args))

    # transformers' model and tokenizer, for the callers that need more than replies (eval's teacher-forced loss)
    @property
    def model(self) -> Any:
        return self._transformers().model

    @property
    def tokenizer(self) -> Any:
        return self._transformers().tokenizer

    def _transformers(self) -> TransformersBackend:
        if not isinstance(self.backend, TransformersBackend):
            raise UserError(f"this needs the model in process (--model or --adapter), not {self.backend.name}.")
        return self.backend

    def sampling(self, **overrides: Any) -> Sampling:
        return Sampling.from_config(self.backend.generation_config, **overrides)

    def engine(self, sampling: Sampling) -> dict[str, Any]:
        return {"backend": self.backend.name, "unsupported": self.backend.unsupported(sampling)}

    def generate(self, conversations: list[list[dict[str, str]]], **overrides: Any) -> list[tuple[str, str, int]]:
        """Raw model replies: (cleaned text, "eos" | "length", new token count) per conversation."""
        prompts = [render_prompt(c) for c in conversations]
        generated = self.backend.generate(prompts, self.sampling(**overrides))
        return [(clean_reply(g.text), g.stopped_by, g.new_tokens) for g in generated]

    def reply_batch(self, conversations: list[list[dict[str, str]]], **overrides: Any) -> list[Reply]:
        """Answer each conversation's last user message, with the safety layer before and after the model."""
        from gonggam import safety

        engine = self.engine(self.sampling(**overrides))
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
                    engine=engine,
                )
            )
        return replies

    def reply(self, messages: list[dict[str, str]], **overrides: Any) -> Reply:
        return self.reply_batch([messages], **overrides)[0]

    def stream(
        self,
        messages: list[dict[str, str]],
        write: Callable[[str], Any],
        should_stop: Callable[[], bool] | None = None,
        **overrides: Any,
    ) -> Reply:
        """One chat turn, written piece by piece as tokens arrive; each piece is safety-checked before it shows.

        `should_stop` (a client that went away) ends the generation early, like a failed check does.
        """
        from gonggam import safety

        assessment = safety.assess_conversation(messages)
        if assessment.level == "crisis":
            reply = self.reply(messages, **overrides)
            write(reply.response)
            return reply
        sampling = self.sampling(**overrides)
        pieces = self.backend.stream(render_prompt(messages), sampling)
        shown, raw, stopped_by, count = "", "", "length", 0
        try:
            for piece in pieces:
                raw += piece
                count += 1
                text = clean_reply(raw)
                if safety.check_output(text).level == "crisis":
                    write(("\n" if shown else "") + safety.CRISIS_REPLY)
                    shown, stopped_by = safety.CRISIS_REPLY, "safety"
                    break
                if text.startswith(shown) and len(text) > len(shown):
                    write(text[len(shown) :] if shown else text)
                    shown = text
                if EOS_TOKEN in raw or TURN_MARKER in raw:
                    stopped_by = "eos"
                    break
                if should_stop is not None and should_stop():
                    stopped_by = "client"
                    break
            else:  # the engine ended by itself: at EOS (which llama.cpp and servers do not show) or the budget
                if (self.backend.count_tokens(raw) or count) < sampling.max_new_tokens:
                    stopped_by = "eos"
        finally:
            pieces.close()
        if stopped_by not in ("safety", "client") and assessment.level == "concern":
            footer = safety.guard_reply(assessment, shown)[0][len(shown) :]
            write(footer)
            shown += footer
        counted = self.backend.count_tokens(raw)
        return Reply(
            prompt=messages[-1]["content"],
            response=shown,
            safety={"level": assessment.level, "reasons": list(assessment.reasons)},
            stopped_by=stopped_by,
            new_tokens=counted if counted is not None else count,
            messages=messages,
            engine=self.engine(sampling),
        )
