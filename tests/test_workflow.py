"""End-to-end: the real Snakemake DAG on the fixture corpora and on Tegridy zips from the mirror."""

from __future__ import annotations

import copy
import re
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from tests.conftest import REPO, snakemake, write_config
from tokentransfer.corpus import read_manifest, shard_of
from tokentransfer.fileio import sha256_file
from tokentransfer.tokenize import read_shard

pytestmark = pytest.mark.e2e

SHARDS = 2


#: a transformer of a few thousand parameters: the DAG is real, the training is short
TINY_MODEL = {
    "layers": 1,
    "dim": 16,
    "heads": 2,
    "context": 64,
    "steps": 6,
    "batch": 2,
    "warmup": 1,
    "checkpoint_every": 3,
    "eval_tokens": 2000,
    "threads": 1,
}
TINY_GCN = {
    "variants": ["emb_neighbours", "random"],
    "seeds": [0],
    "hidden": 16,
    "epochs": 20,
    "patience": 5,
    "original_epochs": 5,
}
TINY_GENERATE = {"variants": ["counts", "emb_neighbours"], "samples": 2, "length": 128}
TIMING_KEYS = {"seconds", "tokens_per_second", "adapt_seconds"}
#: columns of the evaluation tables that hold wall times
TIMING_COLUMNS = {"gen_tokens_per_second", "gen_seconds", "adapt_seconds"}


def fixture_config(fixtures: Path) -> dict:
    return {
        "seed": 0,
        "shards": SHARDS,
        "model": dict(TINY_MODEL),
        "gcn": dict(TINY_GCN),
        "generate": dict(TINY_GENERATE),
        "baselines": {"finetune": ["jazzlead"]},
        "finetune": {"steps": 4, "batch": 2, "warmup": 1},
        "corpora": {
            "base": {
                "role": "base",
                "sources": [
                    {"dir": {"path": str(fixtures / "base_edge"), "group": "^(.+?)_score_"}}
                ],
            },
            "bach": {"role": "target", "sources": [{"dir": {"path": str(fixtures / "bach")}}]},
            "karaoke": {
                "role": "target",
                "sources": [{"dir": {"path": str(fixtures / "karaoke")}}],
            },
            "jazzlead": {
                "role": "target",
                "sources": [
                    {"dir": {"path": str(fixtures / "jazzlead"), "group": "^(.+)_[a-g]s?$"}}
                ],
            },
        },
    }


def job_counts(dry_run_output: str) -> dict[str, int]:
    """The 'Job stats' table of a dry run, as {rule: count}."""
    m = re.search(r"Job stats:\njob\s+count\n[- ]+\n(.*?)\ntotal\s+\d+", dry_run_output, re.S)
    if m is None:
        assert "Nothing to be done" in dry_run_output, dry_run_output[-3000:]
        return {}
    return {name: int(n) for name, n in re.findall(r"^(\S+)\s+(\d+)$", m.group(1), re.M)}


def dry_run(workdir: Path, config: Path) -> dict[str, int]:
    proc = snakemake(workdir, "--configfile", str(config), "-n", "--cores", "2")
    return job_counts(proc.stdout + proc.stderr)


def run(workdir: Path, config: Path, *targets: str):
    return snakemake(workdir, "--configfile", str(config), "--cores", "2", *targets)


@pytest.fixture(scope="module")
def fixture_run(tmp_path_factory, fixtures_dir):
    work = tmp_path_factory.mktemp("fixture_run")
    cfg = write_config(work / "config.yaml", fixture_config(fixtures_dir))
    run(work, cfg)
    return work, cfg


