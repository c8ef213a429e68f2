"""Fault injection: SIGKILL at random points, a read-only output folder, a full disk.

Issue "Hardening": every output is written to a temporary name and renamed into place; a run
killed at random points and rerun ends with outputs identical to an uninterrupted run; a full
disk or a read-only output folder gives a clear error, not a corrupt file.

Environment: ``TOKENTRANSFER_KILL_POINTS`` (default 4) kill points drawn with
``TOKENTRANSFER_KILL_SEED`` (default 0).
"""

from __future__ import annotations

import json
import os
import random
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO, snakemake, snakemake_cmd, write_config
from tests.faults_helpers import (
    WRITER_NAMES,
    Run,
    broken_files,
    incomplete_outputs,
    is_temp,
    result_files,
    start_snakemake,
)
from tests.test_workflow import TINY_LINKPRED, dag_config, without_timings

KILL_POINTS = int(os.environ.get("TOKENTRANSFER_KILL_POINTS", "4"))
KILL_SEED = int(os.environ.get("TOKENTRANSFER_KILL_SEED", "0"))
#: the stages the kill points are aimed at, in turn; further points fall anywhere in the run
STAGES = (
    "tokenize_shard",  # tokenization
    "pretrain",  # training (resumes from a checkpoint)
    "embed",  # extraction
    "generate",  # generation
    "linkpred",  # graph-network training
    "perplexity",
    "adjacency",
)
#: pretraining long enough (a few seconds) for a kill to land inside it, after a checkpoint
FAULT_MODEL = {"steps": 300, "checkpoint_every": 30}
#: a log line of tokentransfer.model.train ("step 30/300 loss ...")
STEP_LINE = re.compile(r"INFO tokentransfer\.model: step (\d+)/\d+ ")


def faults_config(corpora: Path) -> dict:
    """The workflow on the music21 corpora (tests/music21_corpora.py), cut to one target.

    Pretraining runs 300 steps (a few seconds) with a checkpoint every 30, so that a kill can
    land inside training and the rerun has to resume from a checkpoint.
    """
    config = dag_config(corpora)
    config["model"].update(FAULT_MODEL)
    config["linkpred"] = {**TINY_LINKPRED, "variants": ["emb_neighbours"], "seeds": [0]}
    config["corpora"] = {name: config["corpora"][name] for name in ("base", "fiddle")}
    config["finetune"]["targets"] = []
    return config


def compare_results(reference: Path, work: Path) -> tuple[list[str], list[str]]:
    """(differences, temporary files left) between two workdirs' results/.

    Files under a ``.tmp-*`` name are not outputs (a SIGKILLed atomic write may leave one, see
    tokentransfer.fileio.atomic_path); every other file must exist in both and be identical,
    recorded wall times aside.
    """
    ref = [p for p in result_files(reference) if not is_temp(p)]
    got = result_files(work)
    left = [str(p) for p in got if is_temp(p)]
    got = [p for p in got if not is_temp(p)]
    diffs = [f"only in the reference: {p}" for p in sorted(set(ref) - set(got))]
    diffs += [f"only after the kill: {p}" for p in sorted(set(got) - set(ref))]
    diffs += [
        f"differs: {p}"
        for p in sorted(set(ref) & set(got))
        if without_timings(reference / p) != without_timings(work / p)
    ]
    return diffs, left


@pytest.fixture(scope="module")
def reference(tmp_path_factory, music21_corpora):
    """One clean run of the fault config, with each job's start and end times."""
    work = tmp_path_factory.mktemp("faults_reference")
    cfg = write_config(work / "config.yaml", faults_config(music21_corpora))
    run = start_snakemake(work, "--configfile", str(cfg), "--cores", "2")
    rc = run.wait(timeout=900)
    wall = time.monotonic() - run.t0
    assert rc == 0, run.output[-6000:]
    assert broken_files(work) == {}
    return work, run, wall


def logged_steps(work: Path) -> list[int]:
    """The training steps pretraining has logged so far in ``work`` ("step 30/300 ...")."""
    log = work / "logs" / "pretrain" / "small.log"
    text = log.read_text(errors="replace") if log.exists() else ""
    return [int(m.group(1)) for m in STEP_LINE.finditer(text)]


