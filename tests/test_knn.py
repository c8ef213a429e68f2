"""kNN-LM (tokentransfer.knn): keys, search, distribution, sampling, the choice of lambda and
T, and the registry's method, on real fiddle tunes and tiny transformers built here."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tests.tiny import tiny_model
from tokentransfer import knn
from tokentransfer.baselines import start_tokens, transformer_samples
from tokentransfer.fusion import holdout
from tokentransfer.knn import (
    KnnLogitsProcessor,
    OutputTap,
    build_datastore,
    choose_knn,
    knn_distribution,
    knn_log_probs,
    knn_mixture,
    knn_samples,
)
from tokentransfer.likelihood import bits_per_token, grammar_masks, transformer_log_probs
from tokentransfer.midi import token_errors
from tokentransfer.model import save_model, special_ids
from tokentransfer.tokenize import save_tokenizer, tokenize_file

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def model(tok):
    return tiny_model(tok).eval()


@pytest.fixture(scope="module")
def store(model, tok, tunes):
    return build_datastore(model, tunes[:6], special_ids(tok)["bos"])


def _kw(tok):
    return {"start": start_tokens(tok), "banned": sorted(special_ids(tok).values()), "batch": 3}


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_keys_are_the_final_hidden_states_of_a_direct_forward_pass(tok, tunes, arch):
    """Key of token i: hidden_states[-1] (after the final norm, the output layer's input) at
    the position before it, from [BOS] + piece in the scoring windows; value: token i."""
    model = tiny_model(tok, arch).eval()
    bos = special_ids(tok)["bos"]
    pieces = [tunes[0][:20], tunes[1][:75]]  # one window; three windows of 32 (overlap 16)
    store = build_datastore(model, pieces, bos)
    assert len(store) == 19 + 74
    assert torch.equal(store.values, torch.from_numpy(np.concatenate([p[1:] for p in pieces])))
    assert store.piece.tolist() == [0] * 19 + [1] * 74
    assert store.position.tolist() == list(range(1, 20)) + list(range(1, 75))

    def direct(x):
        with torch.no_grad():
            out = model(input_ids=torch.tensor([x]), output_hidden_states=True)
        return out.hidden_states[-1][0]

    x0 = [bos, *pieces[0].tolist()]
    assert torch.allclose(store.keys[:19], direct(x0)[1:20], atol=1e-5)
    # 76 ids [BOS, t0 .. t74]: windows [0, 32), [16, 48), [32, 64), [48, 76) of the ids
    x1 = [bos, *pieces[1].tolist()]
    keys1 = store.keys[19:]
    assert torch.allclose(keys1[:30], direct(x1[:32])[1:31], atol=1e-5)  # tokens 1..30
    assert torch.allclose(keys1[30:46], direct(x1[16:48])[15:31], atol=1e-5)  # tokens 31..46
    assert torch.allclose(keys1[62:], direct(x1[48:76])[15:27], atol=1e-5)  # tokens 63..74
    # the keys are not the embeddings or another layer's output
    with torch.no_grad():
        first = model(input_ids=torch.tensor([x0]), output_hidden_states=True).hidden_states[0]
    assert not torch.allclose(store.keys[:19], first[0, 1:20], atol=1e-2)
    assert store.megabytes == pytest.approx(len(store) * (16 * 4 + 8 + 4) / 1e6)


def test_search_is_exact_across_chunks_and_float16(store, monkeypatch):
    """The k nearest keys by float64 brute force, whatever the chunking; float16 keys give
    nearly the same distances. Random keys (no ties), then the tunes' keys (distances only:
    identical contexts give identical keys)."""
    rng = np.random.default_rng(0)
    keys = torch.from_numpy(rng.standard_normal((500, 16))).float()
    n = torch.arange(500)
    rand = knn.Datastore(keys, torch.from_numpy(rng.integers(0, 300, 500)), n, n)
    for ds in (rand, store):
        q = ds.keys[rng.choice(len(ds), 40, replace=False)]
        q = q + 0.05 * torch.from_numpy(rng.standard_normal(q.shape)).float()
        full = ((q.double()[:, None, :] - ds.keys.double()[None]) ** 2).sum(-1)
        want_d, want_i = torch.topk(full, 7, dim=1, largest=False)
        d, v = ds.search(q, 7)
        assert torch.allclose(d.double(), want_d, atol=1e-4)
        with monkeypatch.context() as m:
            m.setattr(knn, "CHUNK_ELEMENTS", 100)  # keys in chunks of 100, one query a time
            d2, v2 = ds.search(q, 7)
        assert torch.allclose(d2.double(), want_d, atol=1e-4)
        if ds is rand:
            assert torch.equal(v, ds.values[want_i]) and torch.equal(v2, v)
        half = ds.to("float16")
        assert half.keys.dtype == torch.float16 and half.megabytes < 0.7 * ds.megabytes
        d3, _ = half.search(q, 7)
        assert torch.allclose(d3.double(), want_d, rtol=0.02, atol=0.02)
    assert store.search(q, 10**6)[0].shape == (40, len(store))  # k beyond N: every key
    with pytest.raises(ValueError, match="neighbours"):
        store.search(q, 0)


def test_lambda_zero_is_exactly_the_transformer_under_the_mask(tok, grammar, tunes, model, store):
    bos = special_ids(tok)["bos"]
    piece = tunes[12][:70]  # past the context of 32: windows
    lp = knn_log_probs(model, store, piece, [(0.0, 1.0), (0.5, 1.0)], 8, bos, grammar)
    alone = transformer_log_probs(model, piece, bos, grammar)
    assert np.array_equal(lp[0], alone)
    assert not np.allclose(lp[1], alone)
    assert np.array_equal(
        knn_log_probs(model, None, piece, [(0.0, 1.0)], 8, bos, grammar)[0], alone
    )
    # sampling with lambda 0 gives the transformer's own samples under the mask, token for token
    kw = _kw(tok)
    want = transformer_samples(model, 3, 60, 5, grammar=grammar, **kw)
    got = knn_samples(model, store, 0.0, 1.0, 8, 3, 60, 5, grammar=grammar, **kw)
    assert all(np.array_equal(a, b) for a, b in zip(want, got, strict=True))


def test_one_piece_and_a_tiny_temperature_give_the_nearest_keys_continuation(
    tok, grammar, tunes, model
):
    """A datastore of one piece: with T -> 0, p_knn is all on the value of the nearest key
    (found here by float64 brute force), and the piece scored against itself at lambda near 1
    costs almost nothing: every query finds its own key, whose value is the next token."""
    bos = special_ids(tok)["bos"]
    piece = tunes[3][:30]
    one = build_datastore(model, [piece], bos)
    other = [bos, *tunes[7][:25].tolist()]
    with torch.no_grad(), OutputTap(model) as tap:
        model(input_ids=torch.tensor([other]))
    queries, logits = tap.hidden[0, 5:25], tap.logits[0, 5:25].double()
    full = ((queries.double()[:, None, :] - one.keys.double()[None]) ** 2).sum(-1)
    order = torch.sort(full, dim=1).values
    assert (order[:, 1] - order[:, 0] > 1e-3).all()  # a unique nearest key
    nearest = one.values[full.argmin(1)]
    d, v = one.search(queries, 8)
    p = knn_distribution(d, v, 1e-6, len(tok))
    assert torch.allclose(p[torch.arange(20), nearest], torch.ones(20, dtype=torch.float64))
    mix = knn_mixture(logits, d, v, 0.999, 1e-6)
    assert (mix[torch.arange(20), nearest] > 0.999).all()
    assert not (torch.softmax(logits, 1)[torch.arange(20), nearest] > 0.5).any()
    own = knn_log_probs(model, one, piece, [(0.0, 1.0), (0.999, 1e-6)], 8, bos, grammar)
    assert -own[1].mean() < 0.0015 < -own[0].mean()


def test_same_seed_same_samples_and_valid_remi(tok, grammar, model, store):
    kw = _kw(tok)
    a = knn_samples(model, store, 0.75, 0.3, 8, 3, 50, 7, grammar=grammar, **kw)
    b = knn_samples(model, store, 0.75, 0.3, 8, 3, 50, 7, grammar=grammar, **kw)
    c = knn_samples(model, store, 0.75, 0.3, 8, 2, 50, 7, grammar=grammar, **{**kw, "batch": 1})
    d = knn_samples(model, store, 0.75, 0.3, 8, 3, 50, 8, grammar=grammar, **kw)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert np.array_equal(a[0], c[0]) and np.array_equal(a[1], c[1])  # batch-independent
    assert not np.array_equal(a[0], d[0])
    assert all(len(s) == 50 and token_errors(tok, s) == 0 for s in a)
    # the memory steers the samples: far more of them are continuations stored in the datastore
    plain = transformer_samples(model, 3, 50, 7, grammar=grammar, **kw)
    stored = set(zip(store.values[:-1].tolist(), store.values[1:].tolist(), strict=True))

    def share(samples):
        pairs = [(int(x), int(y)) for s in samples for x, y in zip(s[:-1], s[1:], strict=True)]
        return np.mean([p in stored for p in pairs])

    assert share(a) > share(plain) + 0.2
    with pytest.raises(ValueError, match="grammar"):
        knn_samples(model, store, 0.5, 1.0, 8, 1, 5, 0, grammar=None, **kw)


def test_the_sampler_draws_from_the_scored_distribution(tok, grammar, tunes, model, store):
    """One step of the processor, softmaxed at sampling temperature 1, is the masked mixture
    that knn_log_probs scores; at temperature t it is that mixture to the power 1 / t."""
    bos = special_ids(tok)["bos"]
    piece = tunes[5][:25]
    ids = torch.tensor([[bos, *piece.tolist()]])
    allowed = torch.from_numpy(grammar.mask(grammar.replay(piece)))
    skip = sorted(special_ids(tok).values())
    for temperature in (1.0, 0.5):
        with torch.no_grad(), OutputTap(model) as tap:
            logits = model(input_ids=ids).logits[:, -1].float()
            proc = KnnLogitsProcessor(grammar, store, tap, 0.6, 0.3, 8, skip, temperature)
            scores = proc(ids, logits / temperature)
        p = torch.softmax(scores.double(), 1)[0]
        d, v = store.search(tap.hidden[:, -1], 8)
        want = knn_mixture(logits.double(), d, v, 0.6, 0.3, allowed)[0]
        want_t = want ** (1 / temperature)
        assert torch.allclose(p, want_t / want_t.sum(), atol=1e-6)
        assert (p[~allowed[0]] == 0).all()
    for nxt in (int(torch.argmax(want)), int(np.flatnonzero(allowed[0].numpy())[0])):
        seq = np.concatenate([piece, [nxt]])
        lp = knn_log_probs(model, store, seq, [(0.6, 0.3)], 8, bos, grammar)[0, -1]
        assert lp == pytest.approx(math.log2(want[nxt]), abs=1e-5)


def test_choose_knn_is_the_two_pass_choice_from_one_pass(tok, grammar, tunes, model):
    """The choice's bits, from one datastore of every piece split by index, equal the bits of
    a datastore built on the fitted pieces alone and the held-out pieces scored directly."""
    bos = special_ids(tok)["bos"]
    pieces = tunes[:8]
    groups = ["a", "a", "b", "b", "c", "c", "d", "d"]
    lams, temps = (0.0, 0.5, 0.9), (0.3, 3.0)
    choice = choose_knn(model, pieces, lams, temps, 16, bos, grammar, seed=1, groups=groups)
    fit, held = holdout(pieces, 0.2, 1, groups)
    assert choice.held_pieces == len(held) == 2 and choice.fit_pieces == len(fit) == 6
    direct = build_datastore(model, fit, bos)
    assert choice.keys == len(direct)
    grid = [(lam, t) for lam in lams for t in temps]
    lps = [knn_log_probs(model, direct, s, grid, 16, bos, grammar) for s, _ in held]
    for j, g in enumerate(grid):
        want = bits_per_token(lp[j] for lp in lps)["bits_per_token"]
        assert choice.bits[g] == pytest.approx(want, abs=1e-6), g
    assert choice.tokens == sum(len(s) - 1 for s, _ in held)
    best = min(grid, key=lambda g: (choice.bits[g], g))
    assert (choice.lam, choice.temperature) == best and choice.lam > 0
    assert sum(r["chosen"] for r in choice.rows()) == 1
    # capped held-out tokens: the same as scoring the capped pieces from their cut
    capped = choose_knn(model, pieces, lams, temps, 16, bos, grammar, 0.2, 1, groups, None, 90)
    assert capped.tokens == 90


def test_choose_knn_with_one_group_reports_the_tail_but_chooses_zero(tok, grammar, tunes, model):
    bos = special_ids(tok)["bos"]
    one = choose_knn(model, tunes[:1], (0.0, 0.5, 0.9), (0.3,), 16, bos, grammar)
    fit, held = holdout(tunes[:1], 0.2)
    assert one.tokens == len(held[0][0]) - held[0][1] and one.keys == len(fit[0]) - 1
    assert min(one.bits, key=one.bits.get)[0] > 0  # the tail favours the memory of its head
    assert one.lam == 0.0 and [r["chosen"] for r in one.rows()] == [1, 0, 0]
    # the tail's bits are those of the head's datastore scoring the whole piece from its cut
    head = build_datastore(model, fit, bos)
    lp = knn_log_probs(model, head, held[0][0], [(0.5, 0.3)], 16, bos, grammar)[0]
    assert one.bits[(0.5, 0.3)] == pytest.approx(-lp[held[0][1] - 1 :].mean(), abs=1e-6)
    same = choose_knn(model, tunes[:4], (0.0, 0.5), (0.3,), 16, bos, grammar, groups=["a"] * 4)
    assert same.lam == 0.0


def test_settings_fill_defaults_and_reject_bad_values():
    s = knn.settings(None)
    assert s["neighbours"] == knn.NEIGHBOURS and s["dtype"] == "float32"
    assert s["choice_tokens"] == knn.CHOICE_TOKENS
    assert knn.settings({"neighbours": 4})["lambdas"] == list(knn.LAMBDAS)
    with pytest.raises(ValueError, match=r"lambda must be in \[0, 1\)"):
        knn.settings({"lambdas": [0.0, 1.0]})
    with pytest.raises(ValueError, match="temperature"):
        knn.settings({"temperatures": [0.0]})
    with pytest.raises(ValueError, match="choice_tokens"):
        knn.settings({"choice_tokens": 0})
    with pytest.raises(ValueError, match="dtype"):
        knn.settings({"dtype": "int8"})
    with pytest.raises(ValueError, match="unknown"):
        knn.settings({"k": 3})


def test_the_registry_method_fits_samples_and_scores(tok, grammar, tunes, tmp_path):
    """The registry's knn adapted through an Env: the record holds the datastore's size, the
    choice and the adaptation; its log_probs and samples are the module's."""
    from tokentransfer import methods
    from tokentransfer.methods import Env

    tok_json = tmp_path / "tokenizer.json"
    save_tokenizer(tok, tok_json)
    save_model(tiny_model(tok).eval(), tok_json, tmp_path / "hf")
    ev = {"bits_tokens": 200}
    ev["knn"] = {"neighbours": 16, "lambdas": [0.0, 0.5], "temperatures": [0.3], "dtype": "float16"}
    sampling = {"temperature": 1.0, "top_k": 0}
    hf = str(tmp_path / "hf")
    env = Env(tok, str(tok_json), gen={}, eval=ev, sampling=sampling, model_dir=hf, seed=0)
    env.groups = [str(i // 2) for i in range(8)]
    fitted = methods.get("knn").fit(tunes[:8], env)
    rec = fitted.record
    assert rec["datastore_keys"] == sum(len(t) - 1 for t in tunes[:8])
    assert rec["datastore_dtype"] == "float16"
    assert rec["datastore_mb"] == pytest.approx(
        rec["datastore_keys"] * (16 * 2 + 8 + 4) / 1e6, 1e-3
    )
    assert fitted.adapt_seconds > rec["datastore_seconds"] > 0 and rec["lambda"] in (0.0, 0.5)
    samples = fitted.sample(2, 40, 3)
    assert all(len(s) == 40 and token_errors(tok, s) == 0 for s in samples)
    assert all(np.array_equal(a, b) for a, b in zip(samples, fitted.sample(2, 40, 3), strict=True))
    lp = fitted.log_probs(tunes[12][:50])
    assert lp.shape == (49,) and np.isfinite(lp).all()
    assert "knn" in methods.allowed_names()["fewshot.methods"]
    assert methods.reads(["knn"], "evaluate") == ["bits_tokens", "knn"]
    assert methods.reads(["knn"], "sampling") == ["temperature", "top_k"]
    assert grammar_masks(grammar, tunes[12][:50])[1:][np.arange(49), tunes[12][1:50]].all()


def test_the_evaluation_job_samples_knn_and_fused_markov(tok, tmp_path, midi_corpora):
    """evaluate.methods takes knn and fused_markov: rule baseline's job adapts them on the
    target's training pieces, keeps their samples and records bits, lambda and the datastore."""
    from tokentransfer import methods
    from tokentransfer.jobs.evaluate import run_baseline
    from tokentransfer.samples import read_samples
    from tokentransfer.tokenize import ShardResult, write_shard

    tok_json = tmp_path / "tokenizer.json"
    save_tokenizer(tok, tok_json)
    save_model(tiny_model(tok).eval(), tok_json, tmp_path / "hf")
    paths = sorted((midi_corpora / "tunes").glob("*.mid"))
    ids = [f"t{i:02d}" for i in range(len(paths))]
    write_shard(
        ShardResult(ids, [tokenize_file(tok, p) for p in paths], [], 0.0),
        tmp_path / "t.h5",
        tokenizer_hash="x",
        corpus="t",
        shard="0",
    )
    rows = [f"{f}\t{f}\t{'test' if i >= 12 else 'train'}" for i, f in enumerate(ids)]
    (tmp_path / "t.tsv").write_text("file_id\tgroup\tsplit\n" + "\n".join(rows) + "\n")
    ev = {"bits_tokens": 300}
    ev["knn"] = {"neighbours": 16, "lambdas": [0.0, 0.5, 0.9], "temperatures": [0.3, 3.0]}
    sampling = {"temperature": 1.0, "top_k": 0, "markov_discount": 0.75}
    assert {"fused_markov", "knn"} <= set(methods.allowed_names()["evaluate.methods"])
    infos = {}
    for name in ("knn", "fused_markov"):
        infos[name] = run_baseline(
            name,
            tokenizer_json=str(tok_json),
            target_shards=[str(tmp_path / "t.h5")],
            target_split=str(tmp_path / "t.tsv"),
            base_shards=[],
            model_dir=str(tmp_path / "hf"),
            out_dir=str(tmp_path / name),
            gen_cfg={"samples": 2, "length": 40, "seed": 1},
            eval_cfg={k: v for k, v in ev.items() if k in methods.reads([name], "evaluate")},
            sampling_cfg={k: sampling[k] for k in methods.reads([name], "sampling")},
        )
        samples, _ = read_samples(tmp_path / name / "tokens.h5")
        assert [len(s) for s in samples] == [40, 40]
        assert all(token_errors(tok, s) == 0 for s in samples)
    info = infos["knn"]
    assert info["datastore_keys"] == sum(len(tokenize_file(tok, p)) - 1 for p in paths[:12])
    assert info["datastore_mb"] > 0 and info["adapt_seconds"] > 0
    # the untrained transformer gains from the memory of the tunes: lambda > 0, and its bits
    # are finite and near the chain-steered transformer's
    assert info["lambda"] > 0 and info["bits_per_token"] > 0
    assert info["bits_per_token"] < infos["fused_markov"]["bits_per_token"] + 1
