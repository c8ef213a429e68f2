"""Fused sampling: the transformer plus lambda times a cheap target model, under the grammar."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tests.tiny import tiny_model
from tokentransfer.baselines import NgramModel, start_tokens, transformer_samples
from tokentransfer.fusion import (
    FusedLogitsProcessor,
    chain_target,
    choose_lambda,
    fused_distribution,
    fused_samples,
    holdout,
    walk_target,
)
from tokentransfer.likelihood import fused_log_probs, grammar_masks, transformer_log_probs
from tokentransfer.midi import token_errors
from tokentransfer.model import special_ids

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def model(tok):
    return tiny_model(tok).eval()


@pytest.fixture(scope="module")
def chain(tunes, grammar):
    return chain_target(tunes[:10], 2, grammar)


def _kw(tok):
    return {"start": start_tokens(tok), "banned": sorted(special_ids(tok).values()), "batch": 3}


def _step_logits(model, tok, piece):
    """The model's logits for the token after ``[BOS] + piece``."""
    x = torch.tensor([[special_ids(tok)["bos"], *piece.tolist()]])
    with torch.no_grad():
        return model(input_ids=x).logits[0, -1].double().numpy()


def test_lambda_zero_is_exactly_the_transformer_under_the_mask(tok, grammar, tunes, model, chain):
    bos = special_ids(tok)["bos"]
    piece = tunes[12][:70]  # past the context of 32: windows
    fused = fused_log_probs(model, chain, piece, [0.0, 1.0], bos, grammar)
    alone = transformer_log_probs(model, piece, bos, grammar)
    assert np.array_equal(fused[0], alone)
    assert not np.allclose(fused[1], alone)
    # one step, as a distribution: lambda 0 is the masked softmax of the logits
    logits = _step_logits(model, tok, piece[:20])
    allowed = grammar.mask(grammar.replay(piece[:20]))[0]
    q = chain.next_dists([piece[:20].tolist()], grammar.replay(piece[:20]))[0]
    p0 = fused_distribution(logits, q, 0.0, allowed)
    e = np.where(allowed, np.exp(logits - logits.max()), 0.0)
    assert np.allclose(p0, e / e.sum(), rtol=0, atol=1e-15)
    assert (p0[~allowed] == 0).all()
    # and sampling with lambda 0 gives the transformer's own samples, token for token
    kw = _kw(tok)
    want = transformer_samples(model, 3, 60, 5, grammar=grammar, **kw)
    got = fused_samples(model, chain, 0.0, 3, 60, 5, **kw)
    assert all(np.array_equal(a, b) for a, b in zip(want, got, strict=True))


def test_large_lambda_concentrates_on_the_chain_support(tok, grammar, tunes, model, chain):
    piece = tunes[12]
    masks = grammar_masks(grammar, piece)
    on = []
    for i in (3, 10, 17, 25, 30):  # within the context of 32
        ctx = piece[:i]
        st = grammar.replay(ctx)
        support = chain.chain.distribution(ctx[-1:], allowed=masks[i]) > 0
        q = chain.next_dists([ctx.tolist()], st)[0]
        logits = _step_logits(model, tok, ctx)
        p0 = fused_distribution(logits, q, 0.0, masks[i])
        p50 = fused_distribution(logits, q, 50.0, masks[i])
        on.append((p0[support].sum(), p50[support].sum()))
    assert min(b for _, b in on) > 1 - 1e-9
    assert max(a for a, _ in on) < 0.9  # the untrained transformer alone is not on it
    # samples at a large lambda make only transitions the chain has seen, and are valid REMI
    samples = fused_samples(model, chain, 30.0, 3, 80, 1, **_kw(tok))
    for s in samples:
        assert token_errors(tok, s) == 0
        seq = np.concatenate([[grammar.bar_id], s])
        m = grammar_masks(grammar, seq)
        for i in range(1, len(seq)):
            assert chain.chain.distribution(seq[i - 1 : i], allowed=m[i])[seq[i]] > 0


def test_the_sampler_draws_from_the_scored_distribution(tok, grammar, tunes, model, chain):
    """One step of the processor, softmaxed, is the fused distribution the likelihood scores."""
    bos = special_ids(tok)["bos"]
    piece = tunes[3][:25]
    for target in (chain, walk_target(tunes[:10], tok)):
        proc = FusedLogitsProcessor(grammar, target, 1.5, skip=sorted(special_ids(tok).values()))
        ids = torch.tensor([[bos, *piece.tolist()]])
        logits = _step_logits(model, tok, piece)
        scores = proc(ids, torch.from_numpy(logits).float()[None])
        p = torch.softmax(scores.double(), 1)[0].numpy()
        q = target.next_dists([piece.tolist()], grammar.replay(piece))[0]
        want = fused_distribution(logits, q, 1.5, grammar.mask(grammar.replay(piece))[0])
        assert np.allclose(p, want, atol=1e-6)
        nxt = np.concatenate([piece, [int(np.argmax(want))]])
        lp = fused_log_probs(model, target, nxt, [1.5], bos, grammar)[0, -1]
        assert lp == pytest.approx(math.log2(want.max()), abs=1e-5)


