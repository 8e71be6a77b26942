"""Stage 3: the trained classifiers: user messages, model replies, and the turns of a conversation (context.py).

Each is a linear model (logistic regression) over hashed character and lemma n-grams (features.py), stored as plain
float16 arrays in a safetensors file that ships in the package: no pickle, a few MB, loaded in milliseconds. A head
is one weight array and a bias; its probability is compared with the threshold stored beside it, chosen on the dev
split for recall (train.py). ``make safety-model`` rebuilds the files byte for byte.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gonggam.safety import features

FORMAT = "gonggam-safety-linear/2"  # /2: arrays stored as float16 (three models under the 20 MB the repository ships)
# GONGGAM_SAFETY_MODELS points the layer at other model files (a retrained pair); the shipped ones by default.
MODEL_DIR = Path(os.environ.get("GONGGAM_SAFETY_MODELS") or Path(__file__).resolve().parent / "models")
MESSAGE_MODEL = MODEL_DIR / "messages.safetensors"
REPLY_MODEL = MODEL_DIR / "replies.safetensors"
CONTEXT_MODEL = MODEL_DIR / "context.safetensors"  # the conversation stage's heads (context.py)
REBUILD = "run `make safety-model` (or `python -m gonggam.safety.train`) to rebuild it"


class SafetyModelError(RuntimeError):
    """The classifier file is missing or damaged: the layer refuses to run without it."""


@dataclass(frozen=True)
class Head:
    weight: np.ndarray  # [features.DIM] float32
    bias: float
    threshold: float


def row_values(indices: np.ndarray, idf: np.ndarray) -> np.ndarray:
    """Binary features weighted by inverse document frequency, scaled to unit length (TF-IDF of a short text)."""
    values = idf[indices].astype(np.float32)
    norm = float(np.sqrt(values @ values))
    return values / norm if norm else values


def segment_logit(weight: np.ndarray, idf: np.ndarray, segments: list[np.ndarray]) -> float:
    """A head's logit for a text (bias left out): the highest over the whole text and its sentence windows."""
    return max(float(weight[indices] @ row_values(indices, idf)) for indices in segments)


def sigmoid(logit: float) -> float:
    return float(1.0 / (1.0 + np.exp(-logit)))


@dataclass(frozen=True)
class LinearModel:
    heads: dict[str, Head]
    idf: np.ndarray  # [features.DIM] float32, from the training texts
    info: dict[str, Any]

    def score(self, text: str, windows: bool = True) -> dict[str, float]:
        """Each head's probability for the text: the highest over the whole text and its sentence windows (or, with
        ``windows=False``, the whole text's alone)."""
        segments = [features.hashed(segment) for segment in features.segments(text)[: None if windows else 1]]
        return {name: sigmoid(segment_logit(h.weight, self.idf, segments) + h.bias) for name, h in self.heads.items()}

    @property
    def signal_rules(self) -> frozenset[str]:
        """The crisis rules that do not decide alone (combine.py): the training corpus showed them imprecise."""
        return frozenset(self.info.get("signal_rules", ()))

    def fires(self, scores: dict[str, float], head: str) -> bool:
        return scores[head] >= self.heads[head].threshold

    def save(self, path: Path) -> None:
        from safetensors.numpy import save_file

        # float16 halves the files; a weight's rounding (3 significant digits) moves a probability by well under 0.01.
        tensors = {"idf": self.idf.astype(np.float16)}
        for name, head in self.heads.items():
            tensors[f"{name}.weight"] = head.weight.astype(np.float16)
            tensors[f"{name}.bias"] = np.array([head.bias], dtype=np.float32)
        info = {
            **self.info,
            "format": FORMAT,
            "dim": features.DIM,
            "thresholds": {name: head.threshold for name, head in self.heads.items()},
        }
        # One metadata key: safetensors writes several keys in a varying order, and the file must be reproducible.
        save_file(tensors, str(path), metadata={"gonggam": json.dumps(info, sort_keys=True, ensure_ascii=False)})

    @classmethod
    def load(cls, path: Path) -> LinearModel:
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        if not path.is_file():
            raise SafetyModelError(f"the safety classifier {path} is missing: {REBUILD}.")
        try:
            from safetensors import safe_open

            with safe_open(str(path), framework="numpy") as handle:
                info = json.loads((handle.metadata() or {})["gonggam"])
            tensors = load_file(str(path))
            if info.get("format") != FORMAT or info.get("dim") != features.DIM:
                raise ValueError("unknown format")
            heads = {
                name: Head(
                    tensors[f"{name}.weight"].astype(np.float32), float(tensors[f"{name}.bias"][0]), float(threshold)
                )
                for name, threshold in info["thresholds"].items()
            }
            idf = tensors["idf"].astype(np.float32)
            arrays = [idf, *(h.weight for h in heads.values())]
            if not heads or any(a.shape != (features.DIM,) or not np.isfinite(a).all() for a in arrays):
                raise ValueError("weights of the wrong shape or not finite")
        except (SafetensorError, OSError, KeyError, ValueError, TypeError, json.JSONDecodeError) as error:
            raise SafetyModelError(f"the safety classifier {path} is damaged ({error}): {REBUILD}.") from None
        return cls(heads, idf, info)