def test_manifests(fixture_run, fixtures_dir):
    work, _ = fixture_run
    for corpus, folder in [("base", "base_edge"), ("bach", "bach"), ("karaoke", "karaoke")]:
        rows = read_manifest(work / f"results/corpora/{corpus}/manifest.tsv")
        files = sorted(p.name for p in (fixtures_dir / folder).iterdir())
        assert sorted(r.path for r in rows) == files  # one row per file found
        for r in rows:
            assert r.file_id == sha256_file(fixtures_dir / folder / r.path)
            if r.status == "ok":
                stored = work / f"resources/corpora/{corpus}/midi/{r.file_id}.mid"
                assert sha256_file(stored) == r.file_id
    karaoke = {r.path: r for r in read_manifest(work / "results/corpora/karaoke/manifest.tsv")}
    assert karaoke["Letitbe.mid"].status == "duplicate"
    assert karaoke["Letitbe.mid"].duplicate_of == karaoke["Let_it_be.mid"].file_id
    base = read_manifest(work / "results/corpora/base/manifest.tsv")
    assert sum(r.status == "duplicate" for r in base) == 2
    assert any("#" in r.path and "ü" not in r.path for r in base)
    versions = [r for r in base if "Pathétique" in r.path]
    assert len(versions) == 2 and versions[0].group == versions[1].group != versions[0].file_id
    jazz = read_manifest(work / "results/corpora/jazzlead/manifest.tsv")
    keys = {r.group for r in jazz if r.path.startswith("beautiful_friend_")}
    assert keys == {"piece:beautiful_friend"}  # one song in 12 keys: one group


def test_token_shards(fixture_run):
    work, _ = fixture_run
    tok_hash = sha256_file(work / "results/tokenizer/tokenizer.json")
    for corpus in ("base", "bach", "karaoke", "jazzlead"):
        ok = {
            r.file_id
            for r in read_manifest(work / f"results/corpora/{corpus}/manifest.tsv")
            if r.status == "ok"
        }
        seen = set()
        for s in range(SHARDS):
            shard = read_shard(work / f"results/tokens/{corpus}/{s:04d}.h5")
            assert shard.tokenizer_hash == tok_hash
            ids = set(shard.file_ids) | set(shard.failed)
            assert all(shard_of(f, SHARDS) == s for f in ids)
            for i in range(len(shard)):
                seq = shard.sequence(i)
                assert len(seq) > 0 and seq.min() >= 0
            seen |= ids
        assert seen == ok  # every accepted file tokenized (or listed as failed) exactly once
        index = (work / f"results/tokens/{corpus}/index.tsv").read_text().splitlines()
        assert len(index) - 1 == len(ok)


def test_rerun_does_nothing(fixture_run):
    work, cfg = fixture_run
    assert dry_run(work, cfg) == {}


def without_timings(path: Path) -> bytes | object:
    """A file's content for comparison, minus the wall-clock times some files record."""
    import json

    if path.suffix == ".json":

        def strip(x):
            if isinstance(x, dict):
                return {k: strip(v) for k, v in x.items() if k not in TIMING_KEYS}
            if isinstance(x, list):
                return [strip(v) for v in x]
            return x

        return strip(json.loads(path.read_text()))
    if path.name == "training_log.tsv":
        return [line.rsplit("\t", 1)[0] for line in path.read_text().splitlines()]
    if path.suffix == ".tsv":
        rows = [line.split("\t") for line in path.read_text().splitlines()]
        keep = [i for i, c in enumerate(rows[0] if rows else []) if c not in TIMING_COLUMNS]
        return [[r[i] for i in keep] for r in rows]
    return path.read_bytes()


def test_clean_rerun_is_identical(fixture_run, tmp_path, fixtures_dir):
    """Two clean runs give identical outputs: byte for byte, except recorded wall times."""
    work, _ = fixture_run
    cfg = write_config(tmp_path / "config.yaml", fixture_config(fixtures_dir))
    run(tmp_path, cfg)
    files = sorted(p.relative_to(work) for p in (work / "results").rglob("*") if p.is_file())
    assert files == sorted(
        p.relative_to(tmp_path) for p in (tmp_path / "results").rglob("*") if p.is_file()
    )
    for rel in files:
        assert without_timings(work / rel) == without_timings(tmp_path / rel), rel


