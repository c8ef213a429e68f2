"""The embedding transplant (the original's hypothesis) and the adapters it is compared with.

**Transplant.** Token embeddings adapted by a graph network on the target's token graph are
put into the frozen transformer's input embedding table; no gradient step on the transformer.

1. :func:`transplant_embeddings`: a link-prediction graph network (trained by
   :func:`tokentransfer.linkpred.train_network`, the project's one entry point for them;
   features: the pretrained input embedding rows, standardised with the base corpus's
   statistics) is trained on the *base* corpus's co-occurrence graph, then adapted on the
   target's graph: a copy of it trains on the target's pairs (link prediction, early stopping
   on the target's validation AUC; ``target_epochs=0``: applied as it is, inductively). Both
   graphs are embedded by their network on their full graph, so the two embeddings share one
   space.
2. :func:`fit_map`: a ridge regression (with intercept) from the base graph's node embeddings
   to the pretrained embedding rows of the same tokens: the map that reproduces the pretrained
   table from the graph (its in-sample R² and a held-out R² on a seeded tenth of the tokens are
   reported).
3. :func:`transplant`: the mapped target embeddings (or the target embeddings directly, where
   their width is the model's, ``map=None``) replace the input rows of the target's tokens.
   A model whose output layer shares the input table (GPT-2 ties them) gets its own copy of the
   output weights first (:func:`untie_output`), so that the transplant changes the input table
   only and the output layer keeps the pretrained values.

**Comparison adapters** (gradient steps, with :func:`tokentransfer.model.train`, so that their
cost is measured like full fine-tuning's): :func:`embedding_finetune` trains the input
embedding table alone (output untied, everything else frozen); :func:`lora_finetune` trains
LoRA adapters (``peft``) on the attention projections, the base weights frozen. Each reports
its adaptation seconds and trainable parameters.
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

#: LoRA's default target modules per architecture (attention projections)
LORA_TARGETS = {"gpt2": ["c_attn"], "llama": ["q_proj", "v_proj"]}


# --------------------------------------------------------------------------- weights


def untie_output(model: Any) -> bool:
    """Give the output layer its own copy of the weights it shares with the input embedding
    table (and set ``config.tie_word_embeddings = False`` so that nothing ties them again);
    True when they were tied."""
    import torch

    inp, out = model.get_input_embeddings(), model.get_output_embeddings()
    if out is None or out.weight is not inp.weight:
        return False
    out.weight = torch.nn.Parameter(inp.weight.detach().clone(), requires_grad=True)
    model.config.tie_word_embeddings = False
    return True


def trainable_parameters(model: Any) -> int:
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad))


# --------------------------------------------------------------------------- graph network


@dataclass
class GraphEmbeddings:
    """Node embeddings of the base and the target graph from one graph network's weights."""

    h_base: np.ndarray  # [n_base, hidden]
    base_ids: np.ndarray  # [n_base] vocabulary ids
    h_target: np.ndarray  # [n_target, hidden]
    target_ids: np.ndarray
    base_val_auc: float
    target_val_auc_before: float  # the base network on the target's validation pairs
    target_val_auc: float  # after adapting on the target's graph
    base_seconds: float  # training on the base graph (once per model)
    target_seconds: float  # adapting on the target graph and embedding it (per target)


def _full_graph(a, nodes: np.ndarray):
    """The DGL graph of every undirected pair of ``a`` among ``nodes``, both directions, with
    self loops."""
    import torch

    from .dglcompat import dgl
    from .linkpred import undirected_pairs

    pairs = undirected_pairs(a, nodes)
    src = torch.from_numpy(np.concatenate([pairs[:, 0], pairs[:, 1]]))
    dst = torch.from_numpy(np.concatenate([pairs[:, 1], pairs[:, 0]]))
    return dgl.add_self_loop(dgl.graph((src, dst), num_nodes=len(nodes)))


def _embed(model, graph, x) -> np.ndarray:
    import torch

    model.eval()
    with torch.no_grad():
        return model.embed(graph, torch.as_tensor(x, dtype=torch.float32)).numpy()