@dataclass
class KillPoint:
    """Kill ``offset`` seconds after the ``nth`` job of rule ``stage`` starts (``nth`` None:
    ``offset`` seconds after the run starts), or once pretraining has logged step
    ``after_step``; ``fallback``: the time to kill at if that never shows."""

    stage: str
    nth: int | None
    offset: float
    fallback: float
    after_step: int | None = None


def plan_kills(reference, n: int, seed: int) -> list[KillPoint]:
    """``n`` seeded kill points, aimed at the stages in STAGES in turn.

    Point i aims at the i-th stage that the reference run has: one of that rule's jobs drawn at
    random, at a random fraction (0.05 to 0.5: the machine is shared and the same job can run
    twice as fast in the killed run) of its duration in the reference, counted from the job's
    start in the killed run (so that a slower or faster start does not shift the kill into
    another stage); for pretraining, as soon as it logs a random step after its first
    checkpoint, so that the rerun has to resume from one. Points beyond the stages fall at a
    random time in [0.1, 0.9] x the reference's wall time.
    """
    work, run, wall = reference
    rng = random.Random(seed)
    jobs = sorted((j for j in run.jobs.values() if j.end is not None), key=lambda j: j.start)
    stages = [s for s in STAGES if any(j.rule == s for j in jobs)]
    plan = []
    for i in range(n):
        if i >= len(stages):
            t = rng.uniform(0.1 * wall, 0.9 * wall)
            plan.append(KillPoint("anywhere", None, t, t))
            continue
        of_stage = [j for j in jobs if j.rule == stages[i]]
        nth = rng.randrange(len(of_stage))
        job = of_stage[nth]
        offset = rng.uniform(0.05, 0.5) * (job.end - job.start)
        after_step = None
        if stages[i] == "pretrain":
            steps = logged_steps(work)
            every = FAULT_MODEL["checkpoint_every"]
            after_step = rng.choice([s for s in steps if every < s < steps[-1]] or steps[-1:])
        plan.append(KillPoint(stages[i], nth, offset, job.start + offset, after_step))
    return plan


def wait_for_kill_point(run: Run, work: Path, point: KillPoint) -> None:
    """Sleep until ``point`` is reached in ``run`` (or the run ends)."""
    deadline = run.t0 + 2 * point.fallback + 30

    def running() -> bool:
        return run.proc.poll() is None and time.monotonic() < deadline

    if point.after_step is not None:
        while running() and not any(s >= point.after_step for s in logged_steps(work)):
            time.sleep(0.01)
        return
    start = 0.0
    if point.nth is not None:
        start = None
        while start is None and running():
            seen = sorted(j.start for j in list(run.jobs.values()) if j.rule == point.stage)
            if len(seen) > point.nth:
                start = seen[point.nth]
            else:
                time.sleep(0.02)
        if start is None:  # never seen: fall back to the reference's timing
            start = point.fallback - point.offset
    while run.proc.poll() is None and time.monotonic() - run.t0 < start + point.offset:
        time.sleep(0.02)


def resumed_lines(work: Path) -> list[str]:
    """Log lines in which a training job resumed from its checkpoint."""
    lines = []
    for log in sorted((work / "logs").rglob("*.log")):
        for line in log.read_text(errors="replace").splitlines():
            if "resumed from" in line:
                lines.append(f"{log.relative_to(work / 'logs')}: {line.split(': ', 1)[-1]}")
    return lines