def test_fused_samples_are_valid_and_deterministic_per_sample(tok, grammar, tunes, model):
    walk = walk_target(tunes[:10], tok)
    kw = _kw(tok)
    a = fused_samples(model, walk, 1.0, 3, 50, 7, **kw)
    b = fused_samples(model, walk, 1.0, 2, 50, 7, **{**kw, "batch": 1})
    assert all(len(s) == 50 and token_errors(tok, s) == 0 for s in a)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    c = fused_samples(model, walk, 1.0, 3, 50, 8, **kw)
    assert not np.array_equal(a[0], c[0])
    with pytest.raises(ValueError, match="grammar"):
        from tokentransfer.likelihood import ChainTarget

        fused_samples(model, ChainTarget(NgramModel(1, len(tok)).fit(tunes)), 1.0, 1, 5, 0, **kw)


def test_holdout_keeps_groups_whole_and_cuts_a_single_piece():
    seqs = [np.arange(10) + i for i in range(6)]
    groups = ["a", "a", "b", "c", "c", "d"]
    fit, held = holdout(seqs, 0.25, seed=3, groups=groups)
    held_ids = {int(s[0]) for s, _ in held}
    assert all(cut == 1 for _, cut in held) and len(fit) + len(held) == 6
    held_groups = {groups[i] for i in held_ids}
    assert len(held_groups) == 1  # round(0.25 * 4 groups)
    assert {groups[i] for i in range(6) if i not in held_ids}.isdisjoint(held_groups)
    fit1, held1 = holdout(seqs[:1], 0.2)
    assert len(fit1[0]) == 8 and held1[0][1] == 8 and len(held1[0][0]) == 10
    assert holdout(seqs, 0.25, seed=3, groups=groups)[1][0][0][0] == held[0][0][0]


def test_choose_lambda_reports_the_grid_and_picks_the_fewest_bits(tok, grammar, tunes, model):
    bos = special_ids(tok)["bos"]
    grid = (0.0, 0.5, 1.0, 3.0)
    choice = choose_lambda(model, lambda f: chain_target(f, 2, grammar), tunes[:6], grid, bos)
    assert sorted(choice.bits) == list(grid)
    assert choice.bits[choice.lam] == min(choice.bits.values())
    assert choice.lam > 0  # an untrained transformer gains from the chain
    assert choice.held_pieces == 1 and choice.fit_pieces == 5 and choice.tokens > 0
    rows = choice.rows()
    assert [r["lam"] for r in rows] == list(grid) and sum(r["chosen"] for r in rows) == 1
    # the held-out piece scored by hand at the chosen lambda
    fit, held = holdout(tunes[:6], 0.2, 0)
    lp = fused_log_probs(
        model, chain_target(fit, 2, grammar), held[0][0], [choice.lam], bos, grammar
    )
    assert -lp.mean() == pytest.approx(choice.bits[choice.lam])


def test_choose_lambda_with_one_group_reports_the_tail_but_chooses_zero(tok, grammar, tunes, model):
    """One group (k = 1): its tail favours a lambda > 0 (the untrained transformer gains from
    a chain fitted on the head of the same pieces), yet the choice is 0; two groups choose."""
    bos = special_ids(tok)["bos"]
    grid = (0.0, 0.5, 1.0)
    make = lambda f: chain_target(f, 2, grammar)  # noqa: E731
    one = choose_lambda(model, make, tunes[:1], grid, bos)
    assert one.tokens > 0 and min(one.bits, key=one.bits.get) > 0
    assert one.lam == 0.0 and [r["chosen"] for r in one.rows()] == [1, 0, 0]
    same = choose_lambda(model, make, tunes[:4], grid, bos, groups=["a"] * 4)
    assert same.lam == 0.0 and min(same.bits, key=same.bits.get) > 0
    two = choose_lambda(model, make, tunes[:4], grid, bos, groups=["a", "a", "b", "b"])
    assert two.lam == min(two.bits, key=lambda lam: (two.bits[lam], lam)) > 0


def test_choose_lambda_scores_at_most_max_tokens_held_out_tokens(tok, grammar, tunes, model):
    """With max_tokens the held-out pieces are cut: each scores its first tokens from its cut,
    and the bits are those of exactly those tokens."""
    from tokentransfer.fusion import cap_held

    bos = special_ids(tok)["bos"]
    make = lambda f: chain_target(f, 2, grammar)  # noqa: E731
    full = choose_lambda(model, make, tunes[:6], (0.0, 1.0), bos)
    capped = choose_lambda(model, make, tunes[:6], (0.0, 1.0), bos, max_tokens=80)
    assert full.tokens > 80 and capped.tokens == 80
    fit, held = holdout(tunes[:6], 0.2, 0)
    ((s, cut),) = cap_held(held, 80)
    assert cut == 1 and np.array_equal(s, held[0][0][:81])
    lp = fused_log_probs(model, make(fit), s, [1.0], bos, grammar)
    assert -lp.mean() == pytest.approx(capped.bits[1.0])
    # a budget spread over several held-out pairs, in order, the last cut to what is left
    pairs = [(np.arange(300), 100), (np.arange(50), 10), (np.arange(400), 1)]
    assert [(len(s), c) for s, c in cap_held(pairs, 150)] == [(164, 100), (50, 10), (47, 1)]
