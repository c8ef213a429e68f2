"""The jobs of ``rules/model.smk`` (the transformer stage): ``split``, ``pretrain`` (or
``import_model``), ``perplexity``, ``model_metrics``, ``embed`` and ``finetune``; each reads its
inputs, calls the library (:mod:`tokentransfer.split`, :mod:`tokentransfer.model`,
:mod:`tokentransfer.embed`) and writes its outputs.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np

from ..embed import contextual, position_table, token_table, write_embeddings
from ..fileio import sha256_file, write_json, write_text_atomic
from ..model import (
    ModelError,
    TrainSpec,
    WindowSampler,
    build_model,
    checkpoint_for,
    device_for,
    evaluate,
    load_model,
    model_spec,
    n_params,
    save_model,
    set_threads,
    special_ids,
    train,
)
from ..split import write_split
from ..tokenize import corpus_tokens, load_tokenizer

log = logging.getLogger(__name__)


def run_split(
    *, manifest: str, out: str, corpus: str, fraction: float, held: str, seed: int
) -> dict[str, int]:
    """The grouped, seeded split of corpus ``corpus``'s accepted files (versions of one piece
    on one side) to ``out``; return the count of files per part.

    ``fraction`` is config key ``split.base_val_fraction`` for a base corpus (``held`` then
    ``val``), ``split.target_test_fraction`` for a target (``held`` ``test``); ``seed`` is
    config key ``seed``.
    """
    counts = dict(write_split(manifest, out, fraction, seed, held))
    log.info("split of %s: %s", corpus, counts)
    return counts


def run_pretrain(
    *,
    tokenizer_json: str,
    shards: list[str],
    splits: list[str],
    out_dir: str,
    log_path: str,
    train_json: str,
    checkpoint_dir: str,
    cfg: dict,
    seed: int,
    use_gpu: bool,
    threads: int = 1,
) -> dict:
    """Pretrain the transformer on the base corpus's training pieces; validate on held-out ones."""
    set_threads(threads)
    tokenizer = load_tokenizer(tokenizer_json)
    special = special_ids(tokenizer)
    train_seqs = corpus_tokens(shards, splits, "train")
    val_seqs = corpus_tokens(shards, splits, "val")
    log.info(
        "base corpus: %d training pieces, %d validation pieces", len(train_seqs), len(val_seqs)
    )
    spec = model_spec(cfg)
    tspec = TrainSpec(
        steps=cfg["steps"],
        batch=cfg["batch"],
        lr=cfg["lr"],
        warmup=cfg["warmup"],
        weight_decay=cfg["weight_decay"],
        seed=seed,
        checkpoint_every=cfg["checkpoint_every"],
    )
    device = device_for(use_gpu)
    model = build_model(spec, len(tokenizer), special, seed)
    sampler = WindowSampler(train_seqs, special, spec.context, seed)
    checkpoint = checkpoint_for(
        checkpoint_dir, "pretrain", {"cfg": cfg, "seed": seed}, [tokenizer_json, *shards, *splits]
    )
    stats = train(model, sampler, tspec, checkpoint=checkpoint, log_path=log_path, device=device)
    val = evaluate(model, val_seqs, special, max_tokens=cfg["eval_tokens"]) if val_seqs else None
    digest = save_model(model.cpu(), tokenizer_json, out_dir)
    params = n_params(model)
    info = {
        "source": "pretrain",
        "model_hash": digest,
        "tokenizer_hash": sha256_file(tokenizer_json),
        "parameters": params,
        "architecture": spec.__dict__,
        "training": tspec.__dict__,
        "device": str(device),
        "tokens_seen": stats["tokens_seen"],
        "seconds": round(stats["seconds"], 3),
        "tokens_per_second": round(stats["tokens_seen"] / max(stats["seconds"], 1e-9), 1),
        "flops_estimate": 6 * params * stats["tokens_seen"],
        "train_pieces": len(train_seqs),
        "val_pieces": len(val_seqs),
        "val": val,
    }
    write_json(info, train_json)
    checkpoint.unlink(missing_ok=True)
    return info


def run_import_model(
    *, model_path: str, tokenizer_json: str, out_dir: str, log_path: str, train_json: str
) -> dict:
    """Take a local HF checkpoint (validated against its tokenizer) as the workflow's model."""
    model, _ = load_model(model_path, tokenizer_json)
    digest = save_model(model, tokenizer_json, out_dir)
    write_text_atomic(log_path, "step\tloss\tlr\ttokens\tseconds\n")
    info = {
        "source": "local",
        "path": str(model_path),
        "model_hash": digest,
        "tokenizer_hash": sha256_file(tokenizer_json),
        "parameters": n_params(model),
    }
    write_json(info, train_json)
    return info


def run_perplexity(
    *,
    model_dir: str,
    shards: list[str],
    split: str,
    part: str,
    out_json: str,
    corpus: str,
    eval_tokens: int,
    use_gpu: bool,
    threads: int = 1,
) -> dict:
    """Validation loss and perplexity of the model on one corpus's held-out pieces."""
    set_threads(threads)
    model, tokenizer = load_model(model_dir)
    seqs = corpus_tokens(shards, [split], part)
    if not seqs:  # a corpus of one group has no held-out piece: score all of it, and say so
        part, seqs = "all", corpus_tokens(shards)
    model.to(device_for(use_gpu))
    result = evaluate(model, seqs, special_ids(tokenizer), max_tokens=eval_tokens)
    out = {"corpus": corpus, "pieces": part, "n_pieces": len(seqs), **result}
    write_json(out, out_json)
    return out


