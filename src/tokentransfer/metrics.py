"""Evaluation metrics for generated music: musical statistics and copying from the training data.

Musical metrics take a ``symusic.Score`` in ticks (as read by ``symusic.Score(path)`` or decoded
by a miditok tokenizer) and follow the definitions of MusPy (Dong et al. 2020, "MusPy: A Toolkit
for Symbolic Music Generation") and Yang & Lerch 2020 ("On the evaluation of generative models
in music"); groove consistency is from Wu & Yang 2020 ("The Jazz Transformer on the front line").
Notes of all tracks are pooled; drum tracks are left out of pitch metrics but kept for onset and
rhythm metrics. A metric that is undefined for a score (e.g. one without notes) is ``nan``.
The melody and form features are in :mod:`tokentransfer.melody`; which metric enters which
table and figure is said once, in :mod:`tokentransfer.metric_registry`.

Copying metrics work on token id arrays (one per piece) through an exact-in-uint64 polynomial
rolling hash of every token window, never across piece boundaries.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from symusic import Score

NAN = float("nan")

#: Onset grid of :func:`groove_consistency`: positions per quarter note.
GROOVE_GRID = 12

#: Rolling-hash multiplier (odd, so it is invertible modulo 2**64) and its inverse.
HASH_MULTIPLIER = 0x9E3779B97F4A7C15
_MASK64 = (1 << 64) - 1


def _inverse_mod64(a: int) -> int:
    """Inverse of an odd ``a`` modulo 2**64 (Newton iteration, each step doubles the bits)."""
    inv = a  # correct to 3 bits for odd a
    for _ in range(6):
        inv = (inv * (2 - a * inv)) & _MASK64
    return inv


HASH_INVERSE = _inverse_mod64(HASH_MULTIPLIER)

# Major and natural minor scales as pitch-class masks, one row per scale (12 major, 12 minor).
_MAJOR = np.array([0, 2, 4, 5, 7, 9, 11])
_MINOR = np.array([0, 2, 3, 5, 7, 8, 10])
_SCALES = np.zeros((24, 12), dtype=bool)
for _root in range(12):
    _SCALES[_root, (_MAJOR + _root) % 12] = True
    _SCALES[12 + _root, (_MINOR + _root) % 12] = True


# --------------------------------------------------------------------------------------------
# Notes of a score


def _in_ticks(score: Score) -> Score:
    return score if "Tick" in str(score.ttype) else score.to("tick")


def ticks_per_quarter(score: Score) -> int:
    """Ticks per quarter note of ``score``."""
    return int(score.tpq)


def note_arrays(score: Score) -> dict[str, np.ndarray]:
    """The notes of all tracks as arrays 'time', 'end' (ticks, int64), 'pitch' and 'drum' (bool).

    Sorted by onset time, then pitch.
    """
    score = _in_ticks(score)
    times, ends, pitches, drums = [], [], [], []
    for track in score.tracks:
        arr = track.notes.numpy()
        time = arr["time"].astype(np.int64)
        times.append(time)
        ends.append(time + arr["duration"].astype(np.int64))
        pitches.append(arr["pitch"].astype(np.int64))
        drums.append(np.full(len(time), bool(track.is_drum)))
    if not times:
        empty = np.zeros(0, dtype=np.int64)
        return {"time": empty, "end": empty, "pitch": empty, "drum": np.zeros(0, dtype=bool)}
    time, end, pitch, drum = (np.concatenate(a) for a in (times, ends, pitches, drums))
    order = np.lexsort((pitch, time))
    return {"time": time[order], "end": end[order], "pitch": pitch[order], "drum": drum[order]}


def _pitched(notes: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    keep = ~notes["drum"]
    return {k: v[keep] for k, v in notes.items()}


def _covered_length(start: np.ndarray, end: np.ndarray, group: np.ndarray | None = None) -> int:
    """Total length of the union of intervals [start, end), taken separately per ``group``.

    Sorted by start, an interval adds the part beyond the largest end of those before it (the
    earlier intervals cover [its start, that end) without gaps). Groups are kept apart by
    offsetting each by a multiple of a bound above every end.
    """
    if len(start) == 0:
        return 0
    if group is not None:
        origin = int(start.min())
        offset = group.astype(np.int64) * (int(end.max()) - origin + 1) - origin
        start, end = start + offset, end + offset
    order = np.argsort(start, kind="stable")
    start, end = start[order], end[order]
    prev_end = np.maximum.accumulate(end)
    covered_from = np.maximum(start, np.concatenate(([start[0]], prev_end[:-1])))
    return int(np.maximum(end - covered_from, 0).sum())


# --------------------------------------------------------------------------------------------
# Pitch metrics


def pitch_class_histogram(score: Score) -> np.ndarray:
    """Normalised count of non-drum notes per pitch class (12 values; all zero without notes)."""
    pitch = _pitched(note_arrays(score))["pitch"]
    counts = np.bincount(pitch % 12, minlength=12).astype(np.float64)
    total = counts.sum()
    return counts / total if total else counts


def pitch_class_entropy(score: Score) -> float:
    """Shannon entropy (bits) of the pitch-class histogram (MusPy ``pitch_class_entropy``)."""
    hist = pitch_class_histogram(score)
    if not hist.any():
        return NAN
    p = hist[hist > 0]
    return float(-(p * np.log2(p)).sum()) + 0.0


def histogram_distance(p: np.ndarray, q: np.ndarray) -> float:
    """Total variation distance ``0.5 * sum|p - q|`` of two normalised histograms, in [0, 1]."""
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    return float(0.5 * np.abs(p - q).sum())


def pitch_range(score: Score) -> float:
    """Highest minus lowest non-drum pitch in semitones (MusPy ``pitch_range``)."""
    pitch = _pitched(note_arrays(score))["pitch"]
    return float(pitch.max() - pitch.min()) if len(pitch) else NAN


def polyphony(score: Score) -> float:
    """Mean number of pitches sounding at once while any sounds (MusPy ``polyphony``).

    Exact and time-weighted: the summed sounding time of each pitch (overlapping notes of one
    pitch merged) over the time during which at least one non-drum note sounds.
    """
    notes = _pitched(note_arrays(score))
    keep = notes["end"] > notes["time"]
    start, end, pitch = notes["time"][keep], notes["end"][keep], notes["pitch"][keep]
    active = _covered_length(start, end)
    if active == 0:
        return NAN
    return _covered_length(start, end, pitch) / active


def scale_consistency(score: Score) -> float:
    """Largest fraction of non-drum notes inside one major or natural minor scale (MusPy)."""
    pitch = _pitched(note_arrays(score))["pitch"]
    if not len(pitch):
        return NAN
    counts = np.bincount(pitch % 12, minlength=12)
    return float((_SCALES @ counts).max() / len(pitch))


# --------------------------------------------------------------------------------------------
# Rhythm metrics (drums included)


def note_density(score: Score) -> float:
    """Notes (drums included) per quarter note, from the first onset to the last note end."""
    notes = note_arrays(score)
    if not len(notes["time"]):
        return NAN
    span = int(notes["end"].max() - notes["time"].min())
    return len(notes["time"]) * ticks_per_quarter(score) / span if span > 0 else NAN


def _bar_quarters(score: Score) -> float:
    """Bar length in quarter notes from the first time signature (4/4 without one)."""
    sigs = list(score.time_signatures)
    if not sigs:
        return 4.0
    first = min(sigs, key=lambda ts: ts.time)
    return 4.0 * first.numerator / first.denominator


def groove_consistency(score: Score) -> float:
    """One minus the mean Hamming distance of consecutive bars' onset patterns (Wu & Yang 2020).

    As MusPy ``groove_consistency``: each bar is a binary vector of onsets on a grid of 1/12
    quarter note (48 positions in 4/4); the bar length comes from the first time signature. The
    number of bars runs to the end of the last note; ``nan`` with fewer than two bars.
    """
    score = _in_ticks(score)
    notes = note_arrays(score)
    if not len(notes["time"]):
        return NAN
    tpq = ticks_per_quarter(score)
    bar_grid = GROOVE_GRID * _bar_quarters(score)  # grid positions per bar (may be fractional)
    width = max(1, math.ceil(bar_grid - 1e-9))
    onset = np.rint(notes["time"] * (GROOVE_GRID / tpq))
    bar = np.floor(onset / bar_grid).astype(np.int64)
    pos = np.minimum(np.floor(onset - bar * bar_grid).astype(np.int64), width - 1)
    end_bars = math.ceil(int(notes["end"].max()) / (tpq * _bar_quarters(score)))
    n_bars = max(end_bars, int(bar.max()) + 1)
    if n_bars < 2:
        return NAN
    pattern = np.zeros((n_bars, width), dtype=bool)
    pattern[bar, pos] = True
    distance = np.count_nonzero(pattern[1:] != pattern[:-1], axis=1) / width
    return float(1.0 - distance.mean())


def empty_beat_rate(score: Score) -> float:
    """Fraction of beats (quarter notes up to the last note end) in which no note sounds (MusPy).

    A note sounds in beat ``b`` when [time, end) overlaps [b * tpq, (b + 1) * tpq); a note of
    zero duration counts for the beat of its onset. Drums included.
    """
    notes = note_arrays(score)
    if not len(notes["time"]):
        return NAN
    tpq = ticks_per_quarter(score)
    first = notes["time"] // tpq
    last = np.maximum(-(-notes["end"] // tpq), first + 1)  # exclusive
    n_beats = int(last.max())
    change = np.bincount(first, minlength=n_beats + 1) - np.bincount(last, minlength=n_beats + 1)
    sounding = np.cumsum(change[:-1]) > 0
    return float(1.0 - sounding.mean())


#: Note-length classes of :func:`duration_histogram` and :func:`ioi_histogram`, in quarter
#: notes: the twelve of mgeval (Yang & Lerch 2020: whole to sixteenth, dotted, triplets) with a
#: thirty-second and a breve added at the ends. A value goes to the nearest class on a log scale.
LENGTH_CLASSES = np.array(
    [1 / 8, 1 / 4, 1 / 3, 3 / 8, 1 / 2, 2 / 3, 3 / 4, 1, 4 / 3, 3 / 2, 2, 3, 4, 8], dtype=np.float64
)
_LOG_CLASSES = np.log2(LENGTH_CLASSES)
_CLASS_EDGES = (_LOG_CLASSES[1:] + _LOG_CLASSES[:-1]) / 2


def length_class(quarters: np.ndarray) -> np.ndarray:
    """Index in :data:`LENGTH_CLASSES` of the class nearest (in log2) to each length."""
    q = np.maximum(np.asarray(quarters, dtype=np.float64), 1e-9)
    return np.searchsorted(_CLASS_EDGES, np.log2(q), side="right")


def _length_histogram(quarters: np.ndarray) -> np.ndarray:
    counts = np.bincount(length_class(quarters), minlength=len(LENGTH_CLASSES)).astype(np.float64)
    total = counts.sum()
    return counts / total if total else counts


def onset_times(score: Score) -> np.ndarray:
    """Sorted distinct onset times in ticks of all notes (drums included)."""
    return np.unique(note_arrays(score)["time"])


def ioi_histogram(score: Score) -> np.ndarray:
    """Normalised histogram of inter-onset intervals over :data:`LENGTH_CLASSES` (mgeval's
    ``note_length_hist`` applied to the gaps between consecutive distinct onsets, all tracks
    pooled, drums included); all zero with fewer than two onsets."""
    onsets = onset_times(score)
    return _length_histogram(np.diff(onsets) / ticks_per_quarter(score))


def duration_histogram(score: Score) -> np.ndarray:
    """Normalised histogram of non-drum note durations over :data:`LENGTH_CLASSES` (mgeval
    ``note_length_hist``); all zero without notes."""
    notes = _pitched(note_arrays(score))
    return _length_histogram((notes["end"] - notes["time"]) / ticks_per_quarter(score))


#: Bins of :func:`chord_size_histogram`: 1, 2, ..., CHORD_SIZES - 1 notes at an onset, and more.
CHORD_SIZES = 6


def chord_size_histogram(score: Score) -> np.ndarray:
    """Normalised histogram of how many non-drum notes start at each onset (1, 2, ..., 5, 6 or
    more); all zero without notes."""
    time = _pitched(note_arrays(score))["time"]
    if not len(time):
        return np.zeros(CHORD_SIZES)
    _, size = np.unique(time, return_counts=True)
    counts = np.bincount(np.minimum(size, CHORD_SIZES) - 1, minlength=CHORD_SIZES)
    return counts / counts.sum()


def onset_phase_histogram(score: Score) -> np.ndarray:
    """Normalised histogram of onset positions within the beat on the grid of
    :data:`GROOVE_GRID` steps per quarter note (drums included); all zero without notes."""
    onsets = onset_times(score)
    if not len(onsets):
        return np.zeros(GROOVE_GRID)
    step = np.rint(onsets * (GROOVE_GRID / ticks_per_quarter(score))).astype(np.int64)
    counts = np.bincount(step % GROOVE_GRID, minlength=GROOVE_GRID).astype(np.float64)
    return counts / counts.sum()


def pitch_mean(score: Score) -> float:
    """Mean MIDI pitch of the non-drum notes (the register)."""
    pitch = _pitched(note_arrays(score))["pitch"]
    return float(pitch.mean()) if len(pitch) else NAN


def pitch_std(score: Score) -> float:
    """Standard deviation of the non-drum notes' MIDI pitches."""
    pitch = _pitched(note_arrays(score))["pitch"]
    return float(pitch.std()) if len(pitch) else NAN


