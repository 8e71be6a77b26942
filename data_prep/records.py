"""What the readers yield: a normalised dialogue, or a note that a record was malformed.

Every reader builds its dialogues through ``clean_text`` and ``build_messages`` so that the JSON, the
sheets and the CSV exports agree byte for byte on the same dialogue (which is what deduplication and
the train/validation leakage check compare).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Dialogue:
    """One whole dialogue, as one line of train.jsonl / validation.jsonl (plus its split group)."""

    id: str
    messages: list[dict[str, str]]
    emotion: dict[str, str | None]
    situation: dict[str, str | None]
    persona: dict[str, str | None]
    source: str
    # The person behind the dialogue: no group may be on both sides of a random split.
    group: str
    # True when non-empty text after the first incomplete turn had to be dropped.
    truncated: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "messages": self.messages,
            "emotion": self.emotion,
            "situation": self.situation,
            "persona": self.persona,
            "source": self.source,
        }

    def prefixes(self) -> list[dict[str, Any]]:
        """The seed recipe's layout: one sample per assistant turn, each with the whole history before it."""
        samples = []
        for turn in range(1, len(self.messages) // 2 + 1):
            sample = self.to_json()
            sample["id"] = f"{self.id}#{turn}"
            sample["messages"] = self.messages[: 2 * turn]
            samples.append(sample)
        return samples


@dataclass(slots=True)
class Malformed:
    """A record inside a readable file that could not be used (wrong types, missing keys, not an object,
    a CSV row holding bytes that are neither UTF-8 nor CP949)."""

    source: str
    where: str
    detail: str = field(default="")
    # The physical 1-based lines of a CSV/TSV row that did not decode (stats.json's undecodable_lines).
    undecodable_lines: tuple[int, ...] = ()


def clean_text(text: str) -> str:
    """NFC, stripped, inner runs of whitespace collapsed to one space."""
    if not text.isascii():
        text = unicodedata.normalize("NFC", text)
    return " ".join(text.split())


def build_messages(turns: Sequence[tuple[str, str]]) -> tuple[list[dict[str, str]], bool]:
    """Alternating user/assistant messages from (user, system) turns, and whether text was dropped.

    The dialogue ends at the first turn that lacks either side: a user line with no reply cannot be
    trained on, and a reply with no user line has nothing to answer; whatever follows such a gap would
    answer a context that is no longer there, so it is dropped too (and reported as truncated).
    """
    messages: list[dict[str, str]] = []
    for position, (user, system) in enumerate(turns):
        user_text, system_text = clean_text(user), clean_text(system)
        if not user_text or not system_text:
            rest = turns[position + 1 :]
            truncated = bool(user_text or system_text) or any(clean_text(u) or clean_text(s) for u, s in rest)
            return messages, truncated
        messages.append({"role": "user", "content": user_text})
        messages.append({"role": "assistant", "content": system_text})
    return messages, False
