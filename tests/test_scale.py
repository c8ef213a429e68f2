"""The workflow's parts that matter at Lakh scale (benchmarks/lakh.py measures them): the
ingest job reruns on a digest of its folders' listing and the shard jobs on a digest of their
file list (not one Snakemake input per file), and one SLURM job per tokenize shard."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from tests import music21_corpora as m21
from tests.conftest import REPO, snakemake, write_config
from tokentransfer.corpus import read_manifest
from tokentransfer.fileio import sha256_file
from tokentransfer.shards import shard_of
from tokentransfer.tokenize import read_shard

pytestmark = pytest.mark.e2e

SHARDS = 16  # the schema's default: more shards than the corpus has files in some


def _config(base: Path, bach: Path) -> dict:
    return {
        "seed": 0,
        "shards": SHARDS,
        "corpora": {
            "base": {"role": "base", "sources": [{"dir": {"path": str(base)}}]},
            "bach": {"role": "target", "sources": [{"dir": {"path": str(bach)}}]},
        },
    }


@pytest.fixture
def bach_work(tmp_path, music21_corpora, midi_corpora):
    """The base folder of the workflow tests and a copy of the 14 Bach chorales, exported from
    music21's corpus (tests/music21_corpora.py)."""
    src = tmp_path / "bach_src"
    shutil.copytree(midi_corpora / "chorales", src)
    cfg = write_config(tmp_path / "config.yaml", _config(music21_corpora / "base", src))
    return tmp_path, cfg, src


def _expected_shards(work: Path) -> dict[str, list[str]]:
    """Shard -> file ids of its accepted files, straight from the manifest."""
    out: dict[str, list[str]] = {f"{i:04d}": [] for i in range(SHARDS)}
    for row in read_manifest(work / "results/corpora/bach/manifest.tsv"):
        if row.status == "ok":
            out[f"{shard_of(row.file_id, SHARDS):04d}"].append(row.file_id)
    return {k: sorted(v) for k, v in out.items()}


def test_jobs_read_the_folder_and_the_manifest_not_each_file(bach_work):
    """The ingest job's inputs are its folders, the shard jobs' the tokenizer and the manifest:
    the DAG does not grow with the corpus (176,581 inputs twice over made it 36 s)."""
    work, cfg, src = bach_work
    target = "results/tokens/bach/index.tsv"
    proc = snakemake(work, "--configfile", str(cfg), "-n", target)
    block = proc.stdout.split("checkpoint ingest:")[1]
    assert re.search(r"^\s+input: (.*)$", block, re.M).group(1) == str(src)
    snakemake(work, "--configfile", str(cfg), "--cores", "1", "results/corpora/bach/manifest.tsv")
    proc = snakemake(work, "--configfile", str(cfg), "-n", target)
    inputs = re.findall(r"^\s+input: (.*)$", proc.stdout.split("rule tokenize_shard:", 1)[1], re.M)
    assert inputs[0] == "results/tokenizer/tokenizer.json, results/corpora/bach/manifest.tsv"
    assert proc.stdout.count("rule tokenize_shard:") == SHARDS


def _shard_times(work: Path) -> dict[Path, int]:
    """The shards (not their caches in .cache/) and their mtimes."""
    return {p: p.stat().st_mtime_ns for p in (work / "results/tokens/bach").glob("*.h5")}


def _changed(before: dict[Path, int]) -> set[str]:
    return {p.stem for p, t in before.items() if p.stat().st_mtime_ns != t}


def test_grown_corpus_in_one_run_tokenizes_the_new_file(bach_work, midi_corpora):
    """Ingestion reruns and the shards are planned in the same Snakemake run: the shard file
    lists come from the new manifest, and only the new file's shard is tokenized again."""
    work, cfg, src = bach_work
    target = "results/tokens/bach/index.tsv"
    snakemake(work, "--configfile", str(cfg), "--cores", "2", target)
    expected = _expected_shards(work)
    assert sum(len(v) for v in expected.values()) == len(m21.CHORALES)  # every file, once
    for shard, ids in expected.items():  # each shard holds the files the manifest gives it
        assert read_shard(work / f"results/tokens/bach/{shard}.h5").file_ids == ids
    before = _shard_times(work)
    new = midi_corpora / "band" / "bwv123.6.mid"  # a chorale the corpus lacks, played by a band
    shutil.copy(new, src / "new piece.mid")
    snakemake(work, "--configfile", str(cfg), "--cores", "2", target)
    fid = sha256_file(new)
    shard = work / f"results/tokens/bach/{shard_of(fid, SHARDS):04d}.h5"
    assert _changed(before) == {shard.stem}
    assert fid in read_shard(shard).file_ids
    index = (work / target).read_text().splitlines()
    assert [line.split("\t")[1] for line in index if line.startswith(fid)] == [shard.stem]
    assert len(index) == 1 + len(m21.CHORALES) + 1


