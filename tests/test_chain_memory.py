"""The masked chains' pitch-memory variant (tokentransfer.baselines.IntervalChain): on a tiny
corpus of scale runs tokenized with the real miditok tokenizer, it moves by step where the
plain masked chain does not, keeps zero token errors, is seeded, and scores by the very
distribution it samples from."""

from __future__ import annotations

import numpy as np
import pytest

from tokentransfer.baselines import IntervalChain, NgramModel, PitchMemory
from tokentransfer.grammar import Grammar, voice_refs
from tokentransfer.likelihood import FLOOR, chain_log_probs, smooth
from tokentransfer.midi import token_errors
from tokentransfer.walkform import count_tables
from tokentransfer.walkjit import TAIL


def ids(tok, *names: str) -> list[int]:
    return [tok.vocab[n] for n in names]


def bar_of(tok, pitches: list[int], step: int = 4) -> list[int]:
    """One 4/4 bar of notes ``step`` positions apart."""
    out = ids(tok, "Bar_None", "TimeSig_4/4")
    for i, p in enumerate(pitches):
        out += ids(tok, f"Position_{i * step}", "Program_0", f"Pitch_{p}", "Velocity_63")
        out += ids(tok, "Duration_0.4.8")
    return out


@pytest.fixture(scope="module")
def runs(tok):
    """Pieces running up and down the C major scale over two octaves (every interval a step),
    each starting elsewhere in the run, so that each bar position sees many pitches."""
    scale = [p for p in range(60, 85) if p % 12 in (0, 2, 4, 5, 7, 9, 11)]
    run = scale + scale[-2:0:-1]  # up and down: 28 pitches
    return [
        np.array(sum((bar_of(tok, [run[(r + 8 * b + i) % len(run)] for i in range(8)])
                      for b in range(4)), []))
        for r in range(0, len(run), 3)
    ]  # fmt: skip


@pytest.fixture(scope="module")
def models(tok, runs):
    chain = NgramModel(3, len(tok)).fit(runs)
    g = Grammar(tok)
    return chain, g, IntervalChain(chain, g, count_tables(runs, tok))


def pitches(tok, seq: np.ndarray) -> np.ndarray:
    names = [tok[int(t)] for t in seq]
    return np.array([int(n.split("_")[1]) for n in names if n.startswith("Pitch_")])


def step_share(tok, samples: list[np.ndarray]) -> float:
    return float(np.mean([np.isin(np.abs(np.diff(pitches(tok, s))), (1, 2)).mean()
                          for s in samples]))  # fmt: skip


def test_pitch_memory_makes_the_chain_move_by_step(tok, models):
    """The order-3 chain sees ``Position Program`` before a ``Pitch``: it draws each pitch
    from what that position held anywhere in the runs and moves by step rarely; with the
    interval factor (the runs count only steps) it moves by step nearly always. Fails if the
    factor is removed. Both keep zero token errors."""
    chain, g, ci = models
    plain = chain.sample(6, 600, seed=2, grammar=g)
    memory = ci.sample(6, 600, seed=2)
    for s in plain + memory:
        assert len(s) == 600 and token_errors(tok, s) == 0.0
    share = {"plain": step_share(tok, plain), "memory": step_share(tok, memory)}
    assert share["memory"] > 0.8 and share["plain"] < 0.4, share


def test_same_seed_same_samples_and_prompts(tok, models, runs):
    _, _, ci = models
    a, b, c = ci.sample(3, 200, seed=5), ci.sample(3, 200, seed=5), ci.sample(3, 200, seed=6)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))
    assert ci.sample(2, 200, seed=5)[1].tolist() == a[1].tolist()  # sample i is its own seed
    prompt = runs[0][:23].tolist()
    out = ci.sample(2, 40, seed=1, start=prompt)
    assert all(s[:23].tolist() == prompt and len(s) == 63 and token_errors(tok, s) == 0.0
               for s in out)  # fmt: skip