def test_grown_corpus_reruns_one_shard(tmp_path, fixtures_dir):
    src = tmp_path / "bach_src"
    shutil.copytree(fixtures_dir / "bach", src)
    config = fixture_config(fixtures_dir)
    config["corpora"]["bach"]["sources"] = [{"dir": {"path": str(src)}}]
    cfg = write_config(tmp_path / "config.yaml", config)
    run(tmp_path, cfg)
    assert dry_run(tmp_path, cfg) == {}
    new = fixtures_dir / "karaoke" / "Amazing_grace.mid"
    shutil.copy(new, src / "new piece.mid")
    # Before ingestion only the grown corpus's ingestion is certain to rerun.
    planned = dry_run(tmp_path, cfg)
    assert planned.get("ingest") == 1 and "tokenizer" not in planned
    run(tmp_path, cfg, "results/corpora/bach/manifest.tsv")
    # Once the manifest is updated, only the shard the new file falls in is re-tokenized.
    planned = dry_run(tmp_path, cfg)
    assert planned == {
        "tokenize_shard": 1,
        "token_index": 1,
        "split": 1,
        "perplexity": 1,
        "embed": 1,
        "model_metrics": 1,
        "adjacency": 1,
        "linkpred": 2,
        "gcn_summary": 1,
        "generate": 2,
        "baseline": 5,  # markov2, markov3, transformer, real_target, real_base (no fine-tune)
        "evaluate": 1,
        "figures": 1,
        "eval_summary": 1,
        "all": 1,
    }
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "results/tokens").rglob("*.h5")}
    run(tmp_path, cfg)
    changed = [p for p, t in before.items() if p.stat().st_mtime_ns != t]
    shard = shard_of(sha256_file(new), SHARDS)
    assert changed == [tmp_path / f"results/tokens/bach/{shard:04d}.h5"]
    assert sha256_file(new) in read_shard(changed[0]).file_ids


def test_new_corpus_runs_only_its_jobs(fixture_run, tmp_path):
    work, cfg = fixture_run
    config = __import__("yaml").safe_load(cfg.read_text())
    extra = copy.deepcopy(config)
    extra["corpora"]["bach2"] = copy.deepcopy(config["corpora"]["bach"])
    cfg2 = write_config(tmp_path / "config.yaml", extra)
    assert dry_run(work, cfg2) == {
        "ingest": 1,
        "tokenize_shard": SHARDS,
        "token_index": 1,
        "split": 1,
        "perplexity": 1,
        "embed": 1,
        "model_metrics": 1,
        "adjacency": 1,
        "linkpred": 2,
        "gcn_summary": 1,
        "generate": 2,
        "baseline": 5,  # markov2, markov3, transformer, real_target, real_base (no fine-tune)
        "evaluate": 1,
        "figures": 1,
        "eval_summary": 1,
        "all": 1,
    }


def test_tokenizer_change_retokenizes_everything(fixture_run, tmp_path):
    work, cfg = fixture_run
    config = __import__("yaml").safe_load(cfg.read_text())
    config["tokenizer"] = {"kind": "REMI", "use_programs": True, "use_tempos": True}
    cfg2 = write_config(tmp_path / "config.yaml", config)
    n = len(config["corpora"])
    assert dry_run(work, cfg2) == {
        "tokenizer": 1,
        "tokenize_shard": SHARDS * n,
        "token_index": n,
        "pretrain": 1,
        "perplexity": n,
        "embed": n - 1,
        "finetune": 1,
        "model_metrics": 1,
        "adjacency": n - 1,
        "linkpred": 2 * (n - 1),
        "gcn_summary": 1,
        "generate": 2 * (n - 1),
        "baseline": 5 * (n - 1) + 1,  # five per target, and the fine-tuned model on jazzlead
        "evaluate": n - 1,
        "figures": n - 1,
        "eval_summary": 1,
        "training_figure": 1,
        "all": 1,
    }


