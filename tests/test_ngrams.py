"""n-gram counts and Jensen–Shannon divergence, on hand-made sequences with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tokentransfer.ngrams import js_divergence, ngram_counts, noise_floor, unpack


def test_counts_do_not_cross_files():
    keys, counts = ngram_counts([np.array([1, 2, 3]), np.array([3, 1])], n=2)
    assert unpack(keys, 2).tolist() == [[1, 2], [2, 3], [3, 1]] and counts.tolist() == [1, 1, 1]
    keys, counts = ngram_counts([np.array([7, 7, 7, 7])], n=3)
    assert unpack(keys, 3).tolist() == [[7, 7, 7]] and counts.tolist() == [2]


def test_identical_tables_have_zero_divergence():
    t = ngram_counts([np.array([1, 2, 1, 2, 3])])
    assert js_divergence(t, t) == 0.0


def test_disjoint_tables_have_divergence_one():
    a = ngram_counts([np.array([1, 2, 1, 2])])
    b = ngram_counts([np.array([5, 6, 5, 6])])
    assert js_divergence(a, b) == pytest.approx(1.0)


def test_known_value():
    # p = {x: 1}, q = {x: .5, y: .5}: JSD = 1/2 KL(p||m) + 1/2 KL(q||m), m = {x: .75, y: .25}
    a = ngram_counts([np.array([0, 1]), np.array([0, 1])])
    b = ngram_counts([np.array([0, 1]), np.array([1, 0])])
    expected = 0.5 * math.log2(1 / 0.75) + 0.5 * (0.5 * math.log2(0.5 / 0.75) + 0.5 * math.log2(2))
    assert js_divergence(a, b) == pytest.approx(expected)
    assert js_divergence(b, a) == pytest.approx(expected)


def test_noise_floor_is_small_for_a_homogeneous_corpus():
    rng = np.random.default_rng(0)
    seqs = [rng.integers(0, 4, 400) for _ in range(40)]
    mean, _ = noise_floor(seqs, seed=0)
    other = [rng.integers(2, 6, 400) for _ in range(20)]
    far = js_divergence(ngram_counts(seqs), ngram_counts(other))
    assert mean < 0.02 < 0.3 < far


def test_ids_out_of_range_are_refused():
    with pytest.raises(ValueError, match="token ids"):
        ngram_counts([np.array([1, 1 << 15])])
