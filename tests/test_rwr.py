"""The RWR walker on successor graphs of real fixture corpora, tokenized with real miditok."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from tokentransfer.graph import successors
from tokentransfer.rwr import (
    WalkConfig,
    Walker,
    decode,
    load_node_embeddings,
    token_errors,
    write_midi,
)
from tokentransfer.tokenize import build_tokenizer, tokenize_file


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer({"kind": "REMI", "use_programs": True})


@pytest.fixture(scope="module")
def corpora(tok, fixtures_dir: Path) -> dict[str, list[np.ndarray]]:
    return {
        name: [tokenize_file(tok, p) for p in sorted((fixtures_dir / name).glob("*.mid"))]
        for name in ("bach", "jazzlead")
    }


@pytest.fixture(scope="module")
def graphs(tok, corpora) -> dict[str, sp.csr_matrix]:
    return {name: successors(seqs, len(tok)) for name, seqs in corpora.items()}


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
@pytest.mark.parametrize("corpus", ["bach", "jazzlead"])
@pytest.mark.parametrize("with_h", [False, True])
def test_every_sample_decodes_without_errors_and_has_notes(tok, corpora, graphs, corpus, with_h):
    h, vocab_ids = random_embeddings(corpora[corpus]) if with_h else (None, None)
    w = Walker(graphs[corpus], tok, h, vocab_ids, WalkConfig(length=512, samples=2))
    for seed in (0, 1, 2):
        samples = w.generate(seed=seed)
        assert len(samples) == 2 and len(w.last_stats) == 2
        for seq, st in zip(samples, w.last_stats, strict=True):
            assert len(seq) == 512 == st["tokens"]
            check_sample(tok, seq)
            # not the original's flaw (one token repeated): a real walk over many tokens
            assert len(np.unique(seq)) > 10
            assert st["restarts"] > 0  # alpha = 0.05 over 512 steps


def test_same_seed_same_tokens_and_midi_bytes(tok, corpora, graphs, tmp_path):
    h, vocab_ids = random_embeddings(corpora["bach"])
    w = Walker(graphs["bach"], tok, h, vocab_ids, WalkConfig(length=300, samples=2))
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
def test_prompt_tokens_come_first_and_the_walk_continues(tok, corpora, graphs):
    piece = corpora["jazzlead"][-1]
    w = Walker(graphs["jazzlead"], tok, cfg=WalkConfig(length=200, samples=3))
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


def test_restart_returns_to_the_prompts_last_state(tok, corpora, graphs):
    piece = corpora["bach"][0]
    w = Walker(graphs["bach"], tok)
    for cut in (40, 41, 43, 200):
        prompt = piece[:cut]
        w.generate(n=1, length=10, prompt=prompt)
        r = w.restart_tokens
        assert r[0] == tok.vocab["Bar_None"]
        end, again = w.replay(prompt), w.replay(np.array(r))  # the restart, from scratch
        assert (again.prev, again.pos, again.ts, again.limit, again.onset) == (
            end.prev,
            end.pos,
            end.ts,
            end.limit,
            end.onset,
        )
        assert r[-1] == prompt[-1]  # the walk goes on from the prompt's last token


def test_prompt_that_breaks_the_grammar_is_refused(tok, graphs):
    w = Walker(graphs["jazzlead"], tok)
    bad = np.array(ids(tok, "Bar_None", "TimeSig_4/4", "Position_8", "Program_0", "Position_4"))
    with pytest.raises(ValueError, match="grammar at token 4"):
        w.generate(prompt=bad)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        w.generate(prompt=np.array([len(tok) + 5]))


# ---------------------------------------------------------------------------- restarts
def test_alpha_zero_restarts_only_at_dead_ends(tok, corpora, graphs):
    h, vocab_ids = random_embeddings(corpora["bach"])
    w = Walker(graphs["bach"], tok, h, vocab_ids, WalkConfig(restart=0.0, length=400, samples=3))
    for seq in w.generate():
        assert len(seq) == 400
        check_sample(tok, seq)
    assert all(st["restarts"] == 0 for st in w.last_stats)


def test_alpha_one_repeats_the_start_state(tok, graphs):
    """alpha = 1: restart at every step the grammar allows one.

    Without a prompt REMI with time signatures forces a TimeSig after each Bar, so the sample
    is ``Bar_None TimeSig_x`` repeated (one time signature per sample). With a prompt it is
    the prompt then its restart tokens (new bar + the prompt's final onset) repeated.
    """
    w = Walker(graphs["bach"], tok, cfg=WalkConfig(restart=1.0, length=101, samples=2))
    bar = tok.vocab["Bar_None"]
    for seq, st in zip(w.generate(), w.last_stats, strict=True):
        assert len(seq) == 101 and token_errors(tok, seq) == 0
        assert (seq[0::2] == bar).all()
        assert len(set(seq[1::2].tolist())) == 1 and tok[int(seq[1])].startswith("TimeSig_")
        assert st["restarts"] == 50  # every Bar but the first (the start) is a restart
    prompt = np.array(
        ids(tok, "Bar_None", "TimeSig_3/4", "Position_0", "Program_0", "Pitch_60", "Velocity_63")
        + ids(tok, "Duration_1.0.8")
    )
    seq = w.generate(n=1, length=100, prompt=prompt)[0]
    r = w.restart_tokens
    assert r == [bar, tok.vocab["TimeSig_3/4"], *prompt[2:].tolist()]
    assert np.array_equal(seq, np.concatenate([prompt, (r * 100)[:100]]))
    assert token_errors(tok, seq) == 0 and decode(tok, seq).note_num() == 1 + 100 // 7


def tiny_graph(tok, names: list[str]) -> sp.csr_matrix:
    return successors([np.array(ids(tok, *names))], len(tok))


def test_a_dead_end_restarts_and_the_walk_reaches_full_length(tok):
    note = ["Position_0", "Program_0", "Pitch_60", "Velocity_63", "Duration_1.0.8"]
    g = tiny_graph(tok, ["Bar_None", "TimeSig_4/4", *note])  # Duration_1.0.8 is a sink
    w = Walker(g, tok, cfg=WalkConfig(restart=0.0, length=70, samples=2))
    for seq, st in zip(w.generate(), w.last_stats, strict=True):
        assert len(seq) == 70
        assert np.array_equal(seq, np.array(ids(tok, "Bar_None", "TimeSig_4/4", *note) * 10))
        assert st["dead_end_restarts"] == 9 and st["restarts"] == 0
        check_sample(tok, seq)
    # a sink mid-note (no Bar may follow a Pitch): back off to the corpus' allowed tokens
    g = tiny_graph(tok, ["Bar_None", "TimeSig_4/4", "Position_0", "Program_0", "Pitch_60"])
    w = Walker(g, tok, cfg=WalkConfig(restart=0.0, length=50, samples=1))
    seq = w.generate()[0]
    assert len(seq) == 50 and w.last_stats[0]["backoffs"] > 0
    assert token_errors(tok, seq) == 0


# ---------------------------------------------------------------------------- the bias
def busy_row(g: sp.csr_matrix, h_ids: np.ndarray) -> int:
    """A token with many successors that has an embedding."""
    deg = np.diff(g.indptr).astype(float)
    deg[np.setdiff1d(np.arange(len(deg)), h_ids)] = -1
    return int(np.argmax(deg))


def test_huge_temperature_gives_normalised_counts(tok, corpora, graphs):
    g = graphs["bach"]
    h, vocab_ids = random_embeddings(corpora["bach"])
    w = Walker(g, tok, h, vocab_ids, WalkConfig(temperature=1e9, beta=1.0, top_k=0))
    u = busy_row(g, vocab_ids)
    cand, p = w.transition_probabilities(u)
    row = g.getrow(u)
    expected = dict(zip(row.indices.tolist(), (row.data / row.data.sum()).tolist(), strict=True))
    assert len(cand) == row.nnz > 20
    assert np.allclose(p, [expected[c] for c in cand.tolist()])
    assert np.isclose(p.sum(), 1.0) and (np.diff(p) <= 1e-15).all()  # sorted, descending


def test_probabilities_follow_the_formula_with_tokens_without_embeddings(tok, corpora, graphs):
    g = graphs["bach"]
    h, vocab_ids = random_embeddings(corpora["bach"])
    keep = np.arange(len(vocab_ids)) % 2 == 0  # half the tokens have no embedding
    h, vocab_ids = h[keep], vocab_ids[keep]
    cfg = WalkConfig(temperature=0.7, beta=0.5, top_k=0)
    u = busy_row(g, vocab_ids)
    for similarity in ("cosine", "dot"):
        cfg.similarity = similarity
        cand, p = Walker(g, tok, h, vocab_ids, cfg).transition_probabilities(u)
        full = np.zeros((len(tok), h.shape[1]))
        hh = h / np.linalg.norm(h, axis=1, keepdims=True) if similarity == "cosine" else h
        full[vocab_ids] = hh
        counts = g.getrow(u).toarray().ravel()[cand]
        w = counts**0.5 * np.exp(full[cand] @ full[u] / 0.7)
        assert np.allclose(p, w / w.sum())
        assert not np.isin(cand, vocab_ids).all()  # some candidates had no embedding


def test_small_temperature_picks_the_most_similar(tok, corpora, graphs):
    g = graphs["bach"]
    h, vocab_ids = random_embeddings(corpora["bach"])
    u = busy_row(g, vocab_ids)
    w = Walker(g, tok, h, vocab_ids, WalkConfig(temperature=1e-3, top_k=0))
    cand, p = w.transition_probabilities(u)
    pos = {int(v): i for i, v in enumerate(vocab_ids)}
    hn = h / np.linalg.norm(h, axis=1, keepdims=True)
    sims = [hn[pos[c]] @ hn[pos[u]] if c in pos else 0.0 for c in cand.tolist()]
    assert cand[0] == cand[int(np.argmax(sims))] and p[0] > 0.99


def test_top_k_restricts_the_support(tok, graphs):
    g = graphs["bach"]
    u = int(np.argmax(np.diff(g.indptr)))
    row = g.getrow(u)
    for k in (1, 3, 16):
        cand, p = Walker(g, tok, cfg=WalkConfig(top_k=k)).transition_probabilities(u)
        assert len(cand) == k and np.isclose(p.sum(), 1.0)
        top = np.sort(row.data)[::-1][:k]  # counts only: the k most frequent successors
        assert np.allclose(np.sort(row.toarray().ravel()[cand])[::-1], top)
    w = Walker(g, tok, cfg=WalkConfig(top_k=3, length=600, samples=1))
    seq = w.generate()[0]
    check_sample(tok, seq)
    allowed = {int(a): set(w.transition_probabilities(int(a))[0].tolist()) for a in seq}
    steps = [(int(a), int(b)) for a, b in zip(seq[:-1], seq[1:], strict=True)]
    off = [(a, b) for a, b in steps if b not in allowed[a] and tok[b] != "Bar_None"]
    # every move is a top-3 candidate or a restart's new bar, but where the grammar rules out
    # all three (then the walk widens to the token's other successors)
    st = w.last_stats[0]
    assert len(off) == st["widened"] + st["backoffs"] and st["backoffs"] == 0
    assert len(off) < len(steps) / 10


# ---------------------------------------------------------------------------- contract
def test_unsupported_tokenizers_and_bad_inputs(tok, graphs):
    tsd = build_tokenizer({"kind": "TSD", "use_programs": True})
    with pytest.raises(NotImplementedError, match="TSD"):
        Walker(sp.csr_matrix((len(tsd), len(tsd))), tsd)
    rests = build_tokenizer({"kind": "REMI", "use_rests": True})
    with pytest.raises(NotImplementedError, match="use_rests"):
        Walker(sp.csr_matrix((len(rests), len(rests))), rests)
    with pytest.raises(ValueError, match="tokenizer has"):
        Walker(sp.csr_matrix((5, 5)), tok)
    with pytest.raises(ValueError, match="similarity"):
        WalkConfig(similarity="euclid")
    with pytest.raises(ValueError, match="vocab_ids"):
        Walker(graphs["bach"], tok, np.zeros((3, 4)), np.array([1, 2]))


def test_without_time_signatures_and_programs(tok, fixtures_dir):
    plain = build_tokenizer({"kind": "REMI", "use_time_signatures": False})
    seqs = [tokenize_file(plain, p) for p in sorted((fixtures_dir / "jazzlead").glob("*.mid"))]
    w = Walker(successors(seqs, len(plain)), plain, cfg=WalkConfig(length=300, samples=2))
    for seq in w.generate():
        check_sample(plain, seq)
    w.cfg.restart = 1.0
    assert (w.generate(n=1, length=20)[0] == plain.vocab["Bar_None"]).all()  # Bar -> Bar ok


def test_load_node_embeddings(tmp_path):
    import h5py

    with h5py.File(tmp_path / "nodes.h5", "w") as f:
        f["embeddings"] = np.ones((3, 2), dtype=np.float32)
        f["vocab_ids"] = np.array([4, 7, 9])
    h, v = load_node_embeddings(tmp_path / "nodes.h5")
    assert h.shape == (3, 2) and v.tolist() == [4, 7, 9]


def test_throughput(tok, corpora, graphs):
    """Informational: tokens/s for 4 samples x 1024 tokens (printed, not asserted)."""
    h, vocab_ids = random_embeddings(corpora["bach"], dim=128)
    for name, hh, vv in (("counts", None, None), ("biased", h, vocab_ids)):
        t0 = time.perf_counter()
        w = Walker(graphs["bach"], tok, hh, vv, WalkConfig(length=1024, samples=4))
        t1 = time.perf_counter()
        w.generate()
        t2 = time.perf_counter()
        print(f"rwr {name}: set-up {t1 - t0:.3f}s, {4 * 1024 / (t2 - t1):.0f} tokens/s")
