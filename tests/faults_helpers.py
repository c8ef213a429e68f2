"""Helpers for the fault-injection tests (tests/test_faults.py).

A Snakemake run started in its own process group whose output is read line by line as it
comes, so that each job's start and end are known to the test (to kill at a chosen stage and to
say afterwards which jobs were in flight); checks that the files a killed run left are whole.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import snakemake_cmd

#: a job's start in Snakemake's output: "rule tokenize_shard:" / "localcheckpoint ingest:"
JOB_START = re.compile(r"^(?:local)?(?:rule|checkpoint) (\w+):$")
JOB_ID = re.compile(r"^\s+jobid: (\d+)$")
JOB_END = re.compile(r"^Finished jobid: (\d+) \(Rule: (\w+)\)")
#: the temporary names tokentransfer.fileio.atomic_path and model.save_model write to
TEMP_NAME = re.compile(r"^\.tmp-")


@dataclass
class Job:
    jobid: int
    rule: str
    start: float
    end: float | None = None


@dataclass
class Run:
    """A Snakemake process started in a new session, its output and its jobs' times."""

    proc: subprocess.Popen
    t0: float
    lines: list[str] = field(default_factory=list)
    jobs: dict[int, Job] = field(default_factory=dict)
    reader: threading.Thread | None = None

    def _read(self) -> None:
        pending_rule = None
        for raw in self.proc.stdout:
            line = raw.rstrip("\n")
            now = time.monotonic() - self.t0
            self.lines.append(line)
            if m := JOB_START.match(line):
                pending_rule = m.group(1)
            elif pending_rule and (m := JOB_ID.match(line)):
                jobid = int(m.group(1))
                self.jobs[jobid] = Job(jobid, pending_rule, now)
                pending_rule = None
            elif m := JOB_END.match(line):
                job = self.jobs.setdefault(int(m.group(1)), Job(int(m.group(1)), m.group(2), now))
                job.end = now

    def in_flight(self) -> list[str]:
        """Rules of the jobs started and not finished (as seen in the output so far)."""
        jobs = list(self.jobs.values())  # a copy: the reader thread adds jobs
        return sorted(j.rule for j in jobs if j.end is None and j.rule != "all")

    def wait(self, timeout: float) -> int:
        rc = self.proc.wait(timeout=timeout)
        if self.reader is not None:
            self.reader.join(timeout=30)
        return rc

    def kill_group(self) -> None:
        """SIGKILL the whole process group (Snakemake and every job it runs), as a cluster does."""
        pgid = self.proc.pid  # start_new_session: the group id is the leader's pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        self.proc.wait(timeout=60)
        deadline = time.monotonic() + 60
        while alive := group_members(pgid):  # jobs reparented to init: wait until all are gone
            if time.monotonic() > deadline:
                raise AssertionError(f"process group {pgid} survived SIGKILL: {alive}")
            time.sleep(0.05)
        if self.reader is not None:
            self.reader.join(timeout=30)

    @property
    def output(self) -> str:
        return "\n".join(self.lines)


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of process group ``pgid``."""
    proc = Path("/proc")
    if not proc.is_dir():  # no procfs: ask the kernel whether any member is left
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return []
        return [pgid]
    members = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)": state ppid pgrp ...
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def start_snakemake(workdir: Path, *args: str) -> Run:
    """``python -m snakemake`` on the repository's Snakefile in ``workdir``, in a new session."""
    cmd = snakemake_cmd(workdir, *args)
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,
    )
    run = Run(proc, time.monotonic())
    run.reader = threading.Thread(target=run._read, daemon=True)
    run.reader.start()
    return run


def incomplete_outputs(workdir: Path) -> list[str]:
    """The outputs Snakemake's ``.snakemake/incomplete`` markers list (jobs that never ended)."""
    root = workdir / ".snakemake" / "incomplete"
    if not root.is_dir():
        return []
    out = []
    for dirpath, _, names in os.walk(root):
        for name in names:
            if name == "migration_underway":
                continue
            rel = Path(dirpath, name).relative_to(root).parts
            # long keys are split over folders, every part but the last prefixed with "@"
            b64 = "".join(p.removeprefix("@") for p in rel)
            out.append(base64.urlsafe_b64decode(b64).decode())
    return sorted(out)


