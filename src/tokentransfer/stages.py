"""One function per transformer-stage rule: read inputs, call the library, write outputs.

The Snakemake scripts only unpack ``snakemake.input``/``params`` and call these.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from pathlib import Path

import numpy as np

from .embed import contextual, position_table, token_table, write_embeddings
from .fileio import sha256_file, write_json, write_text_atomic
from .model import (
    ModelError,
    ModelSpec,
    TrainSpec,
    WindowSampler,
    build_model,
    device_for,
    evaluate,
    load_model,
    n_params,
    save_model,
    special_ids,
    train,
)
from .split import read_split
from .tokenize import load_tokenizer, read_shard

log = logging.getLogger(__name__)

#: the keys of config section ``model`` that :func:`run_pretrain` reads (rule pretrain's
#: params: a change of another key, such as ``threads``, reruns no pretraining)
PRETRAIN_KEYS = (
    "arch",
    "layers",
    "dim",
    "heads",
    "context",
    "dropout",
    "steps",
    "batch",
    "lr",
    "warmup",
    "weight_decay",
    "checkpoint_every",
    "eval_tokens",
)


def corpus_tokens(
    shard_paths: list[str], splits: list[str] | None = None, part: str | None = None
) -> list[np.ndarray]:
    """Token sequences of a corpus (all shards), optionally only the files of one split part,
    in file id order."""
    keep = None
    if part is not None:
        keep = set()
        for sp in splits or []:
            keep |= {fid for fid, p in read_split(sp).items() if p == part}
    items = []
    for path in shard_paths:
        shard = read_shard(path)
        for i, fid in enumerate(shard.file_ids):
            if keep is None or fid in keep:
                items.append((fid, shard.sequence(i)))
    return [seq for _, seq in sorted(items, key=lambda x: x[0])]


def model_spec(cfg: dict) -> ModelSpec:
    return ModelSpec(
        arch=cfg["arch"],
        layers=cfg["layers"],
        dim=cfg["dim"],
        heads=cfg["heads"],
        context=cfg["context"],
        dropout=cfg["dropout"],
    )


def checkpoint_for(
    directory: str | os.PathLike, kind: str, settings: dict, inputs: list[str]
) -> Path:
    """A checkpoint path keyed by the settings and the inputs' content: a run with other
    settings or data never resumes from it."""
    h = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
    for path in sorted(inputs):
        h.update(sha256_file(path).encode())
    return Path(directory) / f"{kind}-{h.hexdigest()[:16]}.pt"


def set_threads(n: int) -> None:
    """Torch's intra-op threads for a job (its Snakemake ``threads``)."""
    import torch

    torch.set_num_threads(max(int(n), 1))


def device_name(use_gpu: bool) -> str:
    return str(device_for(use_gpu))


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


def run_import(
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


def import_tokenizer(model_path: str, tokenizer_json: str | None, out: str) -> str:
    """Copy a local model's tokenizer JSON into place after checking it loads."""
    src = Path(tokenizer_json) if tokenizer_json else Path(model_path) / "tokenizer.json"
    tokenizer = load_tokenizer(src)  # refuses a missing or invalid file with a named error
    config = Path(model_path) / "config.json"
    if not config.is_file():
        raise ModelError(f"model file missing: {config} (a local HF checkpoint with safetensors)")
    vocab_size = json.loads(config.read_text()).get("vocab_size")
    if vocab_size != len(tokenizer):
        raise ModelError(
            f"vocab mismatch: model {model_path} has vocab_size {vocab_size} but tokenizer "
            f"{src} has {len(tokenizer)} tokens"
        )
    from .grammar import unsupported

    why = unsupported(tokenizer)
    if why:
        raise ModelError(
            f"config key model.tokenizer: {src}: {why} (the walk and the grammar mask follow "
            "REMI's token stream)"
        )
    shutil.copyfile(src, out)
    return sha256_file(out)


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


def run_metrics(train_json: str, perplexities: list[str], out_json: str) -> dict:
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
) -> dict:
    """The embedding cache of one target corpus (contextual over its training pieces)."""
    set_threads(threads)
    model, tokenizer = load_model(model_dir)
    device = device_for(use_gpu)
    model.to(device)
    seqs = corpus_tokens(shards, [split], "train")
    if not seqs:
        raise ModelError(f"no training pieces in {split}")
    t0 = time.perf_counter()
    ctx, count = contextual(model, seqs, special_ids(tokenizer), batch=batch, stride=stride)
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
    log.info(
        "contextual embeddings: %d tokens in %.1f s (%.0f tokens/s)",
        tokens,
        seconds,
        tokens / max(seconds, 1e-9),
    )
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
) -> dict:
    """Co-occurrence and successor graphs of a target corpus's training pieces (and the
    successor counts per grammar context, which the walk moves on)."""
    from .graph import (
        context_successors,
        cooccurrence,
        save_coo,
        save_matrix,
        successors,
        write_stats,
    )

    vocab = len(load_tokenizer(tokenizer_json))
    seqs = corpus_tokens(shards, [split], "train")
    if not seqs:
        raise ModelError(f"no training pieces in {split}")
    a = cooccurrence(seqs, vocab, offset_weights, self_loops)
    save_matrix(a, adjacency)
    save_matrix(successors(seqs, vocab), successors_out)
    if context_out:
        save_coo(context_successors(seqs, load_tokenizer(tokenizer_json)), context_out)
    return write_stats(
        a,
        stats_out,
        {
            "pieces": len(seqs),
            "tokens": int(sum(len(s) for s in seqs)),
            "window": len(offset_weights),
        },
    )