def test_the_distribution_is_the_masked_chain_times_the_interval_factors(tok, models, runs):
    """At a Pitch position the variant's distribution over Pitch tokens is the masked chain's
    times ``q_mel(x - previous pitch)`` (the run's first onset of a bar has only a melodic
    reference), renormalised; off Pitch positions (and at the first note) it is the masked
    chain's."""
    chain, g, ci = models
    seq = runs[1]
    q_mel, _ = count_tables(runs, tok).factors()
    value = np.array([int(tok[t].split("_")[1]) if tok[t].startswith("Pitch_") else -1
                      for t in range(len(tok))])  # fmt: skip
    st = g.new_state(1)
    checked = 0
    for i in range(len(seq) - 1):
        g.advance(st, seq[i : i + 1])
        if i < 2:
            continue
        plain = chain.distribution(seq[i - 1 : i + 1], allowed=g.mask(st)[0])
        mem = ci.distribution(seq[: i + 1].tolist(), st)
        assert mem.sum() == pytest.approx(1.0)
        if g.ttype[seq[i + 1]] != g.pitch_code:
            np.testing.assert_allclose(mem, plain, atol=1e-12)
            continue
        mel, chord = voice_refs(st)
        assert chord == -1
        if mel < 0:  # the piece's first note: no reference, the masked chain's distribution
            np.testing.assert_allclose(mem, plain, atol=1e-12)
            continue
        f = np.where(value >= 0, q_mel[np.clip(value - mel, -TAIL, TAIL) + TAIL], 1.0)
        np.testing.assert_allclose(mem, plain * f / (plain * f).sum(), atol=1e-12)
        checked += 1
    assert checked >= 30


def test_log_probs_are_the_sampled_distribution(tok, models, runs):
    """``log_probs`` at a few positions equals the log of the (floored) distribution the
    sampler draws from; and the sampler's draws after a prompt ending at a ``Program`` follow
    that distribution (1,000 seeded one-token samples)."""
    chain, g, ci = models
    seq = ci.sample(1, 120, seed=9)[0]
    lp = ci.log_probs(seq)
    assert lp.shape == (119,) and np.isfinite(lp).all()
    st = g.new_state(1)
    for i in range(len(seq) - 1):
        g.advance(st, seq[i : i + 1])
        if i in (0, 7, 8, 30, 31, 62, 100):
            p = smooth(ci.distribution(seq[: i + 1].tolist(), st), g.mask(st)[0], FLOOR)
            assert lp[i] == pytest.approx(np.log2(p[seq[i + 1]]), abs=1e-12)
    # a Pitch position with memory: the draws against the distribution
    prompt = runs[2][: 2 + 5 * 3 + 2].tolist()  # Bar TimeSig, 3 notes, Position Program
    assert tok[prompt[-1]] == "Program_0"
    st = g.replay(np.array(prompt))
    p = ci.distribution(prompt, st)
    draws = [int(s[-1]) for s in ci.sample(1000, 1, seed=0, start=prompt)]
    freq = np.bincount(draws, minlength=len(p)) / len(draws)
    assert np.abs(freq - p).max() < 0.05
    # the variant's bits differ from the plain masked chain's (it is another distribution)
    assert not np.allclose(lp, chain_log_probs(chain, seq, g))


def test_pitch_memory_factors_and_bad_use(tok, models, runs):
    chain, g, ci = models
    mem = PitchMemory(g, count_tables(runs, tok))
    assert (mem.factors(g.new_state(1)) == 1.0).all()  # no reference yet: every factor 1
    f = mem.factors(g.replay(runs[0][:19]))  # three notes played, then Position Program
    pitch = g.ttype == g.pitch_code
    assert (f[~pitch] == 1.0).all() and (f[pitch] > 0).all() and f[pitch].std() > 0
    with pytest.raises(ValueError, match="samples under a grammar"):
        chain.sample(1, 10, seed=0, memory=mem)
