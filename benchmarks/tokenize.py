"""Benchmark: the workflow's tokenize stage against a plain miditok loop, in files per second.

Usage (from the repository root; benchmarks/README.md explains every row and column)::

    python benchmarks/tokenize.py            # all 14 Tegridy zips (several minutes on 2 cores)
    python benchmarks/tokenize.py --quick    # 3 small zips (about a minute): a smoke test

1. Set-up, untimed: writes benchmarks/tokenize_config.yaml into a temporary working folder with
   the absolute path of the Tegridy mirror (``$TOKENTRANSFER_SHARED/data/tegridy``, default
   ../shared/data/tegridy) and runs the ingest checkpoint and the tokenizer rule there.
2. Plain: for each unique stored file ``resources/corpora/all/midi/*.mid``,
   ``tokenizer.encode(symusic.Score(path))`` with ``REMI(TokenizerConfig(use_programs=True))``,
   in one process (the baseline) and in N forked processes (the machine's N-core ceiling).
   Only the loops are timed. ``--raw`` adds the 1-core loop over the raw zip members.
3. Workflow: deletes ``results/tokens/all`` (and its logs) and times
   ``snakemake --cores N results/tokens/all/index.tsv`` (rules tokenize_shard + token_index)
   for each N of ``--cores`` and each shard count of ``--shards``, then runs the same command
   again with nothing to do (Snakemake's fixed cost).

Overheads, per core (``wall * cores`` is the stage's core time):

- ``overhead``  = 1 - (sum of the shards' logged tokenize-loop seconds) / (wall * cores):
  everything that is not tokenizing (Snakemake, job start-up and imports, HDF5, idle cores).
- ``smk_overhead`` = 1 - (sum of the jobs' benchmark seconds, logs/benchmarks/...) /
  (wall * cores): Snakemake's own share (start, DAG, scheduling, idle cores), not the jobs'.

With ``--repeat R`` every method is timed once per round, rounds one after another, and the
table keeps each method's fastest round. The table is printed and written as TSV to
benchmarks/results/tokenize.tsv (tokenize-quick.tsv with --quick; the folder is git-ignored).
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path and its name would hide the
# standard library's ``tokenize`` module (which huggingface_hub, under miditok, needs).
if sys.path and Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
    del sys.path[0]

import argparse  # noqa: E402
import csv  # noqa: E402
import importlib.util  # noqa: E402
import multiprocessing  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import zipfile  # noqa: E402
from functools import partial  # noqa: E402

import yaml  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "benchmarks"
CONFIG = BENCH / "tokenize_config.yaml"
SHARED = Path(os.environ.get("TOKENTRANSFER_SHARED", REPO.parent / "shared"))
CORPUS = "all"
INDEX = f"results/tokens/{CORPUS}/index.tsv"
COLUMNS = (
    "method",
    "input",
    "cores",
    "shards",
    "files",
    "failed",
    "tokens",
    "wall_s",
    "files_per_s",
    "ratio",
    "ratio_same_cores",
    "compute_s",
    "jobs_s",
    "overhead",
    "smk_overhead",
    "noop_s",
)
SHARD_LOG = re.compile(r"(\d+) files, (\d+) tokens, (\d+) failed in ([0-9.]+) s")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="only the config's quick_zips (3 small)")
    p.add_argument(
        "--shards", type=int, nargs="+", help="shard counts to time (default: the config's)"
    )
    p.add_argument("--cores", type=int, nargs="+", default=[1, 2], help="default: 1 2")
    p.add_argument("--repeat", type=int, default=1, help="time each run R times, keep the best")
    p.add_argument("--raw", action="store_true", help="also time the plain loop on raw zips")
    p.add_argument("--mirror", type=Path, default=SHARED / "data" / "tegridy")
    p.add_argument("--workdir", type=Path, help="reuse this working folder (kept afterwards)")
    p.add_argument("--keep", action="store_true", help="keep the temporary working folder")
    p.add_argument("--out", type=Path, help="TSV path (default benchmarks/results/tokenize.tsv)")
    return p.parse_args(argv)


# --------------------------------------------------------------------------- set-up


def write_config(workdir: Path, mirror: Path, shards: int | None, quick: bool) -> tuple[Path, dict]:
    cfg = yaml.safe_load(CONFIG.read_text())
    quick_zips = cfg.pop("quick_zips")
    cfg["tegridy"]["mirror"] = str(mirror.resolve())
    if shards is not None:
        cfg["shards"] = shards
    if quick:
        cfg["corpora"][CORPUS]["sources"] = [{"tegridy": {"zip": z}} for z in quick_zips]
    path = workdir / f"config-{shards}.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path, cfg


def snakemake(workdir: Path, config: Path, cores: int, *targets: str, log: str) -> float:
    """Run the workflow; return its wall time in seconds (its output goes to ``log``)."""
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        "--configfile",
        str(config),
        "--cores",
        str(cores),
        *targets,
    ]
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    log_path = workdir / "bench-logs" / log
    log_path.parent.mkdir(exist_ok=True)
    with open(log_path, "w") as out:
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
        wall = time.perf_counter() - t0
    if proc.returncode != 0:
        tail = log_path.read_text()[-4000:]
        sys.exit(f"snakemake failed ({proc.returncode}); see {log_path}:\n{tail}")
    return wall


def stored_files(workdir: Path) -> list[str]:
    """The unique stored MIDI files of the corpus: its manifest's ``ok`` rows."""
    sys.path.insert(0, str(REPO / "src"))
    from tokentransfer.corpus import read_manifest, summarize

    rows = read_manifest(workdir / "results" / "corpora" / CORPUS / "manifest.tsv")
    print(f"manifest: {len(rows)} files found, {summarize(rows)}")
    store = workdir / "resources" / "corpora" / CORPUS / "midi"
    return sorted(str(store / f"{r.file_id}.mid") for r in rows if r.status == "ok")