def run_model_metrics(train_json: str, perplexities: list[str], out_json: str) -> dict:
    info = json.loads(Path(train_json).read_text())
    per = [json.loads(Path(p).read_text()) for p in perplexities]
    out = {
        "model_hash": info["model_hash"],
        "source": info["source"],
        "parameters": info["parameters"],
        "training": {
            k: info.get(k) for k in ("tokens_seen", "seconds", "flops_estimate", "device")
        },
        "perplexity": {p["corpus"]: p for p in per},
    }
    write_json(out, out_json)
    return out


def run_embed(
    *,
    model_dir: str,
    shards: list[str],
    split: str,
    manifest: str,
    out: str,
    batch: int,
    stride: int | None,
    use_gpu: bool,
    threads: int = 1,
    contextual_pass: bool = True,
) -> dict:
    """The embedding cache of one target corpus (contextual over its training pieces).

    ``contextual_pass=False`` (no graph-network variant of the run reads them) skips the
    forward passes over the corpus: the ``contextual`` table is then NaN and ``count`` 0, and
    :func:`tokentransfer.linkpred.raw_features` refuses the ``contextual`` variant on it."""
    set_threads(threads)
    model, tokenizer = load_model(model_dir)
    device = device_for(use_gpu)
    model.to(device)
    seqs = corpus_tokens(shards, [split], "train")
    if not seqs:
        raise ModelError(f"no training pieces in {split}")
    t0 = time.perf_counter()
    if contextual_pass:
        ctx, count = contextual(model, seqs, special_ids(tokenizer), batch=batch, stride=stride)
    else:
        table = token_table(model)
        ctx = np.full(table.shape, np.nan, dtype=np.float32)
        count = np.zeros(table.shape[0], dtype=np.int64)
    seconds = time.perf_counter() - t0
    position, kind = position_table(model)
    tokens = int(sum(len(s) + 2 for s in seqs))
    attrs = {
        "model_hash": sha256_file(Path(model_dir) / "model.safetensors"),
        "tokenizer_hash": sha256_file(Path(model_dir) / "tokenizer.json"),
        "manifest_hash": sha256_file(manifest),
        "split_hash": sha256_file(split),
        "pieces": len(seqs),
        "tokens": tokens,
        "window": int(position.shape[0]),
        "stride": int(stride or max(position.shape[0] // 2, 1)),
        "batch": batch,
        "contextual_pass": int(bool(contextual_pass)),
    }
    write_embeddings(
        out,
        token=token_table(model),
        position=position,
        position_kind=kind,
        contextual_table=ctx,
        count=count,
        attrs=attrs,
    )
    if contextual_pass:
        log.info(
            "contextual embeddings: %d tokens in %.1f s (%.0f tokens/s)",
            tokens,
            seconds,
            tokens / max(seconds, 1e-9),
        )
    else:
        log.info("no contextual embeddings asked for: token and position tables only")
    return {**attrs, "seconds": seconds}


def run_finetune(
    *,
    model_dir: str,
    shards: list[str],
    split: str,
    out_dir: str,
    log_path: str,
    metrics_json: str,
    checkpoint_dir: str,
    cfg: dict,
    eval_tokens: int,
    seed: int,
    use_gpu: bool,
    threads: int = 1,
) -> dict:
    """Fine-tune the pretrained model on a target's training pieces (the costly baseline)."""
    set_threads(threads)
    model, tokenizer = load_model(model_dir)
    special = special_ids(tokenizer)
    device = device_for(use_gpu)
    train_seqs = corpus_tokens(shards, [split], "train")
    test_seqs = corpus_tokens(shards, [split], "test")
    context = int(getattr(model.config, "n_positions", 0) or model.config.max_position_embeddings)
    model.to(device)
    before = evaluate(model, test_seqs, special, max_tokens=eval_tokens) if test_seqs else None
    tspec = TrainSpec(
        steps=cfg["steps"],
        batch=cfg["batch"],
        lr=cfg["lr"],
        warmup=cfg["warmup"],
        seed=seed,
        checkpoint_every=max(cfg["steps"] // 5, 1),
    )
    sampler = WindowSampler(train_seqs, special, context, seed)
    checkpoint = checkpoint_for(
        checkpoint_dir,
        "finetune",
        {"cfg": cfg, "seed": seed},
        [str(Path(model_dir) / "model.safetensors"), *shards, split],
    )
    stats = train(model, sampler, tspec, checkpoint=checkpoint, log_path=log_path, device=device)
    after = evaluate(model, test_seqs, special, max_tokens=eval_tokens) if test_seqs else None
    digest = save_model(model.cpu(), Path(model_dir) / "tokenizer.json", out_dir)
    params = n_params(model)
    info = {
        "model_hash": digest,
        "base_model_hash": sha256_file(Path(model_dir) / "model.safetensors"),
        "training": tspec.__dict__,
        "device": str(device),
        "seconds": round(stats["seconds"], 3),
        "tokens_seen": stats["tokens_seen"],
        "flops_estimate": 6 * params * stats["tokens_seen"],
        "train_pieces": len(train_seqs),
        "test_pieces": len(test_seqs),
        "test_before": before,
        "test_after": after,
    }
    write_json(info, metrics_json)
    checkpoint.unlink(missing_ok=True)
    return info