def test_bad_config_is_refused_with_the_key(tmp_path, fixtures_dir):
    config = fixture_config(fixtures_dir)
    config["corpora"]["bach"]["sources"][0]["dir"]["limt"] = 3
    cfg = write_config(tmp_path / "config.yaml", config)
    proc = snakemake(tmp_path, "--configfile", str(cfg), "-n", check=False)
    assert proc.returncode != 0
    assert "config key corpora.bach.sources[0].dir: unknown key 'limt'" in proc.stdout + proc.stderr


def test_corpus_with_no_usable_file_fails_loudly(tmp_path, fixtures_dir):
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "notes.txt").write_text("not music")
    (junk / "empty.mid").write_bytes(b"")
    config = fixture_config(fixtures_dir)
    config["corpora"]["bach"]["sources"] = [{"dir": {"path": str(junk)}}]
    cfg = write_config(tmp_path / "config.yaml", config)
    proc = snakemake(
        tmp_path,
        "--configfile",
        str(cfg),
        "--cores",
        "1",
        "results/corpora/bach/manifest.tsv",
        check=False,
    )
    assert proc.returncode != 0
    log = (tmp_path / "logs/ingest/bach.log").read_text()
    assert "no usable MIDI file among 2 files" in log
    assert not (tmp_path / "results/corpora/bach/manifest.tsv").exists()


@pytest.mark.tegridy
def test_tegridy_zips_through_the_mirror(tmp_path, tegridy_dir):
    """Two real Tegridy zips, read through the mirror with checksums verified."""
    config = {
        "shards": 4,
        "model": dict(TINY_MODEL),
        "gcn": dict(TINY_GCN),
        "tegridy": {"mirror": str(tegridy_dir)},
        "corpora": {
            "base": {
                "role": "base",
                "sources": [{"tegridy": {"zip": "Tegridy-MIDI-Seeds-Dataset-CC-BY-NC-SA.zip"}}],
            },
            "karaoke": {
                "role": "target",
                "sources": [{"tegridy": {"zip": "Tiny-Karaoke-MIDI-Dataset-CC-BY-NC-SA.zip"}}],
            },
        },
    }
    cfg = write_config(tmp_path / "config.yaml", config)
    run(tmp_path, cfg)
    rows = read_manifest(tmp_path / "results/corpora/karaoke/manifest.tsv")
    assert len(rows) == 152
    counts = {s: sum(r.status == s for r in rows) for s in ("ok", "duplicate", "rejected")}
    assert counts["ok"] + counts["duplicate"] + counts["rejected"] == 152
    assert counts["ok"] >= 140
    tokens = 0
    for s in range(4):
        shard = read_shard(tmp_path / f"results/tokens/karaoke/{s:04d}.h5")
        tokens += int(shard.offsets[-1])
    assert tokens > 100_000
    with h5py.File(tmp_path / "results/tokens/base/0000.h5") as h5:
        assert np.all(np.diff(h5["offsets"][:]) > 0)
    assert not (tmp_path / "resources/tegridy").exists()  # nothing downloaded


def test_default_config_plans_the_music21_corpora(tmp_path):
    """The embedded default config parses and plans every corpus (its full run is in CI)."""
    planned = dry_run(tmp_path, REPO / "config" / "config.yaml")
    assert planned["ingest"] == 3 and planned["tokenizer"] == 1
    assert planned["pretrain"] == 1 and planned["embed"] == 2 and planned["finetune"] == 1


def test_targets_differ_from_base_above_the_noise_floor(fixture_run, capsys):
    from tokentransfer.cli import main

    work, _ = fixture_run
    tokens = work / "results/tokens"
    assert main(["divergence", str(tokens / "base"), str(tokens / "bach")]) == 0
    lines = capsys.readouterr().out.splitlines()
    floor = float(lines[1].split("\t")[2].split("+-")[0])
    jsd = float(lines[2].split("\t")[2])
    assert 0 < floor < jsd <= 1


