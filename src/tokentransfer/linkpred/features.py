"""Node features of the variants, their graphs, and feature cosine."""

from __future__ import annotations

import numpy as np

from ..variants import CIRCULAR_VARIANTS, VARIANTS
from .pairs import _sort_pairs, undirected_pairs, used_nodes


def standardise(x: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance per column (columns of zero variance become 0), float32."""
    x = np.asarray(x, dtype=np.float64)
    std = x.std(axis=0)
    std[std == 0] = 1.0
    return ((x - x.mean(axis=0)) / std).astype(np.float32)


def raw_features(variant: str, nodes: np.ndarray, emb: dict, seed: int = 0) -> np.ndarray:
    """The unstandardised node features of a variant (see ``variant_features``)."""
    nodes = np.asarray(nodes, dtype=np.int64)
    if variant in ("emb", "emb_neighbours"):
        return np.asarray(emb["token"])[nodes].astype(np.float64)
    if variant == "emb_pos":
        token = np.asarray(emb["token"], dtype=np.float64)[nodes]
        return token @ np.asarray(emb["position"], dtype=np.float64).T
    if variant == "contextual":
        table = np.asarray(emb["contextual"])
        if table.size and np.isnan(table).all():
            raise ValueError(
                "the embedding cache holds no contextual embeddings (rule embed skipped them: "
                "no variant of the run asked for 'contextual')"
            )
        return table[nodes].astype(np.float64)
    if variant == "random":
        dim = np.asarray(emb["token"]).shape[1]
        return np.random.default_rng(seed).standard_normal((len(nodes), dim))
    raise ValueError(f"unknown variant {variant!r}: one of {VARIANTS}")


def variant_features(variant: str, nodes: np.ndarray, emb: dict, seed: int = 0) -> np.ndarray:
    """Node features [n, f] of a variant, standardised per column.

    ``emb``/``emb_neighbours``: token embeddings; ``emb_pos``: ``token @ position.T`` (the
    original's model 2); ``contextual``: mean contextual hidden states; ``random``: a seeded
    standard normal [n, d] control.
    """
    return standardise(raw_features(variant, nodes, emb, seed))


def cosine_matrix(features: np.ndarray) -> np.ndarray:
    """Pairwise cosine similarity [n, n] (rows of zero norm have similarity 0)."""
    x = np.asarray(features, dtype=np.float64)
    norm = np.linalg.norm(x, axis=1)
    x = x / np.where(norm > 0, norm, 1.0)[:, None]
    return x @ x.T


def variant_pairs(variant: str, A, nodes: np.ndarray, features_raw: np.ndarray) -> np.ndarray:
    """The positive pairs of a variant's graph, [m, 2] local ids, ``u < v``, sorted.

    ``emb`` and ``emb_pos`` reproduce the original's circular graphs (pairs whose raw-feature
    cosine is > 0: the edges are a function of the features); the others use the corpus pairs.
    """
    if variant in CIRCULAR_VARIANTS:
        cos = cosine_matrix(features_raw)
        u, v = np.nonzero(np.triu(cos > 0, k=1))
        return _sort_pairs(np.stack([u, v], axis=1))
    if variant in VARIANTS:
        return undirected_pairs(A, nodes)
    raise ValueError(f"unknown variant {variant!r}: one of {VARIANTS}")


def variant_graph(variant: str, A, emb: dict, seed: int = 0):
    """A variant's inputs to link prediction on co-occurrence graph ``A``: ``(nodes, raw
    features, positive pairs)``; the one recipe of the workflow's job
    (:func:`tokentransfer.jobs.graph.run_linkpred`) and of the walks that train a graph network
    on a few pieces (:meth:`tokentransfer.methods.Walk.network`)."""
    nodes = used_nodes(A)
    raw = raw_features(variant, nodes, emb, seed=seed)
    return nodes, raw, variant_pairs(variant, A, nodes, raw)


def cosine_scores(features: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """Raw feature cosine of each pair (0 where a row has zero norm)."""
    x = np.asarray(features, dtype=np.float64)
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    norm = np.linalg.norm(x, axis=1)
    x = x / np.where(norm > 0, norm, 1.0)[:, None]
    return np.einsum("ij,ij->i", x[pairs[:, 0]], x[pairs[:, 1]])
