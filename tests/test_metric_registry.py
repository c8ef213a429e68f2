"""The metric registry is the one list: every module's metric names are read from it, and every
registered fidelity and style feature reaches the tables and the classifier's vector."""

from __future__ import annotations

import math

import numpy as np
import pytest
from symusic import Note, Score, TimeSignature, Track

from tokentransfer import evaluate, features, fewshot, figures, metrics, style, tables
from tokentransfer import metric_registry as reg

TPQ = 480


def tune(shift: int, bars: int = 8) -> Score:
    """A small 4/4 tune: a scale figure per bar, repeated every two bars, over a held bass."""
    score = Score(TPQ)
    score.time_signatures.append(TimeSignature(0, 4, 4))
    top, bass = Track(program=0), Track(program=32)
    for b in range(bars):
        root = 60 + shift + (b % 2) * 2
        for i, step in enumerate((0, 2, 4, 5, 7, 5, 4, 2)):
            top.notes.append(Note(b * 4 * TPQ + i * TPQ // 2, TPQ // 2, root + step, 80))
        bass.notes.append(Note(b * 4 * TPQ, 4 * TPQ, 36 + shift, 70))
    score.tracks.extend([top, bass])
    return score


def test_every_list_is_the_registry():
    assert reg.names(fidelity=True) == features.FIDELITY_FEATURES
    assert reg.names(style=True) == style.STYLE_FEATURES
    assert set(features.FEATURES) == set(reg.names(feature=True))
    assert tuple(f"oa_{n}" for n in reg.names(fidelity=True)) == evaluate.OA_COLUMNS
    assert set(evaluate.SAMPLE_METRICS) == set(reg.names(level="sample", table="summary"))
    assert set(metrics.MUSIC_METRICS) == set(reg.names(table="summary", feature=True))
    summary = set(reg.names(table="summary"))
    written = {
        *evaluate.SAMPLE_METRICS,
        *evaluate.SET_METRICS,
        *evaluate.MUSIC_SET_METRICS,
        *evaluate.COST_COLUMNS,
        *evaluate.LIKELIHOOD_COLUMNS,
    }
    assert written == summary  # every summary metric has its place in the table, once
    curve = (
        *fewshot.MUSIC_METRICS,
        *fewshot.CURVE_METRICS,
        *fewshot.LIKELIHOOD_METRICS,
        *fewshot.COST_METRICS,
    )
    assert sorted(curve) == sorted(reg.names(table="curve"))
    assert [n for n, _ in figures.CHART_METRICS] == list(reg.names(figure="chart"))
    assert [n for n, _ in fewshot.FIGURE_METRICS] == list(reg.names(figure="curve"))
    assert [n for n, _ in tables.EVAL_COLUMNS] == list(reg.names(table="results"))
    # the texture-only score sits beside the new one in the summary and the curve
    for name in ("feature_fidelity", "feature_fidelity_texture", "feature_fidelity_melody"):
        assert name in evaluate.MUSIC_SET_METRICS and name in fewshot.MUSIC_METRICS


def test_melody_and_form_are_fidelity_and_style_features():
    new = (
        "average_pitch_interval",
        "step_share",
        "leap_share",
        "repeated_pitch_share",
        "contour_changes",
        "pitch_class_transition_matrix",
        "note_length_transition_matrix",
        "bar_return_share",
        "self_similarity_lag1",
        "self_similarity_lag2",
        "self_similarity_lag4",
        "self_similarity_lag8",
        "structureness",
    )
    for name in new:
        metric = reg.get(name)
        assert metric.fidelity and metric.style and metric.group in ("melody", "form"), name
        assert "features" in metric.tables, name
    # the texture score is the fidelity of before: the nine features of texture, pitch, rhythm
    texture = reg.names(fidelity=True, groups=("texture", "pitch", "rhythm"))
    assert set(texture) == {
        "note_density",
        "polyphony",
        "empty_beat_rate",
        "pitch_range",
        "pitch_class_histogram",
        "ioi_histogram",
        "duration_histogram",
        "groove_consistency",
        "scale_consistency",
    }


def test_fidelity_features_reach_the_oa_columns_features_rows_and_style_vector():
    reference = [features.score_features(tune(s)) for s in range(0, 12, 2)]
    scores = [tune(s + 1, bars=6) for s in range(0, 8, 2)]
    row, per_feature, per_sample = evaluate.music_measures(scores, reference)
    assert list(per_feature) == list(reg.names(fidelity=True))  # the rows of features.tsv
    for name in reg.names(fidelity=True):
        assert math.isfinite(row[f"oa_{name}"]), name
        assert 0.0 <= row[f"oa_{name}"] <= 1.0
    # a scalar's mean and spread in both sets: the top line's 7 steps a bar, its bar changes
    # (a repeat, then down 4) and the bass's repeated notes: 42 of 52 intervals in 6 bars,
    # 56 of 70 in 8
    scalar = per_feature["step_share"]
    assert scalar["mean"] == pytest.approx(42 / 52) and scalar["ref_mean"] == pytest.approx(56 / 70)
    assert scalar["std"] < 1e-12 and scalar["ref_std"] < 1e-12
    assert math.isnan(per_feature["pitch_class_transition_matrix"]["mean"])  # no mean of a matrix
    oas = [row[f"oa_{n}"] for n in reg.names(fidelity=True)]
    assert row["feature_fidelity"] == pytest.approx(np.mean(oas))
    texture = reg.names(fidelity=True, groups=("texture", "pitch", "rhythm"))
    melody = reg.names(fidelity=True, groups=("melody", "form"))
    assert row["feature_fidelity_texture"] == pytest.approx(
        np.mean([row[f"oa_{n}"] for n in texture])
    )
    assert row["feature_fidelity_melody"] == pytest.approx(
        np.mean([row[f"oa_{n}"] for n in melody])
    )
    assert len(per_sample) == len(scores)
    labels = style.feature_labels(scores[0])
    assert len(labels) == len(style.style_vector(scores[0]))
    for name in reg.names(style=True):
        assert any(label == name or label.startswith(f"{name}[") for label in labels), name
    assert "pitch_class_transition_matrix[11,0]" in labels


def test_per_sample_rows_hold_every_summary_metric(tok):
    from tests.test_evaluate import piece

    test = [piece(tok, [[60, 62, 64, 65], [67, 65, 64, 62], [60, 62, 64, 65], [67, 69, 71, 72]])]
    ref = evaluate.build_reference(tok, test, test, copy_n=4)
    _, rows = evaluate.evaluate_set(tok, test, 0, ref, copy_n=4)
    assert set(rows[0]) == set(evaluate.SAMPLE_METRICS)
    assert rows[0]["step_share"] == 1.0  # every interval of the tune is a step
    assert rows[0]["bar_return_share"] == pytest.approx(1 / 3)  # bar 3 returns bar 1


def test_bad_metrics_are_refused():
    with pytest.raises(ValueError, match="registered twice"):
        reg.register(reg.Metric("step_share", "melody", "sample", "again", fn=len))
    with pytest.raises(ValueError, match="group 'loudness'"):
        reg.Metric("x", "loudness", "sample", "doc")
    with pytest.raises(ValueError, match="needs its fn"):
        reg.Metric("x", "melody", "sample", "doc", fidelity=True)
    with pytest.raises(ValueError, match="needs its label"):
        reg.Metric("x", "melody", "sample", "doc", fn=len, figures=("chart",))
    with pytest.raises(KeyError, match="no metric 'nope'"):
        reg.get("nope")
    with pytest.raises(ValueError, match="not a feature of a score"):
        features.score_features(Score(TPQ), ["copy_rate"])
