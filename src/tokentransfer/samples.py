"""The sample-set format: what every generation method writes and the evaluation reads.

A sample set is one folder:

- ``sample_NNN.mid``: the samples as MIDI;
- ``tokens.h5``: ``ids`` int32 (every sample's tokens, any prompt included, concatenated) and
  ``offsets`` int64 [n+1] (sample i is ``ids[offsets[i]:offsets[i+1]]``), attributes
  ``tokenizer_hash`` and ``prompt_tokens``;
- ``generation.json``: the record (the producer's ``extra`` keys, prompt and generated token
  counts, ``setup_seconds`` and ``sample_seconds`` apart, tokens per second of the sampling,
  token error rate and note count per sample).

Written by the graph walks (:mod:`tokentransfer.jobs.generate`), every baseline and the few-shot
points; read by the evaluation, the figures and the few-shot curve.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .fileio import sha256_file, write_json


def write_samples(
    tokenizer,
    tokenizer_json: str,
    samples: list[np.ndarray],
    out_dir: str | os.PathLike,
    prompt: np.ndarray | None,
    seconds: float,
    extra: dict,
    setup_seconds: float | None = None,
) -> dict:
    """Write one sample set: ``sample_NNN.mid``, ``tokens.h5`` and ``generation.json``.

    Used by the graph walks and by every baseline, so that the evaluation reads them alike.
    ``seconds`` is the time spent sampling (``sample_seconds`` in the record, and ``seconds``
    too); ``setup_seconds`` the time before it (loading, compiling, building tables, fitting);
    tokens per second are the generated tokens over the sampling seconds. ``extra`` goes into
    the record.
    """
    from .fileio import h5_atomic
    from .midi import decode, token_errors, write_midi

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
        "seconds": round(seconds, 6),
        "sample_seconds": round(seconds, 6),
        "setup_seconds": None if setup_seconds is None else round(setup_seconds, 4),
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