def transplant_embeddings(
    base_seqs: list[np.ndarray],
    target_seqs: list[np.ndarray],
    features: np.ndarray,
    hp: dict,
    *,
    offset_weights: tuple[float, ...] = (1.0, 0.5),
    encoder: str = "gcn",
    seed: int = 0,
    target_epochs: int | None = None,
    base: GraphEmbeddings | None = None,
    base_model: Any = None,
) -> tuple[GraphEmbeddings, Any]:
    """Train the graph network on the base graph and adapt a copy on the target graph (see the
    module doc), both by :func:`tokentransfer.linkpred.train_network` with the ``linkpred``
    settings ``hp`` (its ``val_fraction``, ``test_fraction`` and training keys), ``encoder``
    and ``seed``; the target's adaptation continues the base network for ``target_epochs``
    (default ``hp["epochs"]``; 0: the base network as it is). ``features``: ``[V, d]`` node
    features of every vocabulary id (the pretrained input embedding table), standardised with
    the base graph's tokens' mean and std for both graphs. Returns ``(GraphEmbeddings, base
    network)``; pass the base network (``base_model``) and the result (``base``) of an
    earlier call to reuse them for another target (``base_seconds`` is then the earlier
    call's)."""
    from .graph import cooccurrence
    from .linkpred import train_network, undirected_pairs
    from .linkpred import used_nodes as used

    features = np.asarray(features, dtype=np.float64)
    v = features.shape[0]
    a_base = cooccurrence(base_seqs, v, list(offset_weights))
    base_ids = used(a_base)
    mean = features[base_ids].mean(axis=0)
    std = features[base_ids].std(axis=0)
    std[std == 0] = 1.0

    def feats(ids):
        return ((features[ids] - mean) / std).astype(np.float32)

    t0 = time.perf_counter()
    if base_model is None or base is None:
        x_base = feats(base_ids)
        pairs = undirected_pairs(a_base, base_ids)
        net = train_network(pairs, x_base, hp, encoder=encoder, seed=seed)
        base_model = net.model
        h_base = _embed(base_model, _full_graph(a_base, base_ids), x_base)
        base_auc, base_s = float(net.best["val_auc"]), time.perf_counter() - t0
    else:
        h_base, base_auc, base_s = base.h_base, base.base_val_auc, base.base_seconds
    t1 = time.perf_counter()
    a_t = cooccurrence(target_seqs, v, list(offset_weights))
    target_ids = used(a_t)
    x_t = feats(target_ids)
    adapted = train_network(
        undirected_pairs(a_t, target_ids),
        x_t,
        hp,
        encoder=encoder,
        seed=seed,
        start=copy.deepcopy(base_model),
        epochs=target_epochs,
    )
    before, after = adapted.best["start_val_auc"], adapted.best["val_auc"]
    h_t = _embed(adapted.model, _full_graph(a_t, target_ids), x_t)
    out = GraphEmbeddings(
        h_base=h_base,
        base_ids=base_ids,
        h_target=h_t,
        target_ids=target_ids,
        base_val_auc=base_auc,
        target_val_auc_before=float(before),
        target_val_auc=float(after),
        base_seconds=base_s,
        target_seconds=time.perf_counter() - t1,
    )
    log.info(
        "graph network: base val AUC %.3f; target val AUC %.3f -> %.3f (%d target tokens)",
        base_auc,
        before,
        after,
        len(target_ids),
    )
    return out, base_model


# --------------------------------------------------------------------------- the map


@dataclass
class EmbeddingMap:
    """``E ≈ H @ weight + bias``: graph-network embeddings to input embedding rows."""

    weight: np.ndarray  # [hidden, d]
    bias: np.ndarray  # [d]
    ridge: float
    r2: float  # in-sample, on the base tokens
    r2_heldout: float  # fitted without a seeded tenth of the base tokens, scored on them
    extra: dict = field(default_factory=dict)

    def __call__(self, h: np.ndarray) -> np.ndarray:
        return np.asarray(h, dtype=np.float64) @ self.weight + self.bias


def _ridge(h: np.ndarray, e: np.ndarray, ridge: float) -> tuple[np.ndarray, np.ndarray]:
    hm, em = h.mean(axis=0), e.mean(axis=0)
    hc, ec = h - hm, e - em
    w = np.linalg.solve(hc.T @ hc + ridge * np.eye(h.shape[1]), hc.T @ ec)
    return w, em - hm @ w


def _r2(pred: np.ndarray, e: np.ndarray) -> float:
    ss = ((e - e.mean(axis=0)) ** 2).sum()
    return float(1 - ((pred - e) ** 2).sum() / ss) if ss > 0 else float("nan")


