"""What the classifiers see: character n-grams of the normalised words, and lemma n-grams.

- character 2–5-grams inside each word, the word normalised on its own (자.살 → 자살) and runs of one-letter words
  joined (죽 고 싶 다 → 죽고싶다): typos, slang, endings and spacing tricks, without gluing 의자 살 into 자살;
- character 3–4-grams of the whole text without spaces, except those that glue a word's last syllable to the next;
- lemma unigrams and bigrams of the kiwipiepy view: 죽고 싶어 / 죽고싶다 / 죽구 싶네요 become one pattern.

Features are hashed into a fixed number of buckets with CRC-32, so a model is a few plain arrays (no vocabulary to
store, no pickle) and the same text gives the same vector in every process (Python's ``hash`` is salted).
Chosen on the dev split against other sets (bench/results/safety_features.json).
"""

from __future__ import annotations

import itertools
import zlib
from collections.abc import Iterable

import numpy as np

from gonggam.safety import morph
from gonggam.safety.normalise import normalise_view, normalise_word

DIM = 1 << 19  # 524,288 buckets: 2 MB of float32 per head
WORD_NGRAMS = (2, 3, 4, 5)
SPACELESS_NGRAMS = (3, 4)


def words_of(text: str) -> list[str]:
    """Each word normalised on its own (자.살 → 자살, ㅈㅜㄱ고 → 죽고), runs of one-letter words joined (죽 고 싶 다).

    Normalising word by word, not the whole text without spaces, keeps 의자 살 from reading as 자살.
    """
    words, run = [], []
    for word in (normalise_word(w) for w in text.split()):
        if len(word) == 1:
            run.append(word)
            continue
        if run:
            words.append("".join(run))
            run = []
        if word:
            words.append(word)
    if run:
        words.append("".join(run))
    return words


def char_features(text: str) -> set[str]:
    found = set()
    for word in words_of(text):
        padded = f" {word} "
        found.update(f"w{padded[i : i + n]}" for n in WORD_NGRAMS for i in range(len(padded) - n + 1))
    # Across the spaces too (살기 싫어 → 살기싫), but never from the last syllable of a longer word into the next
    # (의자 살 → 자살), the rule the regular expressions follow.
    view = normalise_view(text)
    for n in SPACELESS_NGRAMS:
        found.update(f"c{view.text[i : i + n]}" for i in range(len(view.text) - n + 1) if i not in view.word_ends)
    return found


def lemma_features(lemmas: Iterable[str]) -> set[str]:
    lemmas = ["<s>", *lemmas, "</s>"]
    return {f"m{lemma}" for lemma in lemmas[1:-1]} | {f"b{a} {b}" for a, b in itertools.pairwise(lemmas)}


def hashed(features: Iterable[str]) -> np.ndarray:
    """Sorted unique bucket indices of the features (binary bag: a feature counts once)."""
    return np.unique(np.fromiter((zlib.crc32(f.encode()) % DIM for f in features), dtype=np.int64))


def segments(text: str) -> list[set[str]]:
    """The whole text's features first, then those of each pair of adjacent sentences in a long text.

    One crisis clause in a long diary-like paragraph drowns among the features of everything else; scoring
    two-sentence windows finds it while keeping a sentence's neighbour (예전엔 그랬는데 / 지금은 괜찮아) in view.
    """
    sentences = morph.sentences(text)
    whole = char_features(" ".join(s.text for s in sentences)) | lemma_features(
        lemma for s in sentences for lemma in s.lemmas
    )
    if len(sentences) < 3:
        return [whole]
    windows = [
        char_features(f"{a.text} {b.text}") | lemma_features((*a.lemmas, *b.lemmas))
        for a, b in itertools.pairwise(sentences)
    ]
    return [whole, *windows]