@pytest.mark.e2e
def test_sigkill_at_random_points_then_rerun_is_identical(reference, tmp_path, music21_corpora):
    """SIGKILL the whole process group at seeded points; unlock, rerun, compare with the reference.

    Like a cluster killing a job: Snakemake and every job it runs die at once (os.killpg).
    Before the rerun, every file under results/ and resources/ must read back whole (outputs are
    renamed into place, so a killed writer leaves at most a ``.tmp-*`` file). Snakemake's lock
    stays behind after SIGKILL, so the rerun is preceded by ``snakemake --unlock``, as Snakemake's
    own message says; ``--rerun-incomplete`` reruns the jobs that were in flight.
    """
    ref_work, ref_run, ref_wall = reference
    plan = plan_kills(reference, KILL_POINTS, KILL_SEED)
    rows, failures = [], []
    t_start = time.monotonic()
    for i, point in enumerate(plan):
        work = tmp_path / f"kill{i}"
        work.mkdir()
        cfg = write_config(work / "config.yaml", faults_config(music21_corpora))
        run: Run = start_snakemake(work, "--configfile", str(cfg), "--cores", "2")
        wait_for_kill_point(run, work, point)
        delay = round(time.monotonic() - run.t0, 2)
        finished = run.proc.poll() is not None
        in_flight = run.in_flight()
        run.kill_group()
        incomplete = incomplete_outputs(work)
        broken = broken_files(work)
        if broken:
            failures.append(f"kill {i} ({delay} s, in flight {in_flight}): broken files {broken}")
        t0 = time.monotonic()
        snakemake(work, "--configfile", str(cfg), "--unlock")
        snakemake(work, "--configfile", str(cfg), "--cores", "2", "--rerun-incomplete")
        rerun_s = time.monotonic() - t0
        diffs, left = compare_results(ref_work, work)
        if diffs:
            failures.append(f"kill {i} ({delay} s, in flight {in_flight}): {diffs}")
        rows.append(
            {
                "point": i,
                "aimed_at": point.stage
                + (f" step {point.after_step}" if point.after_step is not None else ""),
                "delay_s": delay,
                "in_flight": "(run had finished)" if finished else ",".join(in_flight) or "-",
                "incomplete": len(incomplete),
                "incomplete_outputs": incomplete,
                "broken": len(broken),
                "tmp_left": len(left),
                "resumed": resumed_lines(work),
                "rerun_s": round(rerun_s, 1),
                "identical": not diffs,
            }
        )
    print(
        f"\nkill points: {len(plan)} (seed {KILL_SEED}); reference run {ref_wall:.1f} s, "
        f"{len(ref_run.jobs)} jobs; kill runs took {time.monotonic() - t_start:.0f} s"
    )
    timeline = sorted(ref_run.jobs.values(), key=lambda j: j.start)
    print("reference: " + ", ".join(f"{j.rule} {j.start:.1f}-{j.end:.1f}" for j in timeline))
    columns = ("point", "aimed_at", "delay_s", "in_flight", "incomplete", "broken", "tmp_left")
    columns += ("rerun_s", "identical")
    widths = (5, 20, 7, 32, 10, 6, 8, 7, 9)
    print("  ".join(f"{c:<{w}}" for c, w in zip(columns, widths, strict=True)))
    for r in rows:
        print("  ".join(f"{r[c]!s:<{w}}" for c, w in zip(columns, widths, strict=True)))
        print(f"       incomplete: {', '.join(r['incomplete_outputs']) or '-'}")
        for line in r["resumed"]:
            print(f"       {line}")
    assert not failures, "\n".join(failures)


def without_dac_override(cmd: list[str]) -> list[str]:
    """``cmd`` run so that file mode bits bind it, as they bind any user but root.

    Root ignores mode bits (CAP_DAC_OVERRIDE), so a chmod 0555 folder does not stop root's
    writes; dropping that capability (and CAP_DAC_READ_SEARCH) from the process and its
    children with util-linux ``setpriv`` makes the folder read-only for it, exactly as for an
    ordinary user on a read-only share. Not root: nothing to drop.
    """
    if os.geteuid() != 0:
        return cmd
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: a chmod 0555 folder would not stop writes")
    caps = "-dac_override,-dac_read_search"
    return [setpriv, f"--inh-caps={caps}", f"--bounding-set={caps}", "--", *cmd]


