"""Stage 1a: the normalised form every rule and character feature reads.

NFC Hangul and lowercase latin letters only: spaces, punctuation, digits, emoji and zero-width characters go, loose
jamo are composed (ㅈㅜㄱ → 죽), laughter / crying jamo go, runs of one character collapse. Removing spaces defeats
죽 고 싶 어, but it also glues words together (의자 살 계획 → …자살계획…), so `Normalised.word_ends` keeps where
each word ended: a rule match that starts on the last syllable of a longer word is ignored.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# Invisible characters used to split words past filters, the Hangul fillers among them.
_INVISIBLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b-\u200f\u202a-\u202e"
    "\u2060-\u2064\u2066-\u206f\u3164\ufeff\uffa0]"
)
_CHOSEONG = "ㄱㄲㄴㄷㄸㄹㅁㅂㅃㅅㅆㅇㅈㅉㅊㅋㅌㅍㅎ"
_JUNGSEONG = "ㅏㅐㅑㅒㅓㅔㅕㅖㅗㅘㅙㅚㅛㅜㅝㅞㅟㅠㅡㅢㅣ"
_JONGSEONG = "ㄱㄲㄳㄴㄵㄶㄷㄹㄺㄻㄼㄽㄾㄿㅀㅁㅂㅄㅅㅆㅇㅈㅊㅋㅌㅍㅎ"  # index + 1 is the syllable offset
_LEAD = {ch: i for i, ch in enumerate(_CHOSEONG)}
_VOWEL = {ch: i for i, ch in enumerate(_JUNGSEONG)}
_TAIL = {ch: i + 1 for i, ch in enumerate(_JONGSEONG)}
# Conjoining jamo that NFC could not fold into a syllable become the compatibility jamo people type.
_CONJOINING = str.maketrans(
    {
        **{chr(0x1100 + i): ch for i, ch in enumerate(_CHOSEONG)},
        **{chr(0x1161 + i): ch for i, ch in enumerate(_JUNGSEONG)},
        **{chr(0x11A8 + i): ch for i, ch in enumerate(_JONGSEONG)},
    }
)
_FULLWIDTH = str.maketrans({chr(c): chr(c - 0xFEE0) for c in range(0xFF01, 0xFF5F)})
_NOT_KEPT = re.compile("[^가-힣ㄱ-ㅣa-z]")
_NOISE_JAMO = re.compile("[ㅏ-ㅣㅋㅎ]")  # ㅋㅋ, ㅎㅎ, ㅠㅠ and stretched vowels (싶ㅓㅓ) carry no words
_REPEATS = re.compile(r"(.)\1+")


@dataclass(frozen=True)
class Normalised:
    text: str
    word_ends: frozenset[int]  # index of the last character of every word of two or more characters


def _is_open_syllable(ch: str) -> bool:
    return "가" <= ch <= "힣" and (ord(ch) - 0xAC00) % 28 == 0


def _compose_jamo(word: str) -> str:
    """ㅈㅜㄱㄱㅗ → 죽고, 주ㄱ고 → 죽고: typing a word in loose jamo is a common way past filters."""
    out: list[str] = []
    i = 0
    while i < len(word):
        ch, nxt = word[i], word[i + 1 : i + 2]
        if ch in _LEAD and nxt in _VOWEL:
            tail, after, after2 = 0, word[i + 2 : i + 3], word[i + 3 : i + 4]
            if after in _TAIL and after2 not in _VOWEL:  # a consonant before a vowel starts the next one
                tail = _TAIL[after]
            out.append(chr(0xAC00 + (_LEAD[ch] * 21 + _VOWEL[nxt]) * 28 + tail))
            i += 3 if tail else 2
            continue
        # A lone consonant between two syllables closes the first; ㅋ and ㅎ are laughter, not letters.
        if ch in _TAIL and ch not in "ㅋㅎ" and out and _is_open_syllable(out[-1]) and "가" <= nxt <= "힣":
            out[-1] = chr(ord(out[-1]) + _TAIL[ch])
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def normalise_word(word: str) -> str:
    """One word in the normalised form (see ``normalise``)."""
    word = _NOT_KEPT.sub("", word)
    word = _NOISE_JAMO.sub("", _compose_jamo(word))
    return _REPEATS.sub(r"\1", word)


def normalise_view(text: str) -> Normalised:
    text = unicodedata.normalize("NFC", text).translate(_CONJOINING).translate(_FULLWIDTH).lower()
    text = _INVISIBLE.sub("", text)
    parts: list[str] = []
    word_ends: set[int] = set()
    length = 0
    for raw in text.split():
        word = normalise_word(raw)
        length += len(word)
        if len(word) >= 2:
            word_ends.add(length - 1)
        parts.append(word)
    return Normalised("".join(parts), frozenset(word_ends))


def normalise(text: str) -> str:
    """The form every rule matches against: NFC Hangul and lowercase latin letters, nothing else.

    Spaces, punctuation, digits, emoji and zero-width characters go; loose jamo are composed; laughter,
    crying and stretched-vowel jamo go; runs of one character collapse (죽고싶어어어 → 죽고싶어).
    Only for matching: nothing maps it back to the original text.
    """
    return normalise_view(text).text


_KEEP_RUNS = re.compile(r"(.)\1{2,}")


def readable(text: str) -> str:
    """The spaced form the morphological analyser reads: NFC, no invisible characters, loose jamo composed.

    Spaces, digits and punctuation stay (the analyser splits sentences and words on them); laughter and crying
    jamo go and runs of one character shrink to two (싶어어어어 → 싶어어).
    """
    text = unicodedata.normalize("NFC", text).translate(_CONJOINING).translate(_FULLWIDTH).lower()
    text = _INVISIBLE.sub("", text)
    words = (_KEEP_RUNS.sub(r"\1\1", _NOISE_JAMO.sub("", _compose_jamo(word))) for word in text.split())
    return " ".join(w for w in words if w)
