"""The jobs of ``rules/graph.smk`` (the graph stage): ``adjacency`` (the co-occurrence and
successor graphs of a target's training pieces), ``linkpred`` (graph networks trained by
link prediction, one job per feature variant; config section and results folder ``linkpred``)
and ``linkpred_summary`` (the table over every corpus, variant and method).
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import numpy as np

from ..fileio import h5_atomic, torch_save_atomic, write_text_atomic
from ..graph import (
    context_successors,
    cooccurrence,
    load_matrix,
    save_coo,
    save_matrix,
    successors,
    write_stats,
)
from ..model import ModelError
from ..tokenize import corpus_tokens, load_tokenizer

log = logging.getLogger(__name__)


def run_adjacency(
    *,
    tokenizer_json: str,
    shards: list[str],
    split: str,
    adjacency: str,
    successors_out: str,
    stats_out: str,
    offset_weights: list[float],
    self_loops: bool,
    context_out: str | None = None,
    walk_out: str | None = None,
) -> dict:
    """Co-occurrence and successor graphs of a target corpus's training pieces (and the
    successor counts per grammar context, which the walk moves on, and the walk's melody and
    form tables, :func:`tokentransfer.walkform.count_tables`, in ``walk_out``, by default
    ``walk_tables.npz`` beside ``successors_out``, where rule ``generate`` reads them)."""
    vocab = len(load_tokenizer(tokenizer_json))
    seqs = corpus_tokens(shards, [split], "train")
    if not seqs:
        raise ModelError(f"no training pieces in {split}")
    a = cooccurrence(seqs, vocab, offset_weights, self_loops)
    save_matrix(a, adjacency)
    save_matrix(successors(seqs, vocab), successors_out)
    if context_out:
        save_coo(context_successors(seqs, load_tokenizer(tokenizer_json)), context_out)
    from ..walkform import count_tables, save_tables

    walk_out = walk_out or str(Path(successors_out).with_name("walk_tables.npz"))
    save_tables(count_tables(seqs, load_tokenizer(tokenizer_json)), walk_out)
    return write_stats(
        a,
        stats_out,
        {
            "pieces": len(seqs),
            "tokens": int(sum(len(s) for s in seqs)),
            "window": len(offset_weights),
        },
    )


METRICS = ("auc", "ap", "hits@20")


def _mean_std(values: list[float]) -> list[float]:
    return [float(np.mean(values)), float(np.std(values))] if values else [float("nan")] * 2


def run_linkpred(
    *,
    adjacency: str,
    embeddings: str,
    variant: str,
    encoders: list[str],
    seeds: list[int],
    hp: dict,
    checkpoint: str,
    nodes_h5: str,
    log_tsv: str,
    metrics_json: str,
    device: str = "cpu",
) -> dict:
    """Train and evaluate one feature variant on one target's graph: every encoder and seed
    (:func:`tokentransfer.linkpred.train_network`; the encoders of a seed share its split),
    with the heuristic baselines and the original's leaky protocol on the same pairs; ``hp`` is
    the ``linkpred`` config.

    Outputs (``results/linkpred/{model}/{corpus}/{variant}/``):

    - ``checkpoint.pt``: the state_dict of the first encoder's model at the first seed (the one
      generation uses); load with ``torch.load(path, weights_only=True)``;
    - ``nodes.h5``: that model's node embeddings ``embeddings`` [n, hidden] with ``vocab_ids``
      [n];
    - ``training_log.tsv``: encoder, seed, epoch, loss, validation AUC;
    - ``metrics.json``: per seed and method the test AUC, AP and Hits@20, and mean +- std.
    """

    from ..embed import read_embeddings
    from ..linkpred import (
        CIRCULAR_VARIANTS,
        cosine_scores,
        evaluate,
        heuristic_scores,
        link_metrics,
        original_protocol,
        standardise,
        train_network,
        variant_graph,
    )

    t_start = time.perf_counter()
    a = load_matrix(adjacency)
    emb = read_embeddings(embeddings)
    nodes, raw, pairs = variant_graph(variant, a, emb, seed=seeds[0])
    features = standardise(raw)
    log.info("%s: %d nodes, %d pairs, %d features", variant, len(nodes), len(pairs), raw.shape[1])
    per_seed: list[dict] = []
    log_rows = ["encoder\tseed\tepoch\tloss\tval_auc"]
    for s_i, seed in enumerate(seeds):
        split = None  # the first encoder's split of the pairs at this seed, for all of them
        row: dict = {"seed": seed, "methods": {}}
        for e_i, encoder in enumerate(encoders):
            t0 = time.perf_counter()
            net = train_network(
                pairs, features, hp, encoder=encoder, seed=seed, device=device, split=split
            )
            seconds = time.perf_counter() - t0
            model, history, best, split = net.model, net.history, net.best, net.split
            scores = evaluate(model, net.graph, features, split, device)
            row["methods"][encoder] = {
                **scores["test"],
                "val_auc": scores["val"]["auc"],
                "best_epoch": best["epoch"],
                "epochs_run": len(history),
                "seconds": round(seconds, 3),
            }
            log_rows += [
                f"{encoder}\t{seed}\t{h['epoch']}\t{h['loss']:.6f}\t{h['val_auc']:.6f}"
                for h in history
            ]
            if s_i == 0 and e_i == 0:
                torch_save_atomic(model.state_dict(), checkpoint)
                with h5_atomic(nodes_h5) as h5:
                    h5.create_dataset("embeddings", data=best["embeddings"].astype(np.float32))
                    h5.create_dataset("vocab_ids", data=nodes.astype(np.int64))
                    h5.attrs["variant"] = variant
                    h5.attrs["encoder"] = encoder
                    h5.attrs["seed"] = seed
                    h5.attrs["hidden"] = hp["hidden"]
                    h5.attrs["layers"] = hp["layers"]
                    h5.attrs["in_features"] = features.shape[1]
        for name, (pos, neg) in heuristic_scores(split, len(nodes), "test").items():
            row["methods"][name] = link_metrics(pos, neg)
        row["methods"]["feature_cosine"] = link_metrics(
            cosine_scores(raw, split.test_pos), cosine_scores(raw, split.test_neg)
        )
        if hp["original_protocol"]:
            orig = original_protocol(a, nodes, features, seed, hp["original_epochs"], device=device)
            row["methods"]["original_protocol"] = {k: orig[k] for k in METRICS if k in orig}
            row["original_leaks"] = {k: v for k, v in orig.items() if k not in METRICS}
        row["split"] = {
            "train_pos": len(split.train_pos),
            "val_pos": len(split.val_pos),
            "test_pos": len(split.test_pos),
            "test_neg": len(split.test_neg),
        }
        per_seed.append(row)
    methods = list(per_seed[0]["methods"])
    summary = {
        m: {k: _mean_std([r["methods"][m][k] for r in per_seed]) for k in METRICS} for m in methods
    }
    out = {
        "variant": variant,
        "circular": variant in CIRCULAR_VARIANTS,
        "nodes": len(nodes),
        "pairs": len(pairs),
        "features": int(raw.shape[1]),
        "encoders": encoders,
        "seeds": seeds,
        "hyperparameters": hp,
        "per_seed": per_seed,
        "summary": summary,
        "seconds": round(time.perf_counter() - t_start, 3),
    }
    write_text_atomic(log_tsv, "\n".join(log_rows) + "\n")
    write_text_atomic(metrics_json, json.dumps(out, indent=2, sort_keys=True, default=float) + "\n")
    return out


SUMMARY_COLUMNS = (
    "model",
    "corpus",
    "variant",
    "circular",
    "method",
    "seeds",
    "auc_mean",
    "auc_std",
    "ap_mean",
    "ap_std",
    "hits20_mean",
    "hits20_std",
)


def run_linkpred_summary(
    metrics_paths: list[str],
    out: str | os.PathLike,
    names: list[tuple[str, str, str]],
) -> list[list[str]]:
    """One row per (model, corpus, variant, method): mean and std over seeds. ``names``: the
    (model, corpus, variant) of each metrics file, in ``metrics_paths``' order (the rule
    passes them: nothing is read from the paths); rows sorted by name."""
    if len(names) != len(metrics_paths):
        raise ValueError(f"{len(names)} names for {len(metrics_paths)} metrics files")
    rows = []
    for (model, corpus, variant), path in sorted(zip(names, metrics_paths, strict=True)):
        m = json.loads(Path(path).read_text())
        for method, stats in m["summary"].items():
            rows.append(
                [
                    model,
                    corpus,
                    variant,
                    str(m["circular"]).lower(),
                    method,
                    str(len(m["seeds"])),
                    *(f"{stats[k][i]:.4f}" for k in METRICS for i in (0, 1)),
                ]
            )
    text = "\t".join(SUMMARY_COLUMNS) + "\n" + "".join("\t".join(r) + "\n" for r in rows)
    write_text_atomic(out, text)
    return rows