# --------------------------------------------------------------------------- plain loop


def make_tokenizer():
    import miditok

    return miditok.REMI(miditok.TokenizerConfig(use_programs=True))


def plain_loop(tokenizer, items, load) -> dict:
    """Time ``tokenizer.encode(load(item))`` over ``items``; a failing file is counted."""
    failed = tokens = 0
    t0 = time.perf_counter()
    for item in items:
        try:
            tokens += len(tokenizer.encode(load(item)).ids)
        except Exception:  # miditok/symusic raise many kinds on odd files
            failed += 1
    wall = time.perf_counter() - t0
    return {"files": len(items), "failed": failed, "tokens": tokens, "wall_s": wall}


def raw_members(cfg: dict, mirror: Path) -> list[bytes]:
    """The bytes of every MIDI member of the corpus's zips (duplicates included)."""
    out = []
    for src in cfg["corpora"][CORPUS]["sources"]:
        with zipfile.ZipFile(mirror / src["tegridy"]["zip"]) as zf:
            for info in sorted(zf.infolist(), key=lambda i: i.filename):
                if Path(info.filename).suffix.lower() in {".mid", ".midi", ".kar", ".smf"}:
                    out.append(zf.read(info))
    return out


_WORK: tuple = ()  # (tokenizer, load) for the forked workers of plain_parallel


def _plain_part(items) -> dict:
    tokenizer, load = _WORK
    return plain_loop(tokenizer, items, load)


def plain_parallel(tokenizer, items, load, processes: int) -> dict:
    """The plain loop in ``processes`` forked processes, each over every n-th item.

    The children inherit the imported modules and the tokenizer, so this is the machine's
    ceiling for ``processes`` cores: no start-up, no imports, no writing.
    """
    global _WORK
    _WORK = (tokenizer, load)
    ctx = multiprocessing.get_context("fork")
    t0 = time.perf_counter()
    with ctx.Pool(processes) as pool:
        parts = pool.map(_plain_part, [items[i::processes] for i in range(processes)])
    wall = time.perf_counter() - t0
    out = {k: sum(p[k] for p in parts) for k in ("files", "failed", "tokens")}
    compute = sum(p["wall_s"] for p in parts)
    overhead = 1 - compute / (wall * processes)
    return {**out, "wall_s": wall, "compute_s": compute, "overhead": overhead}


def _spin(n: int = 10_000_000) -> float:
    t0 = time.perf_counter()
    x = 0
    for i in range(n):
        x += i
    return time.perf_counter() - t0


def cpu_scaling(processes: int) -> float:
    """Throughput of ``processes`` busy processes relative to one (the machine's real cores)."""
    one = _spin()
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        t0 = time.perf_counter()
        pool.map(_spin, [10_000_000] * processes)
        many = time.perf_counter() - t0
    return processes * one / many


