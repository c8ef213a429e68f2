"""The RWR walker on successor graphs of real corpora (Bach chorales and fiddle tunes exported
from music21's corpus: tests/music21_corpora.py), tokenized with real miditok."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import miditok
import numpy as np
import pytest
import scipy.sparse as sp

from tokentransfer.graph import context_successors, successors
from tokentransfer.midi import decode, token_errors, write_midi
from tokentransfer.tokenize import build_tokenizer, tokenize_file
from tokentransfer.walk import WalkConfig, Walker, load_node_embeddings
from tokentransfer.walkform import count_tables


@pytest.fixture(scope="module")
def corpora(tok, midi_corpora: Path) -> dict[str, list[np.ndarray]]:
    return {
        name: [tokenize_file(tok, p) for p in sorted((midi_corpora / name).glob("*.mid"))]
        for name in ("chorales", "tunes")
    }


@pytest.fixture(scope="module")
def graphs(tok, corpora) -> dict[str, sp.csr_matrix]:
    return {name: successors(seqs, len(tok)) for name, seqs in corpora.items()}


@pytest.fixture(scope="module")
def ctxs(tok, corpora) -> dict[str, sp.csr_matrix]:
    return {name: context_successors(seqs, tok) for name, seqs in corpora.items()}


@pytest.fixture(scope="module")
def tabs(tok, corpora):
    """The walk's melody and form tables of each corpus."""
    return {name: count_tables(seqs, tok) for name, seqs in corpora.items()}


def random_embeddings(seqs: list[np.ndarray], dim: int = 16, seed: int = 0):
    """Random node embeddings for the tokens that occur (the others have none)."""
    used = np.unique(np.concatenate(seqs))
    return np.random.default_rng(seed).normal(size=(len(used), dim)), used


def ids(tok, *names: str) -> list[int]:
    return [tok.vocab[n] for n in names]


def check_sample(tok, seq: np.ndarray) -> None:
    assert token_errors(tok, seq) == 0, [tok[int(i)] for i in seq[:60]]
    assert decode(tok, seq).note_num() > 0


# ---------------------------------------------------------------------------- validity
@pytest.mark.parametrize("corpus", ["chorales", "tunes"])
@pytest.mark.parametrize("with_h", [False, True])
def test_every_sample_decodes_without_errors_and_has_notes(
    tok, corpora, graphs, ctxs, tabs, corpus, with_h
):
    h, vocab_ids = random_embeddings(corpora[corpus]) if with_h else (None, None)
    cfg = WalkConfig(length=512, samples=2)
    w = Walker(graphs[corpus], tok, h, vocab_ids, cfg, ctx_succ=ctxs[corpus], tables=tabs[corpus])
    for seed in (0, 1, 2):
        samples = w.generate(seed=seed)
        assert len(samples) == 2 and len(w.last_stats) == 2
        for seq, st in zip(samples, w.last_stats, strict=True):
            assert len(seq) == 512 == st["tokens"]
            check_sample(tok, seq)
            # not the original's flaw (one token repeated): a real walk over many tokens
            assert len(np.unique(seq)) > 10
            assert st["restarts"] > 0  # alpha = 0.05 over 512 steps


def test_same_seed_same_tokens_and_midi_bytes(tok, corpora, graphs, ctxs, tabs, tmp_path):
    h, vocab_ids = random_embeddings(corpora["chorales"])
    w = Walker(
        graphs["chorales"],
        tok,
        h,
        vocab_ids,
        WalkConfig(length=300, samples=2),
        ctx_succ=ctxs["chorales"],
        tables=tabs["chorales"],
    )
    a, b = w.generate(seed=7), w.generate(seed=7)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    write_midi(decode(tok, a[0]), tmp_path / "a.mid")
    write_midi(decode(tok, b[0]), tmp_path / "b.mid")
    assert (tmp_path / "a.mid").read_bytes() == (tmp_path / "b.mid").read_bytes()
    assert not list(tmp_path.glob(".tmp-*"))  # atomic: no temporary left behind
    c = w.generate(seed=8)
    assert not np.array_equal(a[0], c[0])
    # a sample does not depend on how many others are drawn with it
    assert np.array_equal(w.generate(n=1, seed=7)[0], a[0])


# ---------------------------------------------------------------------------- prompts
def test_prompt_tokens_come_first_and_the_walk_continues(tok, corpora, graphs, ctxs, tabs):
    piece = corpora["tunes"][-1]
    w = Walker(
        graphs["tunes"],
        tok,
        cfg=WalkConfig(length=200, samples=3),
        ctx_succ=ctxs["tunes"],
        tables=tabs["tunes"],
    )
    kinds = [tok[int(t)].split("_")[0] for t in piece]
    cuts = {k: 1 + max(i for i in range(40, 120) if kinds[i] == k) for k in set(kinds)}
    assert {"Bar", "TimeSig", "Position", "Program", "Pitch", "Velocity", "Duration"} <= set(cuts)
    for cut in sorted(cuts.values()):  # prompts ending with each token type
        prompt = piece[:cut]
        for seq in w.generate(prompt=prompt, seed=cut):
            assert len(seq) == cut + 200
            assert np.array_equal(seq[:cut], prompt)
            check_sample(tok, seq)
            assert decode(tok, seq).note_num() > decode(tok, prompt).note_num()