def test_local_model_source(tmp_path, fixtures_dir):
    """A local HF checkpoint with its tokenizer replaces pretraining; mismatches are refused."""
    from tokentransfer.embed import read_embeddings
    from tokentransfer.model import ModelSpec, build_model, save_model, special_ids
    from tokentransfer.tokenize import build_tokenizer, save_tokenizer

    # REMI with other settings than the config's (walks need REMI's grammar)
    tok = build_tokenizer({"kind": "REMI", "use_programs": True, "use_tempos": True})
    save_tokenizer(tok, tmp_path / "tok.json")
    spec = ModelSpec(layers=1, dim=16, heads=2, context=64)
    model = build_model(spec, len(tok), special_ids(tok), 3)
    save_model(model, tmp_path / "tok.json", tmp_path / "local")
    config = fixture_config(fixtures_dir)
    config["baselines"] = {"finetune": []}
    config["model"] = {"source": "local", "name": "mine", "path": str(tmp_path / "local")}
    config["gcn"] = {**TINY_GCN, "variants": ["contextual"]}
    config["generate"] = {**TINY_GENERATE, "variants": ["contextual"]}
    config["evaluate"] = {"methods": ["markov2", "transformer"], "figures": False}
    work = tmp_path / "work"
    work.mkdir()
    cfg = write_config(work / "config.yaml", config)
    run(work, cfg)
    assert sha256_file(work / "results/tokenizer/tokenizer.json") == sha256_file(
        tmp_path / "tok.json"
    )  # the model's tokenizer, not the config's REMI
    cache = read_embeddings(work / "results/embeddings/mine/bach.h5")
    assert np.array_equal(cache["token"], model.transformer.wte.weight.detach().numpy())
    assert cache["attrs"]["tokenizer_hash"] == sha256_file(tmp_path / "tok.json")
    methods = (work / "results/eval/mine/bach/metrics.tsv").read_text().splitlines()
    assert [m.split("\t")[1] for m in methods[1:]] == [
        "test_pieces",
        "contextual",
        "markov2",
        "transformer",
    ]
    assert not (work / "results/eval/mine/training.png").exists()  # evaluate.figures: false
    # a tokenizer whose vocabulary does not match the model is refused, naming both files
    save_tokenizer(build_tokenizer({"kind": "REMI"}), tmp_path / "other.json")
    config["model"]["tokenizer"] = str(tmp_path / "other.json")
    bad = tmp_path / "bad"
    bad.mkdir()
    cfg = write_config(bad / "config.yaml", config)
    proc = snakemake(bad, "--configfile", str(cfg), "--cores", "2", check=False)
    assert proc.returncode != 0
    log = (bad / "logs/tokenizer.log").read_text()
    assert "vocab mismatch" in log and "other.json" in log


def test_configfile_replaces_the_default(tmp_path, fixtures_dir):
    """--configfile replaces config/config.yaml instead of merging its corpora in."""
    (tmp_path / "config").mkdir()
    shutil.copy(REPO / "config" / "config.yaml", tmp_path / "config" / "config.yaml")
    cfg = write_config(tmp_path / "mine.yaml", fixture_config(fixtures_dir))
    proc = snakemake(tmp_path, "--configfile", str(cfg), "-n")
    assert "corpus=fiddle" not in proc.stdout and "corpus=jazzlead" in proc.stdout
    proc = snakemake(tmp_path, "-n")  # no --configfile: the default is used
    assert "corpus=fiddle" in proc.stdout


def test_graph_and_link_prediction_outputs(fixture_run):
    import json

    import torch

    from tokentransfer.graph import load_matrix

    work, _ = fixture_run
    for corpus in ("bach", "karaoke", "jazzlead"):
        a = load_matrix(work / f"results/graphs/{corpus}/adjacency.npz")
        assert a.diagonal().sum() == 0 and a.nnz > 0
        stats = json.loads((work / f"results/graphs/{corpus}/graph_stats.json").read_text())
        assert stats["directed_edges"] == a.nnz
        for variant in TINY_GCN["variants"]:
            out = work / f"results/gcn/small/{corpus}/{variant}"
            state = torch.load(out / "checkpoint.pt", weights_only=True)
            assert all(isinstance(v, torch.Tensor) for v in state.values())
            with h5py.File(out / "nodes.h5") as h5:
                ids = h5["vocab_ids"][:]
                assert h5["embeddings"].shape == (len(ids), TINY_GCN["hidden"])
            used = np.flatnonzero(
                np.asarray((a != 0).sum(0)).ravel() + np.asarray((a != 0).sum(1)).ravel()
            )
            assert ids.tolist() == used.tolist()
            m = json.loads((out / "metrics.json").read_text())
            assert set(m["summary"]) >= {
                "gcn",
                "common_neighbours",
                "adamic_adar",
                "preferential_attachment",
                "feature_cosine",
                "original_protocol",
            }
            assert 0 <= m["summary"]["gcn"]["auc"][0] <= 1
    rows = (work / "results/gcn/summary.tsv").read_text().splitlines()
    assert len(rows) - 1 == 3 * len(TINY_GCN["variants"]) * 6


