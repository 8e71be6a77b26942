"""The safety layer: every user message is assessed before the model sees it, every reply after.

The corpus (AIHub 감성 대화 말뭉치) answers 죽고 싶어 with an ordinary counselling line, so a model tuned on it
answers suicidal statements casually. This package stands between the user and the model, one file per stage:

1. normalise.py: the normalised text (NFC, no spaces, jamo composed) and morph.py: the kiwipiepy lemma view;
2. rules.py: precise, auditable rules and the scope exceptions (news, fiction, a third party, the past, ...);
3. classifier.py: trained linear classifiers for messages, model replies and conversation turns (models/);
4. combine.py: how the rules and the classifier meet (a crisis is lowered only by a documented scope decision);
5. context.py: the conversation (the assistant's screening question and the answer, what follows a crisis,
   escalation, the topic);
6. replies.py: the levels and the fixed texts.

Levels: ``crisis`` (the model is not asked; ``CRISIS_REPLY`` with 109 / 마들랜 / 119 / 112), ``concern`` (the model's
reply plus ``CONCERN_FOOTER``), ``none``. ``check_output`` grades a model reply: one that gives a means, method,
dose, place or way to hide self-harm is ``crisis`` and is replaced. The policy and the measured figures are in
docs/safety.md; ``bench/safety.py`` measures the layer on the frozen test split of data/safety/.

The classifiers load on first use (``load()`` loads them now); a missing or damaged model file raises
``SafetyModelError`` with one sentence: the layer never runs without its classifier.
"""

from __future__ import annotations

import threading

from gonggam.safety import combine, context, morph
from gonggam.safety.classifier import CONTEXT_MODEL, MESSAGE_MODEL, REPLY_MODEL, LinearModel, SafetyModelError
from gonggam.safety.normalise import normalise
from gonggam.safety.replies import CONCERN_FOOTER, CRISIS_REPLY, Assessment, Level

__all__ = [
    "CONCERN_FOOTER",
    "CRISIS_REPLY",
    "Assessment",
    "Level",
    "SafetyModelError",
    "assess_conversation",
    "assess_message",
    "check_output",
    "guard_reply",
    "load",
    "normalise",
    "should_generate",
]

_models: dict[str, LinearModel] = {}
_lock = threading.Lock()


def load() -> tuple[LinearModel, LinearModel, LinearModel]:
    """The message, reply and context classifiers and the analyser, loaded once per process (SafetyModelError if
    one is missing or damaged)."""
    with _lock:
        if not _models:
            paths = {"message": MESSAGE_MODEL, "reply": REPLY_MODEL, "context": CONTEXT_MODEL}
            loaded = {name: LinearModel.load(path) for name, path in paths.items()}
            morph.warm_up()
            _models.update(loaded)
    return _models["message"], _models["reply"], _models["context"]


def assess_message(text: str) -> Assessment:
    """Grade one user message: ``crisis`` (no model text), ``concern`` (model text + 109 line), ``none``."""
    return combine.assess_message(text, load()[0])


def assess_conversation(messages: list[dict]) -> Assessment:
    """Grade a conversation's latest user message in the context of the turns before it (context.py)."""
    return context.assess(messages, assess_message, load()[2])


def check_output(reply: str) -> Assessment:
    """Grade a model reply: ``crisis`` when it gives a means, method, dose, place or concealment of self-harm."""
    return combine.check_output(reply, load()[1])


def should_generate(assessment: Assessment) -> bool:
    """Whether to ask the model at all: a crisis message gets the fixed reply and nothing else."""
    return assessment.level != "crisis"


def guard_reply(assessment: Assessment, model_reply: str | None) -> tuple[str, str]:
    """The text to show and ``"safety"`` when the safety layer replaced it, ``""`` when the model's stands.

    ``model_reply`` is None when the model was not asked (a crisis message). A reply that fails
    ``check_output`` is replaced whatever the message's level. For ``concern`` the footer is appended, so
    the model's reply stays an exact prefix of the result (a streaming caller writes only the tail).
    """
    if assessment.level == "crisis":
        return CRISIS_REPLY, "safety"
    if model_reply is None:
        raise ValueError(f"a {assessment.level!r} message needs the model's reply; only crisis ones skip it")
    if check_output(model_reply).level == "crisis":
        return CRISIS_REPLY, "safety"
    if assessment.level == "concern" and "109" not in model_reply:
        return f"{model_reply}\n\n{CONCERN_FOOTER}", ""
    return model_reply, ""
