"""The pretrained transformer: a HF ``transformers`` causal LM over the miditok vocabulary.

``pretrain`` builds a small GPT-2 (learned positional table) or Llama (rotary positions) model
from config and trains it on the base corpus, seeded and resumable: a checkpoint holds the
weights, the optimiser, the schedule, the batch sampler's and torch's RNG states and the
training log, so a killed run that is restarted ends with the same weights as one that was
never killed. Checkpoints load with ``torch.load(weights_only=True)``: nothing is unpickled.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .fileio import sha256_file, torch_save_atomic, write_text_atomic

log = logging.getLogger(__name__)

ARCHS = ("gpt2", "llama")
WEIGHTS_FILE = "model.safetensors"


class ModelError(RuntimeError):
    """A model cannot be built, loaded or matched with its tokenizer."""


@dataclass(frozen=True)
class ModelSpec:
    """Architecture of a model built from config."""

    arch: str = "gpt2"
    layers: int = 2
    dim: int = 128
    heads: int = 4
    context: int = 256
    dropout: float = 0.1


@dataclass(frozen=True)
class TrainSpec:
    """Optimisation settings (pretraining and fine-tuning)."""

    steps: int = 300
    batch: int = 8
    lr: float = 1e-3
    warmup: int = 30
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    seed: int = 0
    checkpoint_every: int = 50
    log_every: int = 10


#: the keys of config section ``model`` that pretraining reads (:func:`tokentransfer.jobs.model.
#: run_pretrain`: :func:`model_spec`, the :class:`TrainSpec` and ``eval_tokens``), rule
#: pretrain's params: a change of another key, such as ``threads``, reruns no pretraining
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


def model_spec(cfg: dict) -> ModelSpec:
    """The architecture of a ``model`` config section (its other keys ignored)."""
    return ModelSpec(
        arch=cfg["arch"],
        layers=cfg["layers"],
        dim=cfg["dim"],
        heads=cfg["heads"],
        context=cfg["context"],
        dropout=cfg["dropout"],
    )


def special_ids(tokenizer) -> dict[str, int]:
    """pad/bos/eos token ids of a miditok tokenizer (its special tokens)."""
    vocab = tokenizer.vocab
    out = {}
    for key, token in (("pad", "PAD_None"), ("bos", "BOS_None"), ("eos", "EOS_None")):
        if token not in vocab:
            raise ModelError(f"tokenizer has no {token} token; add it to special_tokens")
        out[key] = int(vocab[token])
    return out


def device_for(use_gpu: bool):
    import torch

    if use_gpu and torch.cuda.is_available():
        return torch.device("cuda")
    if use_gpu:
        log.warning("use_gpu is set but no GPU is visible: running on the CPU")
    return torch.device("cpu")


def device_name(use_gpu: bool) -> str:
    """:func:`device_for` as a string (``"cuda"`` or ``"cpu"``), for the graph networks."""
    return str(device_for(use_gpu))


def set_threads(n: int) -> None:
    """Torch's intra-op threads for a job (its Snakemake ``threads``)."""
    import torch

    torch.set_num_threads(max(int(n), 1))


def build_model(spec: ModelSpec, vocab_size: int, special: dict[str, int], seed: int):
    """A freshly initialised causal LM (weights seeded)."""
    import torch
    import transformers

    if spec.arch not in ARCHS:
        raise ModelError(f"config key model.arch: {spec.arch!r} is not one of {ARCHS}")
    if spec.dim % spec.heads:
        raise ModelError(f"config key model.dim: {spec.dim} is not divisible by heads {spec.heads}")
    common = {
        "vocab_size": vocab_size,
        "bos_token_id": special["bos"],
        "eos_token_id": special["eos"],
        "pad_token_id": special["pad"],
    }
    if spec.arch == "gpt2":
        cfg = transformers.GPT2Config(
            n_positions=spec.context,
            n_embd=spec.dim,
            n_layer=spec.layers,
            n_head=spec.heads,
            resid_pdrop=spec.dropout,
            embd_pdrop=spec.dropout,
            attn_pdrop=spec.dropout,
            **common,
        )
        cls = transformers.GPT2LMHeadModel
    else:
        cfg = transformers.LlamaConfig(
            hidden_size=spec.dim,
            intermediate_size=4 * spec.dim,
            num_hidden_layers=spec.layers,
            num_attention_heads=spec.heads,
            num_key_value_heads=spec.heads,
            max_position_embeddings=spec.context,
            attention_dropout=spec.dropout,
            **common,
        )
        cls = transformers.LlamaForCausalLM
    torch.manual_seed(seed)
    return cls(cfg)


