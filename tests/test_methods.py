"""The method registry: a toy method registered here (no other module touched) is evaluated
and put on the few-shot curve by the real job functions; the job functions of the evaluation
on each kind of method; the schema's method lists agree with the registry.

Tiny inputs: fiddle tunes exported from music21's corpus (the ``music21_corpora`` fixture),
tokenized here, one shard, a grouped split; a tiny transformer built and saved here."""

from __future__ import annotations

import json
import math
import re
from types import SimpleNamespace

import numpy as np
import pytest

from tests.music21_corpora import FIDDLE_GROUP
from tokentransfer import methods
from tokentransfer.fileio import read_tsv
from tokentransfer.jobs.evaluate import run_baseline, run_evaluate
from tokentransfer.jobs.fewshot import run_fewshot_curve, run_fewshot_point
from tokentransfer.likelihood import grammar_masks
from tokentransfer.methods import Fitted, Method, register, unregister
from tokentransfer.samples import read_samples
from tokentransfer.tokenize import (
    ShardResult,
    save_tokenizer,
    tokenize_file,
    write_shard,
)

GEN = {"samples": 2, "length": 48, "seed": 3}
EVAL = {"copy_n": 4, "reference_excerpts": 3, "seed": 0, "bits_tokens": 600}
SAMPLING = {"markov_discount": 0.75, "temperature": 1.0, "top_k": 0}


class Uniform(Method):
    """Uniform over the tokens the grammar allows: the toy method."""

    name = "uniform_toy"
    fewshot = "point"

    def fit(self, pieces, env):
        g = env.grammar

        def sample(n, length, seed, prompt=None):
            out = []
            for ss in np.random.SeedSequence(seed).spawn(n):
                rng, st, seq = np.random.default_rng(ss), g.new_state(1), []
                for _ in range(length):
                    t = int(rng.choice(np.flatnonzero(g.mask(st)[0])))
                    g.advance(st, np.array([t]))
                    seq.append(t)
                out.append(np.asarray(seq, dtype=np.int64))
            return out

        def log_probs(seq):
            seq = np.asarray(seq, dtype=np.int64)
            masks = grammar_masks(g, seq)[1:]
            allowed = masks[np.arange(len(masks)), seq[1:]]
            with np.errstate(divide="ignore"):
                return np.where(allowed, -np.log2(masks.sum(axis=1)), -np.inf)

        return Fitted(sample, log_probs, {"toy": True, "train_pieces": len(pieces)}, 0.0)


@pytest.fixture
def toy():
    register(Uniform)
    yield methods.REGISTRY["uniform_toy"]
    unregister("uniform_toy")


@pytest.fixture(scope="module")
def target(tok, tmp_path_factory, music21_corpora):
    """The fiddle tunes as a target: one shard, the last three groups held out as test."""
    out = tmp_path_factory.mktemp("methods")
    tok_json = out / "tokenizer.json"
    save_tokenizer(tok, tok_json)
    paths = sorted((music21_corpora / "fiddle").glob("*.mid"))
    ids = [f"fiddle{i:03d}" for i in range(len(paths))]
    seqs = [tokenize_file(tok, p) for p in paths]
    shard = out / "fiddle.h5"
    write_shard(ShardResult(ids, seqs, [], 0.0), shard, tokenizer_hash="x", corpus="f", shard="0")
    groups = []
    for p in paths:
        m = re.match(FIDDLE_GROUP, p.stem)
        groups.append(m.group(1) if m else p.stem)
    held = set(sorted(set(groups))[-3:])
    rows = ["file_id\tgroup\tsplit"] + [
        f"{f}\t{g}\t{'test' if g in held else 'train'}" for f, g in zip(ids, groups, strict=True)
    ]
    split = out / "fiddle.tsv"
    split.write_text("\n".join(rows) + "\n")
    return SimpleNamespace(
        out=out, tok=tok, tok_json=str(tok_json), shards=[str(shard)], split=str(split)
    )


def _baseline(target, method, out, **kw):
    return run_baseline(
        method,
        tokenizer_json=target.tok_json,
        target_shards=target.shards,
        target_split=target.split,
        base_shards=kw.pop("base_shards", target.shards),
        model_dir=kw.pop("model_dir", None),
        out_dir=str(out),
        gen_cfg=GEN,
        eval_cfg=EVAL,
        sampling_cfg=SAMPLING,
        **kw,
    )


def _evaluate(target, sets, out):
    """The evaluation job on the sample sets ``sets`` (method -> tokens.h5): its rows by method."""
    run_evaluate(
        tokenizer_json=target.tok_json,
        target_shards=target.shards,
        target_split=target.split,
        sets=sets,
        out_tsv=str(out / "metrics.tsv"),
        samples_tsv=str(out / "samples.tsv"),
        features_tsv=str(out / "features.tsv"),
        eval_cfg=EVAL,
        gen_cfg=GEN,
        corpus="fiddle",
    )
    return {r["method"]: r for r in read_tsv(out / "metrics.tsv")}


