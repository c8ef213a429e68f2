"""The link predictor (GCN or GraphSAGE encoder, symmetric scorer) and its training."""

from __future__ import annotations

import copy
import logging
import math

import numpy as np
import torch
from torch import nn

from tokentransfer.dglcompat import dgl  # noqa: F401  (sets DGL up before dgl.nn)

from .metrics import auc, link_metrics
from .pairs import PairSplit, _train_sampler, _unkey

from dgl.nn import GraphConv, SAGEConv  # isort: skip  (only after dglcompat has run)

log = logging.getLogger(__name__)

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


#: the keys of the ``linkpred`` config section that size and schedule one network's training
TRAINING_KEYS = ("hidden", "layers", "dropout", "lr", "epochs", "patience")


def training_kwargs(hp: dict) -> dict:
    """The keyword arguments of :func:`train_link_predictor` that the ``linkpred`` config
    section sets (:data:`TRAINING_KEYS`), taken from ``hp``."""
    return {k: hp[k] for k in TRAINING_KEYS}


def train_from_config(
    graph, features, split: PairSplit, hp: dict, encoder: str, seed: int, device="cpu"
):
    """``train_link_predictor`` with the sizes and schedule of the ``linkpred`` config section."""
    return train_link_predictor(
        graph, features, split, encoder=encoder, seed=seed, device=device, **training_kwargs(hp)
    )
