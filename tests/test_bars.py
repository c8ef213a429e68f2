"""Lengths in bars (tokentransfer.bars): counting and cutting on real tokens, and sampling a
real chain to a number of bars."""

from __future__ import annotations

import numpy as np
import pytest

from tokentransfer import bars as B
from tokentransfer.baselines import NgramModel, bar_id
from tokentransfer.grammar import Grammar
from tokentransfer.midi import decode, token_errors
from tokentransfer.tokenize import tokenize_file


@pytest.fixture(scope="module")
def tunes(midi_corpora, tok):
    return [tokenize_file(tok, p) for p in sorted((midi_corpora / "tunes").glob("*.mid"))]


def test_count_and_cut_on_a_hand_sequence():
    bar = 7
    ids = np.array([7, 1, 2, 7, 3, 7, 4, 5, 6, 7, 8])
    assert B.count_bars(ids, bar) == 4
    assert B.bar_spans(ids, bar) == [(0, 3), (3, 5), (5, 9), (9, 11)]
    assert B.cut_bars(ids, 2, bar).tolist() == [7, 1, 2, 7, 3]
    assert B.cut_bars(ids, 4, bar).tolist() == ids.tolist()  # no 5th bar line: all of it
    assert not B.complete(ids, 4, bar) and B.complete(ids, 3, bar)
    # after a prompt of 4 tokens (ending inside a bar): its bar's rest, then 1 bar
    assert B.cut_bars(ids, 1, bar, start=4).tolist() == [7, 1, 2, 7, 3, 7, 4, 5, 6]
    with pytest.raises(ValueError, match="bars"):
        B.cut_bars(ids, -1, bar)


def test_cut_real_piece_keeps_whole_bars(tunes, tok):
    bar = bar_id(tok)
    piece = tunes[0]
    assert B.count_bars(piece, bar) > 8
    cut = B.cut_bars(piece, 8, bar)
    assert B.count_bars(cut, bar) == 8
    assert piece[len(cut)] == bar  # the cut stops right before bar 9 begins
    assert token_errors(tok, cut) == 0
    per_bar = B.tokens_per_bar(tunes, bar)
    lengths = [len(B.cut_bars(t, 1, bar, int(B.bar_starts(t, bar)[0]))) for t in tunes]
    assert per_bar > 4 and per_bar < max(len(t) for t in tunes)
    assert B.budget(16, per_bar) > 16 * per_bar and min(lengths) > 0


def test_sample_bars_with_a_real_chain(tunes, tok):
    bar = bar_id(tok)
    chain = NgramModel(3, len(tok.vocab)).fit(tunes)
    g = Grammar(tok)
    calls = []

    def sample(n, length, seed, prompt):
        calls.append(length)
        return chain.sample(n, length, seed, start=prompt, grammar=g)

    per_bar = B.tokens_per_bar(tunes, bar)
    out, rec = B.sample_bars(sample, 3, 8, 0, per_bar / 4, bar_id=bar)  # a budget too small
    assert rec["draws"] == len(calls) >= 2 and calls[1] == 2 * calls[0]  # grown
    assert rec["short"] == 0
    for s in out:
        assert B.count_bars(s, bar) == 8
        assert token_errors(tok, s) == 0
        assert decode(tok, s).note_num() > 0
    again, _ = B.sample_bars(sample, 3, 8, 0, per_bar / 4, bar_id=bar)
    assert all(np.array_equal(a, b) for a, b in zip(out, again, strict=True))
    # a prompt: the samples start with it, then its bar's rest and 4 bars
    prompt = B.cut_bars(tunes[1], 2, bar)
    out, rec = B.sample_bars(sample, 2, 4, 1, per_bar, prompt=prompt, bar_id=bar)
    for s in out:
        assert np.array_equal(s[: len(prompt)], prompt)
        assert B.count_bars(s[len(prompt) :], bar) == 4
    # a cap on the budget: the samples keep what they have and the record says so
    out, rec = B.sample_bars(sample, 2, 50, 2, 2.0, bar_id=bar, max_tokens=40)
    assert rec["token_budget"] == 40 and rec["short"] == 2
    assert all(len(s) <= 40 for s in out)
