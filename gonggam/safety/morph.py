"""Stage 1b: the morphological, typo-corrected view, so that rules and features see lemmas (죽고십다 → 죽다 + 고 ...).

kiwipiepy ships its model in the PyPI package (nothing is downloaded). The analyser is loaded once per process on
first use (about 1 s on a 2-core CPU); ``warm_up()`` pays that at start-up instead of on
the first message.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gonggam.safety.normalise import readable

if TYPE_CHECKING:
    from kiwipiepy import Kiwi

# Typo correction for single-syllable slips and for words typed without spaces (죽고십다, 살기실어).
TYPOS = "basic_with_continual"

_kiwi: Kiwi | None = None
_lock = threading.Lock()


@dataclass(frozen=True)
class Sentence:
    text: str  # the sentence as the analyser read it (see normalise.readable)
    lemmas: tuple[str, ...]  # "lemma/TAG" per morpheme, verbs and adjectives as their dictionary form (죽다/VV)


def analyser() -> Kiwi:
    global _kiwi
    with _lock:
        if _kiwi is None:
            from kiwipiepy import Kiwi

            # The multi-word dictionary (named entities of several words) doubles the load time for nothing we use.
            _kiwi = Kiwi(load_multi_dict=False)
            _kiwi.tokenize("준비", typos=TYPOS)  # the typo model loads lazily: load it now, not on a user's message
        return _kiwi


def warm_up() -> None:
    analyser()


def _lemma(token) -> str:
    tag = token.tag.split("-")[0]  # VV-R / VA-I: regular and irregular conjugation are one word to us
    return f"{token.lemma or token.form}/{tag}"


@functools.lru_cache(maxsize=1024)  # the rules and the classifier both read a message's analysis
def sentences(text: str) -> tuple[Sentence, ...]:
    """The message split into sentences (the analyser also splits unpunctuated text at its sentence endings)."""
    view = readable(text)
    if not view:
        return ()
    found = analyser().split_into_sents(view, typos=TYPOS, return_tokens=True)
    return tuple(Sentence(s.text, tuple(_lemma(t) for t in s.tokens)) for s in found)


def lemmas(text: str) -> list[str]:
    """Every morpheme of the message as "lemma/TAG"."""
    return [lemma for sentence in sentences(text) for lemma in sentence.lemmas]