def test_restart_returns_to_the_prompts_last_state(tok, corpora, graphs, ctxs, tabs):
    piece = corpora["chorales"][0]
    w = Walker(graphs["chorales"], tok, ctx_succ=ctxs["chorales"], tables=tabs["chorales"])
    for cut in (40, 41, 43, 200):
        prompt = piece[:cut]
        w.generate(n=1, length=10, prompt=prompt)
        r = w.restart_tokens
        assert r[0] == tok.vocab["Bar_None"]
        end, again = w.replay(prompt), w.replay(np.array(r))  # the restart, from scratch
        for name in ("prev", "pos", "floor", "ts", "limit", "notes"):
            assert getattr(again, name).tolist() == getattr(end, name).tolist(), name
        played = [np.flatnonzero(s.played[0] == s.onset[0]).tolist() for s in (end, again)]
        assert played[0] == played[1]
        assert r[-1] == prompt[-1]  # the walk goes on from the prompt's last token


def test_prompt_that_breaks_the_grammar_is_refused(tok, graphs, ctxs, tabs):
    w = Walker(graphs["tunes"], tok, ctx_succ=ctxs["tunes"], tables=tabs["tunes"])
    bad = np.array(ids(tok, "Bar_None", "TimeSig_4/4", "Position_8", "Program_0", "Position_4"))
    with pytest.raises(ValueError, match="grammar at token 4"):
        w.generate(prompt=bad)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        w.generate(prompt=np.array([len(tok) + 5]))


# ---------------------------------------------------------------------------- restarts
def test_alpha_zero_restarts_only_at_dead_ends(tok, corpora, graphs, ctxs, tabs):
    h, vocab_ids = random_embeddings(corpora["chorales"])
    w = Walker(
        graphs["chorales"],
        tok,
        h,
        vocab_ids,
        WalkConfig(restart=0.0, length=400, samples=3),
        ctx_succ=ctxs["chorales"],
        tables=tabs["chorales"],
    )
    for seq in w.generate():
        assert len(seq) == 400
        check_sample(tok, seq)
    assert all(st["restarts"] == 0 for st in w.last_stats)


def test_alpha_one_restarts_at_every_bar_line(tok, graphs, ctxs, tabs):
    """alpha = 1: a restart at every bar line the walk reaches, never inside a bar.

    Without a prompt the start state is a bar start, where the walk already is: the tokens do
    not change, every Bar after the first is counted as a restart. With a prompt every Bar the
    walk draws is followed by the prompt's final onset (the restart tokens), and the bars in
    between are the walk's own, whole.
    """
    bar = tok.vocab["Bar_None"]
    w = Walker(
        graphs["chorales"],
        tok,
        cfg=WalkConfig(restart=1.0, length=600, samples=2),
        ctx_succ=ctxs["chorales"],
        tables=tabs["chorales"],
    )
    w0 = Walker(
        graphs["chorales"],
        tok,
        cfg=WalkConfig(restart=0.0, length=600, samples=2),
        ctx_succ=ctxs["chorales"],
        tables=tabs["chorales"],
    )
    for seq, seq0, st in zip(w.generate(), w0.generate(), w.last_stats, strict=True):
        assert np.array_equal(seq, seq0)  # no prompt: restarts change no token
        bars = int((seq == bar).sum())
        assert bars > 3 and st["restarts"] + st["dead_end_restarts"] == bars - 1
    prompt = np.array(
        ids(tok, "Bar_None", "TimeSig_3/4", "Position_0", "Program_0", "Pitch_60", "Velocity_63")
        + ids(tok, "Duration_1.0.8")
    )
    seq = w.generate(n=1, length=400, prompt=prompt)[0]
    r = w.restart_tokens
    assert r == [bar, tok.vocab["TimeSig_3/4"], *prompt[2:].tolist()]
    check_sample(tok, seq)
    gen = seq[len(prompt) :].tolist()
    starts = [i for i, t in enumerate(gen) if t == bar]
    assert len(starts) > 2
    for i in starts:  # every bar line of the walk is a restart to the prompt's last onset
        assert gen[i : i + len(r)] == r[: len(gen) - i]


def tiny_walker(tok, names: list[str], cfg: WalkConfig) -> Walker:
    seqs = [np.array(ids(tok, *names))]
    ctx = context_successors(seqs, tok)
    return Walker(successors(seqs, len(tok)), tok, cfg=cfg, ctx_succ=ctx,
                  tables=count_tables(seqs, tok))  # fmt: skip


