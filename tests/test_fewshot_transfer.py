"""The few-shot point of the transfer methods (fusion, transplant, embedding-only and LoRA
fine-tuning) on corpora exported from music21 (the base folder and the fiddle tunes), with a
tiny model saved here; bits/token of every method."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest

from tests import music21_corpora as m21
from tests.tiny import tiny_model
from tokentransfer.fewshot import LIKELIHOOD_METRICS
from tokentransfer.jobs.fewshot import run_fewshot_point
from tokentransfer.methods import names
from tokentransfer.model import save_model
from tokentransfer.tokenize import (
    ShardResult,
    save_tokenizer,
    tokenize_file,
    write_shard,
)

#: the methods of the transfer job
TRANSFER = names(fewshot="transfer")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _corpus(tok, paths: list[Path], out: Path, name: str, held: set[str], held_as: str, group):
    """A shard of ``paths`` and its split: the files named in ``held`` held out as ``held_as``,
    groups by the regex ``group`` (the workflow's), else one group a file."""
    ids = [f"{name}{i:03d}" for i in range(len(paths))]
    seqs = [tokenize_file(tok, p) for p in paths]
    shard = out / f"{name}.h5"
    write_shard(ShardResult(ids, seqs, [], 0.0), shard, tokenizer_hash="x", corpus=name, shard="0")
    split = out / f"{name}.tsv"
    rows = ["file_id\tgroup\tsplit"]
    groups = [(m.group(1) if (m := re.search(group, p.stem)) else p.stem) for p in paths]
    rows += [
        f"{f}\t{g}\t{held_as if p.name in held else 'train'}"
        for f, g, p in zip(ids, groups, paths, strict=True)
    ]
    split.write_text("\n".join(rows) + "\n")
    assert sum(p.name in held for p in paths) == len(held)
    return [str(shard)], str(split), groups


@pytest.fixture(scope="module")
def setup(tok, tmp_path_factory, music21_corpora):
    """The base: the music21 base folder's MIDI files (its rejected files and the exact
    duplicate left out, as ingestion leaves them), two held out for validation; the target:
    the fiddle tunes, one tune in five keys grouped as the workflow's regex groups it, three
    single tunes held out for test."""
    out = tmp_path_factory.mktemp("transfer")
    tok_json = out / "tokenizer.json"
    save_tokenizer(tok, tok_json)
    paths = sorted(
        p
        for p in (music21_corpora / "base").glob("*.mid")
        if p.name not in {*m21.BASE_REJECTED, m21.DUPLICATE_NAME}
    )
    base = _corpus(tok, paths, out, "base", {p.name for p in paths[:2]}, "val", m21.BASE_GROUP)
    paths = sorted((music21_corpora / "fiddle").glob("*.mid"))
    held = {f"{Path(rel).stem}.mid" for rel in m21.FIDDLE_WORKS[-3:]}
    jazz = _corpus(tok, paths, out, "jazz", held, "test", m21.FIDDLE_GROUP)
    save_model(tiny_model(tok, context=64), tok_json, out / "hf")
    return out, tok_json, base, jazz


def test_transfer_point_measures_every_method(setup):
    out, tok_json, base, jazz = setup
    gen = {"samples": 2, "length": 48, "seed": 0, "context": "onset"}
    ev = {"copy_n": 8}
    sampling = {"temperature": 1.0, "top_k": 0, "markov_discount": 0.75}
    linkpred = {
        "encoders": ["gcn"],
        "seeds": [0],
        "hidden": 16,
        "layers": 2,
        "dropout": 0.0,
        "lr": 0.01,
        "epochs": 10,
        "patience": 3,
        "val_fraction": 0.1,
        "test_fraction": 0.1,
    }
    cfg = {"seed": 0, "methods": list(TRANSFER), "finetune_steps": 3, "variants": []}
    rows = run_fewshot_point(
        tokenizer_json=str(tok_json),
        shards=jazz[0],
        split=jazz[1],
        corpus="jazz",
        k=0,
        draw=0,
        cfg=cfg,
        gen_cfg=gen,
        eval_cfg=ev,
        sampling_cfg=sampling,
        out_tsv=str(out / "point.tsv"),
        graph_cfg={"offset_weights": [1.0, 0.5]},
        linkpred_cfg=linkpred,
        job="transfer",
        model_dir=str(out / "hf"),
        finetune_cfg={"batch": 2, "lr": 1e-3, "warmup": 1},
        checkpoints=str(out / "ck"),
        base_shards=base[0],
        base_splits=[base[1]],
    )
    got: dict[str, dict[str, float]] = {}
    for r in rows:
        got.setdefault(r["method"], {})[r["metric"]] = float(r["value"])
    assert sorted(got) == sorted(TRANSFER)
    bits = {m: v[LIKELIHOOD_METRICS[0]] for m, v in got.items()}
    for method, values in got.items():
        assert values["tokens"] == 2 * 48, method
        assert values["token_error_rate"] == 0, method  # every sampler runs under the grammar
        assert math.isfinite(bits[method]) and 0 < bits[method] < 12, method
        assert values["adapt_seconds"] > 0, method
    # an untrained transformer steered by the subset's chain predicts the style far better
    # than the transformer (whose bits the transplant, on a few rows, barely moves)
    assert bits["fused_markov"] < bits["transplant"] - 1
    assert (out / "point.tsv").read_text().count("\n") == len(rows) + 1
    assert not list((out / "ck").glob("*.pt"))  # the adapters' checkpoints are removed


def test_cheap_point_has_bits_for_chains_and_walks(setup):
    out, tok_json, _, jazz = setup
    gen = {"samples": 2, "length": 48, "seed": 0, "context": "onset", "top_k": 16}
    ev = {"copy_n": 8, "reference_excerpts": 6, "seed": 0}
    cfg = {"seed": 0, "methods": ["markov1", "markov2c", "markov2ci", "counts"], "variants": []}
    rows = run_fewshot_point(
        tokenizer_json=str(tok_json),
        shards=jazz[0],
        split=jazz[1],
        corpus="jazz",
        k=1,
        draw=0,
        cfg=cfg,
        gen_cfg=gen,
        eval_cfg=ev,
        sampling_cfg={"markov_discount": 0.75},
        out_tsv=str(out / "cheap.tsv"),
    )
    bits = {r["method"]: float(r["value"]) for r in rows if r["metric"] == "bits_per_token"}
    assert sorted(bits) == ["counts", "markov1", "markov2c", "markov2ci"]  # pitch memory too
    assert all(np.isfinite(list(bits.values())))
    assert bits["markov2c"] < bits["markov1"]  # the grammar mask alone saves bits
    # feature fidelity against excerpts of the test pieces, as in the evaluation; no style
    # classifier given: no style share
    fid = {r["method"]: float(r["value"]) for r in rows if r["metric"] == "feature_fidelity"}
    assert sorted(fid) == sorted(bits) and all(0 < v <= 1 for v in fid.values())
    share = [float(r["value"]) for r in rows if r["metric"] == "style_share"]
    assert len(share) == len(bits) and all(math.isnan(v) for v in share)


@pytest.mark.e2e
def test_the_curve_asks_for_a_transfer_job_per_point(tmp_path, music21_corpora):
    """A dry run of the workflow: one fewshot_transfer job per (k, draw) when fewshot.methods
    holds a transfer method, none otherwise."""
    from tests.conftest import snakemake, write_config
    from tests.test_workflow import dag_config, job_counts

    config = dag_config(music21_corpora)
    config["corpora"] = {n: config["corpora"][n] for n in ("base", "fiddle")}
    config["finetune"]["targets"] = ["fiddle"]
    config["fewshot"] = {"enabled": True, "ks": [1, 0], "draws": 2, "variants": []}
    target = "results/fewshot/small/fiddle/curve.tsv"
    counts = {}
    for methods in (["markov1", "fused_walk", "lora"], ["markov1"]):
        config["fewshot"]["methods"] = methods
        cfg = write_config(tmp_path / "config.yaml", config)
        proc = snakemake(tmp_path, "--configfile", str(cfg), "-n", "--cores", "2", target)
        counts[len(methods)] = job_counts(proc.stdout + proc.stderr)
    assert counts[3]["fewshot_transfer"] == 4 and counts[3]["fewshot_point"] == 4
    assert "fewshot_transfer" not in counts[1]
