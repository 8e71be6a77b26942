"""What the classifiers see: character n-grams of the words, of the spaceless text, and lemma n-grams.

- character 2–5-grams inside each word of the readable text (word boundaries kept): typos, slang and endings;
- character 3–4-grams of the normalised, spaceless text: spacing tricks (죽 고 싶 다) and glued words;
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
from gonggam.safety.normalise import normalise

DIM = 1 << 19  # 524,288 buckets: 2 MB of float32 per head
WORD_NGRAMS = (2, 3, 4, 5)
SPACELESS_NGRAMS = (3, 4)


def char_features(text: str) -> set[str]:
    found = set()
    for word in text.split():
        padded = f" {word} "
        found.update(f"w{padded[i : i + n]}" for n in WORD_NGRAMS for i in range(len(padded) - n + 1))
    spaceless = f"<{normalise(text)}>"
    found.update(f"c{spaceless[i : i + n]}" for n in SPACELESS_NGRAMS for i in range(len(spaceless) - n + 1))
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