def result_files(workdir: Path) -> list[Path]:
    """Every file under results/ (relative), temporary names included."""
    root = workdir / "results"
    return sorted(p.relative_to(workdir) for p in root.rglob("*") if p.is_file())


def is_temp(rel: Path) -> bool:
    return any(TEMP_NAME.match(part) for part in rel.parts)


def check_whole(path: Path) -> str | None:
    """None if ``path`` reads back whole for its kind; else what is wrong with it."""
    try:
        if path.suffix == ".h5":
            import h5py

            with h5py.File(path, "r") as h5:
                for name in h5:
                    obj = h5[name]
                    if hasattr(obj, "shape"):
                        obj[()]  # read every dataset: a cut file fails here
        elif path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".tsv":
            text = path.read_text()
            if not text.endswith("\n") or "\t" not in text.splitlines()[0]:
                return "no header line or no final newline"
        elif path.suffix == ".npz":
            import numpy as np

            with np.load(path) as npz:
                for k in npz.files:
                    npz[k]
        elif path.suffix == ".pt":
            import torch

            torch.load(path, map_location="cpu", weights_only=True)
        elif path.suffix == ".safetensors":
            from safetensors.numpy import load_file

            load_file(path)
        elif path.suffix == ".mid":
            import symusic

            symusic.Score.from_file(str(path))
    except Exception as exc:  # any failure to read back is the finding
        return f"{type(exc).__name__}: {exc}"
    return None


def broken_files(workdir: Path) -> dict[str, str]:
    """Files under results/ and resources/ (temporary names aside) that do not read back whole."""
    bad = {}
    for top in ("results", "resources"):
        root = workdir / top
        if not root.is_dir():
            continue
        for p in sorted(root.rglob("*")):
            rel = p.relative_to(workdir)
            if p.is_file() and not is_temp(rel) and (why := check_whole(p)) is not None:
                bad[str(rel)] = why
    return bad


# --------------------------------------------------------------------------- writers on a full disk

#: a payload far larger than the room the tests leave (64 KiB of tmpfs, or RLIMIT_FSIZE)
BIG = 1 << 20
OLD = b"previous content\n"