def best(runs: list[dict]) -> dict:
    return min(runs, key=lambda r: r["wall_s"])


# --------------------------------------------------------------------------- workflow


def clean_tokens(workdir: Path) -> None:
    for rel in (
        f"results/tokens/{CORPUS}",
        f"logs/tokenize/{CORPUS}",
        f"logs/benchmarks/tokenize/{CORPUS}",
        f"logs/token_index/{CORPUS}.log",
        f"logs/benchmarks/token_index/{CORPUS}.tsv",
    ):
        p = workdir / rel
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()


def benchmark_seconds(path: Path) -> float:
    with open(path, newline="") as fh:
        return float(next(csv.DictReader(fh, delimiter="\t"))["s"])


def workflow_run(workdir: Path, config: Path, cores: int, shards: int) -> dict:
    clean_tokens(workdir)
    wall = snakemake(workdir, config, cores, INDEX, log=f"tokenize-c{cores}-s{shards}.log")
    bench = workdir / "logs" / "benchmarks"
    shard_jobs = sorted((bench / "tokenize" / CORPUS).glob("*.tsv"))
    jobs_s = sum(benchmark_seconds(p) for p in shard_jobs)
    jobs_s += benchmark_seconds(bench / "token_index" / f"{CORPUS}.tsv")
    files = failed = tokens = 0
    compute_s = 0.0
    for log in sorted((workdir / "logs" / "tokenize" / CORPUS).glob("*.log")):
        m = SHARD_LOG.findall(log.read_text())
        if not m:
            sys.exit(f"no tokenize summary in {log}")
        n, t, f, s = m[-1]
        files, tokens, failed = files + int(n) + int(f), tokens + int(t), failed + int(f)
        compute_s += float(s)
    # Snakemake's fixed cost: the same command again, with nothing to do
    noop = snakemake(workdir, config, cores, INDEX, log=f"noop-c{cores}-s{shards}.log")
    return {
        "noop_s": noop,
        "files": files,
        "failed": failed,
        "tokens": tokens,
        "wall_s": wall,
        "compute_s": compute_s,
        "jobs_s": jobs_s,
        "overhead": 1 - compute_s / (wall * cores),
        "smk_overhead": 1 - jobs_s / (wall * cores),
        "shard_jobs": len(shard_jobs),
    }


