"""The baselines: n-gram chain, transformer sampling (tiny models built here), real excerpts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tokentransfer.baselines import (
    NgramModel,
    bar_id,
    real_excerpts,
    start_tokens,
    transformer_samples,
)
from tokentransfer.model import ModelSpec, build_model, special_ids
from tokentransfer.tokenize import tokenize_file

V = 6
# a tiny corpus over ids 0..4 (5 never occurs); pieces start with 0 (a "bar")
CORPUS = [
    np.array([0, 1, 2, 1, 2, 3]),
    np.array([0, 1, 3, 1, 2]),
    np.array([0, 2, 2, 4]),
]


def fitted(order: int, discount: float = 0.75) -> NgramModel:
    return NgramModel(order, V, discount).fit(CORPUS)


def same(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


# ---------------------------------------------------------------------------- n-gram chain
@pytest.mark.parametrize("order", [1, 2, 3])
@pytest.mark.parametrize("discount", [0.0, 0.5, 0.75, 1.0])
def test_distributions_sum_to_one(order, discount):
    m = fitted(order, discount)
    for ctx in [(), (0,), (1,), (4,), (5,), (0, 1), (1, 2), (4, 0), (5, 5), (2, 1, 2)]:
        p = m.distribution(ctx)
        assert p.shape == (V,)
        assert p.sum() == pytest.approx(1.0)
        assert (p >= 0).all()
        assert m.prob(ctx, 1) == pytest.approx(p[1])


def test_bigram_with_no_discount_is_the_mle():
    m = fitted(2, discount=0.0)
    # hand counts: after 1: 2 (x3), 3 (x1); after 2: 1, 3, 2, 4 (x1 each)
    assert m.prob([1], 2) == pytest.approx(3 / 4)
    assert m.prob([1], 3) == pytest.approx(1 / 4)
    assert m.prob([1], 0) == 0.0
    for w in (1, 2, 3, 4):
        assert m.prob([2], w) == pytest.approx(1 / 4)
    assert m.prob([0], 1) == pytest.approx(2 / 3)
    # the context is only the last token
    assert m.prob([4, 0, 1], 2) == pytest.approx(3 / 4)


def test_bigram_interpolation_by_hand():
    d = 0.5
    m = fitted(2, d)
    uni = m.distribution(())
    # after 1: counts {2: 3, 3: 1}, c = 4, two distinct successors
    expect = d * 2 / 4 * uni
    expect[2] += (3 - d) / 4
    expect[3] += (1 - d) / 4
    np.testing.assert_allclose(m.distribution([1]), expect)
    # unigram: 15 tokens, ids 0..4 seen, floor 0.01 over the 5 seen ones
    counts = np.array([3, 4, 5, 2, 1, 0])
    np.testing.assert_allclose(uni, 0.99 * counts / 15 + 0.01 * (counts > 0) / 5)


@pytest.mark.parametrize("order", [2, 3])
def test_unseen_transition_between_seen_tokens_is_possible(order):
    m, mle = fitted(order), fitted(order, discount=0.0)
    # 0 -> 4, 1 -> 4, (0, 1) -> 4 and (1, 2) -> 4 never occur, yet 0, 1, 2 and 4 were seen
    for ctx in ([1, 0], [0, 1]) + (([1],) if order == 2 else ([1, 2],)):
        assert m.prob(ctx, 4) > 0
        assert mle.prob(ctx, 4) == 0.0
    assert m.prob([0, 1], 0) > 0


def test_unseen_context_backs_off_to_the_lower_order():
    tri, bi, uni = fitted(3), fitted(2), fitted(1)
    # (4, 1) never occurs as a context: the trigram's distribution is the bigram's after 1
    np.testing.assert_allclose(tri.distribution([4, 1]), bi.distribution([1]))
    np.testing.assert_allclose(tri.distribution([1]), bi.distribution([1]))
    # 4 is never followed by anything and 5 never occurs: back off to the unigram
    np.testing.assert_allclose(bi.distribution([4]), uni.distribution(()))
    np.testing.assert_allclose(tri.distribution([5, 4]), uni.distribution(()))
    np.testing.assert_allclose(bi.distribution([]), uni.distribution([3]))
    # a seen context differs from its back-off
    assert not np.allclose(tri.distribution([0, 1]), bi.distribution([1]))


@pytest.mark.parametrize("order", [1, 2, 3])
def test_tokens_never_seen_get_zero_and_are_never_sampled(order):
    m = fitted(order)
    for ctx in [(), (1,), (4,), (0, 1), (5, 5)]:
        assert m.prob(ctx, 5) == 0.0
    assert m.prob((1,), 99) == 0.0
    samples = m.sample(4, 200, seed=0)
    assert all(5 not in s for s in samples)


@pytest.mark.parametrize("order", [1, 2, 3])
def test_samples_are_exact_length_and_seeded(order):
    m = fitted(order)
    a, b, c = m.sample(3, 50, seed=1), m.sample(3, 50, seed=1), m.sample(3, 50, seed=2)
    assert same(a, b) and not same(a, c)
    for s in a:
        assert len(s) == 50 and s.dtype == np.int64
        assert s[0] == 0  # the most frequent first token of the pieces
    # sample i does not depend on how many samples are drawn
    assert same(m.sample(5, 50, seed=1)[:3], a)
    # a prompt is kept in front and not counted
    p = m.sample(2, 10, seed=3, start=[4, 4, 1])
    assert all(len(s) == 13 and list(s[:3]) == [4, 4, 1] for s in p)
    assert [len(s) for s in m.sample(2, 0, seed=0)] == [0, 0]
    assert [len(s) for s in m.sample(2, 1, seed=0)] == [1, 1]


def test_samples_follow_the_distribution():
    m = fitted(2, discount=0.5)
    s = m.sample(1, 30_000, seed=0)[0]
    after = s[1:][s[:-1] == 1]
    freq = np.bincount(after, minlength=V) / len(after)
    np.testing.assert_allclose(freq, m.distribution([1]), atol=0.02)


def test_fitting_never_counts_across_pieces():
    # "1 1" only ever happens across the boundary between the two pieces
    m = NgramModel(2, 4, discount=0.0).fit([np.array([0, 1]), np.array([1, 2])])
    assert m.prob([1], 1) == 0.0
    assert m.prob([0], 1) == 1.0
    joined = NgramModel(2, 4, discount=0.0).fit([np.array([0, 1, 1, 2])])
    assert joined.prob([1], 1) == 0.5
    # trigrams too: (1, 2) only ever precedes 3 across the boundary, so it is an unseen
    # context (and so is 2): the trigram backs off to the unigram
    sep = NgramModel(3, 4, discount=0.0).fit([np.array([0, 1, 2]), np.array([3, 0, 1])])
    np.testing.assert_allclose(sep.distribution([1, 2]), sep.distribution([]))
    joined3 = NgramModel(3, 4, discount=0.0).fit([np.array([0, 1, 2, 3, 0, 1])])
    assert joined3.prob([1, 2], 3) == 1.0
    # a piece shorter than the order is fine; first token: the most frequent (ties: smallest)
    t = NgramModel(3, 4).fit([np.array([2]), np.array([1, 3, 0]), np.array([1]), np.array([2])])
    assert t.first_token == 1


def test_fit_checks_its_input():
    with pytest.raises(ValueError):
        NgramModel(2, 4).fit([])
    with pytest.raises(ValueError):
        NgramModel(2, 4).fit([np.array([0, 4])])
    with pytest.raises(ValueError):
        NgramModel(0, 4)
    with pytest.raises(RuntimeError):
        NgramModel(2, 4).distribution([0])


def test_fitting_a_large_corpus_is_vectorised():
    rng = np.random.default_rng(0)
    seqs = [rng.integers(0, 500, size=20_000) for _ in range(50)]  # a million tokens
    m = NgramModel(3, 500).fit(seqs)
    assert m.distribution([3, 7]).sum() == pytest.approx(1.0)
    assert [len(s) for s in m.sample(2, 300, seed=0)] == [300, 300]


# ---------------------------------------------------------------------------- tokenizer-based
def test_start_tokens_and_bar_id(tok):
    assert start_tokens(tok) == [tok.vocab["BOS_None"], tok.vocab["Bar_None"]]
    assert bar_id(tok) == tok.vocab["Bar_None"]


def test_ngram_on_real_pieces_starts_at_a_bar_and_emits_no_specials(tok, midi_corpora):
    chorales = sorted((midi_corpora / "chorales").glob("*.mid"))[:4]
    seqs = [tokenize_file(tok, p) for p in chorales]
    m = NgramModel(3, len(tok)).fit(seqs)
    specials = set(special_ids(tok).values())
    for s in m.sample(3, 256, seed=0):
        assert len(s) == 256 and s[0] == bar_id(tok)
        assert not specials & set(s.tolist())


# ---------------------------------------------------------------------------- transformer
TINY = ModelSpec(arch="gpt2", layers=1, dim=16, heads=2, context=32, dropout=0.1)


@pytest.fixture(scope="module")
def gpt2(tok):
    torch.set_num_threads(1)
    return build_model(TINY, len(tok), special_ids(tok), 0)


def test_transformer_samples_are_exact_seeded_and_batch_independent(tok, gpt2):
    start = start_tokens(tok)
    a = transformer_samples(gpt2, 3, 20, seed=0, start=start, batch=2)
    b = transformer_samples(gpt2, 3, 20, seed=0, start=start, batch=3, device="cpu")
    c = transformer_samples(gpt2, 3, 20, seed=1, start=start, batch=2)
    assert all(len(s) == 20 and s.dtype == np.int64 for s in a)
    assert same(a, b) and not same(a, c)
    assert gpt2.training  # a freshly built model trains; its mode is restored


def test_transformer_banned_ids_and_top_k(tok, gpt2):
    special = special_ids(tok)
    banned = sorted(special.values())
    out = transformer_samples(
        gpt2, 4, 30, seed=0, start=start_tokens(tok), banned=banned, temperature=3.0
    )
    assert all(not set(banned) & set(s.tolist()) for s in out)
    # top_k = 1 is greedy: every sample is the same and avoids the banned ids
    greedy = transformer_samples(gpt2, 3, 10, seed=0, start=start_tokens(tok), top_k=1)
    assert same(greedy[:1] * 3, greedy)
    allowed = [i for i in range(len(tok)) if i not in (5, 7)]
    few = transformer_samples(gpt2, 2, 10, seed=0, start=[1], banned=allowed, top_k=3)
    assert all(set(s.tolist()) <= {5, 7} for s in few)


def naive_samples(model, n, length, seed, start, context):
    """The same draws without a KV cache: the full view recomputed at every step."""
    window = context // 2
    out = []
    for ss in np.random.SeedSequence(seed).spawn(n):
        rng = np.random.default_rng(ss)
        seq = list(start)
        lo = 0 if len(seq) < context else len(seq) - window
        for _ in range(length):
            with torch.no_grad():
                logits = model(input_ids=torch.tensor([seq[lo:]])).logits[0, -1].float()
            cdf = torch.cumsum(torch.softmax(logits.double(), dim=0), dim=0).numpy()
            seq.append(int(np.searchsorted(cdf, rng.random() * cdf[-1], side="right")))
            if len(seq) - lo > context:
                lo = len(seq) - window
        out.append(np.array(seq[len(start) :]))
    return out


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_transformer_past_its_context_slides_a_window(tok, arch):
    spec = ModelSpec(arch=arch, layers=1, dim=16, heads=2, context=32, dropout=0.0)
    model = build_model(spec, len(tok), special_ids(tok), 0).eval()
    out = transformer_samples(model, 2, 100, seed=0, start=start_tokens(tok), batch=2)
    assert [len(s) for s in out] == [100, 100]
    # the cached loop draws what a loop that recomputes its (windowed) view each step draws
    assert same(out, naive_samples(model, 2, 100, 0, start_tokens(tok), 32))
    # a prompt longer than the context works too
    long = transformer_samples(model, 1, 5, seed=0, start=list(range(4, 44)))
    assert len(long[0]) == 5


def test_transformer_keep_start(tok, gpt2):
    start = start_tokens(tok)
    kept = transformer_samples(gpt2, 2, 12, seed=4, start=start, keep_start=True)
    plain = transformer_samples(gpt2, 2, 12, seed=4, start=start)
    for k, p in zip(kept, plain, strict=True):
        assert len(k) == 14 and list(k[:2]) == start
        np.testing.assert_array_equal(k[2:], p)
    assert [len(s) for s in transformer_samples(gpt2, 2, 0, seed=0, start=start)] == [0, 0]
    with pytest.raises(ValueError):
        transformer_samples(gpt2, 1, 5, seed=0, start=[])


# ---------------------------------------------------------------------------- real excerpts
BAR = 9


def pieces() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    out = []
    for n in (40, 60, 25, 80, 10):
        s = rng.integers(0, 8, size=n)
        s[rng.choice(n, size=max(1, n // 8), replace=False)] = BAR
        out.append(s)
    out.append(np.arange(30) % 8)  # no bar at all
    return out


def is_slice(excerpt: np.ndarray, piece: np.ndarray) -> bool:
    w = np.lib.stride_tricks.sliding_window_view(piece, len(excerpt))
    return bool((w == excerpt).all(axis=1).any())


@pytest.mark.parametrize("n", [4, 15])
def test_real_excerpts_lengths_bars_slices_and_determinism(n):
    seqs = pieces()
    a = real_excerpts(seqs, n, 20, seed=0, bar_id=BAR)
    assert same(a, real_excerpts(seqs, n, 20, seed=0, bar_id=BAR))
    assert not same(a, real_excerpts(seqs, n, 20, seed=1, bar_id=BAR))
    assert len(a) == n
    used = []
    for e in a:
        owners = [i for i, s in enumerate(seqs) if len(s) >= len(e) and is_slice(e, s)]
        assert owners
        i = owners[0]
        used.append(i)
        piece = seqs[i]
        if len(piece) <= 20:
            np.testing.assert_array_equal(e, piece)  # a short piece is taken whole
        else:
            assert len(e) == 20
            if BAR in piece[: len(piece) - 20 + 1]:
                assert e[0] == BAR
    if n <= len(seqs):
        assert len(set(used)) == n  # without replacement while possible


def test_real_excerpts_without_bar_id_and_edge_cases():
    seqs = pieces()
    out = real_excerpts(seqs, 3, 15, seed=2)
    assert all(len(e) == 15 and any(is_slice(e, s) for s in seqs if len(s) >= 15) for e in out)
    assert real_excerpts(seqs, 0, 15, seed=0) == []
    with pytest.raises(ValueError):
        real_excerpts([], 2, 15, seed=0)
