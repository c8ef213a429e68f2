"""Lengths in bars: counting, cutting and sampling token sequences by bars.

Over REMI tokens every bar begins with a ``Bar`` token, so the bars of a sequence are the spans
between its ``Bar`` tokens. A method samples tokens, not bars: :func:`sample_bars` gives a
sampler a token budget from the style's tokens per bar (:func:`tokens_per_bar`, measured on
the target's training pieces) and cuts every sample right before the ``Bar`` that would start
bar ``bars + 1``, so that every sample holds ``bars`` bars of new music. A sample that has not
reached that ``Bar`` within the budget is drawn again with twice the budget (all samples of the
call together, with the same seed: the walk and the chains draw a sample's tokens from its own
random stream, so a longer draw continues the shorter one), at most :data:`GROWTH_STEPS` times;
a sample still short then keeps the bars it has (and :func:`sample_bars` says how many were).

After a prompt, the new music first completes the prompt's last bar (where it ends inside a
bar) and then plays ``bars`` bars: the cut is before the ``bars + 1``-th ``Bar`` token of the
generated part in both cases, so a prompt that ends at a bar line gets ``bars`` full bars.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

#: how many times :func:`sample_bars` doubles the token budget for samples still short
GROWTH_STEPS = 3
#: head-room of the first budget over the style's tokens per bar
BUDGET_MARGIN = 1.25
#: tokens per bar assumed where no piece says (a REMI bar of four beats with a note or two each)
DEFAULT_TOKENS_PER_BAR = 64.0


def bar_starts(ids: np.ndarray, bar_id: int) -> np.ndarray:
    """Indices of the ``Bar`` tokens of ``ids`` (each starts a bar)."""
    return np.flatnonzero(np.asarray(ids).ravel() == bar_id)


def count_bars(ids: np.ndarray, bar_id: int) -> int:
    """Bars begun in ``ids``: its number of ``Bar`` tokens."""
    return int(np.count_nonzero(np.asarray(ids).ravel() == bar_id))


def bar_spans(ids: np.ndarray, bar_id: int) -> list[tuple[int, int]]:
    """``(start, end)`` token indices of each bar of ``ids`` (from a ``Bar`` token to the next,
    the last bar to the end); tokens before the first ``Bar`` belong to no bar."""
    starts = bar_starts(ids, bar_id)
    ends = np.append(starts[1:], len(np.asarray(ids).ravel()))
    return [(int(a), int(b)) for a, b in zip(starts, ends, strict=True)]


def cut_bars(ids: np.ndarray, bars: int, bar_id: int, start: int = 0) -> np.ndarray:
    """``ids[:start]`` followed by the tokens after ``start`` up to (not including) the
    ``bars + 1``-th ``Bar`` token after ``start``; all of ``ids`` where there is no such
    token."""
    ids = np.asarray(ids).ravel()
    if bars < 0:
        raise ValueError(f"bars must be >= 0, got {bars}")
    starts = bar_starts(ids[start:], bar_id)
    if len(starts) <= bars:
        return ids.copy()
    return ids[: start + int(starts[bars])].copy()


def complete(ids: np.ndarray, bars: int, bar_id: int, start: int = 0) -> bool:
    """Whether the part of ``ids`` after ``start`` reaches the ``Bar`` that begins bar
    ``bars + 1`` (so that ``bars`` bars are known to be complete)."""
    return count_bars(np.asarray(ids).ravel()[start:], bar_id) > bars


def tokens_per_bar(seqs: Sequence[np.ndarray], bar_id: int, quantile: float = 0.9) -> float:
    """The ``quantile`` over pieces of each piece's mean tokens per bar (tokens from its first
    ``Bar`` on, over its bars): a budget that most pieces' bars fit in;
    :data:`DEFAULT_TOKENS_PER_BAR` where no piece has a bar."""
    per_piece = []
    for s in seqs:
        s = np.asarray(s).ravel()
        starts = bar_starts(s, bar_id)
        if len(starts):
            per_piece.append((len(s) - starts[0]) / len(starts))
    if not per_piece:
        return DEFAULT_TOKENS_PER_BAR
    return float(max(np.quantile(per_piece, quantile), 1.0))


def budget(bars: int, per_bar: float) -> int:
    """The first token budget for ``bars`` bars: ``bars + 1`` bars of ``per_bar`` tokens with
    :data:`BUDGET_MARGIN` head-room (the extra bar reaches the ``Bar`` that ends the last)."""
    return int(math.ceil((bars + 1) * per_bar * BUDGET_MARGIN)) + 1


def sample_bars(
    sample_fn: Callable[..., list[np.ndarray]],
    n: int,
    bars: int,
    seed: int,
    per_bar: float,
    prompt: np.ndarray | None = None,
    *,
    bar_id: int,
    max_tokens: int | None = None,
) -> tuple[list[np.ndarray], dict]:
    """``n`` samples of ``bars`` bars after the prompt, from ``sample_fn(n, length, seed,
    prompt)`` (which returns the prompt followed by ``length`` tokens per sample); ``bar_id``:
    the ``Bar`` token; ``max_tokens``: the largest budget to draw (None: no limit).

    Returns the samples (prompt included) and a record: ``bars``, ``token_budget`` (the last
    budget drawn), ``draws`` (calls of ``sample_fn``) and ``short`` (samples that did not
    reach ``bars`` bars within :data:`GROWTH_STEPS` doublings, or ``max_tokens``).
    """
    if bars <= 0:
        raise ValueError(f"bars must be > 0, got {bars}")
    start = 0 if prompt is None else len(prompt)
    length = budget(bars, per_bar)
    if max_tokens is not None:
        length = min(length, int(max_tokens))
    draws = 0
    while True:
        samples = sample_fn(n, length, seed, prompt)
        draws += 1
        short = [i for i, s in enumerate(samples) if not complete(s, bars, bar_id, start)]
        if not short or draws > GROWTH_STEPS or (max_tokens is not None and length >= max_tokens):
            break
        length *= 2
        if max_tokens is not None:
            length = min(length, int(max_tokens))
    if short:
        log.warning(
            "%d of %d samples did not reach %d bars within %d tokens", len(short), n, bars, length
        )
    out = [cut_bars(s, bars, bar_id, start) for s in samples]
    return out, {"bars": bars, "token_budget": length, "draws": draws, "short": len(short)}


@dataclass(frozen=True)
class SampleLength:
    """How long every method's samples and the reference excerpts are (config section
    ``generate``): ``bars`` bars of new music when ``bars > 0`` (``generate.bars``), else
    ``tokens`` tokens (``generate.length``)."""

    tokens: int
    bars: int = 0

    def __post_init__(self) -> None:
        if self.tokens < 0:
            raise ValueError(f"generate.length must be >= 0, got {self.tokens}")
        if self.bars < 0:
            raise ValueError(f"generate.bars must be >= 0, got {self.bars}")

    @classmethod
    def from_section(cls, gen: dict) -> SampleLength:
        """From a ``generate`` section's ``length`` and ``bars`` (absent: 0, lengths in
        tokens)."""
        return cls(int(gen["length"]), int(gen.get("bars") or 0))

    def record(self) -> dict:
        return {"bars": self.bars} if self.bars else {"length": self.tokens}

    def draw(
        self,
        sample_fn: Callable[..., list[np.ndarray]],
        n: int,
        seed: int,
        prompt: np.ndarray | None = None,
        *,
        bar_id: int,
        per_bar: float,
    ) -> tuple[list[np.ndarray], dict]:
        """``n`` samples of this length from ``sample_fn(n, length, seed, prompt)`` (see
        :func:`sample_bars`) and a record of how they were drawn."""
        if self.bars:
            return sample_bars(sample_fn, n, self.bars, seed, per_bar, prompt, bar_id=bar_id)
        return sample_fn(n, self.tokens, seed, prompt), {"length": self.tokens}

    def excerpts(
        self, seqs: Sequence[np.ndarray], n: int, seed: int, bar_id: int
    ) -> list[np.ndarray]:
        """``n`` excerpts of real pieces of this length, each from a bar line
        (:func:`tokentransfer.baselines.real_excerpts`)."""
        from .baselines import real_excerpts

        return real_excerpts(seqs, n, self.tokens, seed, bar_id=bar_id, bars=self.bars)
