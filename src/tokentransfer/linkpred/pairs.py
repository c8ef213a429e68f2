"""Graph and pairs: used nodes, undirected pairs, the non-pair sampler, and the leak-free
split (``split_pairs``, ``train_negatives``, ``message_graph``)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from tokentransfer.dglcompat import dgl

log = logging.getLogger(__name__)

# Below this many candidate pairs, negatives are drawn from an explicit list of all non-pairs.
_ENUMERATE_MAX = 2_000_000


# --------------------------------------------------------------------------- graph and pairs


def _csr(A) -> sp.csr_matrix:
    A = sp.csr_matrix(A, copy=True)
    if A.shape[0] != A.shape[1]:
        raise ValueError(f"adjacency must be square, got {A.shape}")
    A.eliminate_zeros()
    return A


def used_nodes(A) -> np.ndarray:
    """Vocabulary ids with at least one off-diagonal edge (as source or target), sorted."""
    coo = _csr(A).tocoo()
    off = coo.row != coo.col
    return np.unique(np.concatenate([coo.row[off], coo.col[off]])).astype(np.int64)


def _local(A, nodes: np.ndarray) -> sp.csr_matrix:
    nodes = np.asarray(nodes, dtype=np.int64)
    return _csr(A)[nodes][:, nodes].tocsr()


def undirected_pairs(A, nodes: np.ndarray) -> np.ndarray:
    """Local pairs ``(u, v)``, ``u < v``, with ``A[u, v] + A[v, u] > 0``; sorted, [m, 2] int64."""
    S = _local(A, nodes)
    sym = sp.triu(S + S.T, k=1).tocoo()
    keep = sym.data > 0
    pairs = np.stack([sym.row[keep], sym.col[keep]], axis=1).astype(np.int64)
    return _sort_pairs(pairs)


def pair_weights(A, nodes: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """``A[u, v] + A[v, u]`` for each local pair (the undirected co-occurrence count)."""
    S = _local(A, nodes)
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    u, v = pairs[:, 0], pairs[:, 1]
    return np.asarray(S[u, v]).ravel() + np.asarray(S[v, u]).ravel()


def _sort_pairs(pairs: np.ndarray) -> np.ndarray:
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    return pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]


def _canonical(pairs: np.ndarray) -> np.ndarray:
    """``(min, max)`` of each pair, self-loops dropped, duplicates merged, sorted."""
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    lo, hi = pairs.min(axis=1), pairs.max(axis=1)
    keep = lo != hi
    return np.unique(np.stack([lo[keep], hi[keep]], axis=1), axis=0).reshape(-1, 2)


def _keys(pairs: np.ndarray, n: int) -> np.ndarray:
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    return pairs[:, 0] * n + pairs[:, 1]


def _unkey(keys: np.ndarray, n: int) -> np.ndarray:
    keys = np.asarray(keys, dtype=np.int64)
    return np.stack([keys // n, keys % n], axis=1).reshape(-1, 2)


def _in_sorted(keys: np.ndarray, sorted_keys: np.ndarray) -> np.ndarray:
    if len(sorted_keys) == 0:
        return np.zeros(len(keys), dtype=bool)
    idx = np.searchsorted(sorted_keys, keys).clip(max=len(sorted_keys) - 1)
    return sorted_keys[idx] == keys


class _NonPairSampler:
    """Uniform draws, without replacement, of pairs ``u < v`` whose key is not forbidden.

    Sparse graphs use rejection sampling; dense or small ones an explicit list of candidates.
    """

    def __init__(self, n: int, forbidden_keys: np.ndarray):
        self.n = int(n)
        self.forbidden = np.unique(np.asarray(forbidden_keys, dtype=np.int64))
        self.total = self.n * (self.n - 1) // 2
        self.available = self.total - len(self.forbidden)
        self._pool: np.ndarray | None = None
        if self.total <= _ENUMERATE_MAX or self.available < self.total // 2:
            self._pool = self._enumerate()

    def _enumerate(self) -> np.ndarray:
        n, chunks = self.n, []
        rows = max(1, 1_000_000 // max(n, 1))
        for start in range(0, n, rows):
            u = np.arange(start, min(start + rows, n), dtype=np.int64)
            uu, vv = np.meshgrid(u, np.arange(n, dtype=np.int64), indexing="ij")
            upper = vv > uu
            keys = uu[upper] * n + vv[upper]
            chunks.append(keys[~_in_sorted(keys, self.forbidden)])
        return np.concatenate(chunks) if chunks else np.empty(0, dtype=np.int64)

    def sample(self, k: int, rng: np.random.Generator) -> np.ndarray:
        """Up to ``k`` distinct keys (fewer only when fewer exist)."""
        k = int(k)
        if k <= 0:
            return np.empty(0, dtype=np.int64)
        if self._pool is None and k > self.available // 4:
            self._pool = self._enumerate()
        if self._pool is not None:
            take = min(k, len(self._pool))
            return self._pool[rng.choice(len(self._pool), size=take, replace=False)]
        out = np.empty(0, dtype=np.int64)
        while len(out) < k:
            m = int(1.5 * (k - len(out))) + 16
            u, v = rng.integers(0, self.n, m), rng.integers(0, self.n, m)
            keep = u != v
            lo, hi = np.minimum(u, v)[keep], np.maximum(u, v)[keep]
            keys = lo * self.n + hi
            keys = keys[~_in_sorted(keys, self.forbidden)]
            out = np.concatenate([out, keys])
            _, first = np.unique(out, return_index=True)
            out = out[np.sort(first)]
        return out[:k]


# --------------------------------------------------------------------------- the split


@dataclass
class PairSplit:
    """A leak-free split of undirected pairs; every array is [k, 2] local ids with ``u < v``."""

    train_pos: np.ndarray
    val_pos: np.ndarray
    test_pos: np.ndarray
    val_neg: np.ndarray
    test_neg: np.ndarray
    n_nodes: int

    @property
    def all_pos(self) -> np.ndarray:
        """Every positive pair of the full graph (train, val and test)."""
        return _sort_pairs(np.concatenate([self.train_pos, self.val_pos, self.test_pos]))

    def sizes(self) -> dict[str, int]:
        return {
            name: len(getattr(self, name))
            for name in ("train_pos", "val_pos", "test_pos", "val_neg", "test_neg")
        }


def split_pairs(
    pairs: np.ndarray,
    n_nodes: int,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 0,
) -> PairSplit:
    """Seeded train/val/test split of undirected pairs, with val/test negatives.

    ``pairs`` are canonicalised first (``(u, v)`` and ``(v, u)`` are one pair; self-loops are
    dropped), so a pair and its reverse always land in one split. Validation and test negatives
    are as many as their positives, drawn without replacement from the true non-pairs of the
    full graph (``u < v``, ``u != v``, neither direction an edge) and disjoint from each other.
    A non-zero fraction holds out at least one pair. When the graph is too dense to have that
    many non-pairs, all of them are used (split between val and test in proportion) and a
    warning is logged.
    """
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ValueError(
            f"val_fraction {val_fraction} and test_fraction {test_fraction} must be in [0, 1) "
            "and sum to less than 1"
        )
    pairs = _canonical(pairs)
    if len(pairs) and pairs.max() >= n_nodes:
        raise ValueError(f"pair ids reach {pairs.max()} but n_nodes is {n_nodes}")
    m = len(pairs)
    n_val, n_test = (max(1, round(m * f)) if f > 0 else 0 for f in (val_fraction, test_fraction))
    if m - n_val - n_test < 1:
        raise ValueError(f"{m} pairs are too few to split (val {n_val}, test {n_test})")
    rng = np.random.default_rng(seed)
    order = rng.permutation(m)
    test_pos = pairs[order[:n_test]]
    val_pos = pairs[order[n_test : n_test + n_val]]
    train_pos = pairs[order[n_test + n_val :]]

    sampler = _NonPairSampler(n_nodes, _keys(pairs, n_nodes))
    wanted = n_val + n_test
    keys = sampler.sample(wanted, rng)
    if len(keys) < wanted:
        log.warning(
            "graph too dense: only %d non-pairs for %d val+test negatives; using all of them",
            len(keys),
            wanted,
        )
        n_val = round(len(keys) * n_val / wanted) if wanted else 0
    neg = _unkey(keys, n_nodes)
    return PairSplit(
        train_pos=_sort_pairs(train_pos),
        val_pos=_sort_pairs(val_pos),
        test_pos=_sort_pairs(test_pos),
        val_neg=_sort_pairs(neg[:n_val]),
        test_neg=_sort_pairs(neg[n_val:]),
        n_nodes=int(n_nodes),
    )


def _train_sampler(split: PairSplit, pairs_all: np.ndarray) -> _NonPairSampler:
    n = split.n_nodes
    forbidden = np.concatenate(
        [
            _keys(_canonical(pairs_all), n),
            _keys(split.val_neg, n),
            _keys(split.test_neg, n),
        ]
    )
    return _NonPairSampler(n, forbidden)


def train_negatives(
    split: PairSplit, pairs_all: np.ndarray, n: int, rng: np.random.Generator
) -> np.ndarray:
    """``n`` distinct training negatives [n, 2] (``u < v``) for one epoch.

    Drawn from the non-pairs of the full graph (``pairs_all``: every positive pair), never a
    validation or test negative, so the held-out negatives are never trained on.
    """
    return _unkey(_train_sampler(split, pairs_all).sample(n, rng), split.n_nodes)


def message_graph(split: PairSplit, n_nodes: int | None = None, self_loops: bool = True):
    """The DGL graph a model passes messages on: training pairs in both directions only.

    Self loops (``self_loops=True``) are structural, for GCN normalisation and so that nodes
    whose every pair is held out keep their own features; they are never positives.
    """
    n = split.n_nodes if n_nodes is None else int(n_nodes)
    u, v = split.train_pos[:, 0], split.train_pos[:, 1]
    src = torch.from_numpy(np.concatenate([u, v]).astype(np.int64))
    dst = torch.from_numpy(np.concatenate([v, u]).astype(np.int64))
    g = dgl.graph((src, dst), num_nodes=n)
    if self_loops:
        g = dgl.add_self_loop(g)
    return g
