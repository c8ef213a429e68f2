"""The job functions of :mod:`tokentransfer.jobs` (the functions the transformer, graph and
walk rules call) and the sample-set format (:mod:`tokentransfer.samples`), each on tiny inputs,
asserting on what it writes.

Real music: the fiddle tunes exported from music21's corpus (the ``midi_corpora`` fixture),
tokenized here into two shards with the package's own writer; a split with train, val and test
groups; a tiny GPT-2 trained for a few steps by ``run_pretrain`` itself. No ../shared.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import h5py
import numpy as np
import pytest

from tokentransfer.embed import read_embeddings
from tokentransfer.fileio import sha256_file
from tokentransfer.graph import load_coo, load_matrix
from tokentransfer.jobs.generate import run_generate
from tokentransfer.jobs.graph import run_adjacency, run_linkpred, run_linkpred_summary
from tokentransfer.jobs.model import (
    run_embed,
    run_finetune,
    run_import_model,
    run_model_metrics,
    run_perplexity,
    run_pretrain,
)
from tokentransfer.jobs.tokenize import import_tokenizer
from tokentransfer.model import PRETRAIN_KEYS, ModelError, load_model
from tokentransfer.samples import read_samples, write_samples
from tokentransfer.split import SPLIT_COLUMNS
from tokentransfer.tokenize import (
    ShardResult,
    build_tokenizer,
    corpus_tokens,
    save_tokenizer,
    tokenize_file,
    write_shard,
)

MODEL = {
    "arch": "gpt2",
    "layers": 1,
    "dim": 16,
    "heads": 2,
    "context": 32,
    "dropout": 0.0,
    "steps": 4,
    "batch": 2,
    "lr": 1e-3,
    "warmup": 1,
    "weight_decay": 0.0,
    "checkpoint_every": 2,
    "eval_tokens": 256,
}
WALK = {
    "length": 40,
    "samples": 3,
    "beta": 1.0,
    "temperature": 0.5,
    "top_k": 8,
    "restart": 0.05,
    "similarity": "cosine",
    "context": "onset",
    "scale": "key",
    "chromatic": 0.0,
    "seed": 7,
}


@pytest.fixture(scope="module")
def corpus(tok, tmp_path_factory, midi_corpora):
    """The tunes in two shards (odd and even files), a split: 2 val, 3 test, the rest train."""
    out = tmp_path_factory.mktemp("jobs")
    tok_json = out / "tokenizer.json"
    save_tokenizer(tok, tok_json)
    paths = sorted((midi_corpora / "tunes").glob("*.mid"))
    ids = [f"tune{i:03d}" for i in range(len(paths))]
    seqs = {fid: tokenize_file(tok, p) for fid, p in zip(ids, paths, strict=True)}
    shards = []
    for k in (0, 1):
        mine = ids[k::2]
        path = out / f"shard{k}.h5"
        write_shard(
            ShardResult(mine, [seqs[f] for f in mine], [], 0.0),
            path,
            tokenizer_hash="h",
            corpus="tunes",
            shard=str(k),
        )
        shards.append(str(path))
    parts = {f: "val" if i < 2 else "test" if i < 5 else "train" for i, f in enumerate(ids)}
    split = out / "split.tsv"
    rows = ["\t".join(SPLIT_COLUMNS)] + [f"{f}\t{f}\t{parts[f]}" for f in ids]
    split.write_text("\n".join(rows) + "\n")
    manifest = out / "manifest.tsv"
    manifest.write_text("file_id\n" + "\n".join(ids) + "\n")
    return SimpleNamespace(
        out=out,
        tok=tok,
        tok_json=str(tok_json),
        shards=shards,
        split=str(split),
        manifest=str(manifest),
        seqs=seqs,
        parts=parts,
    )


@pytest.fixture(scope="module")
def pretrained(corpus):
    """``run_pretrain`` on the tunes: the model folder and its record."""
    out = corpus.out / "model"
    info = run_pretrain(
        tokenizer_json=corpus.tok_json,
        shards=corpus.shards,
        splits=[corpus.split],
        out_dir=str(out),
        log_path=str(corpus.out / "train.log"),
        train_json=str(corpus.out / "train.json"),
        checkpoint_dir=str(corpus.out / "ckpt"),
        cfg=MODEL,
        seed=0,
        use_gpu=False,
    )
    return SimpleNamespace(dir=str(out), info=info)


def _part(corpus, part):
    return [corpus.seqs[f] for f in sorted(corpus.seqs) if corpus.parts[f] == part]


def test_corpus_tokens_reads_every_shard_in_file_id_order_and_one_part(corpus):
    every = corpus_tokens(corpus.shards)
    assert [len(s) for s in every] == [len(corpus.seqs[f]) for f in sorted(corpus.seqs)]
    assert all(
        np.array_equal(a, corpus.seqs[f]) for a, f in zip(every, sorted(corpus.seqs), strict=True)
    )
    for part in ("train", "val", "test"):
        got = corpus_tokens(corpus.shards, [corpus.split], part)
        assert [s.tolist() for s in got] == [s.tolist() for s in _part(corpus, part)]
    assert corpus_tokens(corpus.shards, [corpus.split], "nothing") == []


def test_run_pretrain_writes_a_loadable_model_its_log_and_record(corpus, pretrained):
    assert set(MODEL) == set(PRETRAIN_KEYS)  # the keys rule pretrain passes are enough
    info = pretrained.info
    assert info["train_pieces"] == len(_part(corpus, "train")) == 11
    assert info["val_pieces"] == 2
    assert info["tokens_seen"] == MODEL["steps"] * MODEL["batch"] * MODEL["context"]
    assert info["flops_estimate"] == 6 * info["parameters"] * info["tokens_seen"]
    assert info["architecture"]["dim"] == 16 and info["training"]["steps"] == 4
    assert np.isfinite(info["val"]["loss"]) and info["val"]["perplexity"] > 1
    assert json.loads((corpus.out / "train.json").read_text()) == info
    log_rows = (corpus.out / "train.log").read_text().splitlines()
    assert log_rows[0].split("\t")[:2] == ["step", "loss"] and log_rows[-1].startswith("4\t")
    assert list((corpus.out / "ckpt").glob("*.pt")) == []  # the checkpoint is removed at the end
    names = {p.name for p in Path(pretrained.dir).iterdir()}
    assert {"model.safetensors", "tokenizer.json", "config.json"} <= names
    model, tokenizer = load_model(pretrained.dir)
    assert len(tokenizer) == len(corpus.tok) and model.config.n_embd == 16


def test_run_import_model_perplexity_and_model_metrics(corpus, pretrained, tmp_path):
    imported = run_import_model(
        model_path=pretrained.dir,
        tokenizer_json=corpus.tok_json,
        out_dir=str(tmp_path / "model"),
        log_path=str(tmp_path / "train.log"),
        train_json=str(tmp_path / "train.json"),
    )
    assert imported["source"] == "local"
    assert imported["model_hash"] == pretrained.info["model_hash"]  # the same weights
    assert imported["parameters"] == pretrained.info["parameters"]
    assert (tmp_path / "train.log").read_text() == "step\tloss\tlr\ttokens\tseconds\n"

    ppl = run_perplexity(
        model_dir=str(tmp_path / "model"),
        shards=corpus.shards,
        split=corpus.split,
        part="test",
        out_json=str(tmp_path / "ppl_tunes.json"),
        corpus="tunes",
        eval_tokens=MODEL["eval_tokens"],
        use_gpu=False,
    )
    assert ppl["pieces"] == "test" and ppl["n_pieces"] == 3 and ppl["corpus"] == "tunes"
    assert 0 < ppl["tokens"] <= MODEL["eval_tokens"] and np.isfinite(ppl["perplexity"])
    whole = run_perplexity(  # a part with no piece: all pieces are scored, and it says so
        model_dir=str(tmp_path / "model"),
        shards=corpus.shards,
        split=corpus.split,
        part="nothing",
        out_json=str(tmp_path / "ppl_all.json"),
        corpus="all",
        eval_tokens=64,
        use_gpu=False,
    )
    assert whole["pieces"] == "all" and whole["n_pieces"] == len(corpus.seqs)

    out = run_model_metrics(
        str(corpus.out / "train.json"),
        [str(tmp_path / "ppl_tunes.json"), str(tmp_path / "ppl_all.json")],
        str(tmp_path / "metrics.json"),
    )
    assert json.loads((tmp_path / "metrics.json").read_text()) == out
    assert out["source"] == "pretrain" and out["model_hash"] == pretrained.info["model_hash"]
    assert out["training"]["tokens_seen"] == pretrained.info["tokens_seen"]
    assert out["perplexity"]["tunes"] == ppl and out["perplexity"]["all"] == whole


def test_import_tokenizer_copies_a_matching_tokenizer_and_refuses_a_mismatch(
    corpus, pretrained, tmp_path
):
    out = tmp_path / "tokenizer.json"
    digest = import_tokenizer(pretrained.dir, None, str(out))
    assert out.read_bytes() == (Path(pretrained.dir) / "tokenizer.json").read_bytes()
    assert len(digest) == 64
    other = tmp_path / "other.json"
    save_tokenizer(build_tokenizer({"kind": "REMI", "use_programs": False}), other)
    with pytest.raises(ModelError, match="vocab mismatch"):
        import_tokenizer(pretrained.dir, str(other), str(tmp_path / "refused.json"))
    assert not (tmp_path / "refused.json").exists()


def test_run_embed_without_the_contextual_pass(corpus, pretrained, tmp_path):
    """No variant reads contextual embeddings: the cache has the same token and position
    tables, a NaN contextual table, and the contextual variant refuses it by name."""
    from tokentransfer.linkpred import raw_features

    kw = dict(
        model_dir=pretrained.dir,
        shards=corpus.shards,
        split=corpus.split,
        manifest=corpus.manifest,
        batch=4,
        stride=None,
        use_gpu=False,
    )
    info = run_embed(**kw, out=str(tmp_path / "skip.h5"), contextual_pass=False)
    run_embed(**kw, out=str(tmp_path / "full.h5"))
    skip, full = read_embeddings(tmp_path / "skip.h5"), read_embeddings(tmp_path / "full.h5")
    assert info["contextual_pass"] == 0 and full["attrs"]["contextual_pass"] == 1
    assert np.array_equal(skip["token"], full["token"])
    assert np.array_equal(skip["position"], full["position"])
    assert np.isnan(skip["contextual"]).all() and not skip["count"].any()
    nodes = np.arange(4, 12)
    assert raw_features("emb_neighbours", nodes, skip).shape == (8, 16)
    with pytest.raises(ValueError, match="no contextual embeddings"):
        raw_features("contextual", nodes, skip)
    assert np.isfinite(raw_features("contextual", nodes, full)).all()


def test_run_embed_writes_the_cache_of_the_training_pieces(corpus, pretrained, tmp_path):
    info = run_embed(
        model_dir=pretrained.dir,
        shards=corpus.shards,
        split=corpus.split,
        manifest=corpus.manifest,
        out=str(tmp_path / "emb.h5"),
        batch=4,
        stride=None,
        use_gpu=False,
    )
    cache = read_embeddings(tmp_path / "emb.h5")
    vocab = len(corpus.tok)
    assert cache["token"].shape == (vocab, 16) and cache["contextual"].shape == (vocab, 16)
    assert cache["position"].shape == (MODEL["context"], 16)
    train = _part(corpus, "train")
    assert info["pieces"] == cache["attrs"]["pieces"] == 11
    assert info["tokens"] == sum(len(s) + 2 for s in train)  # each piece with BOS and EOS
    assert info["window"] == 32 and info["stride"] == 16
    seen = np.unique(np.concatenate(train))
    assert (cache["count"][seen] > 0).all()  # every token of the training pieces is averaged
    unseen = np.setdiff1d(np.arange(vocab), np.concatenate(list(corpus.seqs.values())))
    assert (cache["count"][unseen[unseen > 3]] == 0).all()  # ids 0-3: the special tokens
    assert np.abs(cache["contextual"][seen]).sum(axis=1).min() > 0
    with pytest.raises(ModelError, match="no training pieces"):
        empty = tmp_path / "empty.tsv"
        empty.write_text("\t".join(SPLIT_COLUMNS) + "\n")
        run_embed(
            model_dir=pretrained.dir,
            shards=corpus.shards,
            split=str(empty),
            manifest=corpus.manifest,
            out=str(tmp_path / "none.h5"),
            batch=4,
            stride=None,
            use_gpu=False,
        )


def test_run_finetune_trains_on_train_and_scores_test_before_and_after(
    corpus, pretrained, tmp_path
):
    cfg = {"steps": 3, "batch": 2, "lr": 1e-3, "warmup": 1}
    info = run_finetune(
        model_dir=pretrained.dir,
        shards=corpus.shards,
        split=corpus.split,
        out_dir=str(tmp_path / "ft"),
        log_path=str(tmp_path / "ft.log"),
        metrics_json=str(tmp_path / "ft.json"),
        checkpoint_dir=str(tmp_path / "ckpt"),
        cfg=cfg,
        eval_tokens=128,
        seed=1,
        use_gpu=False,
    )
    assert json.loads((tmp_path / "ft.json").read_text()) == info
    assert info["base_model_hash"] != info["model_hash"]  # the weights moved
    assert info["train_pieces"] == 11 and info["test_pieces"] == 3
    assert info["tokens_seen"] == 3 * 2 * MODEL["context"]
    assert info["test_before"]["tokens"] == info["test_after"]["tokens"] > 0
    assert info["test_before"]["loss"] != info["test_after"]["loss"]
    assert (tmp_path / "ft.log").read_text().splitlines()[-1].startswith("3\t")
    assert list((tmp_path / "ckpt").glob("*.pt")) == []
    load_model(tmp_path / "ft")


@pytest.fixture(scope="module")
def graphs(corpus):
    out = corpus.out / "graph"
    out.mkdir()
    stats = run_adjacency(
        tokenizer_json=corpus.tok_json,
        shards=corpus.shards,
        split=corpus.split,
        adjacency=str(out / "adjacency.npz"),
        successors_out=str(out / "successors.npz"),
        stats_out=str(out / "stats.json"),
        offset_weights=[1.0, 0.5],
        self_loops=False,
        context_out=str(out / "context_successors.npz"),
    )
    return SimpleNamespace(dir=out, stats=stats)


def test_run_adjacency_counts_the_training_pieces(corpus, graphs):
    vocab = len(corpus.tok)
    train = _part(corpus, "train")
    a = load_matrix(graphs.dir / "adjacency.npz")
    succ = load_matrix(graphs.dir / "successors.npz")
    assert a.shape == succ.shape == (vocab, vocab)
    assert succ.sum() == sum(len(s) - 1 for s in train)  # one count per next-token pair
    first = train[0]
    assert succ[first[0], first[1]] >= 1
    assert a.diagonal().sum() == 0  # no self loops
    pairs = [sum(int((s[:-k] != s[k:]).sum()) for s in train) for k in (1, 2)]
    assert a.sum() == pytest.approx(pairs[0] + 0.5 * pairs[1])  # offset 1 weighs 1, offset 2 0.5
    assert load_coo(graphs.dir / "context_successors.npz").nnz > 0
    assert json.loads((graphs.dir / "stats.json").read_text()) == graphs.stats
    assert graphs.stats["pieces"] == 11 and graphs.stats["window"] == 2
    assert graphs.stats["tokens"] == sum(len(s) for s in train)


#: a tiny ``linkpred`` section (rule linkpred's ``hp``: the section without variants, encoders,
#: seeds and threads)
LINKPRED_HP = {
    "hidden": 8,
    "layers": 2,
    "dropout": 0.0,
    "lr": 0.01,
    "epochs": 4,
    "patience": 4,
    "val_fraction": 0.1,
    "test_fraction": 0.1,
    "original_protocol": True,
    "original_epochs": 2,
}


def test_run_linkpred_and_run_linkpred_summary(corpus, pretrained, graphs, tmp_path):
    """One feature variant on the tunes' graph: the first seed's model and node embeddings,
    every seed's log and test scores beside the heuristics, then the summary's rows."""
    import torch

    emb = tmp_path / "emb.h5"
    run_embed(
        model_dir=pretrained.dir,
        shards=corpus.shards,
        split=corpus.split,
        manifest=corpus.manifest,
        out=str(emb),
        batch=4,
        stride=None,
        use_gpu=False,
    )
    folder = tmp_path / "out"  # names reach the summary from the rule, not from this path
    folder.mkdir(parents=True)
    out = run_linkpred(
        adjacency=str(graphs.dir / "adjacency.npz"),
        embeddings=str(emb),
        variant="emb_neighbours",
        encoders=["gcn"],
        seeds=[0, 1],
        hp=LINKPRED_HP,
        checkpoint=str(folder / "checkpoint.pt"),
        nodes_h5=str(folder / "nodes.h5"),
        log_tsv=str(folder / "training_log.tsv"),
        metrics_json=str(folder / "metrics.json"),
    )
    a = load_matrix(graphs.dir / "adjacency.npz")
    used = np.flatnonzero(np.asarray((a + a.T).sum(axis=1)).ravel() > 0)
    assert out["variant"] == "emb_neighbours" and out["nodes"] == len(used)
    assert json.loads((folder / "metrics.json").read_text())["summary"] == json.loads(
        json.dumps(out["summary"])
    )
    assert [r["seed"] for r in out["per_seed"]] == [0, 1]
    methods = set(out["per_seed"][0]["methods"])
    assert {"gcn", "feature_cosine", "original_protocol"} <= methods and len(methods) >= 5
    assert set(out["summary"]) == methods
    assert all(0.0 <= out["summary"][m]["auc"][0] <= 1.0 for m in methods)
    with h5py.File(folder / "nodes.h5") as h5:
        assert h5["embeddings"].shape == (len(used), 8)
        assert h5["vocab_ids"][:].tolist() == used.tolist()
        assert h5.attrs["variant"] == "emb_neighbours" and h5.attrs["seed"] == 0
    assert torch.load(folder / "checkpoint.pt", weights_only=True)
    log_rows = (folder / "training_log.tsv").read_text().splitlines()
    runs = sum(r["methods"]["gcn"]["epochs_run"] for r in out["per_seed"])
    assert log_rows[0] == "encoder\tseed\tepoch\tloss\tval_auc" and len(log_rows) == 1 + runs

    names = [("tiny", "tunes", "emb_neighbours")]
    with pytest.raises(ValueError, match="names"):
        run_linkpred_summary([str(folder / "metrics.json")], tmp_path / "summary.tsv", [])
    rows = run_linkpred_summary([str(folder / "metrics.json")], tmp_path / "summary.tsv", names)
    lines = (tmp_path / "summary.tsv").read_text().splitlines()
    assert lines[0].split("\t")[:6] == ["model", "corpus", "variant", "circular", "method", "seeds"]
    assert len(rows) == len(lines) - 1 == len(methods)
    gcn_row = next(r for r in rows if r[4] == "gcn")
    assert gcn_row[:4] == ["tiny", "tunes", "emb_neighbours", "false"] and gcn_row[5] == "2"
    assert gcn_row[6] == f"{out['summary']['gcn']['auc'][0]:.4f}"


def _nodes(path, vocab, dim=8, seed=0):
    ids = np.arange(4, vocab)
    with h5py.File(path, "w") as h5:
        h5.create_dataset(
            "embeddings", data=np.random.default_rng(seed).normal(size=(len(ids), dim))
        )
        h5.create_dataset("vocab_ids", data=ids)
    return str(path)


def test_run_generate_writes_the_sample_set_and_is_seeded(corpus, graphs, tmp_path):
    vocab = len(corpus.tok)
    nodes = _nodes(tmp_path / "nodes.h5", vocab)
    kw = dict(tokenizer_json=corpus.tok_json, successors_npz=str(graphs.dir / "successors.npz"))
    info = run_generate(**kw, nodes_h5=nodes, out_dir=str(tmp_path / "a"), cfg=WALK)
    run_generate(**kw, nodes_h5=nodes, out_dir=str(tmp_path / "b"), cfg=WALK)
    plain = run_generate(**kw, nodes_h5=None, out_dir=str(tmp_path / "c"), cfg=WALK)

    record = json.loads((tmp_path / "a" / "generation.json").read_text())
    assert record == json.loads(json.dumps(info))
    assert info["biased"] is True and plain["biased"] is False and info["nodes"] == nodes
    assert info["samples"] == 3 and info["prompt_tokens"] == 0
    assert info["tokens_generated"] == 3 * WALK["length"]
    assert info["parameters"]["top_k"] == 8 and info["parameters"]["seed"] == 7
    assert len(info["token_error_rate"]) == len(info["notes"]) == 3
    assert all(n > 0 for n in info["notes"]) and max(info["token_error_rate"]) == 0.0
    mids = sorted(p.name for p in (tmp_path / "a").glob("*.mid"))
    assert mids == ["sample_000.mid", "sample_001.mid", "sample_002.mid"]

    samples, prompt = read_samples(tmp_path / "a" / "tokens.h5")
    assert prompt == 0 and [len(s) for s in samples] == [WALK["length"]] * 3
    assert all(s.min() >= 0 and s.max() < vocab for s in samples)
    assert info["sample_seconds"] > 0 and info["setup_seconds"] > 0
    assert info["tokens_per_second"] == pytest.approx(
        info["tokens_generated"] / info["sample_seconds"], rel=0.01
    )
    same, _ = read_samples(tmp_path / "b" / "tokens.h5")  # same seed: same samples
    assert all(np.array_equal(x, y) for x, y in zip(samples, same, strict=True))
    assert (tmp_path / "a" / "sample_000.mid").read_bytes() == (
        tmp_path / "b" / "sample_000.mid"
    ).read_bytes()
    unbiased, _ = read_samples(tmp_path / "c" / "tokens.h5")
    assert any(not np.array_equal(x, y) for x, y in zip(samples, unbiased, strict=True))


def test_run_generate_in_bars(corpus, graphs, tmp_path):
    """generate.bars: every walk holds that many bars of new music; seeded like the tokens."""
    from tokentransfer.bars import count_bars

    kw = dict(tokenizer_json=corpus.tok_json, successors_npz=str(graphs.dir / "successors.npz"))
    cfg = {**WALK, "bars": 3}
    info = run_generate(**kw, nodes_h5=None, out_dir=str(tmp_path / "a"), cfg=cfg)
    run_generate(**kw, nodes_h5=None, out_dir=str(tmp_path / "b"), cfg=cfg)
    samples, _ = read_samples(tmp_path / "a" / "tokens.h5")
    again, _ = read_samples(tmp_path / "b" / "tokens.h5")
    bar = corpus.tok.vocab["Bar_None"]
    assert [count_bars(s, bar) for s in samples] == [3] * 3
    assert all(np.array_equal(a, b) for a, b in zip(samples, again, strict=True))
    assert info["length"]["bars"] == 3 and info["length"]["short"] == 0
    assert max(info["token_error_rate"]) == 0.0


def test_write_samples_and_read_samples_round_trip_with_a_prompt(corpus, tmp_path):
    prompt = corpus.seqs["tune000"][:10]
    samples = [np.concatenate([prompt, corpus.seqs[f][10:60]]) for f in ("tune001", "tune002")]
    info = write_samples(
        corpus.tok, corpus.tok_json, samples, tmp_path / "set", prompt, 2.0, {"method": "copy"}, 7.5
    )
    assert info["method"] == "copy" and info["samples"] == 2 and info["prompt_tokens"] == 10
    assert info["tokens_generated"] == 2 * 60 - 2 * 10
    # tokens per second from the sampling seconds alone, the set-up apart
    assert info["tokens_per_second"] == 50.0 and info["sample_seconds"] == 2.0
    assert info["setup_seconds"] == 7.5
    assert json.loads((tmp_path / "set" / "generation.json").read_text()) == info
    back, prompt_len = read_samples(tmp_path / "set" / "tokens.h5")
    assert prompt_len == 10
    assert [s.tolist() for s in back] == [s.tolist() for s in samples]
    assert all(s.dtype == np.int64 for s in back)
    with h5py.File(tmp_path / "set" / "tokens.h5") as h5:
        assert h5.attrs["tokenizer_hash"] == sha256_file(corpus.tok_json)
    assert len(list((tmp_path / "set").glob("sample_*.mid"))) == 2


def test_run_generate_records_the_walks_bits_per_token_on_the_test_pieces(corpus, graphs, tmp_path):
    """With the target's shards and split the record holds the walk's bits per token on the
    test pieces: the same walker's smoothed next-token distribution, computed here directly."""
    from tokentransfer.likelihood import corpus_bits, scored_pieces, walk_log_probs
    from tokentransfer.walk import WalkConfig, Walker
    from tokentransfer.walkform import load_tables

    succ = str(graphs.dir / "successors.npz")
    kw = dict(tokenizer_json=corpus.tok_json, successors_npz=succ, nodes_h5=None, cfg=WALK)
    info = run_generate(
        **kw,
        out_dir=str(tmp_path / "a"),
        test_shards=corpus.shards,
        split_tsv=corpus.split,
        bits_tokens=300,
    )
    fields = WalkConfig.__dataclass_fields__
    walker = Walker(
        load_matrix(succ),
        corpus.tok,
        None,
        None,
        WalkConfig(**{k: v for k, v in WALK.items() if k in fields}),
        load_coo(graphs.dir / "context_successors.npz"),
        load_tables(graphs.dir / "walk_tables.npz"),
    )
    test = scored_pieces(_part(corpus, "test"), 300)
    direct = corpus_bits(lambda s: walk_log_probs(walker, s), test)
    assert info["bits_scored_tokens"] == direct["tokens"] > 0
    assert info["bits_per_token"] == pytest.approx(direct["bits_per_token"], rel=1e-9)
    assert 0 < info["bits_per_token"] < np.log2(len(corpus.tok)) + 10
    plain = run_generate(**kw, out_dir=str(tmp_path / "b"))
    assert "bits_per_token" not in plain  # no test pieces given
