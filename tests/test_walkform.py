"""The walk's melody and form tables (tokentransfer.walkform) on hand-built token sequences of
the real miditok tokenizer, against hand-counted intervals and return labels."""

from __future__ import annotations

import numpy as np
import pytest

from tokentransfer.grammar import Grammar, voice_refs
from tokentransfer.walkform import (
    LAGS,
    bar_sets,
    count_tables,
    independent_intervals,
    jaccard,
    load_tables,
    return_labels,
    return_share,
    save_tables,
)
from tokentransfer.walkjit import TAIL


def note(tok, pitch: int, program: int = 0) -> list[int]:
    return [tok.vocab[n] for n in (f"Program_{program}", f"Pitch_{pitch}", "Velocity_63")] + [
        tok.vocab["Duration_1.0.8"]
    ]


def onset(tok, pos: int, *pitches: int, program: int = 0) -> list[int]:
    out = [tok.vocab[f"Position_{pos}"]]
    for p in pitches:
        out += note(tok, p, program)
    return out


def bar(tok) -> list[int]:
    return [tok.vocab["Bar_None"], tok.vocab["TimeSig_4/4"]]


def counts(hist: np.ndarray) -> dict[int, int]:
    return {int(i) - TAIL: int(c) for i, c in enumerate(hist) if c}


def test_intervals_of_a_hand_built_piece(tok):
    """Onsets {60, 64}, {62}, {65, 67}: the melodic interval of each note is to the note of the
    same rank (or the last) of its program's previous onset, the chord interval to the pitch
    just played; the first onset has no melodic reference."""
    seq = np.array(bar(tok) + onset(tok, 0, 60, 64) + onset(tok, 8, 62) + onset(tok, 16, 65, 67))
    t = count_tables([seq], tok)
    assert counts(t.mel) == {2: 1, 3: 1, 5: 1}  # 62-60, 65-62, 67-62
    assert counts(t.chord) == {4: 1, 2: 1}  # 64-60, 67-65
    assert np.flatnonzero(t.marginal).tolist() == [60, 62, 64, 65, 67]
    # the grammar state carries the same references, token by token
    g = Grammar(tok)
    st = g.new_state(1)
    refs = []
    for x in seq:
        if g.ttype[x] == g.pitch_code:
            refs.append(voice_refs(st))
        g.advance(st, np.array([x]))
    assert refs == [(-1, -1), (-1, 60), (60, -1), (62, -1), (62, 65)]


def test_voices_are_kept_per_program_and_intervals_clipped(tok):
    """Two programs alternate onsets: each note's melodic reference is its own program's
    previous onset; an interval of 30 semitones falls in the tail bin."""
    seq = np.array(
        bar(tok)
        + onset(tok, 0, 40, program=32)
        + onset(tok, 4, 72, program=0)
        + onset(tok, 8, 43, program=32)
        + onset(tok, 12, 74, program=0)
        + onset(tok, 16, 73, program=32)
    )
    t = count_tables([seq], tok)
    assert counts(t.mel) == {3: 1, 2: 1, TAIL: 1}  # 43-40, 74-72, 73-43 clipped
    assert not t.chord.any()


def test_return_labels_and_share():
    a, b, c = frozenset({(0, 60), (8, 64)}), frozenset({(0, 62), (8, 65)}), frozenset({(0, 70)})
    near_a = frozenset({(0, 60), (8, 64), (16, 67)})  # Jaccard 2/3 with a
    sets = [a, b, a, b, c, near_a, frozenset(), frozenset()]
    # bars 2, 3 return at lag 2; bar 5 is near bars 0 and 2, at lags 5 and 3: not lags, new
    labels = return_labels(sets)
    assert labels.tolist() == [0, 0, 2, 2, 0, 0, 0, 0]  # empty bars never return
    assert jaccard(a, near_a) == pytest.approx(2 / 3)
    assert return_labels([a, b, c, b, a, near_a], LAGS).tolist() == [0, 0, 0, 2, 3, 1]
    assert return_share([a, b, a, b, c, near_a]) == pytest.approx(3 / 6)  # bars 2, 3, 5
    assert return_share([]) == 0.0


def test_bar_sets_and_the_form_chain_of_repeated_bars(tok):
    """A piece A B A B A B: bars 2.. return at lag 2 after a bar that returned at lag 2."""
    a = bar(tok) + onset(tok, 0, 60) + onset(tok, 8, 64)
    b = bar(tok) + onset(tok, 0, 62) + onset(tok, 16, 65)
    seq = np.array((a + b) * 3)
    g = Grammar(tok)
    sets = bar_sets(seq, g)
    assert sets[0] == {(0, 60), (8, 64)} and sets[1] == {(0, 62), (16, 65)} and len(sets) == 6
    t = count_tables([seq], tok)
    lag2 = 1 + LAGS.index(2)
    assert t.ret.sum() == 6
    assert t.ret[0, 0, 0] == t.ret[0, 1, 0] == 1  # bars 0, 1: new after new
    assert t.ret[0, 2, lag2] == 1  # bar 2 returns at lag 2 after a new bar
    assert t.ret[lag2, 3:6, lag2].tolist() == [1, 1, 1]
    p = t.return_probabilities()
    assert np.allclose(p.sum(axis=2), 1.0)
    # backed off: overall shares new 2/6, lag 2 4/6; after a lag-2 bar 3 of 3 at lag 2, so
    # P(lag 2 | lag 2) = (3 + 2 * 4/6) / (3 + 2); at phase 4, one bar of one: (1 + 2 * that) / 3
    after = (3 + 2 * 4 / 6) / 5
    assert p[lag2, 4, lag2] == pytest.approx((1 + 2 * after) / 3)
    assert p[lag2, 10, lag2] == pytest.approx(after)  # a phase no piece reached: backed off
    assert p[lag2, 10, 1] == 0.0  # a lag the pieces never returned at
    none = count_tables([], tok).return_probabilities()
    assert (none[:, :, 0] == 1.0).all()  # no bars counted: no returns


def test_factors_and_the_independent_intervals(tok, tmp_path):
    seq = np.array(bar(tok) + onset(tok, 0, 60) + onset(tok, 8, 62) + onset(tok, 16, 64))
    t = count_tables([seq], tok)
    r = independent_intervals(t.marginal)
    assert r.shape == (2 * TAIL + 1,) and np.isclose(r.sum(), 1.0)
    # three pitches 60, 62, 64 drawn independently: d = 0 (3 of 9), +-2 (2 of 9), +-4 (1 of 9)
    assert r[TAIL] > r[TAIL + 2] > r[TAIL + 4] > r[TAIL + 1] and np.isclose(
        r[TAIL + 2], r[TAIL - 2]
    )
    q_mel, q_chord = t.factors()  # the walk's: the plain interval distributions
    assert np.isclose(q_mel.sum(), 1.0) and q_mel.argmax() == TAIL + 2
    c_mel, _ = t.factors(corrected=True)
    assert np.allclose(c_mel, q_mel / r)
    save_tables(t, tmp_path / "walk_tables.npz")
    back = load_tables(tmp_path / "walk_tables.npz")
    for name in ("mel", "chord", "marginal", "ret", "lags"):
        assert np.array_equal(getattr(back, name), getattr(t, name))
    np.savez(tmp_path / "other.npz", x=np.zeros(2))
    with pytest.raises(ValueError, match="not the walk's tables"):
        load_tables(tmp_path / "other.npz")
