"""Simple link-prediction heuristics scored on the training (message) graph."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .pairs import PairSplit


def _train_adjacency(split: PairSplit, n_nodes: int) -> sp.csr_matrix:
    u, v = split.train_pos[:, 0], split.train_pos[:, 1]
    data = np.ones(2 * len(u))
    A = sp.csr_matrix((data, (np.r_[u, v], np.r_[v, u])), shape=(n_nodes, n_nodes))
    A.data[:] = 1.0  # binary even if a pair was listed twice
    return A


def heuristic_scores(
    split: PairSplit, n_nodes: int | None = None, which: str = "test"
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Common neighbours, Adamic-Adar and preferential attachment on ``which`` pairs.

    Computed on the training (message) graph only, unweighted and without self loops, for the
    positives and negatives of the ``which`` split ("test" or "val"). Returns
    ``{name: (pos_scores, neg_scores)}``.
    """
    n = split.n_nodes if n_nodes is None else int(n_nodes)
    A = _train_adjacency(split, n)
    deg = np.asarray(A.sum(axis=1)).ravel()
    with np.errstate(divide="ignore"):
        inv_log = np.where(deg > 1, 1.0 / np.log(np.maximum(deg, 2)), 0.0)
    pos, neg = getattr(split, f"{which}_pos"), getattr(split, f"{which}_neg")

    def score(pairs):
        pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
        common = A[pairs[:, 0]].multiply(A[pairs[:, 1]]).tocsr()
        cn = np.asarray(common.sum(axis=1)).ravel()
        aa = common @ inv_log
        pa = deg[pairs[:, 0]] * deg[pairs[:, 1]]
        return cn, np.asarray(aa).ravel(), pa

    p, q = score(pos), score(neg)
    names = ("common_neighbours", "adamic_adar", "preferential_attachment")
    return {name: (p[i], q[i]) for i, name in enumerate(names)}