def test_a_dead_end_restarts_and_the_walk_reaches_full_length(tok):
    note = ["Position_0", "Program_0", "Pitch_60", "Velocity_63", "Duration_1.0.8"]
    # Duration_1.0.8 is a sink
    w = tiny_walker(
        tok, ["Bar_None", "TimeSig_4/4", *note], WalkConfig(restart=0.0, length=70, form="none")
    )
    for seq, st in zip(w.generate(), w.last_stats, strict=True):
        assert len(seq) == 70
        assert np.array_equal(seq, np.array(ids(tok, "Bar_None", "TimeSig_4/4", *note) * 10))
        assert st["dead_end_restarts"] == 9 and st["restarts"] == 0
        check_sample(tok, seq)
    # a sink mid-note (no Bar may follow a Pitch): back off to the corpus' allowed tokens
    names = ["Bar_None", "TimeSig_4/4", "Position_0", "Program_0", "Pitch_60"]
    w = tiny_walker(tok, names, WalkConfig(restart=0.0, length=50, samples=1, form="none"))
    seq = w.generate()[0]
    assert len(seq) == 50 and w.last_stats[0]["backoffs"] > 0
    assert token_errors(tok, seq) == 0


# ---------------------------------------------------------------------------- the bias
def busy_row(g: sp.csr_matrix, h_ids: np.ndarray) -> int:
    """A token with many successors that has an embedding."""
    deg = np.diff(g.indptr).astype(float)
    deg[np.setdiff1d(np.arange(len(deg)), h_ids)] = -1
    return int(np.argmax(deg))


def test_huge_temperature_gives_normalised_counts(tok, corpora, graphs, ctxs, tabs):
    g = graphs["chorales"]
    h, vocab_ids = random_embeddings(corpora["chorales"])
    w = Walker(
        g,
        tok,
        h,
        vocab_ids,
        WalkConfig(temperature=1e9, beta=1.0, top_k=0),
        ctx_succ=ctxs["chorales"],
        tables=tabs["chorales"],
    )
    u = busy_row(g, vocab_ids)
    cand, p = w.transition_probabilities(u)
    row = g.getrow(u)
    expected = dict(zip(row.indices.tolist(), (row.data / row.data.sum()).tolist(), strict=True))
    assert len(cand) == row.nnz > 20
    assert np.allclose(p, [expected[c] for c in cand.tolist()])
    assert np.isclose(p.sum(), 1.0) and (np.diff(p) <= 1e-15).all()  # sorted, descending


def test_probabilities_follow_the_formula_with_tokens_without_embeddings(
    tok, corpora, graphs, ctxs, tabs
):
    g = graphs["chorales"]
    h, vocab_ids = random_embeddings(corpora["chorales"])
    keep = np.arange(len(vocab_ids)) % 2 == 0  # half the tokens have no embedding
    h, vocab_ids = h[keep], vocab_ids[keep]
    cfg = WalkConfig(temperature=0.7, beta=0.5, top_k=0)
    u = busy_row(g, vocab_ids)
    for similarity in ("cosine", "dot"):
        cfg.similarity = similarity
        cand, p = Walker(
            g, tok, h, vocab_ids, cfg, ctx_succ=ctxs["chorales"], tables=tabs["chorales"]
        ).transition_probabilities(u)
        full = np.zeros((len(tok), h.shape[1]))
        hh = h / np.linalg.norm(h, axis=1, keepdims=True) if similarity == "cosine" else h
        full[vocab_ids] = hh
        counts = g.getrow(u).toarray().ravel()[cand]
        w = counts**0.5 * np.exp(full[cand] @ full[u] / 0.7)
        assert np.allclose(p, w / w.sum())
        assert not np.isin(cand, vocab_ids).all()  # some candidates had no embedding


def test_small_temperature_picks_the_most_similar(tok, corpora, graphs, ctxs, tabs):
    g = graphs["chorales"]
    h, vocab_ids = random_embeddings(corpora["chorales"])
    u = busy_row(g, vocab_ids)
    # the two most similar successors of the chorales' busiest row differ by 0.004 in cosine
    # and 4.4x in count: a temperature of 1e-4 makes the similarity decide (1e-3 gives 0.93)
    w = Walker(
        g,
        tok,
        h,
        vocab_ids,
        WalkConfig(temperature=1e-4, top_k=0),
        ctx_succ=ctxs["chorales"],
        tables=tabs["chorales"],
    )
    cand, p = w.transition_probabilities(u)
    pos = {int(v): i for i, v in enumerate(vocab_ids)}
    hn = h / np.linalg.norm(h, axis=1, keepdims=True)
    sims = [hn[pos[c]] @ hn[pos[u]] if c in pos else 0.0 for c in cand.tolist()]
    assert cand[0] == cand[int(np.argmax(sims))] and p[0] > 0.99