@pytest.mark.e2e
def test_read_only_output_folder_gives_a_clear_error(tmp_path, music21_corpora):
    """A read-only results/tokens: the tokenize job fails naming the folder, writes nothing.

    The folder is chmod 0555 and Snakemake runs without CAP_DAC_OVERRIDE (see
    without_dac_override: the tests run as root, which chmod alone does not stop).
    ``--keep-incomplete`` keeps whatever a failed job left, so that a partial file under the
    final name would be seen rather than cleaned up by Snakemake.
    """
    cfg = write_config(tmp_path / "config.yaml", faults_config(music21_corpora))
    folder = tmp_path / "results" / "tokens" / "fiddle"
    folder.mkdir(parents=True)
    for d in (folder, folder.parent):
        d.chmod(0o555)
    try:
        cmd = snakemake_cmd(
            tmp_path, "--configfile", str(cfg), "--cores", "2", "--keep-incomplete"
        ) + ["results/tokens/fiddle/0000.h5"]
        proc = subprocess.run(
            without_dac_override(cmd),
            capture_output=True,
            text=True,
            env=dict(os.environ, HF_HUB_OFFLINE="1"),
            timeout=600,
        )
        listing = sorted(os.listdir(folder))
    finally:
        for d in (folder.parent, folder):
            d.chmod(0o755)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-4000:]
    assert "Error in rule tokenize_shard" in out
    log = (tmp_path / "logs/tokenize/fiddle/0000.log").read_text()
    assert "PermissionError: [Errno 13] Permission denied" in log, log[-3000:]
    assert f"{folder}/" in log  # the message names the folder it could not write to
    assert listing == []  # neither the output nor a temporary file


def can_mount_tmpfs(where: Path) -> bool:
    """Whether a tmpfs can be mounted in a private mount namespace (root, or a user namespace)."""
    if shutil.which("unshare") is None:
        return False
    where.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "mount", "-t", "tmpfs", "tmpfs", str(where)],
        capture_output=True,
    )
    return proc.returncode == 0


def in_tiny_tmpfs(folder: Path, size: str, cmd: list[str], then: str = "") -> list[str]:
    """``cmd`` in a private mount namespace where ``folder`` is a tmpfs of ``size``.

    The mount exists only in that namespace and goes away with it: nothing is left mounted.
    ``then`` is a shell command run in the namespace after ``cmd`` ($d is the folder); the
    exit status is ``cmd``'s, or 97 if the mount failed.
    """
    script = (
        f'd="$1"; shift; mount -t tmpfs -o size={size} tmpfs "$d" || exit 97; '
        f'"$@"; rc=$?; {then or ":"}; exit $rc'
    )
    return [
        "unshare",
        "-m",
        "--propagation",
        "private",
        "sh",
        "-c",
        script,
        "sh",
        str(folder),
        *cmd,
    ]


def run_writer_process(root: Path, mechanism: str, name: str, attempt: int = 0) -> dict:
    """Run one writer on a full disk in its own process: its report and its exit status."""
    folder = root / mechanism / f"{name}.{attempt}"
    folder.mkdir(parents=True)
    cmd = [sys.executable, "-m", "tests.faults_helpers", "writer", name, str(folder)]
    if mechanism == "tmpfs":
        cmd = in_tiny_tmpfs(folder, "128k", cmd)
    else:
        cmd.append(str(64 * 1024))
    path = os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")]))
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=path)  # this checkout's package
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("WRITER ")]
    assert lines, proc.stdout[-3000:] + proc.stderr[-3000:]
    return {**json.loads(lines[0].split(" ", 1)[1]), "returncode": proc.returncode}


@pytest.fixture(scope="module")
def writer_reports(tmp_path_factory):
    """run_writer's report and exit status for each writer, on a full disk, both ways.

    "tmpfs": each writer in its own private mount namespace on a fresh 128 KiB tmpfs (real
    ENOSPC; left out where mounting is not allowed); "rlimit_fsize": RLIMIT_FSIZE of 64 KiB in
    the writer's process, SIGXFSZ ignored (writes past it fail with EFBIG; works anywhere).
    """
    root = tmp_path_factory.mktemp("full_disk")
    mechanisms = ["rlimit_fsize"] + (["tmpfs"] if can_mount_tmpfs(root / "probe") else [])
    reports = {(m, n): run_writer_process(root, m, n) for m in mechanisms for n in WRITER_NAMES}
    return root, reports


