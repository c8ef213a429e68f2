"""Known answers for the music and copying metrics of tokentransfer.metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest
from symusic import Note, Score, TimeSignature, Track

from tokentransfer import metrics as m

TPQ = 480


def make_score(
    notes: list[tuple[int, int, int]], drum: list[tuple[int, int, int]] | None = None
) -> Score:
    """A score of (time, duration, pitch) notes in ticks at TPQ, optionally with a drum track."""
    score = Score(TPQ)
    for events, is_drum in ((notes, False), (drum or [], True)):
        if not events:
            continue
        track = Track(program=0, is_drum=is_drum)
        for time, duration, pitch in events:
            track.notes.append(Note(time, duration, pitch, 80))
        score.tracks.append(track)
    return score


def c_major_scale() -> Score:
    pitches = [60, 62, 64, 65, 67, 69, 71, 72]
    return make_score([(i * TPQ, TPQ, p) for i, p in enumerate(pitches)])


# -- notes --------------------------------------------------------------------------------------


def test_note_arrays_sorted_over_tracks():
    score = make_score([(TPQ, TPQ, 64), (0, TPQ, 62)], drum=[(0, 10, 36)])
    notes = m.note_arrays(score)
    assert notes["time"].tolist() == [0, 0, TPQ]
    assert notes["pitch"].tolist() == [36, 62, 64]
    assert notes["end"].tolist() == [10, TPQ, 2 * TPQ]
    assert notes["drum"].tolist() == [True, False, False]
    assert m.ticks_per_quarter(score) == TPQ


# -- pitch metrics ------------------------------------------------------------------------------


def test_c_major_scale_consistency_and_range():
    score = c_major_scale()
    assert m.scale_consistency(score) == 1.0
    assert m.pitch_range(score) == 12.0


def test_chromatic_scale_consistency_is_seven_twelfths():
    score = make_score([(i * TPQ, TPQ, 60 + i) for i in range(12)])
    assert m.scale_consistency(score) == pytest.approx(7 / 12)


def test_chromatic_pitch_class_entropy():
    score = make_score([(i * TPQ, TPQ, 60 + i) for i in range(12)])
    assert m.pitch_class_entropy(score) == pytest.approx(math.log2(12))
    np.testing.assert_allclose(m.pitch_class_histogram(score), np.full(12, 1 / 12))


def test_single_pitch_class_entropy_zero_and_drums_ignored():
    score = make_score([(0, TPQ, 60), (TPQ, TPQ, 72)], drum=[(0, TPQ, 37), (TPQ, TPQ, 42)])
    assert m.pitch_class_entropy(score) == 0.0
    assert m.pitch_range(score) == 12.0
    hist = m.pitch_class_histogram(score)
    assert hist[0] == 1.0 and hist.sum() == 1.0


def test_histogram_distance():
    p = np.array([0.5, 0.5, 0.0, 0.0])
    assert m.histogram_distance(p, p) == 0.0
    assert m.histogram_distance(p, np.array([0.0, 0.0, 0.25, 0.75])) == 1.0
    assert m.histogram_distance(p, np.array([0.5, 0.0, 0.5, 0.0])) == 0.5


def test_polyphony_single_note():
    assert m.polyphony(make_score([(0, 4 * TPQ, 60)])) == 1.0


def test_polyphony_held_chord():
    assert m.polyphony(make_score([(0, 4 * TPQ, p) for p in (60, 64, 67)])) == 3.0


def test_polyphony_half_overlap():
    # [0, 960) and [480, 1440): 1920 ticks of notes over 1440 sounding ticks
    score = make_score([(0, 2 * TPQ, 60), (TPQ, 2 * TPQ, 64)])
    assert m.polyphony(score) == pytest.approx(1920 / 1440)


def test_polyphony_counts_pitches_not_notes_and_skips_gaps():
    # two overlapping notes of one pitch are one sounding pitch; the silent gap is not counted
    score = make_score([(0, 2 * TPQ, 60), (TPQ, 2 * TPQ, 60), (10 * TPQ, TPQ, 62)])
    assert m.polyphony(score) == 1.0


# -- rhythm metrics -----------------------------------------------------------------------------


def test_note_density_quarter_notes():
    assert m.note_density(c_major_scale()) == 1.0


def test_note_density_counts_drums():
    score = make_score([(i * TPQ, TPQ, 60) for i in range(4)], drum=[(0, 10, 36), (TPQ, 10, 36)])
    assert m.note_density(score) == pytest.approx(6 / 4)


def test_groove_identical_bars():
    rhythm = [0, TPQ, TPQ + TPQ // 2, 3 * TPQ]
    bar = 4 * TPQ
    score = make_score([(b * bar + t, TPQ // 4, 60) for b in range(4) for t in rhythm])
    assert m.groove_consistency(score) == 1.0


def test_groove_two_bars_hand_computed():
    bar = 4 * TPQ
    first = [0, TPQ, 2 * TPQ, 3 * TPQ]  # grid 0, 12, 24, 36
    second = [0, TPQ, 2 * TPQ + TPQ // 2]  # grid 0, 12, 30: differs at 24, 30, 36
    score = make_score([(t, TPQ // 2, 60) for t in first] + [(bar + t, 100, 64) for t in second])
    assert m.groove_consistency(score) == pytest.approx(1 - 3 / 48)


def test_groove_uses_time_signature():
    # 3/4: bars of 36 positions; the same one-onset rhythm in each bar
    score = make_score([(b * 3 * TPQ, TPQ, 60) for b in range(3)])
    score.time_signatures.append(TimeSignature(0, 3, 4))
    assert m.groove_consistency(score) == 1.0
    # read as 4/4 the onsets fall at grid 0, 36 and 24 of bars 0, 0 and 1
    plain = make_score([(b * 3 * TPQ, TPQ, 60) for b in range(3)])
    assert m.groove_consistency(plain) == pytest.approx(1 - 3 / 48)


def test_groove_needs_two_bars():
    assert math.isnan(m.groove_consistency(make_score([(0, TPQ, 60)])))


def test_empty_beat_rate_one_gap():
    # [0, 600) sounds in beats 0 and 1, beat 2 is empty, [1440, 1920) fills beat 3
    score = make_score([(0, 600, 60), (3 * TPQ, TPQ, 62)])
    assert m.empty_beat_rate(score) == 0.25
    assert m.empty_beat_rate(c_major_scale()) == 0.0


def test_empty_score_gives_nan():
    score = Score(TPQ)
    for name, metric in m.MUSIC_METRICS.items():
        assert math.isnan(metric(score)), name
    assert m.pitch_class_histogram(score).tolist() == [0.0] * 12
    assert m.note_arrays(score)["time"].size == 0


def test_length_classes_are_nearest_on_a_log_scale():
    q = np.array([0.25, 0.26, 1 / 3, 0.9, 1.1, 1.45, 2.9, 100.0, 0.01])
    classes = m.LENGTH_CLASSES[m.length_class(q)]
    np.testing.assert_allclose(classes, [0.25, 0.25, 1 / 3, 1.0, 1.0, 1.5, 3.0, 8.0, 0.125])


def test_ioi_histogram_of_eighths_and_a_chord():
    # onsets 0, 1/2, 1, 3/2 (a chord at 1 counts once), then a gap of 2.5 quarters
    notes = [(0, 240, 60), (240, 240, 62), (480, 240, 64), (480, 240, 67), (720, 240, 65)]
    notes.append((720 + 1200, 480, 60))
    hist = m.ioi_histogram(make_score(notes))
    expected = np.zeros(len(m.LENGTH_CLASSES))
    expected[list(m.LENGTH_CLASSES).index(0.5)] = 3 / 4
    expected[list(m.LENGTH_CLASSES).index(3.0)] = 1 / 4  # 2.5 is nearer 3 than 2 in log2
    np.testing.assert_allclose(hist, expected)
    assert not m.ioi_histogram(make_score([(0, TPQ, 60)])).any()  # one onset: no interval


def test_duration_histogram_leaves_drums_out():
    score = make_score(
        [(0, TPQ, 60), (0, TPQ // 2, 64), (TPQ, 3 * TPQ // 4, 67)], drum=[(0, 5, 36)]
    )
    hist = m.duration_histogram(score)
    classes = list(m.LENGTH_CLASSES)
    assert hist[classes.index(1.0)] == hist[classes.index(0.5)] == hist[classes.index(0.75)]
    assert hist.sum() == pytest.approx(1.0) and np.count_nonzero(hist) == 3


def test_chord_sizes_phases_and_register():
    notes = [(0, TPQ, p) for p in (60, 64, 67)] + [(TPQ // 2, TPQ, 72), (TPQ, TPQ, 74)]
    score = make_score(notes, drum=[(TPQ // 4, 10, 36)])
    np.testing.assert_allclose(m.chord_size_histogram(score), [2 / 3, 0, 1 / 3, 0, 0, 0])
    phase = m.onset_phase_histogram(score)  # onsets at 0, 1/4 (drum), 1/2, 1 quarter
    assert phase[0] == 0.5 and phase[3] == 0.25 and phase[6] == 0.25
    assert m.pitch_mean(score) == pytest.approx(np.mean([60, 64, 67, 72, 74]))
    assert m.pitch_std(score) == pytest.approx(np.std([60, 64, 67, 72, 74]))
    assert m.used_pitches(score) == 5.0
    empty = Score(TPQ)
    assert not m.chord_size_histogram(empty).any() and not m.onset_phase_histogram(empty).any()
    assert math.isnan(m.pitch_mean(empty)) and m.used_pitches(empty) == 0.0


def test_real_midi_metrics_in_range(midi_corpora):
    path = sorted((midi_corpora / "chorales").glob("*.mid"))[0]
    score = Score(path)
    values = {name: metric(score) for name, metric in m.MUSIC_METRICS.items()}
    for name, value in values.items():
        assert isinstance(value, float) and math.isfinite(value), (name, value)
    assert 0.0 <= values["pitch_class_entropy"] <= math.log2(12)
    assert 0.0 <= values["scale_consistency"] <= 1.0
    assert 0.0 <= values["groove_consistency"] <= 1.0
    assert 0.0 <= values["empty_beat_rate"] <= 1.0
    assert values["polyphony"] >= 1.0
    assert values["pitch_range"] >= 0.0 and values["note_density"] > 0.0


# -- copying ------------------------------------------------------------------------------------


def direct_hash(window: np.ndarray) -> int:
    h = 0
    for token in window.tolist():
        h = (h * m.HASH_MULTIPLIER + token + 1) % (1 << 64)
    return h


def test_window_hashes_match_direct_computation():
    rng = np.random.default_rng(0)
    seqs = [rng.integers(0, 500, size=k) for k in (30, 5, 17)]
    for n in (1, 3, 8):
        hashes = m.window_hashes(seqs, n)
        expected = [direct_hash(s[i : i + n]) for s in seqs for i in range(len(s) - n + 1)]
        assert hashes.dtype == np.uint64
        assert hashes.tolist() == expected


def test_equal_windows_equal_hashes():
    seq = np.array([5, 6, 7, 1, 5, 6, 7, 2, 9, 5, 6, 7])
    h = m.window_hashes([seq, np.array([0, 5, 6, 7])], 3)
    assert h[0] == h[4] == h[9] == h[-1]
    assert len(np.unique(h)) == len(h) - 3


def test_unique_window_hashes():
    rng = np.random.default_rng(0)
    seqs = [rng.integers(0, 4, size=k) for k in (50, 30)]
    hashes = m.window_hashes(seqs, 3)
    unique = m.unique_window_hashes(seqs, 3)
    assert unique.tolist() == np.unique(hashes).tolist()
    assert len(unique) < len(hashes)


def test_windows_never_cross_sequences():
    train = [np.array([1, 2]), np.array([3, 4])]
    assert len(m.window_hashes(train, 2)) == 2
    assert len(m.window_hashes(train, 3)) == 0
    assert m.ngram_copy_rate(np.array([2, 3]), train, n=2) == 0.0
    assert m.longest_copy(np.array([2, 3]), train) == 1
    assert m.longest_copy(np.array([1, 2, 3, 4]), train) == 2


def test_copied_sample():
    rng = np.random.default_rng(0)
    train = [rng.integers(0, 1000, size=k) for k in (300, 200, 500)]
    sample = train[1][20:180].copy()
    assert m.ngram_copy_rate(sample, train, n=8) == 1.0
    assert m.longest_copy(sample, train) == len(sample)
    train_hashes = m.unique_window_hashes(train, 8)
    assert m.ngram_copy_rate(sample, train, n=8, train_hashes=train_hashes) == 1.0


def test_fresh_sample():
    rng = np.random.default_rng(0)
    train = [rng.integers(0, 1000, size=400) for _ in range(3)]
    sample = rng.integers(1000, 2000, size=100)
    assert m.ngram_copy_rate(sample, train, n=8) == 0.0
    train_hashes = m.unique_window_hashes(train, 8)
    assert m.ngram_copy_rate(sample, train, train_hashes=train_hashes) == 0.0
    assert m.longest_copy(sample, train) == 0
    assert math.isnan(m.ngram_copy_rate(sample[:7], train, n=8))


def test_planted_span():
    rng = np.random.default_rng(0)
    train = [rng.integers(0, 1000, size=k) for k in (500, 800)]
    sample = rng.integers(1000, 2000, size=200)
    sample[50:87] = train[1][300:337]
    assert m.longest_copy(sample, train) == 37
    rate = m.ngram_copy_rate(sample, train, n=8)
    assert rate == pytest.approx((37 - 8 + 1) / (200 - 8 + 1))


def brute_longest_copy(sample: np.ndarray, train: list[np.ndarray]) -> int:
    best = 0
    texts = [",".join(map(str, t.tolist())) for t in train]
    for i in range(len(sample)):
        for j in range(i + best + 1, len(sample) + 1):
            span = ",".join(map(str, sample[i:j].tolist()))
            if any(f",{span}," in f",{t}," for t in texts):
                best = j - i
            else:
                break
    return best


def test_longest_copies_agrees_with_single_and_brute_force():
    rng = np.random.default_rng(0)
    train = [rng.integers(0, 3, size=k) for k in (60, 45, 80)]
    samples = [rng.integers(0, 3, size=k) for k in (0, 1, 5, 40, 70, 120)]
    samples.append(np.concatenate([train[2], train[0][:10]]))
    result = m.longest_copies(samples, train)
    assert result == [m.longest_copy(s, train) for s in samples]
    assert result == [brute_longest_copy(s, train) for s in samples]
    assert result[-1] >= 80
    assert m.longest_copies([], train) == []
    assert m.longest_copy(samples[3], []) == 0


def test_describe():
    mean, std, count = m.describe([1.0, 3.0, float("nan"), float("inf")])
    assert (mean, std, count) == (2.0, 1.0, 2)
    mean, std, count = m.describe([float("nan")])
    assert math.isnan(mean) and math.isnan(std) and count == 0
    assert m.describe([])[2] == 0