def test_top_k_restricts_the_support(tok, graphs, ctxs, tabs):
    g = graphs["chorales"]
    u = int(np.argmax(np.diff(g.indptr)))
    row = g.getrow(u)
    for k in (1, 3, 16):
        cand, p = Walker(
            g, tok, cfg=WalkConfig(top_k=k), ctx_succ=ctxs["chorales"], tables=tabs["chorales"]
        ).transition_probabilities(u)
        assert len(cand) == k and np.isclose(p.sum(), 1.0)
        top = np.sort(row.data)[::-1][:k]  # counts only: the k most frequent successors
        assert np.allclose(np.sort(row.toarray().ravel()[cand])[::-1], top)
    cfg = WalkConfig(top_k=3, length=600, samples=1, context="none", form="none")
    w = Walker(g, tok, cfg=cfg, ctx_succ=ctxs["chorales"], tables=tabs["chorales"])
    seq = w.generate()[0]
    check_sample(tok, seq)
    allowed = {int(a): set(w.transition_probabilities(int(a))[0].tolist()) for a in seq}
    steps = [(int(a), int(b)) for a, b in zip(seq[:-1], seq[1:], strict=True)]
    off = [(a, b) for a, b in steps if b not in allowed[a] and tok[b] != "Bar_None"]
    # every move is a top-3 candidate or a restart's new bar, but where the grammar rules out
    # all three (then the walk widens to the token's other successors)
    st = w.last_stats[0]
    assert len(off) == st["widened"] + st["backoffs"] and st["backoffs"] == 0
    assert len(off) < len(steps) / 5  # the first-order walk widens where positions run late


# ---------------------------------------------------------------------------- statistics
@pytest.mark.parametrize("context", ["none", "onset"])
def test_transition_frequencies_match_the_defined_probabilities(
    tok, corpora, graphs, ctxs, tabs, context
):
    """A long batched run: from each busy (token, context) row, the frequencies of the next
    token equal the row's probabilities renormalised over what the grammar allowed there.

    Where the grammar allows every candidate of a row, the expected distribution is the row
    itself: each candidate's frequency must lie within 5 binomial standard errors."""
    from tokentransfer.grammar import Grammar

    h, vocab_ids = random_embeddings(corpora["chorales"])
    cfg = WalkConfig(length=4000, samples=16, restart=0.0, context=context, top_k=8, scale="none",
                     melody="none", form="none")  # fmt: skip
    w = Walker(
        graphs["chorales"],
        tok,
        h,
        vocab_ids,
        cfg,
        ctx_succ=ctxs["chorales"],
        tables=tabs["chorales"],
    )
    samples = w.generate(seed=3)
    g = Grammar(tok)
    seen: dict[tuple[int, int], list[int]] = {}
    for seq in samples:
        st = g.new_state(1)
        for a, b in zip(seq[:-1], seq[1:], strict=True):
            g.advance(st, np.array([a]))
            row = int(w._row(np.array([a]), st)[0])
            cand, _ = w._topk.row(row)
            if len(cand) and g.allows(st.repeat(len(cand)), cand).all():
                seen.setdefault((int(a), row), []).append(int(b))
    busy = sorted(seen.items(), key=lambda kv: -len(kv[1]))[:12]
    assert len(busy) >= 5 and len(busy[-1][1]) >= 100
    for (_a, row), nxt in busy:
        cand, prob = w._topk.row(row)
        freq = np.array([nxt.count(int(c)) for c in cand]) / len(nxt)
        assert set(nxt) <= set(cand.tolist())  # nothing outside the row
        # every candidate's frequency within 5 binomial standard errors of its probability
        se = np.sqrt(prob * (1 - prob) / len(nxt))
        assert (np.abs(freq - prob) <= 5 * se + 1 / len(nxt)).all(), (row, freq, prob)


# ---------------------------------------------------------------------------- contract
def test_unsupported_tokenizers_and_bad_inputs(tok, graphs, ctxs, tabs):
    tsd = miditok.TSD(miditok.TokenizerConfig(use_programs=True))  # not a kind the config takes
    with pytest.raises(NotImplementedError, match="TSD"):
        Walker(sp.csr_matrix((len(tsd), len(tsd))), tsd)
    rests = build_tokenizer({"kind": "REMI", "use_rests": True})
    with pytest.raises(NotImplementedError, match="use_rests"):
        Walker(sp.csr_matrix((len(rests), len(rests))), rests)
    with pytest.raises(ValueError, match="tokenizer has"):
        Walker(sp.csr_matrix((5, 5)), tok)
    with pytest.raises(ValueError, match="similarity"):
        WalkConfig(similarity="euclid")
    with pytest.raises(ValueError, match="generate.context"):
        WalkConfig(context="bar")
    with pytest.raises(ValueError, match="context successor counts"):
        Walker(graphs["chorales"], tok, tables=tabs["chorales"])
    with pytest.raises(ValueError, match="walk tables"):
        Walker(graphs["chorales"], tok, ctx_succ=ctxs["chorales"])
    with pytest.raises(ValueError, match="generate.melody"):
        WalkConfig(melody="steps")
    with pytest.raises(ValueError, match="generate.form"):
        WalkConfig(form="rondo")
    with pytest.raises(ValueError, match="vocab_ids"):
        Walker(
            graphs["chorales"],
            tok,
            np.zeros((3, 4)),
            np.array([1, 2]),
            ctx_succ=ctxs["chorales"],
            tables=tabs["chorales"],
        )