def run_generate(
    *,
    tokenizer_json: str,
    successors_npz: str,
    nodes_h5: str | None,
    out_dir: str,
    cfg: dict,
    prompt_midi: str | None = None,
    context_npz: str | None = None,
    test_shards: list[str] | None = None,
    split_tsv: str | None = None,
    bits_tokens: int | None = None,
) -> dict:
    """Generate samples by the biased random walk with restart; write MIDI, tokens and a record.

    ``nodes_h5=None`` walks on the counts alone (the Markov chain of the counts).
    ``context_npz``: the successor counts per grammar context (default:
    ``context_successors.npz`` beside ``successors_npz``); unused with ``context: none``.
    With the target's ``test_shards`` and ``split_tsv``, the record also holds the walk's bits
    per token on its test pieces (at most ``bits_tokens`` tokens; see
    :func:`tokentransfer.evaluate.heldout_bits`).
    """

    from .graph import load_coo, load_matrix
    from .rwr import WalkConfig, Walker, load_node_embeddings
    from .tokenize import tokenize_file

    tokenizer = load_tokenizer(tokenizer_json)
    walk_cfg = WalkConfig(**{k: cfg[k] for k in WalkConfig.__dataclass_fields__ if k in cfg})
    h = vocab_ids = None
    if nodes_h5:
        h, vocab_ids = load_node_embeddings(nodes_h5)
    ctx = None
    if walk_cfg.context != "none":
        ctx = load_coo(context_npz or Path(successors_npz).with_name("context_successors.npz"))
    walker = Walker(load_matrix(successors_npz), tokenizer, h, vocab_ids, walk_cfg, ctx)
    prompt = tokenize_file(tokenizer, prompt_midi) if prompt_midi else None
    t0 = time.perf_counter()
    samples = walker.generate(prompt=prompt)
    seconds = time.perf_counter() - t0
    extra = {
        "parameters": walk_cfg.__dict__,
        "biased": nodes_h5 is not None,
        "nodes": nodes_h5,
        "prompt": prompt_midi,
        "walk_stats": walker.last_stats,
    }
    if test_shards and split_tsv:
        from .evaluate import heldout_bits
        from .likelihood import walk_log_probs

        test = corpus_tokens(test_shards, [split_tsv], "test")
        extra.update(heldout_bits(lambda s: walk_log_probs(walker, s), test, bits_tokens))
    return write_samples(tokenizer, tokenizer_json, samples, out_dir, prompt, seconds, extra)


def write_samples(
    tokenizer,
    tokenizer_json: str,
    samples: list[np.ndarray],
    out_dir: str | os.PathLike,
    prompt: np.ndarray | None,
    seconds: float,
    extra: dict,
) -> dict:
    """Write one sample set: ``sample_NNN.mid``, ``tokens.h5`` and ``generation.json``.

    Used by the graph walks and by every baseline, so that the evaluation reads them alike.
    ``seconds`` is the time spent producing the samples; ``extra`` goes into the record.
    """
    from .fileio import h5_atomic
    from .rwr import decode, token_errors, write_midi

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    errors, notes = [], []
    for i, ids in enumerate(samples):
        score = decode(tokenizer, ids)
        errors.append(token_errors(tokenizer, ids))
        notes.append(int(score.note_num()))
        write_midi(score, out / f"sample_{i:03d}.mid")
    prompt_len = 0 if prompt is None else len(prompt)
    offsets = np.zeros(len(samples) + 1, dtype=np.int64)
    np.cumsum([len(s) for s in samples], out=offsets[1:])
    with h5_atomic(out / "tokens.h5") as h5:
        h5.create_dataset("ids", data=np.concatenate(samples).astype(np.int32))
        h5.create_dataset("offsets", data=offsets)
        h5.attrs["tokenizer_hash"] = sha256_file(tokenizer_json)
        h5.attrs["prompt_tokens"] = prompt_len
    generated = int(sum(len(s) for s in samples)) - prompt_len * len(samples)
    info = {
        **extra,
        "prompt_tokens": prompt_len,
        "samples": len(samples),
        "tokens_generated": generated,
        "seconds": round(seconds, 4),
        "tokens_per_second": round(generated / max(seconds, 1e-9), 1),
        "token_error_rate": errors,
        "notes": notes,
    }
    write_json(info, out / "generation.json")
    return info


def read_samples(tokens_h5: str | os.PathLike) -> tuple[list[np.ndarray], int]:
    """The samples of a ``tokens.h5`` written by :func:`write_samples`, and the prompt length."""
    import h5py

    with h5py.File(tokens_h5, "r") as h5:
        ids = h5["ids"][:].astype(np.int64)
        offsets = h5["offsets"][:]
        prompt = int(h5.attrs.get("prompt_tokens", 0))
    return [ids[a:b] for a, b in zip(offsets[:-1], offsets[1:], strict=True)], prompt
