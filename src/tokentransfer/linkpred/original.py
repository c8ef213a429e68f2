"""The original's leaky protocol, reproduced as a labelled reference (never a result)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from tokentransfer.dglcompat import dgl

from .metrics import link_metrics
from .model import _tensor
from .pairs import _in_sorted, _keys, _local, _sort_pairs

from dgl.nn import SAGEConv  # isort: skip  (only after dglcompat has run)


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