def test_changed_touched_and_removed_files_rerun_exactly_their_shards(bach_work, midi_corpora):
    """A folder's files are no Snakemake inputs: the listing digest (path, size, mtime) reruns
    ingestion, the shard digests rerun the shards whose file list changed, and only them."""
    work, cfg, src = bach_work
    sub = src / "sub"
    sub.mkdir()
    for p in sorted(src.glob("*.mid"))[:4]:  # files in a subfolder: the folder's mtime stays
        p.rename(sub / p.name)
    target = "results/tokens/bach/index.tsv"
    manifest = work / "results/corpora/bach/manifest.tsv"

    def plan() -> dict[str, int]:
        out = snakemake(work, "--configfile", str(cfg), "-n", target).stdout
        return {r: out.count(f"rule {r}:") + out.count(f"checkpoint {r}:") for r in RULES}

    def rerun() -> set[str]:
        before = _shard_times(work)
        snakemake(work, "--configfile", str(cfg), "--cores", "2", target)
        return _changed(before)

    snakemake(work, "--configfile", str(cfg), "--cores", "2", target)
    assert plan() == dict.fromkeys(RULES, 0)
    folder_mtime = sub.stat().st_mtime_ns

    # touched (the same content, a new mtime): ingestion reruns, no shard
    victim = sorted(sub.glob("*.mid"))[0]
    st = victim.stat()
    os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert plan()["ingest"] == 1
    text = manifest.read_bytes()
    assert rerun() == set()
    assert manifest.read_bytes() == text and plan() == dict.fromkeys(RULES, 0)

    # changed in place (a chorale the corpus lacks): the shards of its old and new id rerun
    old = sha256_file(victim)
    shutil.copyfile(midi_corpora / "band" / "bwv123.6.mid", victim)
    new = sha256_file(victim)
    assert sub.stat().st_mtime_ns == folder_mtime  # the folder (an input) looks unchanged
    assert rerun() == {f"{shard_of(fid, SHARDS):04d}" for fid in (old, new)}
    expected = _expected_shards(work)
    assert all(old not in ids for ids in expected.values())
    assert new in expected[f"{shard_of(new, SHARDS):04d}"]

    # removed: its shard reruns, and no longer holds it
    gone = sorted(sub.glob("*.mid"))[1]
    fid = sha256_file(gone)
    gone.unlink()
    shard = f"{shard_of(fid, SHARDS):04d}"
    assert rerun() == {shard}
    assert fid not in read_shard(work / f"results/tokens/bach/{shard}.h5").file_ids
    for s, ids in _expected_shards(work).items():
        assert read_shard(work / f"results/tokens/bach/{s}.h5").file_ids == ids
    assert plan() == dict.fromkeys(RULES, 0)


RULES = ("ingest", "tokenize_shard", "token_index")


def test_slurm_profile_submits_one_job_per_shard(bach_work):
    """profiles/slurm submits one tokenize job per shard, not per file, and groups none of them
    (grouped jobs fed by the ingest checkpoint crash snakemake 9: snakemake issue 4202)."""
    work, cfg, _ = bach_work
    proc = snakemake(
        work,
        "--configfile",
        str(cfg),
        "-n",
        "--workflow-profile",
        str(REPO / "profiles" / "slurm"),
        "results/tokens/bach/index.tsv",
    )
    out = proc.stdout
    assert "Group job" not in out
    jobs = re.findall(r"^(?:rule|checkpoint) (\w+):$", out, re.M)
    assert jobs.count("tokenize_shard") == SHARDS
    assert sorted(set(jobs)) == ["ingest", "token_index", "tokenize_shard", "tokenizer"]
