"""Token ids back to music: decoding a sample with its tokenizer and writing MIDI files.

Every method's samples are vocabulary ids of the tokenizer of :mod:`tokentransfer.tokenize`;
:func:`decode` turns one sample into a ``symusic.Score``, :func:`token_errors` is miditok's
error ratio of it (0 for every sample drawn under the grammar, :mod:`tokentransfer.grammar`)
and :func:`write_midi` writes a score atomically.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from .fileio import atomic_path


def _as_input(tokenizer: Any, ids: np.ndarray) -> list:
    seq = [int(i) for i in np.asarray(ids).ravel()]
    # a tokenizer with one sequence per track (REMI without programs) takes a list of tracks
    return seq if tokenizer.one_token_stream else [seq]


def decode(tokenizer: Any, ids: np.ndarray) -> Any:
    """The ``symusic.Score`` of one sample's token ids (one track without programs)."""
    return tokenizer.decode(_as_input(tokenizer, ids))


def token_errors(tokenizer: Any, ids: np.ndarray) -> float:
    """miditok's ``tokens_errors`` ratio of one sample (0: a valid token sequence)."""
    err = tokenizer.tokens_errors(_as_input(tokenizer, ids))
    return float(err[0] if isinstance(err, list) else err)


def write_midi(score: Any, path: str | os.PathLike) -> None:
    """Write a ``symusic.Score`` as a MIDI file atomically."""
    with atomic_path(path, suffix=".mid") as tmp:
        score.dump_midi(str(tmp))