def fit_map(
    h: np.ndarray, ids: np.ndarray, table: np.ndarray, ridge: float = 1.0, seed: int = 0
) -> EmbeddingMap:
    """Ridge regression (penalty ``ridge``, intercept unpenalised) from node embeddings ``h``
    of the vocabulary ids ``ids`` to the rows ``table[ids]`` of the pretrained input table."""
    if ridge < 0:
        raise ValueError(f"ridge must be >= 0, got {ridge}")
    h = np.asarray(h, dtype=np.float64)
    ids = np.asarray(ids, dtype=np.int64)
    e = np.asarray(table, dtype=np.float64)[ids]
    if len(h) != len(ids):
        raise ValueError(f"{len(h)} embedding rows for {len(ids)} ids")
    if len(ids) < 2:
        raise ValueError("the map needs at least two base tokens")
    w, b = _ridge(h, e, ridge)
    r2_out = float("nan")
    if len(ids) >= 10:
        perm = np.random.default_rng(seed).permutation(len(ids))
        test, fit = perm[: len(ids) // 10], perm[len(ids) // 10 :]
        wf, bf = _ridge(h[fit], e[fit], ridge)
        r2_out = _r2(h[test] @ wf + bf, e[test])
    return EmbeddingMap(w, b, float(ridge), _r2(h @ w + b, e), r2_out)


def transplant(
    model: Any, h: np.ndarray, ids: np.ndarray, emb_map: EmbeddingMap | None = None
) -> dict[str, Any]:
    """Put the target's node embeddings ``h`` of vocabulary ids ``ids`` into ``model``'s input
    embedding table, through ``emb_map`` or directly (``emb_map=None``: ``h``'s width must be
    the model's). No other weight changes (the output layer is untied first). Returns what was
    done: rows replaced, whether the output was untied, the mean change of the rows' norm."""
    import torch

    h = np.asarray(h, dtype=np.float64)
    ids = np.asarray(ids, dtype=np.int64).ravel()
    rows = emb_map(h) if emb_map is not None else h
    table = model.get_input_embeddings().weight
    if rows.shape != (len(ids), table.shape[1]):
        raise ValueError(
            f"{rows.shape[0]} x {rows.shape[1]} rows for {len(ids)} ids of a table "
            f"{tuple(table.shape)}: give a map when the widths differ"
        )
    if len(ids) and (ids.min() < 0 or ids.max() >= table.shape[0]):
        raise ValueError(f"ids out of range for a table of {table.shape[0]} rows")
    untied = untie_output(model)
    table = model.get_input_embeddings().weight
    with torch.no_grad():
        old = table[torch.from_numpy(ids)].double().norm(dim=1).mean().item() if len(ids) else 0
        table[torch.from_numpy(ids)] = torch.from_numpy(rows).to(table.dtype).to(table.device)
    new = float(np.linalg.norm(rows, axis=1).mean()) if len(ids) else 0.0
    return {"rows": int(len(ids)), "untied": untied, "norm_before": old, "norm_after": new}


# --------------------------------------------------------------------------- adapters


def _train(model, seqs, special, spec, checkpoint, device) -> dict:
    from .model import WindowSampler, context_length, train

    sampler = WindowSampler(list(seqs), special, context_length(model), spec.seed)
    return train(model, sampler, spec, checkpoint=checkpoint, device=device)


def embedding_finetune(
    model: Any, seqs: list[np.ndarray], special: dict, spec: Any, checkpoint: Any, device=None
) -> dict:
    """Fine-tune the input embedding table alone (output layer untied and, like every other
    weight, frozen) for ``spec.steps`` steps (:func:`tokentransfer.model.train`, resumable
    from ``checkpoint``). Returns train's statistics plus ``trainable`` parameters."""
    untie_output(model)
    table = model.get_input_embeddings().weight
    for p in model.parameters():
        p.requires_grad_(p is table)
    stats = _train(model, seqs, special, spec, checkpoint, device)
    return {**stats, "trainable": trainable_parameters(model)}


def lora_model(
    model: Any,
    r: int = 8,
    alpha: int = 16,
    dropout: float = 0.0,
    target_modules: list[str] | None = None,
) -> Any:
    """``model`` wrapped with LoRA adapters (``peft``; rank ``r``, scaling ``alpha / r``) on
    ``target_modules`` (default: :data:`LORA_TARGETS` of its architecture); base weights
    frozen."""
    from peft import LoraConfig, get_peft_model

    arch = model.config.model_type
    targets = target_modules or LORA_TARGETS.get(arch)
    if not targets:
        raise ValueError(f"no default LoRA target modules for {arch!r}: give target_modules")
    cfg = LoraConfig(
        r=int(r),
        lora_alpha=int(alpha),
        lora_dropout=float(dropout),
        target_modules=list(targets),
        fan_in_fan_out=arch == "gpt2",  # GPT-2's Conv1D stores weights transposed
        bias="none",
    )
    return get_peft_model(model, cfg)


def lora_finetune(
    model: Any,
    seqs: list[np.ndarray],
    special: dict,
    spec: Any,
    checkpoint: Any,
    device=None,
    **lora: Any,
) -> tuple[Any, dict]:
    """Train LoRA adapters (:func:`lora_model` with ``lora``) for ``spec.steps`` steps;
    returns ``(peft model, statistics)``. ``peft_model.merge_and_unload()`` gives a plain
    model for the samplers. The adapters' initial weights are drawn from ``spec.seed``, not
    from whatever the global torch RNG holds when the job reaches this method."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(spec.seed))
        peft_model = lora_model(model, **lora)
    stats = _train(peft_model, seqs, special, spec, checkpoint, device)
    return peft_model, {**stats, "trainable": trainable_parameters(peft_model)}
