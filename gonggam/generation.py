"""Sampled replies behind the safety layer: one prompt, a batch, or a streamed chat turn.

infer.py, eval.py and serve.py all answer through `Responder`, whatever engine generates (transformers, llama.cpp,
an upstream server; see gonggam.backends), so that all of them see the same prompt bytes, stopping rule, cleaning
and safety checks.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from gonggam.backends import Backend, Sampling, open_backend
from gonggam.backends.hf import ReplyNoRepeatNGram, TransformersBackend, newest_merged
from gonggam.chat import EOS_TOKEN, TURN_MARKER, clean_reply, render_prompt
from gonggam.errors import UserError

__all__ = ["Reply", "ReplyNoRepeatNGram", "Responder", "newest_merged", "release_point"]

SENTENCE_END = re.compile(r"[.?!…~]+")
MAX_HELD_CHARS = 60  # a run-on reply with no sentence end is judged and shown up to its last space past this


def release_point(text: str, start: int) -> int:
    """Where the streamed text that can be judged and shown ends: after the last sentence end past `start`."""
    end = start
    for match in SENTENCE_END.finditer(text, start):
        end = match.end()
    if end == start and len(text) - start > MAX_HELD_CHARS:
        end = max(text.rfind(" ", start), start)
    return end


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
        model_messages: list[dict[str, str]] | None = None,
        **overrides: Any,
    ) -> Reply:
        """One chat turn, written a sentence at a time as tokens arrive; the text up to each sentence end is
        safety-checked before it shows, so a reply that fails shows nothing of the failing sentence.

        `should_stop` (a client that went away) ends the generation early, like a failed check does.
        `model_messages`: the turns the model is shown when the conversation outgrew its context
        (gonggam.history.fit_history); the safety layer still reads all of `messages`.
        """
        from gonggam import safety

        assessment = safety.assess_conversation(messages)
        if assessment.level == "crisis":
            reply = self.reply(messages, **overrides)
            write(reply.response)
            return reply
        sampling = self.sampling(**overrides)
        pieces = self.backend.stream(render_prompt(model_messages or messages), sampling)
        shown, raw, stopped_by, count = "", "", "length", 0

        def release(ready: str) -> bool:
            """Show `ready` if it passes the output check; False once the crisis reply has replaced it."""
            nonlocal shown
            if len(ready) <= len(shown) or not ready.startswith(shown):
                return True
            if safety.check_output(ready).level == "crisis":
                write(("\n" if shown else "") + safety.CRISIS_REPLY)
                shown = safety.CRISIS_REPLY
                return False
            write(ready[len(shown) :])
            shown = ready
            return True

        try:
            for piece in pieces:
                raw += piece
                count += 1
                text = clean_reply(raw)
                ended = EOS_TOKEN in raw or TURN_MARKER in raw
                # Whole sentences only: the check judges sentences (a fragment such as "많이" scores as unsafe on
                # its own), and a method description must not show even its first words before it is judged.
                if not release(text if ended else text[: release_point(text, len(shown))]):
                    stopped_by = "safety"
                    break
                if ended:
                    stopped_by = "eos"
                    break
                if should_stop is not None and should_stop():
                    stopped_by = "client"
                    break
            else:  # the engine ended by itself: at EOS (which llama.cpp and servers do not show) or the budget
                if not release(clean_reply(raw)):  # the last sentence, held back until now
                    stopped_by = "safety"
                elif (self.backend.count_tokens(raw) or count) < sampling.max_new_tokens:
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