def context_length(model) -> int:
    cfg = model.config
    return int(getattr(cfg, "n_positions", None) or cfg.max_position_embeddings)


def n_params(model) -> int:
    return int(sum(p.numel() for p in model.parameters()))


# --------------------------------------------------------------------------- data


def with_specials(seqs: list[np.ndarray], special: dict[str, int]) -> list[np.ndarray]:
    """Each piece framed by BOS ... EOS."""
    bos, eos = np.int64(special["bos"]), np.int64(special["eos"])
    return [np.concatenate([[bos], np.asarray(s, dtype=np.int64), [eos]]) for s in seqs]


class WindowSampler:
    """Random training windows of ``context`` tokens from a stream of framed pieces.

    Draws come from a seeded ``torch.Generator`` whose state is saved in checkpoints.
    """

    def __init__(self, seqs: list[np.ndarray], special: dict[str, int], context: int, seed: int):
        import torch

        if not seqs:
            raise ModelError("no training pieces")
        stream = np.concatenate(with_specials(seqs, special))
        while len(stream) < context + 1:  # a tiny corpus: repeat it
            stream = np.concatenate([stream, stream])
        self.stream = torch.from_numpy(stream)
        self.context = context
        self.generator = torch.Generator().manual_seed(seed)

    def batch(self, size: int):
        import torch

        high = len(self.stream) - self.context
        starts = torch.randint(0, high, (size,), generator=self.generator)
        idx = starts[:, None] + torch.arange(self.context)[None, :]
        return self.stream[idx]


def eval_windows(
    seqs: list[np.ndarray], special: dict[str, int], context: int, max_tokens: int | None
):
    """Non-overlapping windows (``context + 1`` tokens, sharing one) over each framed piece."""
    out, total = [], 0
    for s in with_specials(seqs, special):
        for start in range(0, max(len(s) - 1, 1), context):
            w = s[start : start + context + 1]
            if len(w) >= 2:
                out.append(w)
                total += len(w) - 1
                if max_tokens and total >= max_tokens:
                    return out
    return out


def evaluate(model, seqs, special, *, batch: int = 8, max_tokens: int | None = 50_000, device=None):
    """Mean next-token loss (nats) and perplexity over the pieces ``seqs``."""
    import torch

    device = device or next(model.parameters()).device
    windows = eval_windows(seqs, special, context_length(model), max_tokens)
    if not windows:
        raise ModelError("no tokens to evaluate on")
    model.eval()
    nll, count = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(windows), batch):
            chunk = windows[i : i + batch]
            width = max(len(w) for w in chunk)
            ids = torch.full((len(chunk), width), special["pad"], dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.bool)
            for j, w in enumerate(chunk):
                ids[j, : len(w)] = torch.from_numpy(w)
                mask[j, : len(w)] = True
            ids, mask = ids.to(device), mask.to(device)
            logits = model(input_ids=ids[:, :-1], attention_mask=mask[:, :-1]).logits
            target = ids[:, 1:]
            valid = mask[:, 1:]
            loss = torch.nn.functional.cross_entropy(
                logits.float().reshape(-1, logits.shape[-1]), target.reshape(-1), reduction="none"
            ).reshape(target.shape)
            nll += float(loss[valid].sum())
            count += int(valid.sum())
    mean = nll / count
    return {"loss": mean, "perplexity": math.exp(min(mean, 50.0)), "tokens": count}


# --------------------------------------------------------------------------- training


def checkpoint_for(
    directory: str | os.PathLike, kind: str, settings: dict, inputs: list[str]
) -> Path:
    """A checkpoint path keyed by the settings and the inputs' content: a run with other
    settings or data never resumes from it."""
    h = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
    for path in sorted(inputs):
        h.update(sha256_file(path).encode())
    return Path(directory) / f"{kind}-{h.hexdigest()[:16]}.pt"


def _schedule(spec: TrainSpec):
    def factor(step: int) -> float:
        if step < spec.warmup:
            return (step + 1) / max(spec.warmup, 1)
        progress = (step - spec.warmup) / max(spec.steps - spec.warmup, 1)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

    return factor


LOG_COLUMNS = ("step", "loss", "lr", "tokens", "seconds")