def test_generated_samples_decode_without_errors(fixture_run):
    import json

    import symusic

    from tokentransfer.rwr import token_errors
    from tokentransfer.tokenize import load_tokenizer

    work, _ = fixture_run
    tok = load_tokenizer(work / "results/tokenizer/tokenizer.json")
    for corpus in ("bach", "karaoke", "jazzlead"):
        for variant in TINY_GENERATE["variants"]:
            out = work / f"results/generated/small/{corpus}/{variant}"
            info = json.loads((out / "generation.json").read_text())
            assert info["biased"] == (variant != "counts")
            assert info["tokens_generated"] == 2 * 128
            with h5py.File(out / "tokens.h5") as h5:
                ids, offsets = h5["ids"][:], h5["offsets"][:]
            for i in range(2):
                seq = ids[offsets[i] : offsets[i + 1]]
                assert len(seq) == 128 and token_errors(tok, seq) == 0
                score = symusic.Score(str(out / f"sample_{i:03d}.mid"))
                assert score.note_num() > 0


def test_cli_generate_with_a_prompt(fixture_run, tmp_path, fixtures_dir):
    from tokentransfer.cli import main
    from tokentransfer.tokenize import load_tokenizer, tokenize_file

    work, _ = fixture_run
    prompt = fixtures_dir / "jazzlead" / "body_and_soul_c.mid"
    args = ["generate", "--results", str(work / "results"), "--corpus", "jazzlead"]
    args += ["--n", "2", "--length", "64", "--seed", "7", "--prompt", str(prompt)]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert main([*args, "--out", str(tmp_path / "b")]) == 0
    for i in range(2):
        a = (tmp_path / "a" / f"sample_{i:03d}.mid").read_bytes()
        assert a == (tmp_path / "b" / f"sample_{i:03d}.mid").read_bytes()  # same seed
    tok = load_tokenizer(work / "results/tokenizer/tokenizer.json")
    with h5py.File(tmp_path / "a" / "tokens.h5") as h5:
        first = h5["ids"][: h5["offsets"][1]]
    expected = tokenize_file(tok, prompt)
    assert first[: len(expected)].tolist() == expected.tolist()
    assert len(first) == len(expected) + 64
    assert main([*args, "--corpus", "nope", "--out", str(tmp_path / "c")]) == 2


EVAL_METHODS = ["markov2", "markov3", "transformer", "finetuned", "real_target", "real_base"]


