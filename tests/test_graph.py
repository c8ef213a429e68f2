"""Token graphs on hand-made sequences with known counts."""

from __future__ import annotations

import numpy as np
import pytest

from tokentransfer.graph import (
    cooccurrence,
    load_matrix,
    offset_counts,
    save_matrix,
    stats,
    successors,
)


def test_offset_counts_within_pieces_only():
    m = offset_counts([np.array([0, 1, 2]), np.array([2, 0])], 4, 1)
    assert m.toarray().tolist() == [
        [0, 1, 0, 0],
        [0, 0, 1, 0],
        [1, 0, 0, 0],
        [0, 0, 0, 0],
    ]  # no 2 -> 2 across the piece boundary


def test_weighted_window_and_self_loops():
    seqs = [np.array([0, 1, 0, 1, 1])]
    a = cooccurrence(seqs, 3, [1.0, 0.5]).toarray()
    # offset 1: 0->1 x2, 1->0 x1, 1->1 x1 ; offset 2: 0->0 x1, 1->1 x1, 0->1 x1
    assert a[0, 1] == 2 + 0.5 and a[1, 0] == 1
    assert a[0, 0] == 0 and a[1, 1] == 0  # diagonal dropped by default
    b = cooccurrence(seqs, 3, [1.0, 0.5], self_loops=True).toarray()
    assert b[1, 1] == 1 + 0.5 and b[0, 0] == 0.5
    assert successors(seqs, 3).toarray()[1, 1] == 1  # successors keep repeats


def test_out_of_range_ids_and_empty_offsets():
    with pytest.raises(ValueError, match="out of range"):
        offset_counts([np.array([0, 5])], 3, 1)
    with pytest.raises(ValueError, match="graph.offset_weights"):
        cooccurrence([np.array([0, 1])], 3, [])


def test_stats_and_round_trip(tmp_path):
    a = cooccurrence([np.array([0, 1, 2, 1, 0]), np.array([4, 4])], 6, [1.0])
    s = stats(a)
    assert s["nodes"] == 3  # 3 and 5 never occur; 4 only follows itself (a self loop)
    assert s["directed_edges"] == 4 and s["undirected_pairs"] == 2
    assert s["density"] == pytest.approx(4 / 6)
    save_matrix(a, tmp_path / "a.npz")
    assert (load_matrix(tmp_path / "a.npz") != a).nnz == 0
