"""The walk's melody and form tables, counted on a target's training pieces.

Melody (``generate.melody: interval``). The walk's voice state (per program: the pitches of its
previous onset and of its current one, :func:`tokentransfer.grammar.voice_refs`) gives each
``Pitch`` a melodic reference, the note of the same rank at the program's previous onset (the
last one if that onset had fewer notes; none for a program's first note), and for the 2nd and
later notes of an onset a chord reference, the pitch just played. :func:`count_tables` counts
on the training pieces the intervals ``pitch - reference`` of both kinds, clipped to
+-:data:`~tokentransfer.walkjit.TAIL` (the outer bins gather the tails), and the pitches'
marginal. The walk multiplies a ``Pitch`` candidate's weight by :meth:`WalkTables.factors`:
``q_mel(d)`` and ``q_chord(d)``, the smoothed interval distributions (the plain product
``p_row(x) * q(d)``). The corrected form ``q(d) / r(d)``, ``r`` the distribution of ``x - y``
for ``x``, ``y`` drawn independently from the pitch marginal (the intervals a walk without
memory already plays), matched the test pieces' step and leap shares less well on the default
run (fiddle: steps 0.46 / leaps 0.18 against the plain product's 0.48 / 0.17 and the test
pieces' 0.48 / 0.15; bach: 0.21 / 0.68 against 0.20 / 0.67 and 0.26 / 0.58;
``benchmarks/melody.py``), so the walk uses the plain product.

Form (``generate.form: return``). A bar *returns at lag L* when its set of (position in the bar,
pitch) has a Jaccard index of at least :data:`RETURN_JACCARD` with the bar ``L`` bars earlier
(:func:`bar_sets`, :func:`return_labels`; the lag of the highest index among :data:`LAGS`,
the smallest on a tie; a bar without notes never returns). Over the first :data:`FORM_BARS`
bars of each training piece the tables count the chain of these labels (0: new, k: lag
``LAGS[k - 1]``): ``ret[previous label, bar index % PHASES, label]``. At each bar line the
walk draws the label from that row (backed off where the pieces give few bars,
:meth:`WalkTables.return_probabilities`; only lags that reach back inside the sample) and on a
return replays the bar ``L`` bars back, token for token (:mod:`tokentransfer.walkjit`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .fileio import atomic_path

#: lags (in bars) at which the walk may return
LAGS = (1, 2, 4, 8)
#: bar positions the form chain tells apart (bar index modulo PHASES)
PHASES = 16
#: bars of each training piece the form chain is counted on
FORM_BARS = 32
#: Jaccard index of (position, pitch) sets from which a bar counts as returning
RETURN_JACCARD = 0.6
#: added to every interval bin's count before normalising
SMOOTH = 0.5
#: weight (in pseudo-bars) of the backed-off row in each form chain row (module doc)
BACKOFF = 2.0


@dataclass
class WalkTables:
    """Counts of a target's training pieces for the walk's melody and form (module doc).

    ``mel``, ``chord``: [2 * TAIL + 1] interval counts; ``marginal``: [128] pitch counts;
    ``ret``: [1 + K, PHASES, 1 + K] counts of the form chain; ``lags``: [K] its lags.
    """

    mel: np.ndarray
    chord: np.ndarray
    marginal: np.ndarray
    ret: np.ndarray
    lags: np.ndarray

    def factors(self, corrected: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """``(melodic, chord)`` interval factors per bin: ``q`` (the walk's), or ``q / r``
        (``corrected``, see the module doc)."""
        q_mel, q_chord = _normalise(self.mel), _normalise(self.chord)
        if not corrected:
            return q_mel, q_chord
        r = independent_intervals(self.marginal)
        return q_mel / r, q_chord / r

    def return_probabilities(self) -> np.ndarray:
        """The form chain's rows ``P(label | previous label, phase)``, each backed off with
        weight :data:`BACKOFF` to ``P(label | previous label)`` (all phases), that one to the
        labels' overall shares (all new where no bar was counted): a row the training pieces
        never reached (say, phases past the end of short pieces) follows what they did reach,
        and a lag they never returned at keeps probability 0."""
        c = np.asarray(self.ret, dtype=np.float64)
        total = c.sum(axis=(0, 1))
        overall = total / total.sum() if total.sum() > 0 else np.eye(c.shape[2])[0]
        by_prev = c.sum(axis=1)
        by_prev = (by_prev + BACKOFF * overall) / (by_prev.sum(axis=1, keepdims=True) + BACKOFF)
        return (c + BACKOFF * by_prev[:, None, :]) / (c.sum(axis=2, keepdims=True) + BACKOFF)


def _normalise(counts: np.ndarray) -> np.ndarray:
    c = np.asarray(counts, dtype=np.float64) + SMOOTH
    return c / c.sum()


def independent_intervals(marginal: np.ndarray) -> np.ndarray:
    """Distribution of ``x - y`` (binned as the interval tables) for ``x``, ``y`` independent
    draws from the pitch counts ``marginal`` [128], smoothed as they are."""
    from .walkjit import TAIL

    p = np.asarray(marginal, dtype=np.float64)
    n = p.sum()
    p = p / n if n > 0 else np.full(len(p), 1 / len(p))
    full = np.correlate(p, p, mode="full")  # index k: d = k - (len(p) - 1)
    d = np.arange(len(full)) - (len(p) - 1)
    r = np.bincount(np.clip(d, -TAIL, TAIL) + TAIL, weights=full, minlength=2 * TAIL + 1)
    return (r * n + SMOOTH) / (n + SMOOTH * len(r))  # as if n intervals had been counted


def bar_sets(seq: np.ndarray, g: Any) -> list[frozenset]:
    """Per bar of ``seq`` (from each ``Bar`` token), its set of (position, pitch) of the
    ``Pitch`` tokens (every program; drums left out). Tokens before the first ``Bar`` are
    left out."""
    from .grammar import BAR, POSITION

    out: list[set] = []
    pos = 0
    for t in np.asarray(seq, dtype=np.int64).tolist():
        k = g.kind[t]
        if k == BAR:
            out.append(set())
            pos = 0
        elif k == POSITION:
            pos = int(g.tval[t])
        elif g.ttype[t] == g.pitch_code and out:
            out[-1].add((pos, int(g.tval[t])))
    return [frozenset(s) for s in out]


def jaccard(a: frozenset, b: frozenset) -> float:
    """``|a & b| / |a | b|``; 0 for two empty sets."""
    union = len(a | b)
    return len(a & b) / union if union else 0.0


def return_labels(sets: Sequence[frozenset], lags: Sequence[int] = LAGS) -> np.ndarray:
    """Per bar, 0 (new) or the index k >= 1 of the lag ``lags[k - 1]`` it returns at."""
    out = np.zeros(len(sets), dtype=np.int64)
    for j in range(len(sets)):
        best, lab = RETURN_JACCARD, 0
        for k, lag in enumerate(lags, start=1):
            if lag <= j:
                jac = jaccard(sets[j], sets[j - lag])
                if jac >= best and (lab == 0 or jac > best):
                    best, lab = jac, k
        out[j] = lab
    return out


def return_share(sets: Sequence[frozenset]) -> float:
    """Share of the bars that return to any earlier bar (Jaccard >= RETURN_JACCARD)."""
    if not sets:
        return 0.0
    back = sum(
        any(jaccard(sets[j], sets[i]) >= RETURN_JACCARD for i in range(j))
        for j in range(1, len(sets))
    )
    return back / len(sets)


def count_tables(seqs: Sequence[np.ndarray], tokenizer: Any) -> WalkTables:
    """The interval and form counts of the pieces ``seqs`` (token ids of ``tokenizer``)."""
    from . import walkjit
    from .grammar import VOICE_RANKS, Grammar

    g = Grammar(tokenizer)
    seqs = [np.asarray(s, dtype=np.int64).ravel() for s in seqs]
    n_bins = 2 * walkjit.TAIL + 1
    mel, chord, marg = np.zeros(n_bins), np.zeros(n_bins), np.zeros(128)
    starts = np.zeros(len(seqs) + 1, dtype=np.int64)
    np.cumsum([len(s) for s in seqs], out=starts[1:])
    flat = np.concatenate(seqs) if seqs else np.zeros(0, dtype=np.int64)
    if len(flat) and (flat.min() < 0 or flat.max() >= g.vocab_size):
        raise ValueError(f"token id out of range for vocabulary size {g.vocab_size}")
    walkjit.count_intervals(flat, starts, g.ttype, g.tval, g.kind, g.pitch_code, VOICE_RANKS,
                            mel, chord, marg)  # fmt: skip
    k = len(LAGS)
    ret = np.zeros((1 + k, PHASES, 1 + k))
    for s in seqs:
        labels = return_labels(bar_sets(s, g)[:FORM_BARS])
        last = 0
        for j, lab in enumerate(labels.tolist()):
            ret[last, j % PHASES, lab] += 1
            last = lab
    return WalkTables(mel, chord, marg, ret, np.array(LAGS, dtype=np.int64))


def save_tables(t: WalkTables, path: str | os.PathLike) -> None:
    """The tables as an ``.npz`` file, written atomically."""
    with atomic_path(path, suffix=".npz") as tmp, open(tmp, "wb") as f:
        np.savez(f, mel=t.mel, chord=t.chord, marginal=t.marginal, ret=t.ret, lags=t.lags)


def load_tables(path: str | os.PathLike) -> WalkTables:
    with np.load(path) as z:
        missing = {"mel", "chord", "marginal", "ret", "lags"} - set(z.files)
        if missing:
            raise ValueError(f"{path}: not the walk's tables (no {', '.join(sorted(missing))})")
        return WalkTables(z["mel"], z["chord"], z["marginal"], z["ret"], z["lags"])