def import_seconds(code: str, repeat: int = 3) -> float:
    """Best wall time of a fresh ``python -c code`` (a job's start-up cost)."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        env = dict(os.environ, HF_HUB_OFFLINE="1")
        subprocess.run([sys.executable, "-c", code], check=True, env=env)
        times.append(time.perf_counter() - t0)
    return min(times)


# --------------------------------------------------------------------------- report


def fmt(v) -> str:
    if v is None or v == "":
        return ""
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}"
    return str(v)


def print_table(rows: list[dict]) -> None:
    cells = [[fmt(r.get(c)) for c in COLUMNS] for r in rows]
    widths = [max(len(c), *(len(x[i]) for x in cells)) for i, c in enumerate(COLUMNS)]
    print("  ".join(c.ljust(w) for c, w in zip(COLUMNS, widths, strict=True)))
    for x in cells:
        print("  ".join(v.ljust(w) for v, w in zip(x, widths, strict=True)))


def write_tsv(rows: list[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh, delimiter="\t", lineterminator="\n")
        w.writerow(COLUMNS)
        for r in rows:
            w.writerow([fmt(r.get(c)) for c in COLUMNS])


def main(argv=None) -> int:
    args = parse_args(argv)
    if not args.mirror.is_dir():
        sys.exit(
            f"Tegridy mirror not found at {args.mirror} (set TOKENTRANSFER_SHARED or --mirror)"
        )
    from importlib.metadata import version

    print(
        f"python {platform.python_version()}, {os.cpu_count()} cpus, miditok {version('miditok')}, "
        f"symusic {version('symusic')}, snakemake {version('snakemake')}"
    )
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="tokentransfer-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"working folder: {workdir}")
    nproc = max(args.cores)
    if nproc > 1:
        print(f"CPU check: {nproc} busy processes do {cpu_scaling(nproc):.2f}x the work of one")
    try:
        shard_counts = args.shards or [None]
        config, cfg = write_config(workdir, args.mirror, shard_counts[0], args.quick)
        t = snakemake(
            workdir,
            config,
            max(args.cores),
            f"results/corpora/{CORPUS}/manifest.tsv",
            "results/tokenizer/tokenizer.json",
            log="ingest.log",
        )
        print(f"ingest + tokenizer (untimed for the table): {t:.1f} s")
        paths = stored_files(workdir)

        import symusic

        tokenizer = make_tokenizer()
        members = raw_members(cfg, args.mirror) if args.raw else []
        configs = {}
        for count in shard_counts:
            config, cfg = write_config(workdir, args.mirror, count, args.quick)
            configs[cfg["shards"]] = config
        # Each round times every method once (rounds interleave, so a load that comes and goes
        # on a shared machine hits all methods alike); the table keeps each method's best round.
        score, from_midi = symusic.Score, symusic.Score.from_midi
        plans = [(("plain", "stored", 1, ""), partial(plain_loop, tokenizer, paths, score))]
        for cores in sorted({c for c in args.cores if c > 1}):
            plan = partial(plain_parallel, tokenizer, paths, score, cores)
            plans.append((("plain", "stored", cores, ""), plan))
        if args.raw:
            plans.append(
                (("plain", "raw zips", 1, ""), partial(plain_loop, tokenizer, members, from_midi))
            )
        for shards, config in configs.items():
            for cores in args.cores:
                plan = partial(workflow_run, workdir, config, cores, shards)
                plans.append((("workflow", "stored", cores, shards), plan))
        runs: dict[tuple, list[dict]] = {}
        for rnd in range(1, args.repeat + 1):
            print(f"round {rnd}/{args.repeat}")
            for key, plan in plans:
                run = plan()
                runs.setdefault(key, []).append(run)
                method, source, cores, shards = key
                fps = run["files"] / run["wall_s"]
                extra = ""
                if method == "workflow":
                    fixed = (run["jobs_s"] - run["compute_s"]) / (run["shard_jobs"] + 1)
                    extra = (
                        f"; jobs {run['jobs_s']:.1f} s, tokenize loops {run['compute_s']:.1f} s, "
                        f"{fixed:.2f} s per job outside the loop, {run['noop_s']:.1f} s for "
                        "snakemake with nothing to do"
                    )
                print(
                    f"  {method} ({source}) cores {cores} shards {shards or '-'}: "
                    f"{run['wall_s']:.1f} s, {fps:.1f} files/s{extra}"
                )

        rows = []
        for (method, source, cores, shards), key_runs in runs.items():
            row = {"method": method, "input": source, "cores": cores, "shards": shards}
            row.update(best(key_runs))
            row["files_per_s"] = row["files"] / row["wall_s"]
            rows.append(row)
        plain = rows[0]
        plain_fps_at = {
            r["cores"]: r["files_per_s"]
            for r in rows
            if r["method"] == "plain" and r["input"] == "stored"
        }
        for row in rows:
            row["ratio"] = row["files_per_s"] / plain["files_per_s"]
            if row["input"] == "stored" and row["cores"] in plain_fps_at:
                row["ratio_same_cores"] = row["files_per_s"] / plain_fps_at[row["cores"]]
            counts = ("files", "failed", "tokens")
            if row["input"] == "stored" and any(row[k] != plain[k] for k in counts):
                print(f"WARNING: {row['method']} and the plain loop disagree: {row} vs {plain}")

        torch = importlib.util.find_spec("torch") is not None
        print(
            f"torch installed (miditok then imports it): {'yes' if torch else 'no'}; "
            "job start-up: python -c 'import miditok' "
            f"{import_seconds('import miditok'):.2f} s; "
            "python -c 'import snakemake, h5py, miditok, tokentransfer.tokenize' "
            f"{import_seconds('import snakemake, h5py, miditok, tokentransfer.tokenize'):.2f} s"
        )
        if nproc > 1:
            print(f"CPU check: {nproc} busy processes do {cpu_scaling(nproc):.2f}x the work of one")
        print()
        print_table(rows)
        name = "tokenize-quick.tsv" if args.quick else "tokenize.tsv"
        out = args.out or BENCH / "results" / name
        write_tsv(rows, out)
        print(f"written: {out}")
    finally:
        if args.workdir is None and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
