"""64-bit fingerprints of packed states (splitmix64 mixing, wrapping uint64 arithmetic)."""

from __future__ import annotations

import numpy as np

_MIX1, _MIX2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def mix(z: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser."""
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


def combine(h: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Fold one more 64-bit word (per element) into running hashes."""
    return mix(h ^ x) + _GOLDEN


def hash_words(words: np.ndarray) -> np.ndarray:
    """One hash per row of 64-bit words."""
    h = np.zeros(len(words), dtype=np.uint64)
    for i in range(words.shape[1]):
        h = combine(h, words[:, i])
    return h