def used_pitches(score: Score) -> float:
    """Number of distinct non-drum pitches (mgeval ``total_used_pitch``)."""
    return float(len(np.unique(_pitched(note_arrays(score))["pitch"])))


def __getattr__(name: str):
    """``MUSIC_METRICS``: the per-sample music metrics of the evaluation table (name -> function
    of a score), the registry's (:mod:`tokentransfer.metric_registry`) score features in
    ``summary.tsv``; read lazily, as the registry imports this module."""
    if name == "MUSIC_METRICS":
        from . import metric_registry as reg

        return {mt.name: mt.fn for mt in reg.select(table="summary", feature=True)}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --------------------------------------------------------------------------------------------
# Copying from the training data


def _powers(base: int, count: int) -> np.ndarray:
    """``base ** k`` modulo 2**64 for k = 0 .. count-1 (uint64)."""
    out = np.full(count, base, dtype=np.uint64)
    if count:
        out[0] = 1
        with np.errstate(over="ignore"):
            np.cumprod(out, out=out)
    return out


class _RollingHash:
    """Prefix sums over concatenated sequences giving any window's hash in O(1).

    The hash of window s[i:i+n] is ``sum_k (s[i+k] + 1) * P**(n-1-k) mod 2**64``; with
    ``C[k] = sum_{j<k} (s[j] + 1) * Pinv**j`` it equals ``P**(i+n-1) * (C[i+n] - C[i])``.
    """

    def __init__(self, seqs: Sequence[np.ndarray]) -> None:
        arrays = [np.asarray(s, dtype=np.int64).ravel() for s in seqs]
        lengths = np.array([len(a) for a in arrays], dtype=np.int64)
        tokens = np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.int64)
        size = len(tokens)
        self.max_len = int(lengths.max()) if len(lengths) else 0
        # tokens left in its own sequence from each position (a window of n fits if >= n)
        self.room = np.repeat(np.cumsum(lengths), lengths) - np.arange(size)
        self.powers = _powers(HASH_MULTIPLIER, size + 1)
        with np.errstate(over="ignore"):
            values = (tokens + 1).view(np.uint64) * _powers(HASH_INVERSE, size)
            self.prefix = np.zeros(size + 1, dtype=np.uint64)
            np.cumsum(values, out=self.prefix[1:])

    def hashes(self, n: int) -> np.ndarray:
        """Hashes of all length-``n`` windows inside one sequence, in order."""
        if n < 1:
            raise ValueError(f"window length must be positive, got {n}")
        count = len(self.room) - n + 1
        if count <= 0:
            return np.zeros(0, dtype=np.uint64)
        with np.errstate(over="ignore"):
            h = self.powers[n - 1 : n - 1 + count] * (self.prefix[n:] - self.prefix[:count])
        return h[self.room[:count] >= n]