def _writer_cases(root: Path):
    """(name, final path, write the previous version or None, write the big new version)."""
    import numpy as np
    import scipy.sparse as sp

    from tokentransfer import corpus, embed, fileio, graph, tokenize

    rng = np.random.default_rng(0)

    def shard(n_tokens: int) -> tokenize.ShardResult:
        seqs = [rng.integers(0, 1 << 30, n_tokens, dtype=np.int64)]
        return tokenize.ShardResult(["f" * 64], seqs, [], 0.0)

    def write_shard(path, n_tokens):
        tokenize.write_shard(shard(n_tokens), path, tokenizer_hash="0" * 64, corpus="c", shard="0")

    def manifest_rows(n):
        return [
            corpus.Row(f"{i:064x}", "dir", f"piece {i}.mid", 1000 + i, "ok", "", "", f"g{i}")
            for i in range(n)
        ]

    def embeddings(path, n):
        table = rng.standard_normal((n, 64)).astype(np.float32)
        embed.write_embeddings(
            path,
            token=table,
            position=table,
            position_kind="learned",
            contextual_table=table,
            count=np.arange(n),
            attrs={"model": "m"},
        )

    def matrix(n):
        return sp.random(n, n, density=0.05, random_state=0, format="csr")

    def torch_save(path, n):
        import torch

        fileio.torch_save_atomic({"w": torch.from_numpy(rng.standard_normal(n))}, path)

    def save_model(path, dim):
        from tokentransfer import model

        tokenizer = tokenize.build_tokenizer({"kind": "REMI"})
        tokenizer_json = root / "tokenizer.json"
        if not tokenizer_json.exists():
            tokenize.save_tokenizer(tokenizer, tokenizer_json)
        spec = model.ModelSpec(layers=1 if dim < 64 else 4, dim=dim, heads=2, context=32)
        net = model.build_model(spec, len(tokenizer), model.special_ids(tokenizer), 0)
        model.save_model(net, tokenizer_json, path)

    return [
        (
            "write_bytes_atomic",
            root / "blob.bin",
            lambda p: fileio.write_bytes_atomic(p, OLD),
            lambda p: fileio.write_bytes_atomic(p, rng.bytes(BIG)),
        ),
        (
            "write_manifest",
            root / "corpora" / "manifest.tsv",
            lambda p: corpus.write_manifest(manifest_rows(2), p),
            lambda p: corpus.write_manifest(manifest_rows(BIG // 100), p),
        ),
        (
            "write_shard",
            root / "tokens" / "0000.h5",
            lambda p: write_shard(p, 10),
            lambda p: write_shard(p, BIG // 4),
        ),
        (
            "write_embeddings",
            root / "embeddings" / "bach.h5",
            lambda p: embeddings(p, 2),
            lambda p: embeddings(p, BIG // 256),
        ),
        (
            "save_matrix",
            root / "graphs" / "adjacency.npz",
            lambda p: graph.save_matrix(matrix(4), p),
            lambda p: graph.save_matrix(matrix(1000), p),
        ),
        (
            "torch_save_atomic",
            root / "checkpoints" / "state.pt",
            lambda p: torch_save(p, 4),
            lambda p: torch_save(p, BIG // 8),
        ),
        (
            "save_model",
            root / "models" / "hf",
            lambda p: save_model(p, 8),
            lambda p: save_model(p, 128),
        ),
    ]


def snapshot(path: Path) -> dict[str, bytes]:
    """A file's bytes, or a folder's files' bytes, by relative name."""
    if path.is_dir():
        return {str(p.relative_to(path)): p.read_bytes() for p in path.rglob("*") if p.is_file()}
    return {"": path.read_bytes()} if path.exists() else {}


WRITER_NAMES = (
    "write_bytes_atomic",
    "write_manifest",
    "write_shard",
    "write_embeddings",
    "save_matrix",
    "torch_save_atomic",
    "save_model",
)


def run_writer(name: str, root: Path) -> dict:
    """Write a small version of one output kind, then a big one that cannot fit; report."""
    [(_, final, write_old, write_big)] = [c for c in _writer_cases(root) if c[0] == name]
    write_old(final)
    before = snapshot(final)
    entry = {"writer": name, "final": str(final), "raised": None}
    try:
        write_big(final)
    except Exception as exc:
        entry.update(raised=type(exc).__name__, message=str(exc))
    entry["final_kept"] = bool(before) and snapshot(final) == before
    parts = [p for p in final.rglob("*") if p.is_file()] if final.is_dir() else [final]
    entry["final_whole"] = final.exists() and all(check_whole(p) is None for p in parts)
    entry["leftovers"] = sorted(p.name for p in final.parent.iterdir() if p != final)
    return entry


def main(argv: list[str]) -> int:
    """``python -m tests.faults_helpers writer NAME DIR [FSIZE]``: print run_writer's report.

    With FSIZE, writes past FSIZE bytes fail with EFBIG (RLIMIT_FSIZE, SIGXFSZ ignored);
    without it DIR is expected to be a tiny file system (a small tmpfs) that fills up. The
    process then ends normally; its exit status tells whether it did.
    """
    import resource

    if len(argv) < 3 or argv[0] != "writer" or argv[1] not in WRITER_NAMES:
        raise SystemExit(f"usage: writer {{{','.join(WRITER_NAMES)}}} DIR [FSIZE]")
    name, root = argv[1], Path(argv[2])
    if len(argv) > 3:
        import numpy as np  # noqa: F401  (imported before the limit, like a job's imports)
        import scipy.sparse  # noqa: F401

        if name in ("torch_save_atomic", "save_model"):
            import torch  # noqa: F401
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        limit = int(argv[3])
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    print("WRITER " + json.dumps(run_writer(name, root)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
