"""Training a graph network by link prediction: :func:`train_network`, the one entry point.

Every graph network of the project is trained by :func:`train_network`: rule ``linkpred``'s
job (:func:`tokentransfer.jobs.graph.run_linkpred`, every seed and encoder of a feature
variant), the graph-network walks (:class:`tokentransfer.methods.Walk`, few-shot and
``tokentransfer run``: the first seed and encoder) and the transplant
(:func:`tokentransfer.transplant.transplant_embeddings`: a network on the base corpus's graph,
then a copy of it adapted on the target's). What differs between them is an argument: the
pairs and the node features (each caller makes its own), the ``linkpred`` settings ``hp``,
the encoder and seed, a split made before (``split``), a network to continue from (``start``)
and its epochs (``epochs``).

:func:`train_link_predictor` is the loop under it: full-batch, fresh training negatives each
epoch, early stopping on the validation AUC.
"""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .metrics import auc
from .model import LinkPredictor, _tensor
from .pairs import PairSplit, _train_sampler, _unkey, message_graph, split_pairs

log = logging.getLogger(__name__)


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
    start: LinkPredictor | None = None,
):
    """Train a ``LinkPredictor`` full-batch on the message ``graph``; early-stop on val AUC.

    Each epoch draws as many fresh training negatives as there are training positives (the
    non-pairs that are no validation or test negative), takes one Adam step on the
    BCE-with-logits loss, then scores the validation pairs. Training stops after ``patience``
    epochs without a better validation AUC and the best weights are restored.

    ``start``: continue training this network (trained in place; ``encoder``, ``hidden``,
    ``layers`` and ``dropout`` are then its own) instead of a new one; its starting weights
    count as epoch -1, so the result is never worse on the validation pairs than the start.

    Returns ``(model, history, best)``: ``history`` is a list of ``{"epoch", "loss",
    "val_auc"}``; ``best`` is ``{"epoch", "val_auc", "loss", "embeddings"}`` (and, with a
    ``start``, ``"start_val_auc"``) where ``embeddings`` [n, hidden] (numpy) are
    ``model.embed(graph, features)`` of the best model.
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    graph = graph.to(device)
    x = _tensor(features, device, torch.float32)
    if x.shape[0] != graph.num_nodes():
        raise ValueError(f"{x.shape[0]} feature rows for a graph of {graph.num_nodes()} nodes")
    if len(split.val_pos) == 0 or len(split.val_neg) == 0:
        raise ValueError("early stopping needs validation pairs: split with val_fraction > 0")
    if start is None:
        model = LinkPredictor(x.shape[1], hidden, layers, dropout, encoder).to(device)
    else:
        model = start.to(device)
        encoder = model.encoder
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    sampler = _train_sampler(split, split.all_pos)
    train_pos = _tensor(split.train_pos, device, torch.long)
    val_pos = _tensor(split.val_pos, device, torch.long)
    val_neg = _tensor(split.val_neg, device, torch.long)
    n_train = len(split.train_pos)

    def val_auc() -> float:
        model.eval()
        with torch.no_grad():
            h = model.embed(graph, x)
            return auc(model.score(h, val_pos).cpu().numpy(), model.score(h, val_neg).cpu().numpy())

    history: list[dict] = []
    best = {"epoch": -1, "val_auc": -math.inf, "loss": math.nan}
    if start is not None:
        best["val_auc"] = best["start_val_auc"] = val_auc()
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

        score = val_auc()
        history.append({"epoch": epoch, "loss": float(loss.item()), "val_auc": score})
        if score > best["val_auc"]:
            best = {**best, "epoch": epoch, "val_auc": score, "loss": float(loss.item())}
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


@dataclass
class Network:
    """A graph network trained by :func:`train_network`: the model (best weights, eval mode),
    its training ``history`` and ``best`` epoch (:func:`train_link_predictor`), the ``split``
    of the pairs and the message ``graph`` it was trained on."""

    model: LinkPredictor
    history: list[dict]
    best: dict
    split: PairSplit
    graph: Any

    @property
    def embeddings(self) -> np.ndarray:
        """Node embeddings [n, hidden] of the best model on its message graph."""
        return self.best["embeddings"]


def train_network(
    pairs: np.ndarray,
    features: np.ndarray,
    hp: dict,
    *,
    encoder: str,
    seed: int,
    device: str = "cpu",
    split: PairSplit | None = None,
    start: LinkPredictor | None = None,
    epochs: int | None = None,
) -> Network:
    """Train a graph network by link prediction on the positive ``pairs`` (local ids ``u <
    v``) among the ``len(features)`` nodes: the one entry point (see the module doc).

    ``features``: node features [n, f] as the network sees them (standardised by the caller);
    ``hp``: the ``linkpred`` settings, ``val_fraction`` and ``test_fraction`` (the split) and
    :data:`TRAINING_KEYS`; ``encoder``, ``seed``: the network's encoder and seed (the split's,
    the weights' and the negatives'); ``split``: a split of ``pairs`` made before (another
    encoder's at the same seed) instead of ``split_pairs(pairs, n, val_fraction,
    test_fraction, seed)``; ``start``: a network to continue training (in place) instead of a
    new one; ``epochs``: instead of ``hp["epochs"]``. The message graph is the split's
    training pairs in both directions with self loops (:func:`message_graph`).

    A graph too small to split raises ``ValueError``.
    """
    n = len(features)
    if split is None:
        split = split_pairs(pairs, n, hp["val_fraction"], hp["test_fraction"], seed)
    graph = message_graph(split, n, self_loops=True)
    kwargs = training_kwargs(hp)
    if epochs is not None:
        kwargs["epochs"] = epochs
    model, history, best = train_link_predictor(
        graph, features, split, encoder=encoder, seed=seed, device=device, start=start, **kwargs
    )
    return Network(model, history, best, split, graph)
