"""Continuation and infilling at the note level: keep a MIDI file's notes as they are and add a
method's new notes beside them.

A method samples tokens; a user's MIDI is notes. Decoding a prompt's tokens gives back its
notes only up to the tokenizer's grid (onsets, durations and velocities quantised), so the
output is built from the user's file itself: its notes are copied unchanged and only the notes
the method generated are taken from the decoded tokens, moved to the file's resolution
(:func:`continue_score`, :func:`infill_score`).

Bars are the tokens' bars (:mod:`tokentransfer.bars`): bar ``k`` starts at the ``k``-th
``Bar`` token, and its length in quarter notes is that of the time signature in effect
(``TimeSig`` tokens; 4/4 before the first), as the tokenizer decodes them
(:func:`bar_quarters`).

Infilling bars ``A..B`` (:func:`infill_tokens`) draws candidates for those bars continuing
bars ``1..A-1``, bar by bar: each new bar is opened with the file's ``Bar`` token of that bar
and the ``TimeSig`` token after it, and the method continues it to the next ``Bar`` (so every
new note lies in bar ``A`` or later, and every new bar has the file's time signature). Of the
candidates, the one kept is the one under which the method gives the tokens of bars ``B+1..``
the highest log-probability (the method's ``log_probs``: the walks, the chains and the
transformers have one); a method without one keeps the first candidate. Candidates whose bars
differ in length from the file's (a bar whose notes run past its end) are kept only when every
candidate does.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

#: candidates drawn for the infilled bars
CANDIDATES = 8


def time_signatures(tokenizer) -> dict[int, float]:
    """Quarter notes per bar of each ``TimeSig_n/d`` token id of the tokenizer's vocabulary."""
    out = {}
    for token, i in tokenizer.vocab.items():
        if token.startswith("TimeSig_"):
            num, den = token.split("_", 1)[1].split("/")
            out[int(i)] = 4.0 * int(num) / int(den)
    return out


def bar_quarters(tokenizer, ids: np.ndarray, bar_id: int) -> np.ndarray:
    """Start of every bar of ``ids`` in quarter notes, and after them the end of the last
    bar (``bars + 1`` values): bar lengths follow the ``TimeSig`` token in effect (4/4 before
    the first)."""
    from .bars import bar_spans

    sigs = time_signatures(tokenizer)
    ids = np.asarray(ids).ravel()
    current = 4.0
    starts = [0.0]
    for a, b in bar_spans(ids, bar_id):
        for t in ids[a:b]:
            if int(t) in sigs:
                current = sigs[int(t)]
                break
        starts.append(starts[-1] + current)
    return np.asarray(starts)


def note_rows(score) -> list[tuple[int, bool, int, int, int, int]]:
    """``(program, is_drum, onset, pitch, duration, velocity)`` of every note, sorted."""
    return sorted(
        (int(t.program), bool(t.is_drum), n.time, n.pitch, n.duration, n.velocity)
        for t in score.tracks
        for n in t.notes
    )


def _add(score, rows, scale: float) -> None:
    """Add notes ``rows`` (ticks at another resolution: times ``scale``) to ``score``, in new
    tracks (one per program, named ``generated``): a new note of a pitch that a kept note
    still holds would otherwise end it early when the file is read back (MIDI pairs a note's
    on and off per track and channel)."""
    import symusic

    tracks = {}
    for program, drum, time, pitch, dur, vel in rows:
        if (program, drum) not in tracks:
            tracks[program, drum] = symusic.Track(f"generated (program {program})", program, drum)
        onset = int(round(time * scale))
        tracks[program, drum].notes.append(
            symusic.Note(onset, max(int(round(dur * scale)), 1), int(pitch), int(vel))
        )
    for key in sorted(tracks):
        tracks[key].notes.sort(key=lambda n: (n.time, n.pitch))
        score.tracks.append(tracks[key])


def continue_score(prompt_score, tokenizer, prompt_ids: np.ndarray, sample_ids: np.ndarray):
    """The prompt's notes as they are, followed by the notes ``sample_ids`` added to the
    prompt's tokens ``prompt_ids`` (the decoded sample's notes less the decoded prompt's),
    at the prompt's resolution; the prompt file's tempos and time signatures kept."""
    from .midi import decode

    full = decode(tokenizer, sample_ids)
    before = Counter(
        (p, d, t, pi, du) for p, d, t, pi, du, _ in note_rows(decode(tokenizer, prompt_ids))
    )
    new = []
    for row in note_rows(full):
        key = row[:5]
        if before[key] > 0:
            before[key] -= 1
        else:
            new.append(row)
    out = prompt_score.copy()
    _add(out, new, prompt_score.ticks_per_quarter / full.ticks_per_quarter)
    return out


def infill_score(original, tokenizer, new_ids: np.ndarray, window: tuple[float, float]):
    """``original`` without its notes whose onset lies in ``window`` (quarter notes, end
    excluded), with the notes of the decoded ``new_ids`` whose onsets lie in that window (in
    tracks of their own)."""
    from .midi import decode

    tpq = original.ticks_per_quarter
    a, b = int(round(window[0] * tpq)), int(round(window[1] * tpq))
    out = original.copy()
    for track in out.tracks:
        keep = [n for n in track.notes if not a <= n.time < b]
        track.notes.clear()
        for n in keep:
            track.notes.append(n)
    dec = decode(tokenizer, new_ids)
    scale = tpq / dec.ticks_per_quarter
    rows = [r for r in note_rows(dec) if a <= int(round(r[2] * scale)) < b]
    _add(out, rows, scale)
    return out


