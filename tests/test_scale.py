"""The workflow's parts that matter at Lakh scale (benchmarks/lakh.py measures them):
shard inputs taken from one read of the manifest, and one SLURM job per tokenize shard."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests import music21_corpora as m21
from tests.conftest import REPO, snakemake, write_config
from tokentransfer.corpus import read_manifest, shard_of
from tokentransfer.fileio import sha256_file
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
    """Shard -> stored files, straight from the manifest (what shard_midi must give)."""
    out: dict[str, list[str]] = {f"{i:04d}": [] for i in range(SHARDS)}
    for row in read_manifest(work / "results/corpora/bach/manifest.tsv"):
        if row.status == "ok":
            shard = f"{shard_of(row.file_id, SHARDS):04d}"
            out[shard].append(f"resources/corpora/bach/midi/{row.file_id}.mid")
    return out


def test_shard_inputs_follow_the_manifest(bach_work):
    work, cfg, _ = bach_work
    snakemake(work, "--configfile", str(cfg), "--cores", "1", "results/corpora/bach/manifest.tsv")
    proc = snakemake(work, "--configfile", str(cfg), "-n", "results/tokens/bach/index.tsv")
    planned: dict[str, list[str]] = {}
    for block in proc.stdout.split("rule tokenize_shard:")[1:]:
        inputs = re.search(r"^\s+input: (.*)$", block, re.M).group(1).split(", ")
        shard = re.search(r"^\s+output: results/tokens/bach/(\d{4})\.h5$", block, re.M).group(1)
        assert inputs[0] == "results/tokenizer/tokenizer.json"
        planned[shard] = sorted(inputs[1:])
    expected = _expected_shards(work)
    assert sum(len(v) for v in expected.values()) == len(m21.CHORALES)  # every file, once
    assert planned == {k: sorted(v) for k, v in expected.items()}


def test_grown_corpus_in_one_run_tokenizes_the_new_file(bach_work, midi_corpora):
    """Ingestion reruns and the shards are planned in the same Snakemake run: the shard inputs
    come from the new manifest, and only the new file's shard is tokenized again."""
    work, cfg, src = bach_work
    target = "results/tokens/bach/index.tsv"
    snakemake(work, "--configfile", str(cfg), "--cores", "2", target)
    before = {p: p.stat().st_mtime_ns for p in (work / "results/tokens/bach").glob("*.h5")}
    new = midi_corpora / "band" / "bwv123.6.mid"  # a chorale the corpus lacks, played by a band
    shutil.copy(new, src / "new piece.mid")
    snakemake(work, "--configfile", str(cfg), "--cores", "2", target)
    fid = sha256_file(new)
    shard = work / f"results/tokens/bach/{shard_of(fid, SHARDS):04d}.h5"
    assert [p for p, t in before.items() if p.stat().st_mtime_ns != t] == [shard]
    assert fid in read_shard(shard).file_ids
    index = (work / target).read_text().splitlines()
    assert [line.split("\t")[1] for line in index if line.startswith(fid)] == [shard.stem]
    assert len(index) == 1 + len(m21.CHORALES) + 1


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
