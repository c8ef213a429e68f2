"""HDF5 caches of a transformer's embeddings for one target corpus.

``results/embeddings/{model}/{corpus}.h5`` holds, chunked and compressed:

- ``token`` [V, d]: the input embedding table;
- ``position`` [L, d]: the learned positional table (GPT-2), or sinusoids computed for models
  without one (attribute ``position_kind`` says which);
- ``contextual`` [V, d]: the mean last hidden state of each token id over forward passes on the
  corpus (sliding windows over each piece, half-overlapping, each position counted once, from
  the window that gives it the most left context); zero rows for ids never seen;
- ``count`` [V]: how many positions were averaged for each id;

attributes: model hash, tokenizer hash, manifest hash, dtype and the extraction settings.
"""

from __future__ import annotations

import logging
import os
import time

import numpy as np

from .fileio import h5_atomic
from .model import context_length, with_specials

log = logging.getLogger(__name__)


def sinusoids(length: int, dim: int) -> np.ndarray:
    """The fixed sinusoidal position table of Vaswani et al. (2017), [length, dim]."""
    pos = np.arange(length)[:, None]
    i = np.arange(dim)[None, :]
    angle = pos / np.power(10000.0, (2 * (i // 2)) / dim)
    return np.where(i % 2 == 0, np.sin(angle), np.cos(angle)).astype(np.float32)


def token_table(model) -> np.ndarray:
    return model.get_input_embeddings().weight.detach().cpu().float().numpy()


def position_table(model) -> tuple[np.ndarray, str]:
    """The model's learned positional table, or computed sinusoids when it has none."""
    wpe = getattr(getattr(model, "transformer", None), "wpe", None)
    if wpe is not None:
        return wpe.weight.detach().cpu().float().numpy(), "learned"
    length, dim = context_length(model), model.get_input_embeddings().weight.shape[1]
    return sinusoids(length, dim), "sinusoidal (computed: the model has no positional table)"


def windows(piece: np.ndarray, length: int, stride: int) -> list[tuple[int, int]]:
    """(start, first counted offset) of each window over ``piece``: every position once."""
    if len(piece) <= length:
        return [(0, 0)]
    out = [(0, 0)]
    start = stride
    while True:
        counted_from = length - stride  # positions before this were counted by the last window
        out.append((start, counted_from))
        if start + length >= len(piece):
            return out
        start += stride


def contextual(
    model,
    seqs: list[np.ndarray],
    special: dict[str, int],
    *,
    batch: int = 8,
    stride: int | None = None,
    device=None,
    progress_every: int = 50,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean last hidden state per token id over the pieces ``seqs``, and the counts."""
    import torch

    device = device or next(model.parameters()).device
    length = context_length(model)
    stride = stride or max(length // 2, 1)
    if not 0 < stride <= length:
        raise ValueError(f"stride must be in 1..{length}, got {stride}")
    vocab, dim = model.get_input_embeddings().weight.shape
    sums = torch.zeros((vocab, dim), dtype=torch.float64, device=device)
    count = torch.zeros(vocab, dtype=torch.int64, device=device)
    jobs = []
    for piece in with_specials(seqs, special):
        for start, first in windows(piece, length, stride):
            jobs.append((piece[start : start + length], first))
    model.eval()
    t0 = time.perf_counter()
    with torch.no_grad():
        for b in range(0, len(jobs), batch):
            chunk = jobs[b : b + batch]
            width = max(len(w) for w, _ in chunk)
            ids = torch.full((len(chunk), width), special["pad"], dtype=torch.long)
            keep = torch.zeros((len(chunk), width), dtype=torch.bool)
            attn = torch.zeros((len(chunk), width), dtype=torch.long)
            for j, (w, first) in enumerate(chunk):
                ids[j, : len(w)] = torch.from_numpy(w)
                attn[j, : len(w)] = 1
                keep[j, first : len(w)] = True
            ids, keep, attn = ids.to(device), keep.to(device), attn.to(device)
            hidden = model(input_ids=ids, attention_mask=attn, output_hidden_states=True)
            last = hidden.hidden_states[-1].double()
            sums.index_add_(0, ids[keep], last[keep])
            count.index_add_(0, ids[keep], torch.ones_like(ids[keep]))
            if progress_every and (b // batch) % progress_every == 0:
                log.info(
                    "windows %d/%d (%.1f s)", b + len(chunk), len(jobs), time.perf_counter() - t0
                )
    means = sums / count.clamp(min=1)[:, None]
    return means.float().cpu().numpy(), count.cpu().numpy()


def write_embeddings(
    path: str | os.PathLike,
    *,
    token: np.ndarray,
    position: np.ndarray,
    position_kind: str,
    contextual_table: np.ndarray,
    count: np.ndarray,
    attrs: dict,
) -> None:
    """Write the cache atomically (chunked, gzip-compressed)."""

    with h5_atomic(path) as h5:
        for name, data in (
            ("token", token),
            ("position", position),
            ("contextual", contextual_table),
        ):
            h5.create_dataset(
                name,
                data=data.astype(np.float32),
                chunks=(min(len(data), 256), data.shape[1]),
                compression="gzip",
                shuffle=True,
            )
        h5.create_dataset("count", data=count.astype(np.int64), compression="gzip")
        h5.attrs["position_kind"] = position_kind
        h5.attrs["dtype"] = "float32"
        for key, value in attrs.items():
            h5.attrs[key] = value


def read_embeddings(path: str | os.PathLike) -> dict:
    """All datasets and attributes of a cache."""
    import h5py

    with h5py.File(path, "r") as h5:
        out = {name: h5[name][:] for name in ("token", "position", "contextual", "count")}
        out["attrs"] = dict(h5.attrs)
    return out
