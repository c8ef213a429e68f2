"""Melody and form features of a score: how its lines move and whether its bars come back.

Every function takes a ``symusic.Score`` in ticks (as :mod:`tokentransfer.metrics` does) and
leaves drum tracks out.

**Voices.** A voice is a (non-drum) track. Within a track, polyphonic or not, the melody is its
*top line* by skyline: at each distinct onset the highest pitch starting there (its duration is
that note's). Intervals are the semitone differences between consecutive top-line notes of
one track; the intervals of all tracks are pooled (never taken across two tracks).

Melodic features (of the pooled intervals; ``nan`` without any interval):

- :func:`average_pitch_interval`: the mean absolute interval in semitones (mgeval's
  ``avg_pitch_shift``, Yang & Lerch 2020);
- :func:`step_share` (``|interval|`` 1 or 2), :func:`leap_share` (``|interval| >= 5``),
  :func:`repeated_pitch_share` (interval 0): shares of all intervals;
- :func:`contour_changes`: per track, the non-zero intervals in order (repeated pitches
  dropped); the share of consecutive pairs of them whose direction (up or down) differs, over
  all tracks' pairs (``nan`` without a pair);
- :func:`pitch_class_transition_matrix` (12 x 12, row: the earlier note's pitch class) and
  :func:`note_length_transition_matrix` (over :data:`tokentransfer.metrics.LENGTH_CLASSES`,
  each top-line note's duration in quarter notes to its nearest class): counts of consecutive
  top-line note pairs normalised to sum 1 (mgeval's transition matrices, taken on the top
  lines); all zero without a pair.

Form features, over the first :data:`FORM_BARS` bars. Bars run from tick 0 with the length of
the first time signature (4/4 without one, as :func:`tokentransfer.metrics.groove_consistency`);
a piece has as many bars as reach the end of its last note, at most :data:`FORM_BARS`. Each bar
is the set of (onset within the bar on the grid of
:data:`tokentransfer.metrics.GROOVE_GRID` steps per quarter note, pitch) of the non-drum notes
starting in it, all tracks pooled. Two bars' similarity is the Jaccard index of their sets
(``|A & B| / |A | B|``), 0 when either is empty (an empty bar never matches).

- :func:`bar_return_share`: the share of bars after the first whose similarity with some
  earlier bar is at least :data:`RETURN_JACCARD` (``nan`` with fewer than two bars);
- :func:`self_similarity` at lag L (registered for L = 1, 2, 4, 8): the mean similarity of
  bar j and bar j - L over j = L .. n - 1 (``nan`` with L bars or fewer);
- :func:`structureness`, in the spirit of Wu & Yang's structureness indicator (2020), on the
  bar-level self-similarity matrix J: the best mean similarity of a segment repeated later at
  a position that does not overlap it, ``max over l in 2..8, a, d >= l of
  mean(J[a + k, a + d + k] for k < l)`` (segment of l bars at bar a, its repeat d bars later,
  both inside the n bars); 1 when some segment of 2 to 8 bars comes back exactly, ``nan``
  with fewer than 4 bars.

Each family is computed at once by :func:`melody_features` and :func:`form_features` (one pass
over the notes; :func:`tokentransfer.features.score_features` calls each once per score); the
single-feature functions compute their family, or the bar-similarity matrix, for one value.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from . import metrics as m

if TYPE_CHECKING:
    from symusic import Score

NAN = float("nan")

#: bars the form features look at, from the start of the piece
FORM_BARS = 16
#: Jaccard index at which a bar counts as the return of an earlier one
RETURN_JACCARD = 0.6
#: lags (bars) of the registered self-similarity features
SELF_SIMILARITY_LAGS = (1, 2, 4, 8)
#: segment lengths (bars) of :func:`structureness`
SEGMENT_BARS = (2, 8)

_N_LENGTHS = len(m.LENGTH_CLASSES)


# --------------------------------------------------------------------------------------------
# Top lines


def top_lines(score: Score) -> dict[str, np.ndarray]:
    """The skyline of each non-drum track: arrays 'track' (index of the track among the
    score's tracks), 'time', 'duration' (ticks) and 'pitch', one entry per distinct onset of a
    track (its highest pitch), sorted by track then onset."""
    score = m._in_ticks(score)
    tracks, times, durations, pitches = [], [], [], []
    for i, track in enumerate(score.tracks):
        if track.is_drum:
            continue
        arr = track.notes.numpy()
        if not len(arr["time"]):
            continue
        times.append(arr["time"].astype(np.int64))
        durations.append(arr["duration"].astype(np.int64))
        pitches.append(arr["pitch"].astype(np.int64))
        tracks.append(np.full(len(arr["time"]), i, dtype=np.int64))
    if not times:
        empty = np.zeros(0, dtype=np.int64)
        return {"track": empty, "time": empty, "duration": empty, "pitch": empty}
    track, time, duration, pitch = (np.concatenate(a) for a in (tracks, times, durations, pitches))
    order = np.lexsort((-pitch, time, track))  # by track, onset, highest pitch first
    track, time, duration, pitch = track[order], time[order], duration[order], pitch[order]
    first = np.ones(len(time), dtype=bool)
    first[1:] = (track[1:] != track[:-1]) | (time[1:] != time[:-1])
    return {
        "track": track[first],
        "time": time[first],
        "duration": duration[first],
        "pitch": pitch[first],
    }


def _transitions(line: dict[str, np.ndarray]) -> np.ndarray:
    """Indices ``i`` where top-line notes ``i`` and ``i + 1`` belong to one track."""
    return np.flatnonzero(line["track"][1:] == line["track"][:-1])


def _transition_matrix(src: np.ndarray, dst: np.ndarray, size: int) -> np.ndarray:
    counts = np.bincount(src * size + dst, minlength=size * size).astype(np.float64)
    total = counts.sum()
    return (counts / total if total else counts).reshape(size, size)


def melody_features(score: Score) -> dict[str, float | np.ndarray]:
    """Every melodic feature of the module's docstring, from one pass over the top lines."""
    line = top_lines(score)
    pair = _transitions(line)
    pitch = line["pitch"]
    interval = pitch[pair + 1] - pitch[pair]
    size = np.abs(interval)
    n = len(interval)
    out: dict[str, float | np.ndarray] = {
        "average_pitch_interval": float(size.mean()) if n else NAN,
        "step_share": float(np.count_nonzero((size == 1) | (size == 2)) / n) if n else NAN,
        "leap_share": float(np.count_nonzero(size >= 5) / n) if n else NAN,
        "repeated_pitch_share": float(np.count_nonzero(size == 0) / n) if n else NAN,
    }
    # contour: the non-zero intervals of each track in order; a change is a pair of
    # consecutive ones (same track) whose signs differ
    moving = interval != 0
    sign, owner = np.sign(interval[moving]), line["track"][pair[moving]]
    same = owner[1:] == owner[:-1]
    pairs = int(np.count_nonzero(same))
    changes = int(np.count_nonzero(same & (sign[1:] != sign[:-1])))
    out["contour_changes"] = changes / pairs if pairs else NAN
    out["pitch_class_transition_matrix"] = _transition_matrix(
        pitch[pair] % 12, pitch[pair + 1] % 12, 12
    )
    lengths = m.length_class(line["duration"] / m.ticks_per_quarter(score))
    out["note_length_transition_matrix"] = _transition_matrix(
        lengths[pair], lengths[pair + 1], _N_LENGTHS
    )
    return out


def average_pitch_interval(score: Score) -> float:
    """Mean absolute semitone interval between consecutive top-line notes (mgeval)."""
    return melody_features(score)["average_pitch_interval"]


def step_share(score: Score) -> float:
    """Share of top-line intervals of 1 or 2 semitones (up or down)."""
    return melody_features(score)["step_share"]


def leap_share(score: Score) -> float:
    """Share of top-line intervals of 5 semitones or more (up or down)."""
    return melody_features(score)["leap_share"]


def repeated_pitch_share(score: Score) -> float:
    """Share of top-line intervals of 0 (the pitch repeated)."""
    return melody_features(score)["repeated_pitch_share"]


def contour_changes(score: Score) -> float:
    """Share of direction changes among consecutive non-zero top-line intervals."""
    return melody_features(score)["contour_changes"]


def pitch_class_transition_matrix(score: Score) -> np.ndarray:
    """12 x 12 transitions between pitch classes of consecutive top-line notes (sum 1)."""
    return melody_features(score)["pitch_class_transition_matrix"]


def note_length_transition_matrix(score: Score) -> np.ndarray:
    """Transitions between the length classes of consecutive top-line notes (sum 1)."""
    return melody_features(score)["note_length_transition_matrix"]


# --------------------------------------------------------------------------------------------
# Form


def bar_similarity(score: Score, bars: int = FORM_BARS) -> np.ndarray:
    """``[n, n]`` Jaccard indices of the first n <= ``bars`` bars' sets of (onset in the bar,
    pitch) (the module's docstring); 0 where either bar is empty."""
    score = m._in_ticks(score)
    notes = m._pitched(m.note_arrays(score))
    if not len(notes["time"]) or bars < 1:
        return np.zeros((0, 0))
    tpq = m.ticks_per_quarter(score)
    bar_quarters = m._bar_quarters(score)
    bar_grid = m.GROOVE_GRID * bar_quarters
    width = max(1, math.ceil(bar_grid - 1e-9))
    onset = np.rint(notes["time"] * (m.GROOVE_GRID / tpq))
    bar = np.floor(onset / bar_grid).astype(np.int64)
    pos = np.minimum(np.floor(onset - bar * bar_grid).astype(np.int64), width - 1)
    end_bars = math.ceil(int(notes["end"].max()) / (tpq * bar_quarters))
    n = min(max(end_bars, int(bar.max()) + 1), int(bars))
    keep = bar < n
    key = pos[keep] * 128 + notes["pitch"][keep]
    _, column = np.unique(key, return_inverse=True)
    member = np.zeros((n, int(column.max()) + 1 if len(column) else 0), dtype=np.float64)
    member[bar[keep], column] = 1.0
    inter = member @ member.T
    size = member.sum(axis=1)
    union = size[:, None] + size[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def _structureness(sim: np.ndarray) -> float:
    n = len(sim)
    lo, hi = SEGMENT_BARS
    if n < 2 * lo:
        return NAN
    # diag[d, k] = sim[k, k + d] (0 past the end); prefix sums along k
    k = np.arange(n)
    d = np.arange(n)[:, None]
    inside = k[None, :] + d < n
    diag = np.where(inside, sim[k[None, :], np.minimum(k[None, :] + d, n - 1)], 0.0)
    prefix = np.concatenate([np.zeros((n, 1)), np.cumsum(diag, axis=1)], axis=1)
    best = 0.0
    for length in range(lo, min(hi, n // 2) + 1):
        window = (prefix[:, length:] - prefix[:, :-length]) / length  # [d, a]
        a = np.arange(window.shape[1])[None, :]
        valid = (d >= length) & (a + d + length <= n)
        if valid.any():
            best = max(best, float(window[valid].max()))
    return best


def form_features(score: Score, bars: int = FORM_BARS) -> dict[str, float]:
    """Every form feature of the module's docstring, from one bar-similarity matrix."""
    sim = bar_similarity(score, bars)
    n = len(sim)
    out: dict[str, float] = {}
    if n >= 2:
        earlier = np.tril(sim, k=-1)[1:]  # row j - 1: bar j against bars 0 .. j - 1
        out["bar_return_share"] = float(np.mean(earlier.max(axis=1) >= RETURN_JACCARD))
    else:
        out["bar_return_share"] = NAN
    for lag in SELF_SIMILARITY_LAGS:
        out[f"self_similarity_lag{lag}"] = (
            float(np.diagonal(sim, offset=lag).mean()) if n > lag else NAN
        )
    out["structureness"] = _structureness(sim)
    return out


def bar_return_share(score: Score, bars: int = FORM_BARS) -> float:
    """Share of bars after the first that return an earlier bar (Jaccard >= 0.6)."""
    return form_features(score, bars)["bar_return_share"]


def self_similarity(score: Score, lag: int, bars: int = FORM_BARS) -> float:
    """Mean Jaccard index of bar j and bar j - ``lag`` over the first ``bars`` bars."""
    sim = bar_similarity(score, bars)
    return float(np.diagonal(sim, offset=lag).mean()) if len(sim) > lag else NAN


def structureness(score: Score, bars: int = FORM_BARS) -> float:
    """Best mean similarity of a 2- to 8-bar segment and a later, non-overlapping repeat."""
    return _structureness(bar_similarity(score, bars))
