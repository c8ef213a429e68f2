"""The link predictor (GCN or GraphSAGE encoder, symmetric scorer), its scores and its metrics
on a split; its training is :mod:`.training`."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from tokentransfer.dglcompat import dgl  # noqa: F401  (sets DGL up before dgl.nn)

from .metrics import link_metrics
from .pairs import PairSplit

from dgl.nn import GraphConv, SAGEConv  # isort: skip  (only after dglcompat has run)

ENCODERS = ("gcn", "sage")


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