def test_walk_config_from_a_generate_section_takes_its_fields_only():
    """Rule generate and the methods that walk build the settings from the generate section:
    the walk's keys taken, other keys ignored, missing ones the defaults."""
    section = {"temperature": 0.7, "top_k": 3, "context": "none", "variants": ["counts"]}
    section |= {"prompt": None, "seed": 9}
    cfg = WalkConfig.from_section(section)
    assert cfg == WalkConfig(temperature=0.7, top_k=3, context="none", seed=9)
    assert WalkConfig.from_section({}) == WalkConfig()
    with pytest.raises(ValueError, match="generate.temperature"):
        WalkConfig.from_section({"temperature": 0})


def test_without_time_signatures_and_programs(tok, midi_corpora):
    plain = build_tokenizer({"kind": "REMI", "use_time_signatures": False})
    seqs = [tokenize_file(plain, p) for p in sorted((midi_corpora / "tunes").glob("*.mid"))]
    ctx = context_successors(seqs, plain)
    cfg = WalkConfig(length=300, samples=2)
    w = Walker(successors(seqs, len(plain)), plain, cfg=cfg, ctx_succ=ctx,
               tables=count_tables(seqs, plain))  # fmt: skip
    for seq in w.generate():
        check_sample(plain, seq)


def test_load_node_embeddings(tmp_path):
    import h5py

    with h5py.File(tmp_path / "nodes.h5", "w") as f:
        f["embeddings"] = np.ones((3, 2), dtype=np.float32)
        f["vocab_ids"] = np.array([4, 7, 9])
    h, v = load_node_embeddings(tmp_path / "nodes.h5")
    assert h.shape == (3, 2) and v.tolist() == [4, 7, 9]


def test_throughput(tok, corpora, graphs, ctxs, tabs):
    """Informational: tokens/s for 4 samples x 1024 tokens (printed, not asserted)."""
    h, vocab_ids = random_embeddings(corpora["chorales"], dim=128)
    for name, hh, vv in (("counts", None, None), ("biased", h, vocab_ids)):
        t0 = time.perf_counter()
        w = Walker(
            graphs["chorales"],
            tok,
            hh,
            vv,
            WalkConfig(length=1024, samples=4),
            ctx_succ=ctxs["chorales"],
            tables=tabs["chorales"],
        )
        t1 = time.perf_counter()
        w.generate()
        t2 = time.perf_counter()
        print(f"walk {name}: set-up {t1 - t0:.3f}s, {4 * 1024 / (t2 - t1):.0f} tokens/s")


def test_log_probs_follow_the_walks_distribution(tok, corpora, graphs, ctxs, tabs):
    """The walk's own samples (alpha 0, no widening): each token's probability under
    :meth:`Walker.log_probs` is its row's renormalised probability, smoothed by the floor;
    the distribution sums to one; a real test piece costs a finite number of bits."""
    cfg = WalkConfig(length=300, samples=1, restart=0.0, form="none")
    w = Walker(graphs["chorales"], tok, cfg=cfg, ctx_succ=ctxs["chorales"], tables=tabs["chorales"])
    seq = w.generate(seed=5)[0]
    lp = w.log_probs(seq, floor=1e-3)
    assert lp.shape == (299,) and np.isfinite(lp).all() and (lp <= 0).all()
    st = w.g.new_state(1)
    for i in range(20):
        w.g.advance(st, seq[i : i + 1])
        p = w.next_distribution(int(seq[i]), st)
        assert np.isclose(p.sum(), 1.0) and (p[~w.g.mask(st)[0]] == 0).all()
        n_allowed = w.g.mask(st)[0].sum()
        assert np.isclose(lp[i], np.log2(0.999 * p[seq[i + 1]] + 1e-3 / n_allowed))
    piece = corpora["tunes"][0][:400]
    assert np.isfinite(w.log_probs(piece)).all()  # another style: finite thanks to the floor
    assert -w.log_probs(piece).mean() > -lp.mean()  # and costlier than the walk's own music


