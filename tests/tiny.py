"""The tiny set-up the model tests share: a one-layer transformer built here and the pieces
of a MIDI folder tokenized (the folders of the ``midi_corpora`` fixture)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tokentransfer.model import build_model, model_spec, special_ids
from tokentransfer.tokenize import tokenize_file


def tiny_model(tok, arch: str = "gpt2", dim: int = 16, context: int = 32):
    """A seeded (seed 0) one-layer ``arch`` model of width ``dim``, 2 heads, no dropout, over
    ``tok``'s vocabulary (in training mode, as built)."""
    cfg = {"arch": arch, "layers": 1, "dim": dim, "heads": 2, "context": context, "dropout": 0.0}
    return build_model(model_spec(cfg), len(tok), special_ids(tok), 0)


def midi_pieces(tok, folder: Path) -> list[np.ndarray]:
    """The token ids of every ``*.mid`` of ``folder``, in file-name order."""
    return [tokenize_file(tok, p) for p in sorted(Path(folder).glob("*.mid"))]