def window_hashes(seqs: Sequence[np.ndarray], n: int) -> np.ndarray:
    """uint64 hashes of every length-``n`` token window, never across sequence boundaries.

    Polynomial hash ``sum_k (s[i+k] + 1) * HASH_MULTIPLIER**(n-1-k) mod 2**64``, computed for
    all windows at once from prefix sums.
    """
    return _RollingHash(seqs).hashes(n)


def unique_window_hashes(seqs: Sequence[np.ndarray], n: int) -> np.ndarray:
    """Sorted unique :func:`window_hashes`, the ``train_hashes`` of :func:`ngram_copy_rate`."""
    return _unique(window_hashes(seqs, n))[0]


def _unique(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique values and the index of each value among them (by sorting: ``np.unique``
    is far slower on large uint64 arrays in numpy 2.4)."""
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    first = np.ones(len(values), dtype=bool)
    first[1:] = ordered[1:] != ordered[:-1]
    inverse = np.empty(len(values), dtype=np.int64)
    inverse[order] = np.cumsum(first) - 1
    return ordered[first], inverse


def _present(queries: np.ndarray, pool: np.ndarray) -> np.ndarray:
    """Which of the sorted unique ``queries`` occur in ``pool`` (any order), as a bool mask.

    A bit table on the hashes' top bits first drops most of the pool cheaply; only the rest is
    looked up by binary search.
    """
    found = np.zeros(len(queries), dtype=bool)
    if len(queries) and len(pool):
        bits = int(np.clip(math.ceil(math.log2(len(queries))) + 7, 18, 24))
        shift = np.uint64(64 - bits)
        table = np.zeros(1 << bits, dtype=bool)
        table[queries >> shift] = True
        pool = pool[table[pool >> shift]]
        idx = np.minimum(np.searchsorted(queries, pool), len(queries) - 1)
        found[idx[queries[idx] == pool]] = True
    return found


def ngram_copy_rate(
    sample: np.ndarray,
    train: Sequence[np.ndarray],
    n: int = 8,
    train_hashes: np.ndarray | None = None,
) -> float:
    """Fraction of the sample's token n-grams found anywhere in the training sequences.

    ``train_hashes`` may give the sorted unique training window hashes for this ``n`` (then
    ``train`` is not read). ``nan`` for a sample shorter than ``n``.
    """
    sample_hashes = window_hashes([sample], n)
    if not len(sample_hashes):
        return NAN
    if train_hashes is not None:
        if not len(train_hashes):
            return 0.0
        idx = np.minimum(np.searchsorted(train_hashes, sample_hashes), len(train_hashes) - 1)
        return float(np.mean(train_hashes[idx] == sample_hashes))
    queries, inverse = _unique(sample_hashes)
    return float(np.mean(_present(queries, window_hashes(train, n))[inverse]))


def longest_copy(sample: np.ndarray, train: Sequence[np.ndarray]) -> int:
    """Length of the longest contiguous token span of ``sample`` found in a training sequence."""
    return longest_copies([sample], train)[0]


def longest_copies(samples: Sequence[np.ndarray], train: Sequence[np.ndarray]) -> list[int]:
    """:func:`longest_copy` of each sample, sharing the work over the training sequences.

    A span of length L found in training means every shorter one is, so each sample's answer is
    searched over L: first doubling L = 1, 2, 4, ... (the same lengths for all samples), then
    bisecting in parallel. Each round hashes the training windows once per distinct midpoint
    and tests every sample whose open interval holds that length; no training hashes are kept.
    """
    hashers = [_RollingHash([s]) for s in samples]
    index = _RollingHash(train)
    lo = np.zeros(len(samples), dtype=np.int64)  # a copy this long exists
    hi = np.array([min(len(h.room), index.max_len) for h in hashers], dtype=np.int64)

    def test(length: int, group: np.ndarray) -> None:
        sample_hashes = [hashers[i].hashes(length) for i in group]
        owner = np.repeat(np.arange(len(group)), [len(h) for h in sample_hashes])
        queries, inverse = _unique(np.concatenate(sample_hashes))
        hit = _present(queries, index.hashes(length))[inverse]
        found = np.zeros(len(group), dtype=bool)
        found[owner[hit]] = True
        lo[group[found]] = length
        hi[group[~found]] = length - 1

    length = 1
    while (group := np.flatnonzero((lo == length // 2) & (hi >= length))).size:
        test(length, group)
        length *= 2
    while (active := np.flatnonzero(lo < hi)).size:
        for value in np.unique((lo[active] + hi[active] + 1) // 2):
            group = np.flatnonzero((lo < value) & (hi >= value))  # intervals shrink meanwhile
            if group.size:
                test(int(value), group)
    return [int(v) for v in lo]


# --------------------------------------------------------------------------------------------
# Summaries


def describe(values: Sequence[float]) -> tuple[float, float, int]:
    """Mean, population standard deviation and count of the finite values (nan, nan, 0 if none)."""
    arr = np.asarray(values, dtype=np.float64).ravel()
    arr = arr[np.isfinite(arr)]
    if not len(arr):
        return NAN, NAN, 0
    return float(arr.mean()), float(arr.std()), int(len(arr))
