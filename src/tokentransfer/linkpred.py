"""Leak-free link prediction on a token graph, and the original's leaky protocol for reference.

The graph is a scipy.sparse CSR matrix ``A`` [V, V] of directed, weighted co-occurrence counts
over vocabulary ids. Link prediction here is about *undirected pairs*:

- ``used_nodes`` keeps the tokens with an off-diagonal edge; every later array indexes them by
  their position in that list ("local ids" 0..n-1);
- ``undirected_pairs`` turns the directed graph into pairs ``(u, v)`` with ``u < v``: a pair and
  its reverse are one pair, so they can never straddle a split; self co-occurrences are dropped;
- ``split_pairs`` makes a seeded train/val/test split of the pairs, with validation and test
  negatives drawn *without replacement* from true non-pairs of the full graph (disjoint between
  val and test); ``train_negatives`` draws fresh training negatives each epoch from the
  non-pairs that are neither positives nor val/test negatives;
- ``message_graph`` is the only graph a model sees: the training pairs in both directions, plus
  self loops (structural, for GCN normalisation; never positives);
- ``LinkPredictor`` is a GCN (``GraphConv``, norm 'both') or GraphSAGE ('mean') encoder with a
  symmetric scorer (an MLP on ``h_u * h_v``), trained full-batch with early stopping on the
  validation AUC (``train_link_predictor``);
- metrics (``auc``, ``average_precision``, ``hits_at_k``) are numpy, and the simple heuristics
  (common neighbours, Adamic-Adar, preferential attachment, feature cosine) score the same test
  pairs from the same message graph, so a model's number always has a baseline beside it;
- ``original_protocol`` re-runs the original's set-up (identity self-loops as positives,
  directed edges split so the reverse of a test edge stays in training, negatives drawn with
  replacement, no validation) and reports, beside its metrics, how many of those leaks its split
  really holds. Its numbers are a labelled reference, never a result.

Feature variants: ``emb`` (model 1), ``emb_pos`` (model 2), ``emb_neighbours`` (model 3),
``contextual`` and a ``random`` control. For the two *circular* variants the graph itself is a
function of the features (pairs with positive feature cosine), as in the original.
"""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from .dglcompat import dgl

from dgl.nn import GraphConv, SAGEConv  # isort: skip  (only after dglcompat has run)

log = logging.getLogger(__name__)

VARIANTS = ("emb", "emb_pos", "emb_neighbours", "contextual", "random")
CIRCULAR_VARIANTS = ("emb", "emb_pos")
ENCODERS = ("gcn", "sage")

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