def test_a_toy_method_is_evaluated_and_on_the_few_shot_curve(target, toy, tmp_path):
    """Registered here only: rule baseline's job makes its set, the evaluation gives it a row,
    the few-shot point adapts it on k pieces (with bits per token) and the curve keeps it."""
    info = _baseline(target, "uniform_toy", tmp_path / "uniform_toy")
    assert info["method"] == "uniform_toy" and info["toy"] is True
    assert info["token_error_rate"] == [0.0, 0.0]  # uniform over the allowed tokens
    samples, prompt = read_samples(tmp_path / "uniform_toy" / "tokens.h5")
    assert prompt == 0 and [len(s) for s in samples] == [48, 48]
    _baseline(target, "markov2", tmp_path / "markov2")

    sets = {m: str(tmp_path / m / "tokens.h5") for m in ("markov2", "uniform_toy")}
    rows = _evaluate(target, sets, tmp_path)
    assert list(rows) == ["test_pieces", "markov2", "uniform_toy"]
    toy_row = rows["uniform_toy"]
    assert toy_row["kind"] == "baseline" and toy_row["samples"] == "2"
    assert float(toy_row["token_error_rate"]) == 0.0
    assert 0.0 <= float(toy_row["feature_fidelity"]) <= 1.0
    assert math.isfinite(float(toy_row["js_bigram"]))

    cfg = {"seed": 0, "methods": ["markov1", "uniform_toy"], "variants": []}
    points = []
    for k in (1, 0):
        points.append(str(tmp_path / f"k{k}_d0"))  # the point's sample folder
        run_fewshot_point(
            tokenizer_json=target.tok_json,
            shards=target.shards,
            split=target.split,
            corpus="fiddle",
            k=k,
            draw=0,
            cfg=cfg,
            gen_cfg=GEN,
            eval_cfg=EVAL,
            sampling_cfg=SAMPLING,
            out_tsv=points[-1] + ".tsv",
            graph_cfg={},  # as rule fewshot_point passes them: its methods read none of these
            linkpred_cfg={},
            finetune_cfg={},
        )
    curve = run_fewshot_curve(
        points=points,
        out_tsv=str(tmp_path / "curve.tsv"),
        out_png=str(tmp_path / "c.png"),
        corpus="fiddle",
        tokenizer_json=target.tok_json,
        shards=target.shards,
        split=target.split,
        copy_n=EVAL["copy_n"],
    )
    got = {(r["method"], r["k"]) for r in curve}
    assert got == {(m, k) for m in ("markov1", "uniform_toy") for k in ("1", "0")}
    bits = [
        r["value"]
        for r in curve
        if r["method"] == "uniform_toy" and r["metric"] == "bits_per_token"
    ]
    assert len(bits) == 2 and all(float(b) > 0 for b in bits)
    tokens = {r["value"] for r in curve if r["method"] == "uniform_toy" and r["metric"] == "tokens"}
    assert tokens == {"96"}


def test_unregistered_method_is_refused(target, tmp_path):
    with pytest.raises(ValueError, match="unknown method 'nope'"):
        _baseline(target, "nope", tmp_path / "nope")


@pytest.mark.parametrize("method", ["markov1", "markov3c", "markov3ci", "real_target", "real_base"])
def test_baseline_job_writes_a_set_and_its_record(target, method, tmp_path):
    info = _baseline(target, method, tmp_path / method)
    samples, _ = read_samples(tmp_path / method / "tokens.h5")
    assert len(samples) == 2 and all(len(s) == 48 for s in samples)
    record = json.loads((tmp_path / method / "generation.json").read_text())
    assert record == info and record["method"] == method and record["samples_seed"] == 3
    if method.startswith("markov"):
        assert record["order"] == int(method[6]) and record["discount"] == 0.75
        assert record["grammar_mask"] == ("c" in method[7:])
        assert record.get("pitch_memory", False) == method.endswith("i")
    else:
        assert record["pieces"] > 0
    if method in ("markov3c", "markov3ci"):
        assert record["token_error_rate"] == [0.0, 0.0]
    _baseline(target, method, tmp_path / "again")  # seeded: the same samples
    s2, _ = read_samples(tmp_path / "again" / "tokens.h5")
    assert all(np.array_equal(a, b) for a, b in zip(samples, s2, strict=True))


@pytest.fixture(scope="module")
def tiny_model(target):
    import torch

    from tokentransfer.model import build_model, model_spec, save_model, special_ids

    torch.set_num_threads(1)
    cfg = {"arch": "gpt2", "layers": 1, "dim": 16, "heads": 2, "context": 32, "dropout": 0.0}
    model = build_model(model_spec(cfg), len(target.tok), special_ids(target.tok), 0)
    save_model(model, target.tok_json, target.out / "hf")
    return str(target.out / "hf")


def test_transformer_job_samples_under_the_grammar(target, tiny_model, tmp_path):
    info = _baseline(target, "transformer", tmp_path / "t", model_dir=tiny_model)
    assert info["grammar_mask"] is True and info["model"] == tiny_model
    assert info["token_error_rate"] == [0.0, 0.0]
    samples, _ = read_samples(tmp_path / "t" / "tokens.h5")
    assert all(len(s) == 48 for s in samples)


