"""The default embedder: feature hashing of words and word pairs, local and deterministic.

Not a language model: it matches shared vocabulary, not meaning. A neural
embedder plugs in through the same two members (``dimension`` and ``embed``);
stored vectors must then be re-ingested, since spaces differ.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import re
from typing import Protocol

_WORD = re.compile(r"\w+")


class Embedder(Protocol):
    """Turns text into a unit vector of ``dimension`` floats."""

    dimension: int

    def embed(self, text: str) -> list[float]: ...


class HashingEmbedder:
    """Signed feature hashing (blake2b) of lower-cased words and adjacent word pairs, L2-normalised."""

    def __init__(self, dimension: int = 256) -> None:
        self.dimension = dimension

    def embed(self, text: str) -> list[float]:
        vector = [0.0] * self.dimension
        words = [_stem(w) for w in _WORD.findall(text.lower())]
        features = words + [f"{a} {b}" for a, b in itertools.pairwise(words)]
        for feature in features:
            digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
            bucket = int.from_bytes(digest[:4], "little") % self.dimension
            vector[bucket] += 1.0 if digest[4] & 1 else -1.0
        norm = math.sqrt(sum(v * v for v in vector))
        return [v / norm for v in vector] if norm else vector


def _stem(word: str) -> str:
    """A crude plural fold, so that ``retries`` and ``retry`` share a feature."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def cosine(a: list[float], b: list[float]) -> float:
    """Cosine similarity of two vectors (0 when either is zero)."""
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0