H5_ATTEMPTS = 4
H5_WRITERS = ("write_shard", "write_embeddings")
#: what the OS says for each mechanism: a clear error carries it
STRERROR = {"tmpfs": "No space left on device", "rlimit_fsize": "File too large"}


@pytest.mark.parametrize("mechanism", ["tmpfs", "rlimit_fsize"])
@pytest.mark.parametrize("writer", WRITER_NAMES)
def test_full_disk_gives_a_clear_error(writer_reports, mechanism, writer):
    """Each writer of an output kind, out of room: it raises, the old file stays, no temp left.

    Every writer first writes a small version (which fits), then a ~1 MiB one (which does
    not). h5py reports ENOSPC as RuntimeError and safetensors as SafetensorError, both with the
    OS message in the text, so the check is on the message, not on the exception's class.
    """
    _, reports = writer_reports
    if (mechanism, writer) not in reports:
        pytest.skip(f"{mechanism}: cannot mount a tmpfs here")
    e = reports[mechanism, writer]
    assert e["raised"] is not None, e  # the write did not pretend to succeed
    assert STRERROR[mechanism] in e["message"], e
    assert e["final_kept"] and e["final_whole"], e  # the previous version is untouched
    assert e["leftovers"] == [], e  # no temporary file beside it


@pytest.mark.parametrize("mechanism", ["tmpfs", "rlimit_fsize"])
@pytest.mark.parametrize("writer", WRITER_NAMES)
def test_full_disk_writer_process_exits_normally(writer_reports, mechanism, writer):
    """After the failed write is reported, the writer's process ends normally (status 0).

    HDF5 files are assembled in memory (fileio.h5_atomic): letting the HDF5 library write to a
    file that does not fit made the process die of SIGSEGV or SIGABRT at exit in most runs, so
    the HDF5 writers are run several times to catch an intermittent crash.
    """
    root, reports = writer_reports
    if (mechanism, writer) not in reports:
        pytest.skip(f"{mechanism}: cannot mount a tmpfs here")
    codes = [reports[mechanism, writer]["returncode"]]
    attempts = H5_ATTEMPTS if writer in H5_WRITERS else 1
    while len(codes) < attempts and codes[-1] == 0:
        codes.append(run_writer_process(root, mechanism, writer, len(codes))["returncode"])
    assert codes[-1] == 0, f"exit statuses {codes} (negative: killed by that signal)"


@pytest.mark.e2e
def test_full_disk_in_a_workflow_job_gives_a_clear_error(tmp_path, music21_corpora):
    """results/tokens/fiddle on a full 4 KiB tmpfs: the job fails with ENOSPC, leaves nothing.

    A shard of the fiddle tunes is about 10 KB (gzip), so it does not fit in one page.
    """
    if not can_mount_tmpfs(tmp_path / "probe"):
        pytest.skip("cannot mount a tmpfs here (needs root or user namespaces)")
    cfg = write_config(tmp_path / "config.yaml", faults_config(music21_corpora))
    folder = tmp_path / "results" / "tokens" / "fiddle"
    folder.mkdir(parents=True)
    listing = tmp_path / "listing.txt"
    cmd = snakemake_cmd(tmp_path, "--configfile", str(cfg), "--cores", "2", "--keep-incomplete") + [
        "results/tokens/fiddle/0000.h5"
    ]
    proc = subprocess.run(
        in_tiny_tmpfs(folder, "4k", cmd, then=f'ls -A "$d" > {shlex.quote(str(listing))}'),
        capture_output=True,
        text=True,
        env=dict(os.environ, HF_HUB_OFFLINE="1"),
        timeout=600,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode not in (0, 97), out[-4000:]
    assert "Error in rule tokenize_shard" in out, out[-4000:]
    log = (tmp_path / "logs/tokenize/fiddle/0000.log").read_text()
    assert "No space left on device" in log, log[-3000:]
    assert f"{folder}/" in log  # the message names the file it could not write
    assert listing.read_text().split() == []  # neither the output nor a temporary file