@pytest.mark.parametrize("context", ["onset", "none"])
def test_numba_and_python_engines_give_the_same_tokens(tok, corpora, graphs, ctxs, tabs, context):
    """The compiled kernel (tokentransfer.walkjit) and the same function run as Python: token
    for token and statistic for statistic the same, with a bias, a prompt, restarts, returns,
    the interval model, widening, dead ends and back-offs."""
    from tokentransfer import walkjit

    assert walkjit.available()  # numba is a dependency: the fast path must be there
    h, vocab_ids = random_embeddings(corpora["tunes"])
    cfg = WalkConfig(length=160, samples=2, restart=0.1, context=context, chromatic=0.1)
    w = Walker(
        graphs["tunes"], tok, h, vocab_ids, cfg, ctx_succ=ctxs["tunes"], tables=tabs["tunes"]
    )
    for prompt in (None, corpora["tunes"][1][:61]):
        a = w.generate(prompt=prompt, seed=11, engine="numba")
        sa = w.last_stats
        b = w.generate(prompt=prompt, seed=11, engine="python")
        assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
        assert sa == w.last_stats
    note = ["Position_0", "Program_0", "Pitch_60", "Velocity_63", "Duration_1.0.8"]
    for names in (["Bar_None", "TimeSig_4/4", *note], ["Bar_None", "TimeSig_4/4", *note[:3]]):
        w = tiny_walker(tok, names, WalkConfig(restart=0.0, length=40, samples=2, context=context))
        a = w.generate(engine="numba")
        sa = w.last_stats
        b = w.generate(engine="python")
        assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True)) and sa == w.last_stats
        assert sum(s["dead_end_restarts"] + s["backoffs"] + s["returns"] for s in sa) > 0
    with pytest.raises(ValueError, match="engine"):
        w.generate(engine="numpy")


# ---------------------------------------------------------------------------- melody and form
def bar_of(tok, pitches: list[int], step: int = 4) -> list[int]:
    """One 4/4 bar of notes ``step`` positions apart."""
    out = ids(tok, "Bar_None", "TimeSig_4/4")
    for i, p in enumerate(pitches):
        out += ids(tok, f"Position_{i * step}", "Program_0", f"Pitch_{p}", "Velocity_63")
        out += ids(tok, "Duration_0.4.8")
    return out


def test_the_interval_model_makes_lines_move_by_step(tok):
    """Pieces that run up and down the C major scale (each bar position sees many pitches):
    the plain walk draws each pitch from its row with no memory of the last one and moves by
    step (1-2 semitones) rarely; with the interval model, which has counted only steps (and
    the turn at the top), it moves by step nearly always. Fails if the voice state or the
    factor is removed."""
    scale = [p for p in range(60, 85) if p % 12 in (0, 2, 4, 5, 7, 9, 11)]
    run = scale + scale[-2:0:-1]  # up and down: 28 pitches, all steps
    seqs = [
        np.array(sum((bar_of(tok, [run[(r + 8 * b + i) % len(run)] for i in range(8)])
                      for b in range(4)), []))
        for r in range(0, len(run), 3)
    ]  # fmt: skip
    tables = count_tables(seqs, tok)
    succ, ctx = successors(seqs, len(tok)), context_successors(seqs, tok)
    pitch = np.array([n.startswith("Pitch_") for n in tok.vocab], dtype=bool)
    order = np.argsort([tok.vocab[n] for n in tok.vocab])
    is_pitch = pitch[order]
    share = {}
    for melody in ("none", "interval"):
        cfg = WalkConfig(length=600, samples=8, melody=melody, form="none", scale="none")
        w = Walker(succ, tok, cfg=cfg, ctx_succ=ctx, tables=tables)
        steps = []
        for seq in w.generate(seed=4):
            check_sample(tok, seq)
            p = np.array([int(tok[int(t)].split("_")[1]) for t in seq if is_pitch[t]])
            steps.append(np.isin(np.abs(np.diff(p)), (1, 2)).mean())
        share[melody] = float(np.mean(steps))
    assert share["interval"] > 0.8 and share["none"] < 0.4, share


def bars_of(tok, seq: np.ndarray) -> list[tuple[int, ...]]:
    bar = tok.vocab["Bar_None"]
    at = np.flatnonzero(seq == bar).tolist() + [len(seq)]
    return [tuple(seq[a + 1 : b].tolist()) for a, b in zip(at[:-1], at[1:], strict=True)]


def abab_pieces(tok) -> list[np.ndarray]:
    """Ten pieces A B A B A B A B, A and B eight random chromatic pitches each."""
    rng = np.random.default_rng(0)
    seqs = []
    for _ in range(10):
        a, b = (rng.choice(np.arange(55, 80), size=8).tolist() for _ in range(2))
        seqs.append(np.array((bar_of(tok, a) + bar_of(tok, b)) * 4))
    return seqs