# --------------------------------------------------------------------------- features


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
    (:func:`tokentransfer.jobs.graph.run_linkpred`) and of the methods that train a graph network on
    a few pieces (:func:`tokentransfer.methods.graph_embeddings`)."""
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


# --------------------------------------------------------------------------- metrics


def auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """ROC AUC as the Mann-Whitney statistic: P(pos > neg), ties counted half."""
    from scipy.stats import rankdata

    pos, neg = np.asarray(pos, dtype=np.float64).ravel(), np.asarray(neg, dtype=np.float64).ravel()
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    ranks = rankdata(np.concatenate([pos, neg]))
    u = ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2
    return float(u / (len(pos) * len(neg)))


def average_precision(pos: np.ndarray, neg: np.ndarray) -> float:
    """Average precision: sum over distinct score thresholds of (R_t - R_{t-1}) * P_t."""
    pos, neg = np.asarray(pos, dtype=np.float64).ravel(), np.asarray(neg, dtype=np.float64).ravel()
    if len(pos) == 0:
        return float("nan")
    scores = np.concatenate([pos, neg])
    labels = np.concatenate([np.ones(len(pos)), np.zeros(len(neg))])
    order = np.argsort(-scores, kind="mergesort")
    scores, labels = scores[order], labels[order]
    last = np.r_[np.nonzero(np.diff(scores))[0], len(scores) - 1]  # end of each tie block
    tps = np.cumsum(labels)[last]
    precision = tps / (last + 1)
    recall = tps / len(pos)
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def hits_at_k(pos: np.ndarray, neg: np.ndarray, k: int = 20) -> float:
    """Fraction of positives scored strictly above the k-th highest negative (OGB).

    With fewer than ``k`` negatives the lowest negative is the threshold.
    """
    pos, neg = np.asarray(pos, dtype=np.float64).ravel(), np.asarray(neg, dtype=np.float64).ravel()
    if len(pos) == 0:
        return float("nan")
    if len(neg) == 0:
        return 1.0
    threshold = np.sort(neg)[::-1][min(k, len(neg)) - 1]
    return float(np.mean(pos > threshold))


def link_metrics(pos: np.ndarray, neg: np.ndarray) -> dict[str, float]:
    """``{"auc", "ap", "hits@20"}`` of positive and negative scores."""
    return {
        "auc": auc(pos, neg),
        "ap": average_precision(pos, neg),
        "hits@20": hits_at_k(pos, neg, 20),
    }


# --------------------------------------------------------------------------- heuristics


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


# --------------------------------------------------------------------------- the model


class LinkPredictor(nn.Module):
    """GCN or GraphSAGE encoder and a symmetric edge scorer (an MLP on ``h_u * h_v``)."""

    def __init__(
        self,
        in_feats: int,
        hidden: int = 128,
        layers: int = 2,
        dropout: float = 0.1,
        encoder: str = "gcn",
    ):
        super().__init__()
        if encoder not in ENCODERS:
            raise ValueError(f"unknown encoder {encoder!r}: one of {ENCODERS}")
        if layers < 1:
            raise ValueError(f"layers must be >= 1, got {layers}")
        self.encoder, self.hidden, self.dropout = encoder, hidden, dropout
        dims = [in_feats] + [hidden] * layers
        self.convs = nn.ModuleList(
            GraphConv(a, b, norm="both", allow_zero_in_degree=True)
            if encoder == "gcn"
            else SAGEConv(a, b, "mean")
            for a, b in zip(dims[:-1], dims[1:], strict=True)
        )
        self.scorer = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def embed(self, graph, features: torch.Tensor) -> torch.Tensor:
        """Node embeddings [n, hidden] (no activation after the last layer)."""
        h = features
        for i, conv in enumerate(self.convs):
            h = conv(graph, h)
            if i < len(self.convs) - 1:
                h = nn.functional.dropout(torch.relu(h), self.dropout, self.training)
        return h

    def score(self, h: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
        """One logit per pair [k]; symmetric in (u, v)."""
        return self.scorer(h[pairs[:, 0]] * h[pairs[:, 1]]).squeeze(-1)

    def forward(self, graph, features: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
        return self.score(self.embed(graph, features), pairs)


class OriginalModel(nn.Module):
    """The original's model: 2x SAGEConv 'mean' and an MLP on ``cat(h_u, h_v)`` (asymmetric)."""

    def __init__(self, in_feats: int, hidden: int = 128):
        super().__init__()
        self.conv1 = SAGEConv(in_feats, hidden, "mean")
        self.conv2 = SAGEConv(hidden, hidden, "mean")
        self.w1 = nn.Linear(2 * hidden, hidden)
        self.w2 = nn.Linear(hidden, 1)

    def embed(self, graph, features: torch.Tensor) -> torch.Tensor:
        return self.conv2(graph, torch.relu(self.conv1(graph, features)))

    def score(self, h: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
        z = torch.cat([h[pairs[:, 0]], h[pairs[:, 1]]], dim=1)
        return self.w2(torch.relu(self.w1(z))).squeeze(-1)


def _tensor(x, device, dtype=None) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.to(device=device, dtype=dtype or x.dtype)
    return torch.as_tensor(np.asarray(x), dtype=dtype, device=device)


def predict(model, graph, features, pairs: np.ndarray, device: str = "cpu") -> np.ndarray:
    """Scores (logits) of ``pairs`` under ``model`` in eval mode."""
    model.eval()
    graph = graph.to(device)
    x = _tensor(features, device, torch.float32)
    with torch.no_grad():
        h = model.embed(graph, x)
        return model.score(h, _tensor(pairs, device, torch.long)).cpu().numpy()


def evaluate(model, graph, features, split: PairSplit, device: str = "cpu") -> dict:
    """``{"val": link_metrics, "test": link_metrics}`` of a trained model."""
    out = {}
    for which in ("val", "test"):
        pos = predict(model, graph, features, getattr(split, f"{which}_pos"), device)
        neg = predict(model, graph, features, getattr(split, f"{which}_neg"), device)
        out[which] = link_metrics(pos, neg)
    return out


def train_link_predictor(
    graph,
    features,
    split: PairSplit,
    *,
    encoder: str = "gcn",
    hidden: int = 128,
    layers: int = 2,
    dropout: float = 0.1,
    lr: float = 0.01,
    epochs: int = 200,
    patience: int = 20,
    seed: int = 0,
    device: str = "cpu",
):
    """Train a ``LinkPredictor`` full-batch on the message ``graph``; early-stop on val AUC.

    Each epoch draws as many fresh training negatives as there are training positives
    (``train_negatives``), takes one Adam step on the BCE-with-logits loss, then scores the
    validation pairs. Training stops after ``patience`` epochs without a better validation AUC
    and the best weights are restored.

    Returns ``(model, history, best)``: ``history`` is a list of ``{"epoch", "loss",
    "val_auc"}``; ``best`` is ``{"epoch", "val_auc", "loss", "embeddings"}`` where
    ``embeddings`` [n, hidden] (numpy) are ``model.embed(graph, features)`` of the best model.
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    graph = graph.to(device)
    x = _tensor(features, device, torch.float32)
    if x.shape[0] != graph.num_nodes():
        raise ValueError(f"{x.shape[0]} feature rows for a graph of {graph.num_nodes()} nodes")
    if len(split.val_pos) == 0 or len(split.val_neg) == 0:
        raise ValueError("early stopping needs validation pairs: split with val_fraction > 0")
    model = LinkPredictor(x.shape[1], hidden, layers, dropout, encoder).to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    sampler = _train_sampler(split, split.all_pos)
    train_pos = _tensor(split.train_pos, device, torch.long)
    val_pos = _tensor(split.val_pos, device, torch.long)
    val_neg = _tensor(split.val_neg, device, torch.long)
    n_train = len(split.train_pos)

    history: list[dict] = []
    best = {"epoch": -1, "val_auc": -math.inf, "loss": math.nan}
    best_state = copy.deepcopy(model.state_dict())
    waited = 0
    for epoch in range(epochs):
        model.train()
        neg = _tensor(_unkey(sampler.sample(n_train, rng), split.n_nodes), device, torch.long)
        h = model.embed(graph, x)
        logits = model.score(h, torch.cat([train_pos, neg]))
        labels = torch.cat([torch.ones(len(train_pos)), torch.zeros(len(neg))]).to(device)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()

        model.eval()
        with torch.no_grad():
            h = model.embed(graph, x)
            val_auc = auc(
                model.score(h, val_pos).cpu().numpy(), model.score(h, val_neg).cpu().numpy()
            )
        history.append({"epoch": epoch, "loss": float(loss.item()), "val_auc": val_auc})
        if val_auc > best["val_auc"]:
            best = {"epoch": epoch, "val_auc": val_auc, "loss": float(loss.item())}
            best_state = copy.deepcopy(model.state_dict())
            waited = 0
        else:
            waited += 1
            if waited >= patience:
                break
    model.load_state_dict(best_state)
    model.eval()
    with torch.no_grad():
        best["embeddings"] = model.embed(graph, x).cpu().numpy()
    log.info(
        "%s: best val AUC %.4f at epoch %d of %d",
        encoder,
        best["val_auc"],
        best["epoch"],
        len(history),
    )
    return model, history, best


# --------------------------------------------------------------------------- the original


@dataclass
class OriginalSplit:
    """The original's split of *directed* edges (local ids); negatives may repeat."""

    edges: np.ndarray  # every positive, identity self-loops included
    train_pos: np.ndarray
    test_pos: np.ndarray
    train_neg: np.ndarray
    test_neg: np.ndarray
    n_nodes: int


def original_split(A, nodes: np.ndarray, seed: int, test_fraction: float = 0.1) -> OriginalSplit:
    """The original's leaky split, reproduced.

    Positives are the directed edges of ``A`` over ``nodes`` plus an identity self-loop per
    node (the original added ``np.identity`` to the adjacency). 10% of the directed edges are
    held out at random, so the reverse of a test edge usually stays in training. As many
    negatives as edges are drawn *with replacement* from the directed non-edges (which include
    the reverse of one-way edges); the first ``num_test`` are the test negatives, the rest the
    training ones, so train and test negatives can coincide.
    """
    rng = np.random.default_rng(seed)
    S = _local(A, nodes)
    n = S.shape[0]
    coo = S.tocoo()
    off = coo.row != coo.col
    edges = np.concatenate(
        [np.stack([coo.row[off], coo.col[off]], axis=1), np.repeat(np.arange(n), 2).reshape(n, 2)]
    ).astype(np.int64)
    edges = _sort_pairs(edges)
    order = rng.permutation(len(edges))
    n_test = int(len(edges) * test_fraction)
    dense = np.zeros((n, n), dtype=bool)
    dense[edges[:, 0], edges[:, 1]] = True
    non_edges = np.argwhere(~dense).astype(np.int64)
    draws = non_edges[rng.choice(len(non_edges), size=len(edges), replace=True)]
    return OriginalSplit(
        edges=edges,
        train_pos=edges[order[n_test:]],
        test_pos=edges[order[:n_test]],
        train_neg=draws[n_test:],
        test_neg=draws[:n_test],
        n_nodes=n,
    )


def leak_counts(split: OriginalSplit) -> dict[str, int]:
    """How many of the original's leaks a split holds."""
    n = split.n_nodes
    train_keys = np.unique(_keys(split.train_pos, n))
    edge_keys = np.unique(_keys(split.edges, n))
    test = split.test_pos
    off = test[:, 0] != test[:, 1]
    reverse = _keys(test[off][:, ::-1], n)
    negs = np.concatenate([split.train_neg, split.test_neg])
    neg_keys = _keys(negs, n)
    return {
        "n_nodes": int(n),
        "n_edges": len(split.edges),
        "n_test_pos": len(split.test_pos),
        "n_test_neg": len(split.test_neg),
        "self_loop_positives": int(np.sum(split.edges[:, 0] == split.edges[:, 1])),
        "test_self_loops": int(np.sum(~off)),
        "test_reverse_in_train": int(np.sum(_in_sorted(reverse, train_keys))),
        "neg_reverse_is_positive": int(np.sum(_in_sorted(_keys(negs[:, ::-1], n), edge_keys))),
        "neg_duplicates": int(len(neg_keys) - len(np.unique(neg_keys))),
        "test_neg_in_train_neg": int(
            np.sum(np.isin(_keys(split.test_neg, n), _keys(split.train_neg, n)))
        ),
    }


def original_protocol(
    A,
    nodes: np.ndarray,
    features,
    seed: int = 0,
    epochs: int = 100,
    *,
    hidden: int = 128,
    lr: float = 0.01,
    test_fraction: float = 0.1,
    device: str = "cpu",
) -> dict:
    """The original's leaky protocol, as a labelled reference (never a result).

    ``original_split`` positives/negatives; the training graph is every positive edge except the
    test ones (directed; self-loops included); 2x SAGEConv 'mean' (``hidden``) and an MLP on
    ``cat(h_u, h_v)``; fixed negatives; full-batch Adam (``lr``) for ``epochs`` epochs (the
    original ran 500) with no validation. Returns ``link_metrics`` on its own test pairs plus
    ``leak_counts`` of its split, under ``protocol = "original (leaky)"``.
    """
    split = original_split(A, nodes, seed, test_fraction)
    torch.manual_seed(seed)
    x = _tensor(features, device, torch.float32)
    train = split.train_pos
    g = dgl.graph(
        (torch.from_numpy(train[:, 0]), torch.from_numpy(train[:, 1])), num_nodes=split.n_nodes
    ).to(device)
    model = OriginalModel(x.shape[1], hidden).to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    pos = _tensor(split.train_pos, device, torch.long)
    neg = _tensor(split.train_neg, device, torch.long)
    labels = torch.cat([torch.ones(len(pos)), torch.zeros(len(neg))]).to(device)
    for _ in range(epochs):
        h = model.embed(g, x)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(
            model.score(h, torch.cat([pos, neg])), labels
        )
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    with torch.no_grad():
        h = model.embed(g, x)
        p = model.score(h, _tensor(split.test_pos, device, torch.long)).cpu().numpy()
        q = model.score(h, _tensor(split.test_neg, device, torch.long)).cpu().numpy()
    out: dict = {"protocol": "original (leaky)", "epochs": int(epochs)}
    out.update(link_metrics(p, q))
    out.update(leak_counts(split))
    return out


def train_from_config(
    graph, features, split: PairSplit, hp: dict, encoder: str, seed: int, device="cpu"
):
    """``train_link_predictor`` with the sizes and schedule of the ``linkpred`` config section."""
    return train_link_predictor(
        graph,
        features,
        split,
        encoder=encoder,
        hidden=hp["hidden"],
        layers=hp["layers"],
        dropout=hp["dropout"],
        lr=hp["lr"],
        epochs=hp["epochs"],
        patience=hp["patience"],
        seed=seed,
        device=device,
    )
