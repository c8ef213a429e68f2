"""End-to-end: the real Snakemake DAG.

The DAG's tests run on small corpora exported from the corpus that the ``music21`` package
ships (tests/music21_corpora.py: ``base`` and ``fiddle`` folders, and the Bach chorales as a
``music21`` source), so they run wherever the project is installed; one test makes hostile
files from them and takes them through ingestion and tokenization. Two real Tegridy zips go
through the whole DAG in another test, which skips without ../shared (and fails under CI).
"""

from __future__ import annotations

import copy
import re
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from tests import music21_corpora as m21
from tests.conftest import REPO, snakemake, write_config
from tokentransfer.corpus import read_manifest
from tokentransfer.fileio import sha256_file
from tokentransfer.shards import shard_of
from tokentransfer.split import read_split
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
TINY_LINKPRED = {
    "variants": ["emb_neighbours", "random"],
    "seeds": [0],
    "hidden": 16,
    "epochs": 20,
    "patience": 5,
    "original_epochs": 5,
}
TINY_GENERATE = {
    "variants": ["counts", "emb_neighbours"],
    "samples": 2,
    "length": 128,
    "bars": 1,
}
#: the baselines of the DAG tests: a raw and a grammar-masked chain, the transformer unadapted
#: and fine-tuned (bach only), real pieces
EVAL_METHODS = ["markov2", "markov3c", "transformer", "finetuned", "real_target", "real_base"]
TIMING_KEYS = {
    "seconds",
    "sample_seconds",
    "setup_seconds",
    "tokens_per_second",
    "adapt_seconds",
}
#: columns of the evaluation tables that hold wall times
TIMING_COLUMNS = {
    "gen_tokens_per_second",
    "sample_seconds",
    "setup_seconds",
    "adapt_seconds",
}


#: the target corpora of dag_config; the fine-tuned baseline is trained on the first
TARGETS = ("bach", "fiddle")