def test_replayed_pitches_off_the_key_are_counted(tok):
    """With the scale, a bar played before the sample found its key (chromatic here) may come
    back after it: every pitch after the key's bar line keeps to the scale but replayed ones,
    each counted as off_key, and bars return."""
    from tokentransfer.tonality import KEY_NOTES, find_key, scale_pcs

    seqs = abab_pieces(tok)
    w = Walker(successors(seqs, len(tok)), tok, cfg=WalkConfig(length=600, samples=12),
               ctx_succ=context_successors(seqs, tok), tables=count_tables(seqs, tok))  # fmt: skip
    bar = tok.vocab["Bar_None"]
    off = 0
    for seq, st in zip(w.generate(seed=3), w.last_stats, strict=True):
        pcs = w._pc[seq]
        fix = np.flatnonzero((seq == bar) & (np.cumsum(pcs >= 0) >= KEY_NOTES))
        at = int(fix[0])
        key = find_key(np.bincount(pcs[: at + 1][pcs[: at + 1] >= 0], minlength=12))
        after = pcs[at + 1 :]
        out = int((~np.isin(after[after >= 0], scale_pcs(key))).sum())
        assert out == st["off_key"]  # no step lacked an in-scale candidate here
        off += out
    assert off > 0 and sum(s["returns"] for s in w.last_stats) > 10


def test_the_return_device_repeats_bars_at_the_measured_lag(tok):
    """Pieces A B A B A B A B (A and B drawn per piece): the training pieces return at lag 2
    from bar 2 on, so the walk's bars 2-7 replay the bar two back (its tokens exactly) about
    as often as the form chain's smoothed probability (10.5 / 12.5 = 0.84), and almost never
    the bar one back; without the return device a bar never equals the one two back. Fails
    if the return device is removed. (Without the scale: the pieces' pitches are chromatic.)"""
    seqs = abab_pieces(tok)
    tables = count_tables(seqs, tok)
    succ, ctx = successors(seqs, len(tok)), context_successors(seqs, tok)
    same = {}
    for form in ("none", "return"):
        cfg = WalkConfig(length=500, samples=16, form=form, scale="none")
        w = Walker(succ, tok, cfg=cfg, ctx_succ=ctx, tables=tables)
        lag1, lag2 = [], []
        for seq, st in zip(w.generate(seed=2), w.last_stats, strict=True):
            check_sample(tok, seq)
            bars = bars_of(tok, seq)[:8]
            assert len(bars) == 8
            lag2 += [bars[j] == bars[j - 2] for j in range(2, 8)]
            lag1 += [bars[j] == bars[j - 1] for j in range(1, 8)]
            assert (st["returns"] > 0) == (form == "return")
        same[form] = (float(np.mean(lag2)), float(np.mean(lag1)))
    assert same["return"][0] > 0.65 and same["return"][1] < 0.2, same
    assert same["none"][0] < 0.1, same


def test_same_seed_same_walk_with_melody_and_form(tok, corpora, graphs, ctxs, tabs):
    """Two runs with one seed: the same tokens and the same counts, returns included."""
    cfg = WalkConfig(length=800, samples=3)
    w = Walker(graphs["tunes"], tok, cfg=cfg, ctx_succ=ctxs["tunes"], tables=tabs["tunes"])
    a, sa = w.generate(seed=5), w.last_stats
    w2 = Walker(graphs["tunes"], tok, cfg=cfg, ctx_succ=ctxs["tunes"], tables=tabs["tunes"])
    b = w2.generate(seed=5)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True)) and sa == w2.last_stats
    assert sum(s["returns"] for s in sa) > 0


def test_the_shipped_walk_copies_no_more_than_held_out_pieces(tok, corpora):
    """The fiddle tunes, one in four held out: the walk with the shipped config's settings
    (counts ** beta, beta < 1) copies a smaller share of 8-grams of its training tunes than
    the walk of the counts as they are (beta 1.0), and no more than the held-out tunes share
    with them. Fails if the shipped beta goes back to 1 (the counts' walk copies more)."""
    from tokentransfer.config import load_yaml
    from tokentransfer.metrics import ngram_copy_rate

    gen = load_yaml(Path(__file__).parents[1] / "config" / "config.yaml")["generate"]
    assert gen["beta"] < 1.0
    tunes = corpora["tunes"]
    train = [s for i, s in enumerate(tunes) if i % 4]
    held = [s for i, s in enumerate(tunes) if not i % 4]
    succ, ctx = successors(train, len(tok)), context_successors(train, tok)
    tables = count_tables(train, tok)
    held_rate = float(np.mean([ngram_copy_rate(s, train, 8) for s in held]))
    rate = {}
    for beta in (gen["beta"], 1.0):
        cfg = WalkConfig.from_section({**gen, "beta": beta, "length": 600, "samples": 12})
        w = Walker(succ, tok, cfg=cfg, ctx_succ=ctx, tables=tables)
        rate[beta] = float(np.mean([ngram_copy_rate(s, train, 8) for s in w.generate(seed=0)]))
    assert rate[gen["beta"]] <= held_rate < rate[1.0], (held_rate, rate)


