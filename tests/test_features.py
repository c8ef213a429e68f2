"""Feature distributions and the overlapping area (Yang & Lerch 2020) on known cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats
from symusic import Note, Score, Track

from tokentransfer import features as f


def _direct_oa(a: np.ndarray, b: np.ndarray) -> float:
    """The area under min(kde_a, kde_b) by adaptive quadrature of scipy's own KDEs."""
    ka, kb = stats.gaussian_kde(a), stats.gaussian_kde(b)
    lo = min(a.min(), b.min()) - 10 * max(ka.factor * a.std(ddof=1), kb.factor * b.std(ddof=1))
    hi = max(a.max(), b.max()) + 10 * max(ka.factor * a.std(ddof=1), kb.factor * b.std(ddof=1))
    value, _ = integrate.quad(lambda x: min(ka(x)[0], kb(x)[0]), lo, hi, limit=400, points=[0])
    return value


@pytest.mark.parametrize(
    ("shift", "scale_b"), [(0.0, 1.0), (0.7, 1.0), (1.5, 2.0), (4.0, 0.5), (20.0, 1.0)]
)
def test_overlap_area_equals_direct_quadrature(shift, scale_b):
    rng = np.random.default_rng(0)
    a = rng.normal(0.0, 1.0, 200)
    b = rng.normal(shift, scale_b, 150)
    assert f.overlap_area(a, b) == pytest.approx(_direct_oa(a, b), abs=1e-5)


def test_overlap_area_of_two_known_gaussians():
    """Large samples of N(0, 1) and N(1, 1): the KDEs approach the densities, whose overlap
    is 2 * Phi(-1/2)."""
    rng = np.random.default_rng(1)
    a, b = rng.normal(0, 1, 20000), rng.normal(1, 1, 20000)
    assert f.overlap_area(a, b) == pytest.approx(2 * stats.norm.cdf(-0.5), abs=0.02)


def test_overlap_area_bounds():
    rng = np.random.default_rng(2)
    a = rng.normal(0, 1, 100)
    assert f.overlap_area(a, a) == pytest.approx(1.0, abs=1e-6)  # whole line, tails included
    assert f.overlap_area(a, a + 100) < 1e-6
    assert f.overlap_area(np.zeros(5), np.zeros(7)) == 1.0  # one and the same point
    assert f.overlap_area(np.zeros(5), np.ones(7)) < 1e-6  # two points apart
    assert math.isnan(f.overlap_area(a, np.zeros(0)))


def test_point_mass_against_a_spread():
    """A set of equal distances has no Scott bandwidth: the floor keeps it a narrow bump."""
    spread = np.linspace(0.0, 1.0, 101)
    oa = f.overlap_area(np.zeros(10), spread)
    assert 0.0 < oa < 0.2


def test_kl_divergence():
    rng = np.random.default_rng(3)
    a = rng.normal(0, 1, 300)
    assert f.kl_divergence(a, a) == pytest.approx(0.0, abs=1e-12)
    near, far = f.kl_divergence(a, a + 0.5), f.kl_divergence(a, a + 2.0)
    assert 0 < near < far
    # two equal-width Gaussians 0.5 apart: KL = 0.5^2 / (2 sigma^2) with sigma^2 = 1 + h^2
    h = f.scott_bandwidth(a)
    assert near == pytest.approx(0.25 / (2 * (a.var(ddof=0) + h**2)), rel=0.15)


def test_scott_bandwidth_matches_scipy():
    a = np.random.default_rng(4).normal(3, 2, 77)
    kde = stats.gaussian_kde(a)
    assert f.scott_bandwidth(a) == pytest.approx(math.sqrt(kde.covariance[0, 0]))


def test_intra_and_inter_distances():
    x = np.array([[0.0, 0.0], [3.0, 4.0], [np.nan, 1.0]])  # the nan row is undefined
    np.testing.assert_allclose(f.intra_distances(x), [5.0])
    y = np.array([[0.0, 1.0]])
    np.testing.assert_allclose(f.inter_distances(x, y), [1.0, math.sqrt(9 + 9)])
    np.testing.assert_allclose(f.intra_distances(np.array([1.0, 4.0, 6.0])), [3.0, 5.0, 2.0])


def _score(notes):
    score = Score(480)
    track = Track(program=0)
    for time, dur, pitch in notes:
        track.notes.append(Note(time, dur, pitch, 80))
    score.tracks.append(track)
    return score


def test_silent_sample_scores_as_silence():
    feats = f.score_features(Score(480))
    assert feats["note_density"][0] == 0.0
    assert feats["empty_beat_rate"][0] == 1.0
    assert feats["polyphony"][0] == 0.0
    assert not feats["pitch_class_histogram"].any()
    assert math.isnan(feats["groove_consistency"][0])  # undefined: left out of its distances


def test_fidelity_prefers_the_same_texture():
    """Against chords of four quarter notes, chords of four score higher than single
    sixteenths, and a silent set scores lowest on note density."""
    rng = np.random.default_rng(5)

    def chords(n_bars, seed_shift):
        out = []
        for b in range(n_bars * 4):
            root = 48 + int(rng.integers(0, 12)) + seed_shift
            out += [(b * 480, 480, root + k) for k in (0, 4, 7, 12)]
        return _score(out)

    def runs(n_bars):
        return _score([(i * 120, 120, 60 + int(rng.integers(0, 24))) for i in range(n_bars * 16)])

    reference = [f.score_features(chords(4, 0)) for _ in range(12)]
    same = [f.score_features(chords(4, 0)) for _ in range(8)]
    other = [f.score_features(runs(4)) for _ in range(8)]
    silent = [f.score_features(Score(480)) for _ in range(8)]
    fid_same = f.feature_fidelity(same, reference)
    fid_other = f.feature_fidelity(other, reference)
    fid_silent = f.feature_fidelity(silent, reference)
    assert f.mean_overlap(fid_same) > f.mean_overlap(fid_other)
    assert fid_silent["note_density"]["oa"] < 0.05
    assert fid_silent["note_density"]["mean"] == 0.0
    assert fid_same["polyphony"]["ref_mean"] == pytest.approx(4.0)
    assert math.isnan(fid_same["pitch_class_histogram"]["mean"])  # a histogram has no mean
    assert set(fid_same) == set(f.FIDELITY_FEATURES)
