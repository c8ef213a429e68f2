"""The workflow gives the same results through SLURM (profiles/slurm) as locally.

Needs a SLURM cluster that answers ``sinfo`` (one on this machine, or one sharing /tmp with its
nodes). Without one the test skips, unless ``TOKENTRANSFER_SLURM=1`` is set: then a missing
cluster is a failure. A self-contained run on one machine (as root):

    D=$(bash .ci/slurm-up.sh /tmp/slurm) && source "$D/env" &&
        TOKENTRANSFER_SLURM=1 python -m pytest -m slurm tests/test_slurm.py -v
    bash .ci/slurm-down.sh /tmp/slurm
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

from tests import music21_corpora as m21
from tests.conftest import REPO, snakemake, write_config

REQUIRED = os.environ.get("TOKENTRANSFER_SLURM") == "1"
# "Job 7 has been submitted with SLURM jobid 10 (log: .../slurm_logs/rule_tokenize_shard/...)."
SUBMITTED = re.compile(
    r"has been submitted with SLURM jobid (\d+) \(log: \S*/slurm_logs/rule_(\w+)/"
)
FINISHED = re.compile(r"Finished jobid: \d+ \(Rule: (\w+)\)")
#: rules that snakemake runs itself, never through sbatch (no script/shell/run)
LOCAL_RULES = {"all"}
#: the rules that this workflow must send to SLURM
SLURM_RULES = {"ingest", "tokenizer", "tokenize_shard", "token_index"}


def _cluster_answers() -> str | None:
    """None when ``sinfo`` reaches a cluster with a usable node, else why not."""
    if shutil.which("sinfo") is None or shutil.which("sbatch") is None:
        return "sinfo/sbatch not found (no SLURM client)"
    try:
        proc = subprocess.run(
            ["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=30
        )
    except subprocess.TimeoutExpired:
        return "sinfo did not answer in 30 s"
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or [""])[-1]
        return f"sinfo failed ({proc.returncode}): {last}"
    states = proc.stdout.split()
    if not any(s.rstrip("*~#$@^-!%").startswith(("idle", "mix", "alloc")) for s in states):
        return f"no usable node (sinfo states: {states or 'none'})"
    return None


def _need_cluster() -> None:
    """Skip without a cluster; fail instead when TOKENTRANSFER_SLURM=1 asks for one."""
    why = _cluster_answers()
    if why is None:
        return
    if REQUIRED:
        pytest.fail(f"TOKENTRANSFER_SLURM=1 but no SLURM cluster: {why}")
    pytest.skip(f"no SLURM cluster: {why}")


#: a tiny transformer for the run, used when the workflow has a model stage (only the keys
#: that schemas/config.schema.yaml knows); one thread, so that local and SLURM runs compute alike
SMALL_MODEL = {
    "layers": 1,
    "dim": 32,
    "heads": 2,
    "context": 64,
    "steps": 4,
    "batch": 2,
    "warmup": 1,
    "checkpoint_every": 2,
    "eval_tokens": 200,
    "threads": 1,
}
#: fields (JSON keys, TSV columns) that may differ between two runs: wall times and what is
#: derived from them (throughput), dates, hosts
VOLATILE = re.compile(
    r"(?i)(^|_)(seconds?|secs?|elapsed|duration|wall|timestamp|date|datetime|host|hostname"
    r"|started|finished|time_s|throughput)($|_)"
)


def _dag_config(corpora: Path) -> dict:
    """The workflow on the music21 corpora (tests/music21_corpora.py): the ``base`` and
    ``fiddle`` folders and the Bach chorales as a ``music21`` source (exported in a SLURM job)."""

    def dir_source(name: str, group: str) -> list[dict]:
        return [{"dir": {"path": str((corpora / name).resolve()), "group": group}}]

    config = {
        "seed": 0,
        "shards": 2,
        "corpora": {
            "base": {"role": "base", "sources": dir_source("base", m21.BASE_GROUP)},
            "bach": {"role": "target", "sources": [m21.BACH_SOURCE]},
            "fiddle": {"role": "target", "sources": dir_source("fiddle", m21.FIDDLE_GROUP)},
        },
    }
    schema = yaml.safe_load((REPO / "schemas" / "config.schema.yaml").read_text())
    model_keys = schema.get("properties", {}).get("model", {}).get("properties", {})
    if model_keys:
        config["model"] = {k: v for k, v in SMALL_MODEL.items() if k in model_keys}
    # short graph training, walks and baselines: every stage runs, each briefly
    config["linkpred"] = {"variants": ["emb_neighbours"], "seeds": [0], "hidden": 16, "epochs": 20}
    config["generate"] = {"variants": ["counts", "emb_neighbours"], "samples": 2, "length": 128}
    config["finetune"] = {"targets": ["fiddle"], "steps": 4, "batch": 2, "warmup": 1}
    return config


def _files(root: Path) -> dict[str, Path]:
    return {p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*")) if p.is_file()}


def _h5_differences(a: Path, b: Path) -> list[str]:
    """Differences in content (groups, datasets: dtype, shape, values; attributes)."""
    out: list[str] = []

    def attrs(obj) -> dict:
        return {k: obj.attrs[k] for k in sorted(obj.attrs)}

    def same(x, y) -> bool:
        x, y = np.asarray(x), np.asarray(y)
        return x.dtype == y.dtype and x.shape == y.shape and bool(np.all(x == y))

    def compare(name: str, x, y) -> None:
        ax, ay = attrs(x), attrs(y)
        if ax.keys() != ay.keys():
            out.append(f"{name}: attributes {sorted(ax)} != {sorted(ay)}")
        else:
            out.extend(f"{name}: attribute {k} differs" for k in ax if not same(ax[k], ay[k]))
        if isinstance(x, h5py.Dataset) != isinstance(y, h5py.Dataset):
            out.append(f"{name}: dataset in one file, group in the other")
        elif isinstance(x, h5py.Dataset):
            if x.dtype != y.dtype or x.shape != y.shape:
                out.append(f"{name}: {x.dtype}{x.shape} != {y.dtype}{y.shape}")
            elif not same(x[()], y[()]):
                out.append(f"{name}: values differ")
        else:
            if sorted(x) != sorted(y):
                out.append(f"{name}: members {sorted(x)} != {sorted(y)}")
            for key in sorted(set(x) & set(y)):
                compare(f"{name.rstrip('/')}/{key}", x[key], y[key])

    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        compare("/", fa, fb)
    return out


def _drop_volatile(obj, ignored: set[str]):
    if isinstance(obj, dict):
        kept = {}
        for k, v in obj.items():
            if VOLATILE.search(str(k)):
                ignored.add(str(k))
            else:
                kept[k] = _drop_volatile(v, ignored)
        return kept
    if isinstance(obj, list):
        return [_drop_volatile(v, ignored) for v in obj]
    return obj


def _json_paths(x, y, path: str = "") -> list[str]:
    """Where two JSON values differ (key paths)."""
    if isinstance(x, dict) and isinstance(y, dict):
        out = [f"{path}/{k}: only in one" for k in sorted(x.keys() ^ y.keys())]
        for k in sorted(x.keys() & y.keys()):
            out.extend(_json_paths(x[k], y[k], f"{path}/{k}"))
        return out
    if isinstance(x, list) and isinstance(y, list) and len(x) == len(y):
        pairs = enumerate(zip(x, y, strict=True))
        return [d for i, (u, v) in pairs for d in _json_paths(u, v, f"{path}[{i}]")]
    return [] if x == y else [f"{path or '/'}: {x!r} != {y!r}"[:200]]


def _text_differences(a: Path, b: Path, ignored: set[str]) -> list[str]:
    """JSON and TSV files compared without their volatile fields (wall times, dates, hosts)."""
    if a.suffix == ".json":
        ja, jb = (_drop_volatile(json.loads(p.read_text()), ignored) for p in (a, b))
        return _json_paths(ja, jb)[:10]
    if a.suffix == ".tsv":
        rows_a, rows_b = (list(csv.reader(p.open(), delimiter="\t")) for p in (a, b))
        if not rows_a or not rows_b or rows_a[0] != rows_b[0] or len(rows_a) != len(rows_b):
            return ["TSV header or row count differs"]
        keep = [i for i, col in enumerate(rows_a[0]) if not VOLATILE.search(col)]
        ignored.update(col for col in rows_a[0] if VOLATILE.search(col))
        for n, (ra, rb) in enumerate(zip(rows_a[1:], rows_b[1:], strict=True), start=2):
            if [ra[i] for i in keep if i < len(ra)] != [rb[i] for i in keep if i < len(rb)]:
                return [f"TSV line {n} differs (beyond wall times, dates, hosts): {ra} != {rb}"]
        return []
    return ["bytes differ"]


def test_slurm_profile_is_accepted(music21_corpora, tmp_path):
    """Every key of profiles/slurm is an option that snakemake or the plugin knows (no cluster)."""
    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    assert profile["executor"] == "slurm"
    assert profile["slurm-status-command"] == "squeue"
    assert profile["default-resources"]["slurm_partition"]
    config = write_config(tmp_path / "config.yaml", _dag_config(music21_corpora))
    profile_dir = str(REPO / "profiles" / "slurm")
    proc = snakemake(tmp_path, "--configfile", str(config), "--workflow-profile", profile_dir, "-n")
    assert "slurm_partition=" in proc.stdout + proc.stderr


@pytest.mark.slurm
def test_slurm_run_matches_local_run(music21_corpora, capsys):
    _need_cluster()
    # slurmd (here: root on this machine) must read and write the work dirs: keep them in /tmp.
    base = Path(tempfile.mkdtemp(prefix="tokentransfer-slurm-", dir="/tmp"))
    passed = False
    try:
        config = write_config(base / "config.yaml", _dag_config(music21_corpora))
        local, remote = base / "local", base / "slurm"
        local.mkdir()
        remote.mkdir()

        snakemake(local, "--configfile", str(config), "--cores", "2")
        proc = snakemake(
            remote,
            "--configfile",
            str(config),
            "--workflow-profile",
            str(REPO / "profiles" / "slurm"),
            "--jobs",
            "4",
            "--slurm-keep-successful-logs",
        )

        # It really went through SLURM: sbatch gave a job id to every job but the local ones,
        # and each SLURM job left its log (kept by --slurm-keep-successful-logs).
        output = proc.stdout + proc.stderr
        submitted = SUBMITTED.findall(output)
        assert submitted, f"no SLURM submission in snakemake's output:\n{output[-4000:]}"
        job_ids = [job_id for job_id, _ in submitted]
        assert len(set(job_ids)) == len(job_ids), job_ids
        assert {rule for _, rule in submitted} >= SLURM_RULES, submitted
        finished = [r for r in FINISHED.findall(output) if r not in LOCAL_RULES]
        assert len(job_ids) == len(finished), (submitted, finished)
        slurm_logs = list((remote / ".snakemake" / "slurm_logs").rglob("*.log"))
        assert len(slurm_logs) == len(job_ids), (sorted(map(str, slurm_logs)), job_ids)

        a, b = _files(local / "results"), _files(remote / "results")
        assert a.keys() == b.keys(), (sorted(a.keys() ^ b.keys()), "differ between the runs")
        assert any(k.endswith(".h5") for k in a) and any(k.endswith("index.tsv") for k in a)
        # Byte for byte; where bytes differ, HDF5 by content (datasets and attributes: HDF5 may
        # store timestamps) and JSON/TSV without wall times, dates and hosts. Others must be equal.
        by_content, ignored, problems = [], set(), []
        for rel in sorted(a):
            if a[rel].read_bytes() == b[rel].read_bytes():
                continue
            if rel.endswith(".h5"):
                diffs = _h5_differences(a[rel], b[rel])
            else:
                diffs = _text_differences(a[rel], b[rel], ignored)
            problems.extend(f"results/{rel}: {d}" for d in diffs)
            by_content.append(rel)
        assert not problems, f"local and SLURM results differ (kept in {base}):\n" + "\n".join(
            problems
        )
        ids = sorted(map(int, job_ids))
        with capsys.disabled():
            print(
                f"\nSLURM: {len(ids)} jobs (ids {ids[0]}..{ids[-1]}); "
                f"{len(a)} result files equal, {len(a) - len(by_content)} byte for byte"
                + (f"; by content: {by_content}" if by_content else "")
                + (f" (ignoring fields {sorted(ignored)})" if ignored else "")
            )
        passed = True
    finally:
        if passed:  # else keep both runs to look at
            shutil.rmtree(base, ignore_errors=True)