# ---------------------------------------------------------------------------- one step
def one_step_draws(w: Walker, prompt: np.ndarray, n: int = 2000) -> np.ndarray:
    """The first token the walk draws after ``prompt`` in ``n`` seeded samples."""
    return np.array([s[len(prompt)] for s in w.generate(n=n, length=1, prompt=prompt, seed=1)])


def test_generation_draws_from_the_distribution_log_probs_scores(tok, corpora, graphs, ctxs, tabs):
    """The walk's one step, read two ways: after prompts ending on every kind of token (the
    interval model on, widening, a dead-end restart, a back-off by corpus frequency), the
    tokens the walk draws follow :meth:`Walker.next_distribution` (every drawn token has
    probability > 0, every token's frequency within 5 binomial standard errors of it) and
    :meth:`Walker.log_probs` scores exactly that distribution, floored. Fails if generation
    and the likelihood step differ in a level, a factor, a fall-back or a grammar rule."""
    h, vocab_ids = random_embeddings(corpora["tunes"])
    cfg = WalkConfig(restart=0.0, form="none", scale="none", top_k=8)
    w = Walker(graphs["tunes"], tok, h, vocab_ids, cfg, ctx_succ=ctxs["tunes"],
               tables=tabs["tunes"])  # fmt: skip
    piece = corpora["tunes"][1]
    ends: dict[str, list[int]] = {}
    for i in range(8, 400):  # prompts ending on each kind of token, two of each
        ends.setdefault(tok[int(piece[i - 1])].split("_")[0], []).append(i)
    cases = [(w, piece[:c]) for cuts in ends.values() for c in cuts[:2]]
    # first-order top-1 rows: the one candidate is often forbidden, so the step widens
    cfg1 = dataclasses.replace(cfg, top_k=1, context="none")
    w1 = Walker(graphs["tunes"], tok, h, vocab_ids, cfg1, ctx_succ=ctxs["tunes"],
                tables=tabs["tunes"])  # fmt: skip
    cases += [(w1, piece[:c]) for cuts in ends.values() for c in cuts[:2]]
    note = ["Position_0", "Program_0", "Pitch_60", "Velocity_63", "Duration_1.0.8"]
    # a corpus ending on a Duration (a dead end: restart) and one ending on a Pitch (no Bar
    # may follow: back off by corpus frequency), each prompted with all of it
    for names in (["Bar_None", "TimeSig_4/4", *note], ["Bar_None", "TimeSig_4/4", *note[:3]]):
        tiny = tiny_walker(tok, names, WalkConfig(restart=0.0, form="none", scale="none"))
        cases.append((tiny, np.array(ids(tok, *names))))
    fallbacks = []
    for walker, prompt in cases:
        st = walker.replay(prompt)
        p = walker.next_distribution(int(prompt[-1]), st)
        assert np.isclose(p.sum(), 1.0) and (p[~walker.g.mask(st)[0]] == 0).all()
        drawn = one_step_draws(walker, prompt)
        fallbacks.append([sum(x[k] for x in walker.last_stats) for k in ("widened",
                          "dead_end_restarts", "backoffs")])  # fmt: skip
        assert (p[drawn] > 0).all(), [tok[int(t)] for t in drawn[p[drawn] == 0]]
        freq = np.bincount(drawn, minlength=len(p)) / len(drawn)
        se = np.sqrt(p * (1 - p) / len(drawn))
        assert (np.abs(freq - p) <= 5 * se + 1 / len(drawn)).all(), tok[int(prompt[-1])]
        allowed = walker.g.mask(st)[0]
        for t in np.flatnonzero(allowed)[:5].tolist() + drawn[:5].tolist():
            lp = walker.log_probs(np.concatenate([prompt, [t]]))[-1]
            assert lp == np.log2(0.999 * p[t] + 1e-3 / allowed.sum())
    assert len(ends) >= 6
    # the interval factor moves the step's Pitch probabilities away from the rows' own
    plain = Walker(graphs["tunes"], tok, h, vocab_ids, dataclasses.replace(cfg, melody="none"),
                   ctx_succ=ctxs["tunes"], tables=tabs["tunes"])  # fmt: skip
    moved = 0.0
    for c in ends["Program"]:  # a Pitch comes next
        st, node = w.replay(piece[:c]), int(piece[c - 1])
        diff = w.next_distribution(node, st) - plain.next_distribution(node, st)
        moved = max(moved, float(np.abs(diff).max()))
    assert moved > 0.1
    assert sum(f[0] for f in fallbacks[:-2]) > 0  # some draws widened past the context row
    assert fallbacks[-2][1] == len(drawn) and fallbacks[-1][2] == len(drawn)  # every draw
