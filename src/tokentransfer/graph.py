"""Token graphs of a corpus: windowed co-occurrence counts and first-order successor counts.

``results/graphs/{corpus}/adjacency.npz`` is a scipy.sparse CSR matrix [V, V] over vocabulary
ids: ``A[u, v] = sum_k w_k * #{i : x_i = u, x_{i+k} = v}`` for offsets ``k = 1..window`` with
per-offset weights ``w_k`` (config ``graph.offset_weights``), counted within each training
piece (never across pieces). The diagonal (a token followed by itself) is dropped unless
``graph.self_loops`` is set. ``successors.npz`` holds the offset-1 counts with the diagonal kept:
the Markov chain that generation walks on. Rows and columns of tokens that never occur are empty:
the graph's node set is the tokens that occur.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from .fileio import atomic_path, write_text_atomic


def offset_counts(seqs: Sequence[np.ndarray], vocab_size: int, offset: int) -> sp.csr_matrix:
    """Counts of (x_i, x_{i+offset}) pairs within each sequence, as a [V, V] CSR matrix."""
    rows, cols = [], []
    for s in seqs:
        s = np.asarray(s, dtype=np.int64)
        if len(s) > offset:
            rows.append(s[:-offset])
            cols.append(s[offset:])
    if not rows:
        return sp.csr_matrix((vocab_size, vocab_size), dtype=np.float64)
    r, c = np.concatenate(rows), np.concatenate(cols)
    if r.max(initial=0) >= vocab_size or c.max(initial=0) >= vocab_size:
        raise ValueError(f"token id out of range for vocabulary size {vocab_size}")
    data = np.ones(len(r), dtype=np.float64)
    m = sp.coo_matrix((data, (r, c)), shape=(vocab_size, vocab_size)).tocsr()
    m.sum_duplicates()
    return m


def cooccurrence(
    seqs: Sequence[np.ndarray],
    vocab_size: int,
    offset_weights: Sequence[float],
    self_loops: bool = False,
) -> sp.csr_matrix:
    """Weighted co-occurrence within ``len(offset_weights)`` tokens (see the module doc)."""
    if not offset_weights:
        raise ValueError("config key graph.offset_weights: at least one offset")
    total = sp.csr_matrix((vocab_size, vocab_size), dtype=np.float64)
    for k, w in enumerate(offset_weights, start=1):
        if w:
            total = total + w * offset_counts(seqs, vocab_size, k)
    if not self_loops:
        total.setdiag(0)
        total.eliminate_zeros()
    return total.tocsr()


def successors(seqs: Sequence[np.ndarray], vocab_size: int) -> sp.csr_matrix:
    """First-order successor counts (offset 1, diagonal kept)."""
    return offset_counts(seqs, vocab_size, 1)


def save_matrix(m: sp.csr_matrix, path: str | os.PathLike) -> None:
    """``scipy.sparse.save_npz`` written atomically."""
    with atomic_path(path, suffix=".npz") as tmp:
        sp.save_npz(tmp, m.tocsr(), compressed=True)


def load_matrix(path: str | os.PathLike) -> sp.csr_matrix:
    return sp.load_npz(path).tocsr()


def stats(a: sp.csr_matrix) -> dict:
    """Nodes (tokens that occur off the diagonal), edges, density and degree distribution."""
    off = a.copy()
    off.setdiag(0)
    off.eliminate_zeros()
    used = np.flatnonzero(
        np.asarray((off != 0).sum(0)).ravel() + np.asarray((off != 0).sum(1)).ravel()
    )
    n = len(used)
    und = ((off + off.T) != 0).astype(np.int8)
    deg = np.asarray(und.sum(1)).ravel()[used]
    edges = int(off.nnz)
    q = np.percentile(deg, [0, 25, 50, 75, 100]).tolist() if n else [0] * 5
    return {
        "vocabulary": int(a.shape[0]),
        "nodes": n,
        "directed_edges": edges,
        "undirected_pairs": int(und.nnz // 2),
        "density": edges / (n * (n - 1)) if n > 1 else 0.0,
        "total_weight": float(off.sum()),
        "self_loop_weight": float(a.diagonal().sum()),
        "degree": {
            "mean": float(deg.mean()) if n else 0.0,
            "min": q[0],
            "q25": q[1],
            "median": q[2],
            "q75": q[3],
            "max": q[4],
        },
    }


def write_stats(a: sp.csr_matrix, path: str | os.PathLike, extra: dict | None = None) -> dict:
    out = {**stats(a), **(extra or {})}
    write_text_atomic(path, json.dumps(out, indent=2, sort_keys=True) + "\n")
    return out


#: notes per onset told apart by the context successor counts (0, 1, 2, 3 or more)
CONTEXT_NOTES = 4


def context_successors(seqs: Sequence[np.ndarray], tokenizer) -> sp.coo_matrix:
    """Successor counts per grammar context: a sparse COO matrix [V * C, V].

    Row ``u * C + c`` counts the tokens that follow ``u`` where the state after ``u`` has
    context ``c``: its time signature, its position in the bar and how many notes already
    started at that onset (0, 1, 2, 3+; :meth:`tokentransfer.grammar.Grammar.context_ids`),
    ``C`` the number of such contexts. Summing the rows of one ``u`` gives its row of
    :func:`successors`. COO, as most of the V * C rows are empty (save it with
    :func:`save_coo`).
    """
    from .grammar import Grammar

    g = Grammar(tokenizer)
    v, c = g.vocab_size, g.n_contexts(CONTEXT_NOTES)
    rows, cols = [], []
    for s in seqs:
        s = np.asarray(s, dtype=np.int64)
        if len(s) > 1:
            ctx = g.contexts(s, CONTEXT_NOTES)
            rows.append(s[:-1] * c + ctx[:-1])
            cols.append(s[1:])
    if not rows:
        return sp.coo_matrix((v * c, v), dtype=np.float64)
    r, col = np.concatenate(rows), np.concatenate(cols)
    m = sp.coo_matrix((np.ones(len(r)), (r, col)), shape=(v * c, v))
    m.sum_duplicates()
    return m


def save_coo(m: sp.coo_matrix, path: str | os.PathLike) -> None:
    """A sparse matrix saved in COO form (no row pointer array), atomically."""
    with atomic_path(path, suffix=".npz") as tmp:
        sp.save_npz(tmp, sp.coo_matrix(m), compressed=True)


def load_coo(path: str | os.PathLike) -> sp.coo_matrix:
    return sp.coo_matrix(sp.load_npz(path))