def test_evaluation_tables(fixture_run):
    """Every walk and baseline is evaluated on every target, with the same samples x length."""
    from tokentransfer.evaluate import SAMPLE_METRICS, SET_METRICS, read_tsv

    work, _ = fixture_run
    summary = read_tsv(work / "results/eval/summary.tsv")
    n, length = TINY_GENERATE["samples"], TINY_GENERATE["length"]
    for corpus in ("bach", "karaoke", "jazzlead"):
        rows = {r["method"]: r for r in read_tsv(work / f"results/eval/small/{corpus}/metrics.tsv")}
        methods = ["test_pieces", *TINY_GENERATE["variants"]]
        methods += [m for m in EVAL_METHODS if m != "finetuned" or corpus == "jazzlead"]
        assert list(rows) == methods
        assert [r["method"] for r in summary if r["corpus"] == corpus] == methods
        for method, row in rows.items():
            assert int(row["samples"]) == n
            if row["kind"] != "reference":  # generators: exactly n x length new tokens
                assert int(row["tokens"]) == n * length, (corpus, method)
            for name in SET_METRICS:
                if method == "test_pieces":
                    assert row[name] == ""  # the reference itself
                elif row[name]:
                    assert 0.0 <= float(row[name]) <= 1.0, (corpus, method, name)
            for name in SAMPLE_METRICS:
                assert f"{name}_std" in row
        # the walks keep the grammar; excerpts of training pieces are copies by construction
        for variant in TINY_GENERATE["variants"]:
            assert float(rows[variant]["token_error_rate"]) == 0.0
        assert float(rows["real_target"]["copy_rate"]) == 1.0
        assert float(rows["real_target"]["longest_copy"]) >= float(rows["counts"]["longest_copy"])
        samples = read_tsv(work / f"results/eval/small/{corpus}/samples.tsv")
        assert len(samples) == n * len(methods)
        for i in range(n):
            info = work / f"results/baselines/small/{corpus}/markov2/sample_{i:03d}.mid"
            assert info.stat().st_size > 0


def test_report_has_every_figure(fixture_run):
    """`snakemake --report` builds a zip with the tables, figures and captions."""
    import zipfile

    work, cfg = fixture_run
    snakemake(work, "--configfile", str(cfg), "--report", "results/report.zip")
    with zipfile.ZipFile(work / "results/report.zip") as z:
        names = z.namelist()
        html = z.read(next(n for n in names if n.endswith("report.html"))).decode()
    base = [n.rsplit("/", 1)[-1] for n in names]
    assert base.count("metrics.png") == 3  # one chart per target
    assert base.count("pitch_classes.png") == 3
    assert base.count("pianorolls.png") == 3
    assert base.count("training.png") == 1
    assert base.count("metrics.tsv") == 3
    assert "summary.tsv" in base  # link prediction and evaluation summaries
    for caption in ("pooled pitch-class histograms", "piano roll", "Link prediction"):
        assert caption.lower() in html.lower(), caption


def test_report_audio(fixture_run, tmp_path):
    """report.audio renders the first sample of every method to FLAC, into the report."""
    import os
    import zipfile

    import yaml

    if (
        shutil.which("fluidsynth") is None
        or not Path("/usr/share/sounds/sf2/FluidR3_GM.sf2").is_file()
    ):
        msg = "fluidsynth or fluid-soundfont-gm not installed (apt-get install both)"
        if os.environ.get("CI"):
            pytest.fail(f"{msg}: .ci/run installs them")
        pytest.skip(msg)
    work, cfg = fixture_run
    config = yaml.safe_load(cfg.read_text())
    config["report"] = {"audio": True}
    cfg2 = write_config(tmp_path / "config.yaml", config)
    planned = dry_run(work, cfg2)
    per_target = len(TINY_GENERATE["variants"]) + len(EVAL_METHODS) - 1  # finetuned: jazzlead
    assert planned == {"audio": 3 * per_target + 1, "all": 1}  # nothing else reruns
    run(work, cfg2)
    audio = sorted((work / "results/eval/small/jazzlead/audio").iterdir())
    assert [p.stem for p in audio] == sorted([*TINY_GENERATE["variants"], *EVAL_METHODS])
    for p in audio:
        assert p.read_bytes()[:4] == b"fLaC"
        if p.stem in TINY_GENERATE["variants"] or p.stem.startswith("real_"):  # these have notes
            assert p.stat().st_size > 1000, p  # (the tiny transformer's samples may be silent)
    snakemake(work, "--configfile", str(cfg2), "--report", str(tmp_path / "report.zip"))
    with zipfile.ZipFile(tmp_path / "report.zip") as z:
        assert sum(n.endswith(".flac") for n in z.namelist()) == len(
            list(work.glob("results/eval/small/*/audio/*.flac"))
        )
