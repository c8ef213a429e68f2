"""Held-out bits per token: n-gram chains, the walk, a HF causal LM (windows, grammar mask)."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
import torch

from tests.tiny import tiny_model
from tokentransfer.baselines import NgramModel
from tokentransfer.grammar import Grammar
from tokentransfer.likelihood import (
    FLOOR,
    ChainTarget,
    bits_per_token,
    chain_log_probs,
    corpus_bits,
    grammar_masks,
    scored_pieces,
    transformer_log_probs,
    walk_log_probs,
    windows,
)
from tokentransfer.model import special_ids

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# --------------------------------------------------------------------------- n-gram chain


def test_chain_bits_equal_a_direct_computation_on_a_toy_corpus():
    """Bigram with absolute discounting, the unigram floor over seen tokens, then the
    likelihood floor over the vocabulary: computed here from plain counts."""
    v, d, f = 6, 0.5, 0.01  # token 5 never occurs in training
    train = [np.array([0, 1, 2, 1, 2, 3]), np.array([0, 2, 1, 4])]
    test = [np.array([0, 1, 2, 3, 4]), np.array([2, 5, 1])]
    chain = NgramModel(2, v, discount=d, floor=f).fit(train)

    uni = Counter(t for s in train for t in s.tolist())
    n_tok = sum(uni.values())
    bi = Counter(
        (a, b) for s in train for a, b in zip(s[:-1].tolist(), s[1:].tolist(), strict=True)
    )

    def p_uni(w):
        return (1 - f) * uni[w] / n_tok + f / len(uni) if uni[w] else 0.0

    def p_bi(h, w):
        c_h = sum(c for (a, _), c in bi.items() if a == h)
        if not c_h:
            return p_uni(w)
        n1 = sum(1 for (a, _) in bi if a == h)
        return max(bi[(h, w)] - d, 0) / c_h + d * n1 / c_h * p_uni(w)

    logs = []
    for s in test:
        for h, w in zip(s[:-1].tolist(), s[1:].tolist(), strict=True):
            logs.append(math.log2((1 - FLOOR) * p_bi(h, w) + FLOOR / v))
    direct = -sum(logs) / len(logs)

    got = corpus_bits(lambda s: chain_log_probs(chain, s), test)
    assert got["tokens"] == len(logs) == 6
    assert got["forbidden"] == 0  # token 5, unseen, costs log2(FLOOR / V), not infinity
    assert got["bits_per_token"] == pytest.approx(direct, rel=1e-12)
    # without the likelihood floor the unseen token would be infinitely costly
    raw = corpus_bits(lambda s: chain_log_probs(chain, s, floor=0.0), test)
    assert raw["bits_per_token"] == math.inf and raw["forbidden"] == 1


def test_chain_under_the_grammar_renormalises_over_the_allowed_tokens(tok, tunes):
    chain = NgramModel(3, len(tok)).fit(tunes[:8])
    g = Grammar(tok)
    piece = tunes[12][:80]
    got = chain_log_probs(chain, piece, g)
    raw = chain_log_probs(chain, piece)
    for i in (1, 5, 17, 40, 79):
        allowed = g.mask(g.replay(piece[:i]))[0]
        p = chain.distribution(piece[max(i - 2, 0) : i])
        want = (1 - FLOOR) * p[piece[i]] / p[allowed].sum() + FLOOR / allowed.sum()
        assert got[i - 1] == pytest.approx(math.log2(want), rel=1e-10)
    # the mask moves mass onto the tokens of the piece: fewer bits, for every token
    assert (got >= raw - 1e-12).all() and got.mean() > raw.mean() + 0.1


def test_grammar_masks_follow_the_piece_and_real_pieces_have_no_forbidden_token(tok, tunes):
    g = Grammar(tok)
    piece = tunes[3]
    masks = grammar_masks(g, piece)
    assert masks.shape == (len(piece), len(tok))
    assert masks[0].sum() == 1 and masks[0, g.bar_id]
    assert masks[np.arange(len(piece)), piece].all()
    broken = piece.copy()
    broken[10] = broken[9]  # a token twice: not valid REMI here
    assert not grammar_masks(g, broken)[np.arange(len(piece)), broken].all()


def test_bits_per_token_counts_forbidden_tokens():
    out = bits_per_token([np.array([-1.0, -3.0]), np.array([-2.0])])
    assert out == {"bits_per_token": 2.0, "tokens": 3, "forbidden": 0}
    out = bits_per_token([np.array([-1.0, -np.inf])])
    assert out["bits_per_token"] == math.inf and out["forbidden"] == 1
    assert math.isnan(bits_per_token([np.zeros(0)])["bits_per_token"])


# --------------------------------------------------------------------------- walk


def test_walk_bits_are_finite_and_match_its_target_model(tok, tunes):
    from tokentransfer.fusion import walk_target

    target = walk_target(tunes[:8], tok)
    piece = tunes[12]
    lp = walk_log_probs(target.walker, piece)
    rows = target.dists(piece)
    assert np.allclose(rows.sum(1), 1.0)
    assert np.allclose(np.log2(rows[np.arange(len(piece) - 1), piece[1:]]), lp)
    bits = corpus_bits(lambda s: walk_log_probs(target.walker, s), tunes[12:])
    assert bits["forbidden"] == 0 and 0 < bits["bits_per_token"] < math.log2(len(tok))
    # the walk fitted on the style predicts it better than one fitted on a single other piece
    other = walk_target(tunes[:1], tok)
    worse = corpus_bits(lambda s: walk_log_probs(other.walker, s), tunes[12:])
    assert worse["bits_per_token"] > bits["bits_per_token"]


# --------------------------------------------------------------------------- transformer


def test_windows_score_every_target_once_with_half_a_context_before_it():
    for n, ctx in [(5, 8), (8, 8), (9, 8), (40, 8), (41, 7), (100, 2)]:
        spans = windows(n, ctx, 2)
        targets = [j for a, b, t in spans for j in range(t, b)]
        assert targets == list(range(2, n))
        for a, b, t in spans:
            assert b - a <= ctx and (a == 0 or t - a >= ctx // 2)


def test_transformer_log_probs_equal_a_direct_forward_pass(tok, tunes):
    torch.manual_seed(0)
    model = tiny_model(tok, context=16).eval()
    bos = special_ids(tok)["bos"]
    piece = tunes[5][:45]
    x = torch.tensor(np.concatenate([[bos], piece]))
    lp = transformer_log_probs(model, piece, bos, batch=2)
    assert lp.shape == (len(piece) - 1,)
    for a, b, t in windows(len(x), 16, 2):
        for j in range(t, b):  # target x[j] (piece token j - 1), from x[a:j] alone
            with torch.no_grad():
                logits = model(input_ids=x[None, a:j]).logits[0, -1].double()
            want = torch.log_softmax(logits, 0)[x[j]].item() / math.log(2)
            assert lp[j - 2] == pytest.approx(want, abs=1e-5)  # float32 logits
    # under the grammar: renormalised over the allowed tokens, computed directly for one token
    g = Grammar(tok)
    masked = transformer_log_probs(model, piece, bos, g)
    i = 7
    with torch.no_grad():
        logits = model(input_ids=x[None, : i + 1]).logits[0, -1].double()
    allowed = torch.from_numpy(g.mask(g.replay(piece[:i]))[0])
    want = torch.log_softmax(logits.masked_fill(~allowed, -math.inf), 0)[int(piece[i])]
    assert masked[i - 1] == pytest.approx(want.item() / math.log(2), abs=1e-5)
    assert (masked >= lp - 1e-9).all() and masked.mean() > lp.mean()


def test_chain_target_without_grammar_sums_to_one(tok, tunes):
    chain = NgramModel(2, len(tok)).fit(tunes[:4])
    rows = ChainTarget(chain).dists(tunes[6][:30])
    assert rows.shape == (29, len(tok)) and np.allclose(rows.sum(1), 1.0)
    assert (rows > 0).all()


def test_scored_pieces_spread_the_token_budget_over_the_pieces():
    seqs = [np.arange(300), np.arange(50), np.arange(400), np.arange(10)]
    # 200 tokens over 4 pieces: each cut to max(64, 50) = 64 tokens, until 200 are taken
    cut = scored_pieces(seqs, 200)
    assert [len(s) for s in cut] == [64, 50, 64, 10]
    assert all(np.array_equal(c, s[: len(c)]) for c, s in zip(cut, seqs, strict=True))
    # a budget that runs out cuts the last piece scored to what is left
    assert [len(s) for s in scored_pieces(seqs, 100)] == [64, 36]
    # a large budget gives each piece budget / pieces tokens; None keeps everything
    assert [len(s) for s in scored_pieces(seqs, 4000)] == [300, 50, 400, 10]
    assert [len(s) for s in scored_pieces(seqs, None)] == [300, 50, 400, 10]
    assert scored_pieces([], 100) == []
    # corpus_bits with a budget scores exactly those tokens (token 0 of a piece is given)
    logp = lambda s: -np.ones(len(s) - 1)  # noqa: E731
    assert corpus_bits(logp, seqs, 200)["tokens"] == 63 + 49 + 63 + 9
    assert corpus_bits(logp, seqs)["tokens"] == 299 + 49 + 399 + 9