def test_finetuned_on_k_pieces_in_its_few_shot_job(target, tiny_model, tmp_path):
    """The few-shot finetune job adapts the registry's finetuned method for the budget."""
    cfg = {"seed": 0, "methods": ["finetuned", "markov1"], "variants": [], "finetune_steps": 2}
    rows = run_fewshot_point(
        tokenizer_json=target.tok_json,
        shards=target.shards,
        split=target.split,
        corpus="fiddle",
        k=1,
        draw=0,
        cfg=cfg,
        gen_cfg=GEN,
        eval_cfg=EVAL,
        sampling_cfg=SAMPLING,
        out_tsv=str(tmp_path / "p.tsv"),
        job="finetune",
        model_dir=tiny_model,
        finetune_cfg={"batch": 2, "lr": 1e-3, "warmup": 1},
        checkpoints=str(tmp_path / "ckpt"),
    )
    assert {r["method"] for r in rows} == {"finetuned"}
    bits = [r["value"] for r in rows if r["metric"] == "bits_per_token"]
    assert bits and math.isfinite(bits[0])
    assert not (tmp_path / "ckpt" / "finetuned.pt").exists()


def test_config_lists_take_the_registry_names(toy):
    """The config's method lists hold the registry's names, and only those: a method
    registered (here, in the test) is accepted at once, and refused once it is gone, the
    message naming the key and the allowed names; the schema holds no list of its own."""
    from tokentransfer.config import SCHEMA_PATH, ConfigError, check, load_yaml

    schema = load_yaml(SCHEMA_PATH)
    corpora = {
        "base": {"role": "base", "sources": [{"music21": {"composer": "palestrina"}}]},
        "bach": {"role": "target", "sources": [{"music21": {"composer": "bach"}}]},
    }
    config = {
        "corpora": corpora,
        "evaluate": {"methods": ["markov2", "uniform_toy"]},
        "fewshot": {"methods": ["uniform_toy"]},
    }
    check(config, schema)
    unregister("uniform_toy")
    with pytest.raises(ConfigError) as err:
        check(config, schema)
    msg = str(err.value)
    assert msg.startswith("config key evaluate.methods[1]: 'uniform_toy' is not one of"), msg
    assert "'markov2'" in msg and "'fused_markov'" in msg
    for section in ("evaluate", "fewshot"):
        assert "enum" not in schema["properties"][section]["properties"]["methods"]["items"]


def test_jobs_and_keys_come_from_the_registry():
    assert methods.fewshot_jobs(["markov1", "counts"]) == ["point"]
    assert methods.fewshot_jobs(["finetuned", "lora"]) == ["point", "finetune", "transfer"]
    chosen = methods.fewshot_methods(["markov2", "counts", "lora"], ["random"], "point")
    assert [m.name for m in chosen] == ["markov2", "counts", "random"]
    assert methods.reads(["markov2"], "generate") == []
    assert "temperature" in methods.reads(["counts"], "generate")
    assert methods.reads(["transformer", "markov1"], "evaluate") == ["bits_tokens"]
    assert methods.reads(["transformer", "markov1"], "sampling") == [
        "markov_discount",
        "temperature",
        "top_k",
    ]
    assert methods.reads(["markov1"], "sampling") == ["markov_discount"]
    assert methods.reads(["real_target", "real_base"], "evaluate") == []  # no likelihood
    assert methods.get("real_base").base and methods.get("finetuned").model == "finetuned"


def test_baseline_record_holds_the_chains_bits_per_token_on_the_test_pieces(target, tmp_path):
    """The evaluation's bits per token of a chain: the chain fitted on the training pieces,
    scored on the test pieces cut to evaluate.bits_tokens tokens, computed here directly."""
    from tokentransfer.baselines import NgramModel
    from tokentransfer.likelihood import chain_log_probs, corpus_bits, scored_pieces
    from tokentransfer.tokenize import corpus_tokens

    info = _baseline(target, "markov2", tmp_path / "markov2")
    train = corpus_tokens(target.shards, [target.split], "train")
    test = corpus_tokens(target.shards, [target.split], "test")
    chain = NgramModel(2, len(target.tok), discount=SAMPLING["markov_discount"]).fit(train)
    direct = corpus_bits(lambda s: chain_log_probs(chain, s), scored_pieces(test, 600))
    assert info["bits_scored_tokens"] == direct["tokens"] <= 600
    assert info["bits_per_token"] == pytest.approx(direct["bits_per_token"], rel=1e-9)
    real = _baseline(target, "real_target", tmp_path / "real")
    assert "bits_per_token" not in real  # real excerpts have no next-token distribution
    sets = {
        m: str(tmp_path / d / "tokens.h5")
        for m, d in (("markov2", "markov2"), ("real_target", "real"))
    }
    rows = _evaluate(target, sets, tmp_path)
    assert float(rows["markov2"]["bits_per_token"]) == pytest.approx(
        info["bits_per_token"], abs=1e-4
    )
    assert rows["real_target"]["bits_per_token"] == ""  # none: written empty