def dag_config(corpora: Path, fiddle: str | None = None) -> dict:
    """The workflow on the music21 corpora (``corpora``: the ``music21_corpora`` fixture);
    ``fiddle``: the fiddle folder, if not ``corpora/fiddle`` (relative: to the workdir)."""
    return {
        "seed": 0,
        "shards": SHARDS,
        "model": dict(TINY_MODEL),
        "linkpred": dict(TINY_LINKPRED),
        "generate": dict(TINY_GENERATE),
        "finetune": {"targets": ["bach"], "steps": 4, "batch": 2, "warmup": 1},
        "evaluate": {"methods": list(EVAL_METHODS)},
        "corpora": {
            "base": {
                "role": "base",
                "sources": [{"dir": {"path": str(corpora / "base"), "group": m21.BASE_GROUP}}],
            },
            "bach": {"role": "target", "sources": [copy.deepcopy(m21.BACH_SOURCE)]},
            "fiddle": {
                "role": "target",
                "sources": [
                    {"dir": {"path": fiddle or str(corpora / "fiddle"), "group": m21.FIDDLE_GROUP}}
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
def dag_run(tmp_path_factory, music21_corpora):
    """One full run of the workflow (target ``all``) on the music21 corpora.

    The fiddle folder is a copy inside the workdir, named by a relative path, so that a copy
    of the whole workdir is a finished run whose corpus can grow (test_grown_corpus_...).
    """
    work = tmp_path_factory.mktemp("dag_run")
    shutil.copytree(music21_corpora / "fiddle", work / "fiddle")
    cfg = write_config(work / "config.yaml", dag_config(music21_corpora, fiddle="fiddle"))
    run(work, cfg)
    return work, cfg


def check_manifest(work: Path, corpus: str, folder: Path) -> dict:
    """One row per file found in ``folder``, named by its sha256, accepted files stored by it."""
    rows = read_manifest(work / f"results/corpora/{corpus}/manifest.tsv")
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert sorted(r.path for r in rows) == files
    for r in rows:
        if r.file_id or r.status != "rejected":  # refused by name: before its content was read
            assert r.file_id == sha256_file(folder / r.path)
        if r.status == "ok":
            stored = work / f"resources/corpora/{corpus}/midi/{r.file_id}.mid"
            assert sha256_file(stored) == r.file_id
    return {r.path: r for r in rows}


def test_manifests(dag_run, music21_corpora):
    work, _ = dag_run
    base = check_manifest(work, "base", music21_corpora / "base")
    pair = sorted((base[m21.DUPLICATE_NAME], base["Agnus_00.mid"]), key=lambda r: r.status)
    assert [r.status for r in pair] == ["duplicate", "ok"]  # one kept, one listed as its copy
    assert pair[0].duplicate_of == pair[1].file_id == pair[0].file_id
    assert base[m21.ODD_NAME].status == "ok"  # unicode, quotes, '#' and spaces in the name
    assert base[m21.BASE_NESTED[1]].status == "ok"  # in a subfolder, .midi
    for name, reason in m21.BASE_REJECTED.items():
        assert base[name].status == "rejected" and base[name].reason.startswith(reason), name
    a, b = base["Agnus_09_score_A.mid"], base["Agnus_09_score_B.mid"]
    assert a.file_id != b.file_id and a.group == b.group == "piece:agnus_09"
    fiddle = check_manifest(work, "fiddle", music21_corpora / "fiddle")
    assert all(r.status == "ok" for r in fiddle.values())
    versions = {r.group for p, r in fiddle.items() if p.startswith("alistair_")}
    assert versions == {"piece:alistair"}  # one tune in five keys: one group
    # the music21 source: the seeded sample of its query, exported by the ingest job
    bach = read_manifest(work / "results/corpora/bach/manifest.tsv")
    assert len(bach) == m21.BACH_SOURCE["music21"]["limit"]
    assert all(r.status == "ok" and r.source == "music21:bach/bwv2*.mxl" for r in bach)
    assert all(re.fullmatch(r"bach/bwv2[^/]*\.mxl", r.path) for r in bach)
    for r in bach:
        assert sha256_file(work / f"resources/corpora/bach/midi/{r.file_id}.mid") == r.file_id


def test_split_keeps_versions_together(dag_run):
    """Versions of one piece (one group) land on one side of the split, in base and target."""
    work, _ = dag_run
    for corpus, prefix, n, sides in [
        ("base", "Agnus_09_score_", 2, {"train", "val"}),
        ("fiddle", "alistair_", len(m21.FIDDLE_KEYS), {"train", "test"}),
    ]:
        split = read_split(work / f"results/splits/{corpus}.tsv")
        manifest = read_manifest(work / f"results/corpora/{corpus}/manifest.tsv")
        ids = {r.file_id for r in manifest if r.path.startswith(prefix)}
        assert len(ids) == n and len({split[i] for i in ids}) == 1, corpus
        assert set(split.values()) == sides, corpus


#: the hostile folder's band file: a 112-byte name (spaces, brackets, '+', non-ASCII)
LONG_NAME = (
    "Rudolph the red-nosed reindeer_22 (1gxm) (gene autry++) (johnny marks-1949) "
    "(seq dön carroll) rudolph_kardc.mid"
)


def with_lyrics(data: bytes, words: list[bytes], step: int) -> bytes:
    """A format-1 MIDI file with a track of lyric events (one word every ``step`` ticks, bytes
    as karaoke files have them, not always UTF-8) added, as karaoke files carry them."""

    def vlq(n: int) -> bytes:
        out = [n & 0x7F]
        while n := n >> 7:
            out.append(0x80 | (n & 0x7F))
        return bytes(reversed(out))

    events = b"".join(
        vlq(step if i else 0) + b"\xff\x05" + vlq(len(w)) + w for i, w in enumerate(words)
    )
    events += b"\x00\xff\x2f\x00"  # end of track
    assert data[8:10] == b"\x00\x01"
    tracks = int.from_bytes(data[10:12], "big") + 1
    chunk = b"MTrk" + len(events).to_bytes(4, "big") + events
    return data[:10] + tracks.to_bytes(2, "big") + data[12:] + chunk


def hostile_folder(folder: Path, base: Path) -> Path:
    """Files made hostile in ways no exported score is, from a base piece: played by a band
    with a drum kit (tests/music21_corpora.orchestrate), a lyrics track, at 52 ticks per quarter,
    with 92 tempo changes, under a 112-byte name, and its exact copy under another name; the
    piece at 12 ticks per quarter and an empty file (both rejected)."""
    import symusic

    piece = (base / "Agnus_01.mid").read_bytes()
    score = symusic.Score.from_midi(m21.orchestrate(piece)).resample(52, min_dur=1)
    end = score.end()
    score.tempos = [symusic.Tempo(i * end // 92, qpm=60.0 + i) for i in range(92)]
    data = with_lyrics(score.dumps_midi(), [b"la", b"l\xe9"] * (end // 52 // 2), 52)
    folder.mkdir()
    (folder / LONG_NAME).write_bytes(data)
    (folder / "band copy.mid").write_bytes(data)
    (folder / "coarse.mid").write_bytes(symusic.Score.from_midi(piece).resample(12).dumps_midi())
    (folder / "empty.mid").write_bytes(b"")
    again = symusic.Score.from_midi(data)  # the file is as hostile as meant
    assert len(LONG_NAME.encode()) == 112 and again.ticks_per_quarter == 52
    assert len(again.tempos) == 92 and sum(len(t.lyrics) for t in again.tracks) > 100
    assert any(t.is_drum for t in again.tracks) and len({t.program for t in again.tracks}) > 2
    return folder


def test_hostile_fixtures_ingest_and_tokenize(tmp_path, music21_corpora):
    """Awkward folders through ingestion and tokenization: the DAG up to the token shards must
    take them all.

    The music21 base folder (an exact duplicate, a name with unicode, quotes, '#' and spaces,
    a subfolder with a .midi file, two versions of a piece, a text file and a truncated MIDI),
    the fiddle tunes (one tune in five keys) and :func:`hostile_folder`.
    """
    config = dag_config(music21_corpora)
    hostile = hostile_folder(tmp_path / "hostile", music21_corpora / "base")
    config["corpora"] = {
        "base": config["corpora"]["base"],
        "fiddle": config["corpora"]["fiddle"],
        "hostile": {"role": "target", "sources": [{"dir": {"path": str(hostile)}}]},
    }
    config["finetune"]["targets"] = ["fiddle"]
    cfg = write_config(tmp_path / "config.yaml", config)
    folders = {"base": music21_corpora / "base", "fiddle": music21_corpora / "fiddle"}
    folders["hostile"] = hostile
    targets = [f"results/tokens/{c}/index.tsv" for c in folders]
    run(tmp_path, cfg, *targets, *(f"results/splits/{c}.tsv" for c in folders))
    rows = {c: check_manifest(tmp_path, c, folder) for c, folder in folders.items()}
    check_token_shards(tmp_path, folders)
    band = rows["hostile"]
    assert band[LONG_NAME].status == "ok"
    assert band["band copy.mid"].status == "duplicate"
    assert band["band copy.mid"].duplicate_of == band[LONG_NAME].file_id
    assert band["coarse.mid"].status == "rejected"
    assert band["coarse.mid"].reason.startswith("absurd ticks per quarter: 12")
    assert band["empty.mid"].status == "rejected" and band["empty.mid"].reason == "empty file"
    tokenized = set()  # the band file tokenized, not listed as failed
    for s in range(SHARDS):
        tokenized |= set(read_shard(tmp_path / f"results/tokens/hostile/{s:04d}.h5").file_ids)
    assert band[LONG_NAME].file_id in tokenized
    base = rows["base"]
    pair = sorted((base[m21.DUPLICATE_NAME], base["Agnus_00.mid"]), key=lambda r: r.status)
    assert [r.status for r in pair] == ["duplicate", "ok"]  # one kept, one listed as its copy
    assert pair[0].duplicate_of == pair[1].file_id
    assert sum(r.status == "duplicate" for r in base.values()) == 1  # the folder's only copy
    assert base[m21.ODD_NAME].status == "ok" and base[m21.BASE_NESTED[1]].status == "ok"
    for name, reason in m21.BASE_REJECTED.items():
        assert base[name].status == "rejected" and base[name].reason.startswith(reason), name
    versions = [base["Agnus_09_score_A.mid"], base["Agnus_09_score_B.mid"]]
    assert versions[0].group == versions[1].group != versions[0].file_id
    fiddle = rows["fiddle"]
    keys = {r.group for p, r in fiddle.items() if p.startswith("alistair_")}
    assert keys == {"piece:alistair"}  # one tune in five keys: one group
    split = read_split(tmp_path / "results/splits/fiddle.tsv")
    assert len({split[r.file_id] for p, r in fiddle.items() if p.startswith("alistair_")}) == 1


def test_token_shards(dag_run):
    work, _ = dag_run
    check_token_shards(work, ("base", *TARGETS))


def check_token_shards(work: Path, corpora) -> None:
    """Every accepted file tokenized (or listed as failed) exactly once, in its shard."""
    tok_hash = sha256_file(work / "results/tokenizer/tokenizer.json")
    for corpus in corpora:
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


def test_rerun_does_nothing(dag_run):
    work, cfg = dag_run
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


def test_clean_rerun_is_identical(dag_run, tmp_path, music21_corpora):
    """Two clean runs give identical outputs: byte for byte, except recorded wall times."""
    work, _ = dag_run
    shutil.copytree(music21_corpora / "fiddle", tmp_path / "fiddle")  # as in dag_run
    cfg = write_config(tmp_path / "config.yaml", dag_config(music21_corpora, fiddle="fiddle"))
    run(tmp_path, cfg)
    files = sorted(p.relative_to(work) for p in (work / "results").rglob("*") if p.is_file())
    assert files == sorted(
        p.relative_to(tmp_path) for p in (tmp_path / "results").rglob("*") if p.is_file()
    )
    for rel in files:
        assert without_timings(work / rel) == without_timings(tmp_path / rel), rel


def test_grown_corpus_reruns_one_shard(dag_run, tmp_path, music21_corpora):
    """A file added to a finished run's corpus reruns its shard and what depends on it."""
    tmp_path = tmp_path / "work"
    shutil.copytree(dag_run[0], tmp_path)  # the finished run, its fiddle folder and metadata
    cfg = tmp_path / "config.yaml"
    assert dry_run(tmp_path, cfg) == {}
    new = music21_corpora / "base" / "Agnus_01.mid"  # a piece fiddle does not have
    shutil.copy(new, tmp_path / "fiddle" / "new piece.mid")
    # Before ingestion only the grown corpus's ingestion is certain to rerun.
    planned = dry_run(tmp_path, cfg)
    assert planned.get("ingest") == 1 and "tokenizer" not in planned
    run(tmp_path, cfg, "results/corpora/fiddle/manifest.tsv")
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
        "linkpred_summary": 1,
        "generate": 2,
        "baseline": 5,  # markov2, markov3c, transformer, real_target, real_base (no fine-tune)
        "style_classifier": 1,  # trained on every corpus: it sees the new file
        "evaluate": 2,  # every target's evaluation reads the classifier
        "figures": 2,
        "eval_summary": 1,
        "all": 1,
    }
    # the shards (outputs), not their caches in .cache/ (hard links to the last shard written)
    shards = [p for p in (tmp_path / "results/tokens").rglob("*.h5") if ".cache" not in p.parts]
    before = {p: p.stat().st_mtime_ns for p in shards}
    run(tmp_path, cfg)
    changed = [p for p, t in before.items() if p.stat().st_mtime_ns != t]
    shard = shard_of(sha256_file(new), SHARDS)
    assert changed == [tmp_path / f"results/tokens/fiddle/{shard:04d}.h5"]
    assert sha256_file(new) in read_shard(changed[0]).file_ids
    # the rerun shard's cache is the new shard itself (a hard link), ready for the next rerun
    cache = changed[0].parent / ".cache" / changed[0].name
    assert cache.stat().st_ino == changed[0].stat().st_ino


def test_new_corpus_runs_only_its_jobs(dag_run, tmp_path):
    work, cfg = dag_run
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
        "linkpred_summary": 1,
        "generate": 2,
        "baseline": 5,  # markov2, markov3c, transformer, real_target, real_base (no fine-tune)
        "style_classifier": 1,  # one more style to tell apart
        "evaluate": 3,  # every target's evaluation reads the classifier
        "figures": 3,
        "eval_summary": 1,
        "all": 1,
    }


def test_walk_temperature_reruns_only_the_walks_and_their_readers(dag_run, tmp_path):
    """generate.temperature is read by the walks only: their jobs rerun, and what reads
    their samples (evaluation, figures, summary); no baseline, no graph network."""
    work, cfg = dag_run
    config = __import__("yaml").safe_load(cfg.read_text())
    config["generate"]["temperature"] = 0.7
    cfg2 = write_config(tmp_path / "config.yaml", config)
    n_walks = len(TARGETS) * len(TINY_GENERATE["variants"])
    assert dry_run(work, cfg2) == {
        "generate": n_walks,
        "evaluate": len(TARGETS),
        "figures": len(TARGETS),
        "eval_summary": 1,
        "all": 1,
    }


def test_new_linkpred_variant_runs_only_its_jobs(dag_run, tmp_path):
    """One more linkpred.variants entry (not used by a walk): its graph networks and the
    summary run, nothing else."""
    work, cfg = dag_run
    config = __import__("yaml").safe_load(cfg.read_text())
    config["linkpred"]["variants"] = [*TINY_LINKPRED["variants"], "emb"]
    cfg2 = write_config(tmp_path / "config.yaml", config)
    assert dry_run(work, cfg2) == {"linkpred": len(TARGETS), "linkpred_summary": 1, "all": 1}


def test_tokenizer_change_retokenizes_everything(dag_run, tmp_path):
    work, cfg = dag_run
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
        "linkpred_summary": 1,
        "generate": 2 * (n - 1),
        "baseline": 5 * (n - 1) + 1,  # five per target, and the fine-tuned model on bach
        "style_classifier": 1,
        "evaluate": n - 1,
        "figures": n - 1,
        "eval_summary": 1,
        "training_figure": 1,
        "all": 1,
    }


def test_bad_config_is_refused_with_the_key(tmp_path, music21_corpora):
    config = dag_config(music21_corpora)
    config["corpora"]["fiddle"]["sources"][0]["dir"]["limt"] = 3
    cfg = write_config(tmp_path / "config.yaml", config)
    proc = snakemake(tmp_path, "--configfile", str(cfg), "-n", check=False)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "config key corpora.fiddle.sources[0].dir: unknown key 'limt'" in out


def test_corpus_with_no_usable_file_fails_loudly(tmp_path, music21_corpora):
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "notes.txt").write_text("not music")
    (junk / "empty.mid").write_bytes(b"")
    config = dag_config(music21_corpora)
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
        "linkpred": dict(TINY_LINKPRED),
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


def test_targets_differ_from_base_above_the_noise_floor(dag_run, capsys):
    from tokentransfer.cli import main

    work, _ = dag_run
    tokens = work / "results/tokens"
    assert main(["divergence", str(tokens / "base"), str(tokens / "bach")]) == 0
    lines = capsys.readouterr().out.splitlines()
    floor = float(lines[1].split("\t")[2].split("+-")[0])
    jsd = float(lines[2].split("\t")[2])
    assert 0 < floor < jsd <= 1


def test_local_model_source(tmp_path, music21_corpora):
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
    config = dag_config(music21_corpora)
    config["corpora"] = {c: config["corpora"][c] for c in ("base", "fiddle")}
    config["finetune"]["targets"] = []
    config["model"] = {"source": "local", "name": "mine", "path": str(tmp_path / "local")}
    config["linkpred"] = {**TINY_LINKPRED, "variants": ["contextual"]}
    config["generate"] = {**TINY_GENERATE, "variants": ["contextual"]}
    config["evaluate"] = {"methods": ["markov2", "transformer"], "figures": False}
    work = tmp_path / "work"
    work.mkdir()
    cfg = write_config(work / "config.yaml", config)
    run(work, cfg)
    assert sha256_file(work / "results/tokenizer/tokenizer.json") == sha256_file(
        tmp_path / "tok.json"
    )  # the model's tokenizer, not the config's REMI
    cache = read_embeddings(work / "results/embeddings/mine/fiddle.h5")
    assert np.array_equal(cache["token"], model.transformer.wte.weight.detach().numpy())
    assert cache["attrs"]["tokenizer_hash"] == sha256_file(tmp_path / "tok.json")
    methods = (work / "results/eval/mine/fiddle/metrics.tsv").read_text().splitlines()
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


def test_configfile_replaces_the_default(tmp_path, music21_corpora):
    """--configfile replaces config/config.yaml instead of merging its corpora in."""
    (tmp_path / "config").mkdir()
    shutil.copy(REPO / "config" / "config.yaml", tmp_path / "config" / "config.yaml")
    config = dag_config(music21_corpora)
    config["corpora"] = {"base": config["corpora"]["base"], "reels": config["corpora"]["fiddle"]}
    config["finetune"]["targets"] = []
    cfg = write_config(tmp_path / "mine.yaml", config)
    proc = snakemake(tmp_path, "--configfile", str(cfg), "-n")
    assert "corpus=reels" in proc.stdout
    assert "corpus=fiddle" not in proc.stdout and "corpus=bach" not in proc.stdout
    proc = snakemake(tmp_path, "-n")  # no --configfile: the default is used
    assert "corpus=fiddle" in proc.stdout


def test_graph_and_link_prediction_outputs(dag_run):
    import json

    import torch

    from tokentransfer.graph import load_matrix

    work, _ = dag_run
    for corpus in TARGETS:
        a = load_matrix(work / f"results/graphs/{corpus}/adjacency.npz")
        assert a.diagonal().sum() == 0 and a.nnz > 0
        stats = json.loads((work / f"results/graphs/{corpus}/graph_stats.json").read_text())
        assert stats["directed_edges"] == a.nnz
        for variant in TINY_LINKPRED["variants"]:
            out = work / f"results/linkpred/small/{corpus}/{variant}"
            state = torch.load(out / "checkpoint.pt", weights_only=True)
            assert all(isinstance(v, torch.Tensor) for v in state.values())
            with h5py.File(out / "nodes.h5") as h5:
                ids = h5["vocab_ids"][:]
                assert h5["embeddings"].shape == (len(ids), TINY_LINKPRED["hidden"])
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
    rows = (work / "results/linkpred/summary.tsv").read_text().splitlines()
    assert len(rows) - 1 == len(TARGETS) * len(TINY_LINKPRED["variants"]) * 6


def test_generated_samples_decode_without_errors(dag_run):
    import json

    import symusic

    from tokentransfer.bars import count_bars
    from tokentransfer.midi import token_errors
    from tokentransfer.tokenize import load_tokenizer

    work, _ = dag_run
    tok = load_tokenizer(work / "results/tokenizer/tokenizer.json")
    for corpus in TARGETS:
        for variant in TINY_GENERATE["variants"]:
            out = work / f"results/generated/small/{corpus}/{variant}"
            info = json.loads((out / "generation.json").read_text())
            assert info["biased"] == (variant != "counts")
            assert info["length"]["bars"] == TINY_GENERATE["bars"]
            with h5py.File(out / "tokens.h5") as h5:
                ids, offsets = h5["ids"][:], h5["offsets"][:]
            assert info["tokens_generated"] == offsets[-1]
            for i in range(2):
                seq = ids[offsets[i] : offsets[i + 1]]
                assert count_bars(seq, tok.vocab["Bar_None"]) == TINY_GENERATE["bars"]
                assert token_errors(tok, seq) == 0
                score = symusic.Score(str(out / f"sample_{i:03d}.mid"))
                assert score.note_num() > 0


def test_cli_generate_with_a_prompt(dag_run, tmp_path, music21_corpora):
    from tokentransfer.cli import main
    from tokentransfer.tokenize import load_tokenizer, tokenize_file

    work, _ = dag_run
    prompt = music21_corpora / "fiddle" / m21.FIDDLE_PROMPT
    args = ["generate", "--results", str(work / "results"), "--corpus", "fiddle"]
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


def test_evaluation_tables(dag_run):
    """Every walk and baseline is evaluated on every target, with the same samples x bars."""
    from tokentransfer.bars import count_bars
    from tokentransfer.baselines import bar_id
    from tokentransfer.evaluate import SAMPLE_METRICS, SET_METRICS
    from tokentransfer.fileio import read_tsv
    from tokentransfer.samples import read_samples
    from tokentransfer.tokenize import load_tokenizer

    work, _ = dag_run
    summary = read_tsv(work / "results/eval/summary.tsv")
    n, bars = TINY_GENERATE["samples"], TINY_GENERATE["bars"]
    bar = bar_id(load_tokenizer(work / "results/tokenizer/tokenizer.json"))
    sets = sorted((work / "results").glob("[gb]*/small/*/*/tokens.h5"))
    assert (
        len(sets)
        == len(TARGETS) * len(TINY_GENERATE["variants"])
        + len(TARGETS) * (len(EVAL_METHODS) - 1)
        + 1
    )  # finetuned on bach only
    for path in sets:  # every sample: `bars` bars of new music, the last one cut before its end
        samples, prompt = read_samples(path)
        assert [count_bars(s[prompt:], bar) for s in samples] == [bars] * n, path
    for corpus in TARGETS:
        rows = {r["method"]: r for r in read_tsv(work / f"results/eval/small/{corpus}/metrics.tsv")}
        methods = ["test_pieces", *TINY_GENERATE["variants"]]
        methods += [m for m in EVAL_METHODS if m != "finetuned" or corpus == "bach"]
        assert list(rows) == methods
        assert [r["method"] for r in summary if r["corpus"] == corpus] == methods
        for method, row in rows.items():
            assert int(row["samples"]) == n
            for name in SET_METRICS:
                if method == "test_pieces":
                    assert row[name] == ""  # the reference itself
                elif row[name]:
                    assert 0.0 <= float(row[name]) <= 1.0, (corpus, method, name)
            for name in SAMPLE_METRICS:
                assert f"{name}_std" in row
        # the walks keep the grammar; excerpts of training pieces are copies by construction
        for variant in [*TINY_GENERATE["variants"], "markov3c"]:
            assert float(rows[variant]["token_error_rate"]) == 0.0, (corpus, variant)
        assert float(rows["real_target"]["copy_rate"]) == 1.0
        assert float(rows["real_target"]["longest_copy"]) >= float(rows["counts"]["longest_copy"])
        samples = read_tsv(work / f"results/eval/small/{corpus}/samples.tsv")
        assert len(samples) == n * len(methods)
        for i in range(n):
            info = work / f"results/baselines/small/{corpus}/markov2/sample_{i:03d}.mid"
            assert info.stat().st_size > 0


def test_report_has_every_figure(dag_run):
    """`snakemake --report` builds a zip with the tables, figures and captions."""
    import zipfile

    work, cfg = dag_run
    snakemake(work, "--configfile", str(cfg), "--report", "results/report.zip")
    with zipfile.ZipFile(work / "results/report.zip") as z:
        names = z.namelist()
        html = z.read(next(n for n in names if n.endswith("report.html"))).decode()
    base = [n.rsplit("/", 1)[-1] for n in names]
    assert base.count("metrics.png") == len(TARGETS)  # one chart per target
    assert base.count("pitch_classes.png") == len(TARGETS)
    assert base.count("pianorolls.png") == len(TARGETS)
    assert base.count("training.png") == 1
    assert base.count("metrics.tsv") == len(TARGETS)
    assert "summary.tsv" in base  # link prediction and evaluation summaries
    for caption in ("pooled pitch-class histograms", "piano roll", "Link prediction"):
        assert caption.lower() in html.lower(), caption


def test_report_audio(dag_run, tmp_path):
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
    work, cfg = dag_run
    config = yaml.safe_load(cfg.read_text())
    config["report"] = {"audio": True}
    cfg2 = write_config(tmp_path / "config.yaml", config)
    planned = dry_run(work, cfg2)
    per_target = len(TINY_GENERATE["variants"]) + len(EVAL_METHODS) - 1  # all but finetuned
    # one per method and target, and the fine-tuned model's on bach; nothing else reruns
    assert planned == {"audio": len(TARGETS) * per_target + 1, "all": 1}
    run(work, cfg2)
    audio = sorted((work / "results/eval/small/bach/audio").iterdir())
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