@dataclass
class InfillResult:
    """The chosen token sequence ``ids``; ``span``: the token indices of its new bars;
    ``prompt_tokens``: the prompt the candidates continued (bars before A, then bar A's
    ``Bar`` and ``TimeSig``); ``window``: the new bars in quarter notes; each candidate's
    ``scores`` (bits of the following bars' tokens) and whether its bar lengths ``fits`` the
    file's; the ``chosen`` candidate, the ``selection`` rule, every candidate's new bars
    (``middles``) and a ``record`` of the draw."""

    ids: np.ndarray
    span: tuple[int, int]
    prompt_tokens: int
    window: tuple[float, float]
    scores: list[float]
    fits: list[bool]
    chosen: int
    selection: str
    middles: list[np.ndarray] = field(default_factory=list)
    record: dict = field(default_factory=dict)


def check_bars(first: int, last: int, bars: int) -> None:
    """Refuse bars ``first..last`` unless ``1 <= first <= last <= bars``."""
    if not 1 <= first <= last <= bars:
        raise ValueError(
            f"bars {first}:{last} out of range: the file has {bars} bars (counted from 1)"
        )


def _seed(seed: int, *keys: int) -> int:
    return int(np.random.SeedSequence([int(seed), *keys]).generate_state(1)[0])


def infill_tokens(
    fitted,
    tokenizer,
    ids: np.ndarray,
    first: int,
    last: int,
    seed: int,
    *,
    bar_id: int,
    per_bar: float,
    candidates: int = CANDIDATES,
    max_tokens: int | None = None,
) -> InfillResult:
    """Bars ``first..last`` (from 1) of the token sequence ``ids`` drawn anew by the fitted
    method: ``candidates`` continuations of bars ``1..first-1``, drawn bar by bar (each bar
    opened with the file's ``Bar`` and ``TimeSig`` tokens of that bar), the one kept under
    which ``fitted.log_probs`` scores the tokens of bars ``last+1..`` highest (see the module
    doc)."""
    from .bars import bar_spans, cut_bars, sample_bars

    ids = np.asarray(ids, dtype=np.int64).ravel()
    spans = bar_spans(ids, bar_id)
    check_bars(first, last, len(spans))
    start = spans[first - 1][0]
    prefix, suffix = ids[:start], ids[spans[last - 1][1] :]
    sigs = time_signatures(tokenizer)
    stats = {"draws": 0, "short": 0}

    def opening(bar: int) -> np.ndarray:
        """The tokens that open the file's bar ``bar``: its Bar and TimeSig tokens."""
        a = spans[bar - 1][0]
        return ids[a : a + (2 if a + 1 < len(ids) and int(ids[a + 1]) in sigs else 1)]

    def draw(n: int, prompt: np.ndarray, s: int) -> list[np.ndarray]:
        """``n`` continuations of ``prompt`` to the end of its last bar."""
        out, rec = sample_bars(
            fitted.sample, n, 1, s, per_bar, prompt, bar_id=bar_id, max_tokens=max_tokens
        )
        stats["draws"] += rec["draws"]
        stats["short"] += rec["short"]
        return [cut_bars(np.asarray(x, dtype=np.int64), 0, bar_id, len(prompt)) for x in out]

    prompt = np.concatenate([prefix, opening(first)])
    seqs = draw(candidates, prompt, seed)
    for k, bar in enumerate(range(first + 1, last + 1), start=1):
        for i in range(candidates):
            seqs[i] = draw(1, np.concatenate([seqs[i], opening(bar)]), _seed(seed, i, k))[0]
    old = bar_quarters(tokenizer, ids, bar_id)
    want = np.diff(old)[first - 1 : last]
    middles, scores, fits = [], [], []
    for s in seqs:
        mid = s[len(prefix) :]
        seq = np.concatenate([prefix, mid, suffix])
        got = np.diff(bar_quarters(tokenizer, seq, bar_id))[first - 1 : last]
        fits.append(bool(np.allclose(got, want)))
        if fitted.log_probs is not None and len(suffix):
            lp = np.asarray(fitted.log_probs(seq), dtype=np.float64)
            scores.append(float(lp[len(prefix) + len(mid) - 1 :].sum()))
        else:
            scores.append(0.0)
        middles.append(mid)
    pool = [i for i, ok in enumerate(fits) if ok] or list(range(len(middles)))
    scored = fitted.log_probs is not None and len(suffix) > 0
    chosen = max(pool, key=lambda i: (scores[i], -i)) if scored else pool[0]
    mid = middles[chosen]
    seq = np.concatenate([prefix, mid, suffix])
    return InfillResult(
        seq,
        (len(prefix), len(prefix) + len(mid)),
        len(prompt),
        (float(old[first - 1]), float(old[last])),
        scores,
        fits,
        chosen,
        "log_probs of the following bars" if scored else "first candidate",
        middles,
        {"draw": stats, "candidates": candidates},
    )