def train(
    model,
    sampler: WindowSampler,
    spec: TrainSpec,
    *,
    checkpoint: str | os.PathLike,
    log_path: str | os.PathLike | None = None,
    device=None,
    stop_after: int | None = None,
) -> dict:
    """Train ``model`` for ``spec.steps`` steps, resuming from ``checkpoint`` when it exists.

    The checkpoint is written atomically every ``spec.checkpoint_every`` steps and at the end.
    The training log (``log_path``) is written, atomically, only once all steps are done: until
    then the checkpoint carries its rows, so a killed run leaves no partial log under its name.
    ``stop_after`` ends the call early after that many steps (used by tests to interrupt).
    Returns tokens seen, wall seconds of this call and the last logged loss.
    """
    import torch

    device = device or torch.device("cpu")
    model.to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=spec.lr, weight_decay=spec.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _schedule(spec))
    step, rows, seconds_before = 0, [], 0.0
    checkpoint = Path(checkpoint)
    if checkpoint.exists():
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        sampler.generator.set_state(state["sampler_rng"])
        torch.set_rng_state(state["torch_rng"])
        step, rows, seconds_before = int(state["step"]), list(state["log"]), float(state["seconds"])
        log.info("resumed from %s at step %d", checkpoint, step)
    else:
        torch.manual_seed(spec.seed)  # dropout draws depend on the config, not on the caller

    def save():
        state = {
            "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(),
            "sampler_rng": sampler.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "step": step,
            "log": rows,
            "seconds": seconds_before + (time.perf_counter() - t0),
        }
        torch_save_atomic(state, checkpoint)

    t0 = time.perf_counter()
    model.train()
    tokens_per_step = spec.batch * sampler.context
    done_here = 0
    last = float("nan")
    while step < spec.steps:
        batch = sampler.batch(spec.batch).to(device)
        loss = model(input_ids=batch, labels=batch).loss  # HF shifts the labels inside
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if spec.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), spec.grad_clip)
        opt.step()
        sched.step()
        step += 1
        done_here += 1
        last = float(loss.detach())
        if step % spec.log_every == 0 or step == spec.steps:
            elapsed = seconds_before + time.perf_counter() - t0
            rows.append(
                [
                    step,
                    round(last, 6),
                    sched.get_last_lr()[0],
                    step * tokens_per_step,
                    round(elapsed, 3),
                ]
            )
            log.info("step %d/%d loss %.4f (%.1f s)", step, spec.steps, last, elapsed)
        if step % spec.checkpoint_every == 0 or step == spec.steps:
            save()
        if stop_after is not None and done_here >= stop_after:
            break
    if log_path is not None and step >= spec.steps:
        write_log(rows, log_path)
    return {
        "steps": step,
        "tokens_seen": step * tokens_per_step,
        "seconds": seconds_before + time.perf_counter() - t0,
        "last_loss": last,
    }


def write_log(rows: list, path: str | os.PathLike) -> None:
    lines = ["\t".join(LOG_COLUMNS)] + ["\t".join(str(v) for v in r) for r in rows]
    write_text_atomic(path, "\n".join(lines) + "\n")


# --------------------------------------------------------------------------- save / load


def save_model(model, tokenizer_json: str | os.PathLike, out_dir: str | os.PathLike) -> str:
    """``save_pretrained`` + the miditok tokenizer JSON into ``out_dir``, atomically.

    Returns the sha256 of the weights file (the model hash).
    """
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(f".tmp-{out_dir.name}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        shutil.copyfile(tokenizer_json, tmp / "tokenizer.json")
    except BaseException:  # a full disk, a read-only folder: leave no partial folder behind
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if out_dir.exists():
        shutil.rmtree(out_dir)
    os.replace(tmp, out_dir)
    return sha256_file(out_dir / WEIGHTS_FILE)


def load_model(model_dir: str | os.PathLike, tokenizer_json: str | os.PathLike | None = None):
    """Load a local HF causal LM and its miditok tokenizer; refuse mismatches with a named error.

    Only safetensors weights are accepted (no pickled ``pytorch_model.bin``); nothing is ever
    downloaded (``local_files_only``).
    """
    import transformers

    from .tokenize import TokenizeError, load_tokenizer

    model_dir = Path(model_dir)
    tok_path = Path(tokenizer_json) if tokenizer_json else model_dir / "tokenizer.json"
    for need in (model_dir / "config.json", model_dir / WEIGHTS_FILE):
        if not need.is_file():
            raise ModelError(f"model file missing: {need} (a local HF checkpoint with safetensors)")
    try:
        tokenizer = load_tokenizer(tok_path)
    except TokenizeError as exc:
        raise ModelError(f"model tokenizer: {exc}") from exc
    model = transformers.AutoModelForCausalLM.from_pretrained(
        model_dir, local_files_only=True, use_safetensors=True
    )
    if model.config.vocab_size != len(tokenizer):
        raise ModelError(
            f"vocab mismatch: model {model_dir} has vocab_size {model.config.vocab_size} but "
            f"tokenizer {tok_path} has {len(tokenizer)} tokens"
        )
    return model, tokenizer
