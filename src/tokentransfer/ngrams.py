"""Token n-gram statistics: counts over token shards and Jensen–Shannon divergence.

Used to check that a target style differs from the base corpus (far above the noise floor of
two random halves of the base), and later as an evaluation metric.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from .tokenize import read_shard

#: n-grams are packed into one int64 key, ``BASE`` per position: ids must be below it.
BASE = 1 << 15
MAX_N = 4


def ngram_counts(sequences: Iterable[np.ndarray], n: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Distinct n-grams (packed int64 keys, sorted) and their counts; never across files."""
    if not 1 <= n <= MAX_N:
        raise ValueError(f"n must be in 1..{MAX_N}, got {n}")
    keys = []
    for seq in sequences:
        seq = np.asarray(seq, dtype=np.int64)
        if len(seq) < n:
            continue
        if seq.min() < 0 or seq.max() >= BASE:
            raise ValueError(f"token ids must be in [0, {BASE})")
        win = np.lib.stride_tricks.sliding_window_view(seq, n)
        keys.append(win @ (BASE ** np.arange(n - 1, -1, -1, dtype=np.int64)))
    if not keys:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.unique(np.concatenate(keys), return_counts=True)


def unpack(keys: np.ndarray, n: int) -> np.ndarray:
    """Packed keys back to an int64 [k, n] array of token ids."""
    powers = BASE ** np.arange(n - 1, -1, -1, dtype=np.int64)
    return (keys[:, None] // powers) % BASE


def js_divergence(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> float:
    """Jensen–Shannon divergence (base 2, in [0, 1]) of two n-gram count tables."""
    (ka, ca), (kb, cb) = a, b
    if ca.sum() == 0 or cb.sum() == 0:
        raise ValueError("an n-gram table is empty")
    keys = np.union1d(ka, kb)
    p = np.zeros(len(keys))
    q = np.zeros(len(keys))
    p[np.searchsorted(keys, ka)] = ca / ca.sum()
    q[np.searchsorted(keys, kb)] = cb / cb.sum()
    m = (p + q) / 2

    def kl(x: np.ndarray) -> float:
        nz = x > 0
        return float(np.sum(x[nz] * np.log2(x[nz] / m[nz])))

    return max(0.0, min(1.0, (kl(p) + kl(q)) / 2))


def corpus_sequences(token_dir: str | Path) -> list[np.ndarray]:
    """Every file's tokens from the shards of one corpus, in file id order."""
    items = []
    for path in sorted(Path(token_dir).glob("*.h5")):
        shard = read_shard(path)
        items.extend((fid, shard.sequence(i)) for i, fid in enumerate(shard.file_ids))
    return [seq for _, seq in sorted(items, key=lambda x: x[0])]


def noise_floor(sequences: Sequence[np.ndarray], n: int = 2, seed: int = 0, draws: int = 5):
    """Mean and std of the divergence between two random halves of one corpus (by file)."""
    values = []
    for d in range(draws):
        order = list(range(len(sequences)))
        random.Random(seed + d).shuffle(order)
        half = len(order) // 2
        a = ngram_counts([sequences[i] for i in order[:half]], n)
        b = ngram_counts([sequences[i] for i in order[half:]], n)
        values.append(js_divergence(a, b))
    return float(np.mean(values)), float(np.std(values))
