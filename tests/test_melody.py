"""Melody and form features (tokentransfer.melody) against values computed by hand on tiny
scores built with symusic."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from symusic import Note, Score, TimeSignature, Track

from tokentransfer import melody as mel
from tokentransfer import metrics as m
from tokentransfer.features import score_features

TPQ = 480
Q = TPQ  # a quarter note in ticks


def make_score(*tracks, numerator: int = 4, drum=None) -> Score:
    """A score with one track per list of (time, duration, pitch) notes (ticks)."""
    score = Score(TPQ)
    score.time_signatures.append(TimeSignature(0, numerator, 4))
    for events, is_drum in [*((t, False) for t in tracks), *([(drum, True)] if drum else [])]:
        track = Track(program=0, is_drum=is_drum)
        for t, d, p in events:
            track.notes.append(Note(t, d, p, 80))
        score.tracks.append(track)
    return score


def line(pitches, durations=None):
    """Consecutive notes of the given pitches (quarter notes unless ``durations`` in ticks)."""
    durations = durations or [Q] * len(pitches)
    starts = np.concatenate([[0], np.cumsum(durations)[:-1]])
    return [(int(t), int(d), int(p)) for t, d, p in zip(starts, durations, pitches, strict=True)]


def length_index(quarters: float) -> int:
    return int(m.length_class(np.array([quarters]))[0])


# -- melody --------------------------------------------------------------------------------------


def test_c_major_scale_moves_by_step():
    f = mel.melody_features(make_score(line([60, 62, 64, 65, 67, 69, 71, 72])))
    # intervals 2 2 1 2 2 2 1, all upwards
    assert f["step_share"] == 1.0
    assert f["leap_share"] == 0.0 and f["repeated_pitch_share"] == 0.0
    assert f["average_pitch_interval"] == pytest.approx(12 / 7)
    assert f["contour_changes"] == 0.0
    expected = np.zeros((12, 12))
    for a, b in [(0, 2), (2, 4), (4, 5), (5, 7), (7, 9), (9, 11), (11, 0)]:
        expected[a, b] = 1 / 7
    np.testing.assert_allclose(f["pitch_class_transition_matrix"], expected)
    lengths = f["note_length_transition_matrix"]
    q = length_index(1.0)
    assert lengths[q, q] == 1.0 and lengths.sum() == 1.0


def test_arpeggio_leaps():
    # C E G C' G E C in eighth, quarter, eighth, quarter, ...: intervals 4 3 5 -5 -3 -4
    eighth = Q // 2
    f = mel.melody_features(
        make_score(line([60, 64, 67, 72, 67, 64, 60], [eighth, Q, eighth, Q, eighth, Q, eighth]))
    )
    assert f["step_share"] == 0.0
    assert f["leap_share"] == pytest.approx(2 / 6)  # the two fifths (5 semitones)
    assert f["average_pitch_interval"] == pytest.approx(24 / 6)
    assert f["contour_changes"] == pytest.approx(1 / 5)  # up up up down down down
    e, q = length_index(0.5), length_index(1.0)
    lengths = f["note_length_transition_matrix"]
    assert lengths[e, q] == pytest.approx(3 / 6) and lengths[q, e] == pytest.approx(3 / 6)
    assert f["pitch_class_transition_matrix"][0, 4] == pytest.approx(1 / 6)  # C -> E
    assert f["pitch_class_transition_matrix"][7, 0] == pytest.approx(1 / 6)  # G -> C'
    assert f["pitch_class_transition_matrix"][0, 7] == pytest.approx(1 / 6)  # C' -> G


def test_repeated_note():
    f = mel.melody_features(make_score(line([65] * 6)))
    assert f["repeated_pitch_share"] == 1.0
    assert f["step_share"] == 0.0 and f["leap_share"] == 0.0
    assert f["average_pitch_interval"] == 0.0
    assert math.isnan(f["contour_changes"])  # no non-zero interval: no direction
    assert f["pitch_class_transition_matrix"][5, 5] == 1.0


def test_two_tracks_are_two_voices():
    """A scale above a bass that leaps a fifth: intervals are taken in each track, never
    across; a skyline over both tracks would see the scale alone."""
    scale = line([60, 62, 64, 65, 67])
    bass = line([36, 43, 36, 43, 36])  # +7 -7 +7 -7
    f = mel.melody_features(make_score(scale, bass))
    assert f["step_share"] == pytest.approx(4 / 8)
    assert f["leap_share"] == pytest.approx(4 / 8)
    assert f["average_pitch_interval"] == pytest.approx((7 + 4 * 7) / 8)
    # the scale: 3 pairs, no change; the bass: 3 pairs, 3 changes
    assert f["contour_changes"] == pytest.approx(3 / 6)
    # the bass's first note follows no note of the scale: no 7 -> 0 transition (G to C)
    assert f["pitch_class_transition_matrix"][7, 0] == pytest.approx(2 / 8)  # bass G -> C only
    merged = mel.melody_features(make_score(scale + bass))  # one track: its skyline
    assert merged["step_share"] == 1.0


def test_chord_keeps_its_top_note():
    """Triads C E G moved up a tone on each beat, and a drum: the top line is G A B, steps of
    2 (the drum track is no voice)."""
    chords = [(i * Q, Q, p + 2 * i) for i in range(3) for p in (60, 64, 67)]
    drum = [(i * Q, Q // 4, 36 + 10 * i) for i in range(3)]
    line_ = mel.top_lines(make_score(chords, drum=drum))
    assert line_["pitch"].tolist() == [67, 69, 71]
    f = mel.melody_features(make_score(chords, drum=drum))
    assert f["step_share"] == 1.0 and f["average_pitch_interval"] == 2.0


def test_no_notes_no_melody():
    f = mel.melody_features(Score(TPQ))
    assert math.isnan(f["average_pitch_interval"]) and math.isnan(f["step_share"])
    assert not f["pitch_class_transition_matrix"].any()
    assert not f["note_length_transition_matrix"].any()
    single = mel.melody_features(make_score([(0, Q, 60)]))
    assert math.isnan(single["leap_share"])  # one note: no interval


# -- form ----------------------------------------------------------------------------------------


def bar_of(pitches, bar: int, beats: int = 4):
    """A bar of quarter notes of the given pitches at bar index ``bar``."""
    return [(bar * beats * Q + i * Q, Q, p) for i, p in enumerate(pitches)]


def two_halves():
    """Eight bars that share no (onset, pitch) with one another, played twice (16 bars)."""
    notes = []
    for b in range(8):
        notes += bar_of([60 + b, 62 + b, 64 + b, 66 + b], b)
    return notes + [(t + 32 * Q, d, p) for t, d, p in notes]


def test_two_identical_halves():
    score = make_score(two_halves())
    f = mel.form_features(score)
    assert f["bar_return_share"] == pytest.approx(8 / 15)  # bars 8 .. 15 return bars 0 .. 7
    assert f["self_similarity_lag8"] == 1.0
    for lag in (1, 2, 4):
        assert f[f"self_similarity_lag{lag}"] == 0.0
    assert f["structureness"] == 1.0
    assert mel.self_similarity(score, 8) == 1.0
    sim = mel.bar_similarity(score)
    assert sim.shape == (16, 16)
    np.testing.assert_array_equal(sim, np.kron(np.ones((2, 2)), np.eye(8)))
    # the first 8 bars only: nothing returns, no lag of 8 to compare
    first = mel.form_features(score, bars=8)
    assert first["bar_return_share"] == 0.0 and math.isnan(first["self_similarity_lag8"])
    assert first["structureness"] == 0.0


def test_jaccard_threshold_and_lags():
    """Bars A, B (3 of A's 4 notes: Jaccard 3/5), C (2 of 4 shared: 2/6) and A again."""
    a = [60, 62, 64, 65]
    notes = bar_of(a, 0) + bar_of([60, 62, 64, 67], 1) + bar_of([60, 62, 70, 71], 2)
    notes += bar_of(a, 3)
    f = mel.form_features(make_score(notes))
    # B returns A (0.6 >= 0.6), C returns nothing (1/3), the last A returns A
    assert f["bar_return_share"] == pytest.approx(2 / 3)
    assert f["self_similarity_lag1"] == pytest.approx((3 / 5 + 1 / 3 + 1 / 3) / 3)
    assert f["self_similarity_lag2"] == pytest.approx((1 / 3 + 3 / 5) / 2)  # A-C, B-A
    assert math.isnan(f["self_similarity_lag4"])
    # in 4 bars only 2-bar segments fit twice, at a = 0 and d = 2: mean(J(A, C), J(B, A))
    assert f["structureness"] == pytest.approx((1 / 3 + 3 / 5) / 2)


def test_empty_bars_never_match_and_onsets_are_quantised():
    a = [60, 64, 67, 72]
    # 10 ticks late (the same grid step), 10 ticks shorter (ending in bar 2)
    late = [(t + 10, d - 10, p) for t, d, p in bar_of(a, 2)]
    f = mel.form_features(make_score(bar_of(a, 0) + late))  # bar 1 is empty
    assert f["bar_return_share"] == pytest.approx(1 / 2)  # bar 1 no, bar 2 yes
    assert f["self_similarity_lag1"] == 0.0 and f["self_similarity_lag2"] == 1.0
    moved = [(t + Q // 2, d, p) for t, d, p in bar_of(a, 1)]  # an eighth later: other onsets
    assert mel.form_features(make_score(bar_of(a, 0) + moved))["bar_return_share"] == 0.0


def test_bars_follow_the_time_signature():
    """A 3/4 pattern of three quarter notes repeated: every bar returns in 3/4; read in 4/4
    no bar would."""
    notes = [(i * Q, Q, (60, 64, 67)[i % 3]) for i in range(12)]
    assert mel.bar_return_share(make_score(notes, numerator=3)) == 1.0
    assert mel.bar_return_share(make_score(notes, numerator=4)) == 0.0
    assert mel.structureness(make_score(notes, numerator=3)) == 1.0


def test_silence_has_no_form_but_scores_zero_as_a_feature():
    assert math.isnan(mel.bar_return_share(Score(TPQ)))
    feats = score_features(Score(TPQ))
    for name in ("bar_return_share", "self_similarity_lag1", "structureness"):
        assert feats[name].tolist() == [0.0], name  # nothing returns in silence
    assert math.isnan(feats["step_share"][0])  # undefined: left out of its distances
    assert feats["pitch_class_transition_matrix"].shape == (144,)


def test_a_16_bar_score_is_fast():
    """Both families on a 16-bar, two-track score of 256 notes: well under 10 ms."""
    rng = np.random.default_rng(0)
    melody = [(i * Q // 2, Q // 2, int(p)) for i, p in enumerate(rng.integers(60, 84, 128))]
    chords = [(i * Q, Q, int(p)) for i, p in enumerate(rng.integers(40, 60, 64))]
    chords += [(t, d, p + 4) for t, d, p in chords]
    score = make_score(melody, chords)
    mel.melody_features(score)
    t0 = time.perf_counter()
    for _ in range(20):
        mel.melody_features(score)
        mel.form_features(score)
    assert (time.perf_counter() - t0) / 20 < 0.01
