"""Benchmark: the workflow up to tokenization at the size of the Lakh MIDI dataset (176,581 files).

Usage (from the repository root; benchmarks/README.md explains every figure)::

    nice -n 10 python benchmarks/lakh.py                  # full size: about an hour on 2 cores
    python benchmarks/lakh.py --files 3000 --small-files 1000   # minutes

What it does, in a working folder outside the repository (``--root``, default /tmp/lakh, which
must not exist or be empty; it is deleted at the end unless ``--keep``):

1. Builds a synthetic corpus ``ROOT/corpus/{0..f}/lakh_NNNNNN.mid`` of ``--files`` MIDI files
   from the unique usable MIDI files of the 14 Tegridy zips (``--mirror``), taken in turn; copy
   i gets a text meta event ``tokentransfer lakh copy i`` at the start of its first track, so
   every file has its own sha256 and parses and tokenizes like its original (REMI ignores text
   events). ``ROOT/corpus-small`` holds hard links to the first ``--small-files`` of them.
   The config (benchmarks/lakh_config.yaml, written to ROOT with the paths filled in) makes
   them the ``dir`` sources of two target corpora, ``lakh`` and ``lakh_small``.
2. DAG: ``snakemake -n results/tokens/lakh/index.tsv`` before the manifest exists (the ingest
   job lists the folder for its listing digest) and after it (the shard jobs read the manifest
   for their file-list digests), with the default shard count (16) and each ``--shards``
   count; wall and CPU time.
3. Ingestion of ``lakh_small`` and of ``lakh`` (``snakemake --cores 2 .../manifest.tsv``):
   wall time, the job's peak memory (``max_rss`` of its benchmark file), and the largest
   process of the whole command (``/usr/bin/time -v``, Snakemake itself included).
4. SLURM: a dry run with ``--workflow-profile profiles/slurm`` for each shard count; its job
   count per rule, and the sbatch submissions that makes once the profile's groups bundle
   jobs (``group-components``).
5. Tokenization throughput on the ``lakh_small`` corpus (``--small-files`` files):
   the plain loop of benchmarks/tokenize.py (``tokenizer.encode(symusic.Score(path))`` over the
   stored files) in one process and in two, against ``snakemake --cores 2
   results/tokens/lakh_small/index.tsv`` with the default and each ``--shards`` count.
6. The full corpus tokenized once (``--cores 2``, default shard count): the full-size figure.
7. Add 100: writes 100 new unique files into ``ROOT/corpus`` and times
   ``snakemake --cores 2 results/tokens/lakh/index.tsv`` (ingestion, the shards whose file
   list changed, the index), then the same command with nothing to do; with each job's time
   (benchmark files), the files ingestion took from its cache without reading them and the
   files the shards took from their caches without tokenizing them.

8. Memory (``memory``): ingestion alone, in a process of its own that calls the checkout's
   ``sources.ingest_manifest`` as the ingest job does (the config's corpus, limits and seed),
   under ``/usr/bin/time -v``: wall and CPU time, files per CPU second and the process's exact
   peak RSS (the job's benchmark file samples memory every 30 s), for ``lakh_small`` and
   ``lakh``: first fresh (no store, manifest or ingestion cache beforehand), then again (every
   file known from the cache the first run wrote). It leaves their manifests in the work folder
   for the DAG after the manifest (made outside Snakemake: without metadata, so no params are
   compared, though they are computed all the same).
9. Cached (``cached``): the rerun of 8 where a fresh ingestion takes too long: the store (copies
   named by sha256), the manifest and the ingestion cache are written directly, as a
   fresh ingestion writes them, without the MIDI check (every copy is an accepted file), then
   ingestion alone runs over them; it must leave the manifest byte for byte as it was.

``--steps`` runs only some of these (the corpus is always built, or taken from ``--root`` with
``--reuse``): ``dag``, ``slurm``, ``ingest``, ``memory``, ``cached``, ``tokenize`` (5), ``full``
(6) and ``add`` (7; it needs ``ingest`` and ``full``, so that files are added to a corpus
tokenized once). For example, the add-100 rerun at 30,000 files::

    nice -n 10 python benchmarks/lakh.py --files 30000 --small-files 10000 \\
        --steps ingest full add

``--baseline DIR`` measures the ``dag``, ``memory`` and ``cached`` steps with another checkout
of the workflow as well (``git archive COMMIT | tar -x -C DIR``), each figure right after the
same figure of this one, in its own work folder, and prints the ratios (this / baseline)::

    nice -n 10 python benchmarks/lakh.py --steps dag memory --baseline /tmp/before
    nice -n 10 python benchmarks/lakh.py --steps cached --baseline /tmp/before --keep
    nice -n 10 python benchmarks/lakh.py --steps cached --baseline /tmp/before --reuse

Run it with ``nice -n 10`` on a shared machine; the load average is printed with the figures.
The figures are also written as JSON to benchmarks/results/lakh.json (git-ignored).
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path and benchmarks/tokenize.py would
# hide the standard library's ``tokenize`` module.
if sys.path and Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
    del sys.path[0]

import argparse  # noqa: E402
import csv  # noqa: E402
import hashlib  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
import zipfile  # noqa: E402

import yaml  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "benchmarks"
SHARED = Path(os.environ.get("TOKENTRANSFER_SHARED", REPO.parent / "shared"))
sys.path.insert(0, str(REPO / "src"))

LAKH_FILES = 176_581  # files of the Lakh MIDI dataset (LMD-full)
DEFAULT_SHARDS = 16  # the schema's default of `shards`
CORE_RULES = ("ingest", "tokenizer", "tokenize_shard", "token_index")
STEPS = ("dag", "slurm", "ingest", "memory", "cached", "tokenize", "full", "add")
TEXT = b"tokentransfer lakh copy %d"
# one line of the dry run's job table: "tokenize_shard      16"
JOB_ROW = re.compile(r"^(\w+)\s+(\d+)\s*$")
# the shard job's summary (scripts/tokenize_shard.py) and ingestion's (corpus.build_rows)
REUSED_LOG = re.compile(r"\((\d+) files from the cache\)")
INGEST_LOG = re.compile(r"checked (\d+) files: (\d+) accepted; (\d+) known from the ingestion")


def _load_tokenize_bench():
    """benchmarks/tokenize.py as a module (its plain loop is the baseline here too)."""
    if "tokenize_bench" in sys.modules:
        return sys.modules["tokenize_bench"]
    spec = importlib.util.spec_from_file_location("tokenize_bench", BENCH / "tokenize.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["tokenize_bench"] = module  # the forked workers of its plain loop unpickle it
    spec.loader.exec_module(module)
    return module


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--files", type=int, default=LAKH_FILES, help="corpus size (Lakh: 176581)")
    p.add_argument(
        "--small-files", type=int, default=20_000, help="the second, smaller corpus (20000)"
    )
    p.add_argument(
        "--shards",
        type=int,
        nargs="+",
        default=[64],
        help="larger shard counts to compare with the default 16 (default: 64)",
    )
    p.add_argument("--add", type=int, default=100, help="files added for the rerun (100)")
    p.add_argument("--cores", type=int, default=2, help="snakemake --cores (2)")
    p.add_argument("--root", type=Path, default=Path("/tmp/lakh"), help="working folder")
    p.add_argument("--mirror", type=Path, default=SHARED / "data" / "tegridy")
    p.add_argument("--keep", action="store_true", help="keep the working folder")
    p.add_argument(
        "--reuse",
        action="store_true",
        help="use the corpus a run with --keep left in --root (same --files, --small-files)",
    )
    p.add_argument("--out", type=Path, default=BENCH / "results" / "lakh.json")
    p.add_argument(
        "--baseline",
        type=Path,
        help="another checkout whose dag, memory and cached steps are measured too",
    )
    p.add_argument(
        "--steps",
        nargs="+",
        choices=STEPS,
        default=list(STEPS),
        help=f"steps to run (default: all of {' '.join(STEPS)})",
    )
    args = p.parse_args(argv)
    if args.small_files >= args.files:
        p.error("--small-files must be smaller than --files")
    if "add" in args.steps and not {"ingest", "full"} <= set(args.steps):
        p.error("--steps add needs ingest and full (files are added to a tokenized corpus)")
    if args.baseline is not None:
        args.baseline = args.baseline.resolve()
        if not (args.baseline / "Snakefile").is_file():
            p.error(f"--baseline {args.baseline} holds no Snakefile")
    return args


# --------------------------------------------------------------------------- the corpus


def tegridy_originals(mirror: Path) -> list[bytes]:
    """The unique MIDI members of the Tegridy zips that ingestion accepts, by sha256."""
    from tokentransfer.corpus import Limits, check_midi

    limits = Limits()
    seen: dict[str, bytes] = {}
    for zpath in sorted(mirror.glob("*.zip")):
        with zipfile.ZipFile(zpath) as zf:
            for info in zf.infolist():
                if Path(info.filename).suffix.lower() not in {".mid", ".midi", ".kar"}:
                    continue
                data = zf.read(info)
                digest = hashlib.sha256(data).hexdigest()
                if digest in seen or first_track(data) is None:
                    continue
                if check_midi(data, limits) is None:
                    seen[digest] = data
    return [seen[k] for k in sorted(seen)]


def first_track(data: bytes) -> int | None:
    """Offset of the first ``MTrk`` chunk after the ``MThd`` header, or None."""
    if data[:4] != b"MThd" or len(data) < 22:
        return None
    pos = 8 + int.from_bytes(data[4:8], "big")
    while pos + 8 <= len(data):
        size = int.from_bytes(data[pos + 4 : pos + 8], "big")
        if data[pos : pos + 4] == b"MTrk":
            return pos
        pos += 8 + size
    return None


def unique_copy(data: bytes, i: int) -> bytes:
    """``data`` with a text meta event (delta 0, FF 01) first in its first track."""
    pos = first_track(data)
    text = TEXT % i
    event = b"\x00\xff\x01" + bytes([len(text)]) + text
    size = int.from_bytes(data[pos + 4 : pos + 8], "big") + len(event)
    return data[: pos + 4] + size.to_bytes(4, "big") + event + data[pos + 8 :]


def copy_path(folder: Path, i: int) -> Path:
    return folder / f"{i % 16:x}" / f"lakh_{i:06d}.mid"


def write_copies(originals: list[bytes], folder: Path, start: int, stop: int) -> None:
    for d in range(16):
        (folder / f"{d:x}").mkdir(parents=True, exist_ok=True)
    for i in range(start, stop):
        copy_path(folder, i).write_bytes(unique_copy(originals[i % len(originals)], i))


def build_corpus(args, originals: list[bytes]) -> tuple[Path, Path]:
    full, small = args.root / "corpus", args.root / "corpus-small"
    write_copies(originals, full, 0, args.files)
    for d in range(16):
        (small / f"{d:x}").mkdir(parents=True, exist_ok=True)
    for i in range(args.small_files):
        os.link(copy_path(full, i), copy_path(small, i))
    return full, small


def reuse_corpus(args) -> tuple[Path, Path]:
    """The corpus a run with ``--keep`` left in ``--root``, checked to hold the files asked."""
    full, small = args.root / "corpus", args.root / "corpus-small"
    for folder, n in ((full, args.files), (small, args.small_files)):
        found = sum(len(names) for _, _, names in os.walk(folder))
        if found != n:
            sys.exit(f"--reuse: {folder} holds {found} files, not {n}")
    return full, small


def write_config(args, full: Path, small: Path, shards: int) -> Path:
    cfg = yaml.safe_load((BENCH / "lakh_config.yaml").read_text())
    cfg["tegridy"]["mirror"] = str(args.mirror.resolve())
    cfg["corpora"]["lakh"]["sources"] = [{"dir": {"path": str(full)}}]
    cfg["corpora"]["lakh_small"]["sources"] = [{"dir": {"path": str(small)}}]
    cfg["shards"] = shards
    path = args.root / f"config-{shards}.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


# --------------------------------------------------------------------------- running snakemake


class Runner:
    """Runs the workflow in ``ROOT/work`` and times it (wall; peak RSS with /usr/bin/time)."""

    def __init__(self, root: Path, cores: int, repo: Path = REPO, name: str = "work"):
        self.repo = repo
        self.work = root / name
        self.logs = root / "bench-logs" / name
        self.work.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        self.cores = cores
        self.gnu_time = shutil.which("time") if Path("/usr/bin/time").exists() else None

    def __call__(self, config: Path, *args: str, log: str, dry: bool = False) -> dict:
        cmd = [
            sys.executable,
            "-m",
            "snakemake",
            "--snakefile",
            str(self.repo / "Snakefile"),
            "--directory",
            str(self.work),
            "--configfile",
            str(config),
        ]
        cmd += ["-n"] if dry else ["--cores", str(self.cores)]
        cmd += list(args)
        rss_file = self.logs / f"{log}.time"
        if self.gnu_time:
            cmd = ["/usr/bin/time", "-v", "-o", str(rss_file), *cmd]
        env = dict(os.environ, HF_HUB_OFFLINE="1")
        log_path = self.logs / f"{log}.log"
        with open(log_path, "w") as out:
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
            wall = time.perf_counter() - t0
        text = log_path.read_text()
        if proc.returncode != 0:
            sys.exit(f"snakemake failed ({proc.returncode}); see {log_path}:\n{text[-4000:]}")
        out = {"wall_s": wall, "jobs": job_counts(text), "log": str(log_path), "load": loadavg()}
        if self.gnu_time and rss_file.exists():
            out.update(gnu_time(rss_file))
        return out


def gnu_time(path: Path) -> dict[str, float]:
    """Peak RSS (MB) and CPU seconds (user + system) from ``/usr/bin/time -v``'s report: on a
    busy machine the CPU time compares runs better than the wall time."""
    text = path.read_text()
    out = {}
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    if m:
        out["max_rss_mb"] = int(m.group(1)) / 1024
    cpu = re.findall(r"(?:User|System) time \(seconds\): ([\d.]+)", text)
    if len(cpu) == 2:
        out["cpu_s"] = float(cpu[0]) + float(cpu[1])
    return out


def job_counts(text: str) -> dict[str, int]:
    """Jobs per rule from the table Snakemake prints before running (or in a dry run)."""
    counts: dict[str, int] = {}
    lines = text.splitlines()
    for n, line in enumerate(lines):
        if line.strip() == "Job stats:":
            for row in lines[n + 3 :]:
                m = JOB_ROW.match(row.strip())
                if not m:
                    break
                counts[m.group(1)] = int(m.group(2))
            break
    return counts


def benchmark_row(path: Path) -> dict[str, float]:
    with open(path, newline="") as fh:
        row = next(csv.DictReader(fh, delimiter="\t"))
    return {k: float(v) for k, v in row.items() if v not in ("", "NA") and k != "h:m:s"}


def slurm_submissions(text: str) -> tuple[int, dict[str, int]]:
    """sbatch calls of a dry run with the SLURM profile: one per job outside a group, one per
    bundle of grouped jobs (the profile's ``group-components``); and the jobs per bundle."""
    alone = re.findall(r"^(?:rule|checkpoint) (\w+):$", text, re.M)
    bundles = text.split("] Group job ")[1:]
    sizes: dict[str, int] = {}
    for b in bundles:
        b = re.split(r"^(?:rule|checkpoint|localrule) \w+:$", b, flags=re.M)[0]
        size = len(re.findall(r"^\s+(?:rule|checkpoint) \w+:$", b, re.M))
        sizes[str(size)] = sizes.get(str(size), 0) + 1
    return len(alone) + len(bundles), sizes


# --------------------------------------------------------------------------- steps


def dag(run: Runner, configs: dict[int, Path], tag: str) -> dict[int, dict]:
    out = {}
    for shards, config in configs.items():
        r = run(config, "results/tokens/lakh/index.tsv", log=f"dag-{tag}-s{shards}", dry=True)
        out[shards] = r
        print(
            f"  DAG {tag} ({run.work.name}), {shards} shards: {r['wall_s']:.1f} s "
            f"(CPU {r.get('cpu_s', float('nan')):.1f} s), jobs {r['jobs']}"
        )
    return out


def slurm(run: Runner, configs: dict[int, Path]) -> dict[int, dict]:
    profile_dir = REPO / "profiles" / "slurm"
    out = {}
    for shards, config in configs.items():
        r = run(
            config,
            "--workflow-profile",
            str(profile_dir),
            "results/tokens/lakh/index.tsv",
            log=f"slurm-s{shards}",
            dry=True,
        )
        r["submissions"], r["bundles"] = slurm_submissions(Path(r["log"]).read_text())
        out[shards] = r
        print(
            f"  SLURM dry run, {shards} shards: {r['jobs'].get('total')} jobs, "
            f"{r['submissions']} sbatch submissions (bundles of n jobs: {r['bundles']}; "
            f"{r['wall_s']:.1f} s)"
        )
    return out


def ingest(run: Runner, config: Path, corpus: str) -> dict:
    r = run(config, f"results/corpora/{corpus}/manifest.tsv", log=f"ingest-{corpus}")
    bench = benchmark_row(run.work / "logs" / "benchmarks" / "ingest" / f"{corpus}.tsv")
    from tokentransfer.corpus import read_manifest, summarize

    rows = read_manifest(run.work / "results" / "corpora" / corpus / "manifest.tsv")
    r.update(job_s=bench["s"], job_max_rss_mb=bench["max_rss"], rows=len(rows))
    r["status"] = summarize(rows)
    print(
        f"  ingest {corpus}: {len(rows)} files {r['status']} in {r['wall_s']:.1f} s "
        f"(job {bench['s']:.1f} s, job peak RSS {bench['max_rss']:.0f} MB, "
        f"largest process {r.get('max_rss_mb', float('nan')):.0f} MB)"
    )
    return r


# ingestion alone, as the ingest job calls it: a checkout's sources.ingest_manifest with the
# config's corpus, limits and seed (argv: the checkout's src folder, corpus, config, log file)
INGEST_ALONE = """
import logging, sys
src, corpus, config, log = sys.argv[1:5]
sys.path.insert(0, src)
import yaml
from tokentransfer.corpus import Limits
from tokentransfer.sources import ingest_manifest
logging.basicConfig(filename=log, filemode="w", level=logging.INFO)
cfg = yaml.safe_load(open(config))
ingest_manifest(
    corpus,
    cfg["corpora"][corpus],
    store=f"resources/corpora/{corpus}/midi",
    manifest=f"results/corpora/{corpus}/manifest.tsv",
    limits=Limits.from_config(cfg.get("ingest")),
    seed=cfg["seed"],
    tegridy_zips={},
    workers=2,
)
"""


def ingest_alone(run: Runner, config: Path, corpus: str, tag: str, fresh: bool) -> dict:
    """Ingestion of ``corpus`` alone in a process of its own (``fresh``: with no store,
    manifest or ingestion cache beforehand; else a rerun over what is there): wall and CPU
    time, files/s, the process's exact peak RSS (``/usr/bin/time -v``; the job's benchmark file
    samples memory every 30 s) and the files taken from the ingestion cache."""
    if fresh:
        for rel in (f"resources/corpora/{corpus}", f"results/corpora/{corpus}"):
            shutil.rmtree(run.work / rel, ignore_errors=True)
    if run.gnu_time is None:
        sys.exit("the memory steps need /usr/bin/time (GNU time)")
    rss_file = run.logs / f"{tag}-{corpus}.time"
    log = run.logs / f"{tag}-{corpus}.log"
    src = run.repo / "src"
    cmd = [sys.executable, "-c", INGEST_ALONE, str(src), corpus, str(config), str(log)]
    cmd = ["/usr/bin/time", "-v", "-o", str(rss_file), *cmd]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=run.work, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"ingestion of {corpus} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    checked, accepted, known = (int(x) for x in INGEST_LOG.findall(log.read_text())[-1])
    out = {"wall_s": wall, "rows": checked, "accepted": accepted, "from_cache": known}
    out.update(load=loadavg(), **gnu_time(rss_file))
    out["files_per_cpu_s"] = checked / out["cpu_s"]
    out["manifest_sha256"] = hashlib.sha256(
        (run.work / "results" / "corpora" / corpus / "manifest.tsv").read_bytes()
    ).hexdigest()
    print(
        f"  ingestion alone ({run.work.name}), {corpus}, {'fresh' if fresh else 'rerun'}: "
        f"{checked} files ({known} from the cache) in {wall:.1f} s (CPU {out['cpu_s']:.1f} s, "
        f"{out['files_per_cpu_s']:.0f} files per CPU s), peak RSS {out['max_rss_mb']:.1f} MB "
        f"(load {out['load']})"
    )
    return out


def seed_ingested(run: Runner, config: Path, corpus: str) -> int:
    """Write what a fresh ingestion of ``corpus`` writes (the store, copies named by sha256;
    the manifest; the ingestion cache) without the MIDI check: every copy of the
    synthetic corpus is an accepted file (its row ``ok``, its id its group). For a rerun with
    every file known from the cache at a size whose fresh ingestion takes too long here; the
    rerun must leave the manifest as it is (:func:`cached_memory` checks). Returns the files."""
    from tokentransfer.corpus import (
        INGEST_CACHE_NAME,
        Limits,
        ManifestWriter,
        Row,
        iter_dir,
        source_label,
    )
    from tokentransfer.corpus.cache import _CacheWriter

    cfg = yaml.safe_load(config.read_text())
    (source,) = cfg["corpora"][corpus]["sources"]
    label, limits = source_label(source), Limits.from_config(cfg.get("ingest"))
    store = run.work / "resources" / "corpora" / corpus / "midi"
    for rel in (f"resources/corpora/{corpus}", f"results/corpora/{corpus}"):
        shutil.rmtree(run.work / rel, ignore_errors=True)
    store.mkdir(parents=True)
    manifest = run.work / "results" / "corpora" / corpus / "manifest.tsv"
    manifest.parent.mkdir(parents=True, exist_ok=True)
    record = _CacheWriter(store.parent / INGEST_CACHE_NAME, limits)
    n = 0
    with ManifestWriter(manifest) as out:
        for f in iter_dir(source["dir"]["path"], label, limits):
            if f.reason is not None or f.file is None:
                sys.exit(f"{f.path}: not a plain MIDI file of the synthetic corpus")
            data = Path(f.file).read_bytes()
            fid = hashlib.sha256(data).hexdigest()
            (store / f"{fid}.mid").write_bytes(data)  # a hard link would change the ctime
            record.add(f, fid, "")
            out.write(Row(fid, f.source, f.path, f.size, "ok", "", "", fid))
            n += 1
    record.commit()
    return n


def cached_memory(run: Runner, config: Path, corpus: str) -> dict:
    """Ingestion alone with every file known from the cache (seeded): the manifest stays."""
    n = seed_ingested(run, config, corpus)
    manifest = run.work / "results" / "corpora" / corpus / "manifest.tsv"
    seeded = hashlib.sha256(manifest.read_bytes()).hexdigest()
    out = ingest_alone(run, config, corpus, "cached", fresh=False)
    if (out["rows"], out["from_cache"], out["manifest_sha256"]) != (n, n, seeded):
        sys.exit(f"the cached ingestion of {corpus} did not leave the seeded manifest as it was")
    return out


def clean_tokens(work: Path, corpus: str) -> None:
    for rel in (
        f"results/tokens/{corpus}",
        f"logs/tokenize/{corpus}",
        f"logs/benchmarks/tokenize/{corpus}",
        f"logs/token_index/{corpus}.log",
        f"logs/benchmarks/token_index/{corpus}.tsv",
    ):
        p = work / rel
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()


def shard_logs(work: Path, corpus: str, since: float = 0.0) -> dict:
    """Files and loop seconds of the tokenize_shard jobs (those logged after ``since``)."""
    tb = _load_tokenize_bench()
    files = jobs = reused = tokens = 0
    loop_s = 0.0
    for log in sorted((work / "logs" / "tokenize" / corpus).glob("*.log")):
        if log.stat().st_mtime < since:
            continue
        text = log.read_text()
        found = tb.SHARD_LOG.findall(text)
        if not found:
            sys.exit(f"no tokenize summary in {log}")
        n, n_tokens, failed, seconds = found[-1]
        files += int(n) + int(failed)
        tokens += int(n_tokens)
        loop_s += float(seconds)
        jobs += 1
        cached = REUSED_LOG.findall(text)
        reused += int(cached[-1]) if cached else 0
    return {
        "shard_jobs": jobs,
        "files": files,
        "tokens": tokens,
        "loop_s": loop_s,
        "from_cache": reused,
        "tokenized": files - reused,
    }


def job_seconds(work: Path, rule: str, since: float) -> list[float]:
    """Wall seconds of the jobs of ``rule`` whose benchmark file was written after ``since``."""
    out = []
    for path in sorted((work / "logs" / "benchmarks" / rule).rglob("*.tsv")):
        if path.stat().st_mtime >= since:
            out.append(benchmark_row(path)["s"])
    return out


def tokenize_workflow(run: Runner, config: Path, corpus: str, shards: int) -> dict:
    clean_tokens(run.work, corpus)
    r = run(config, f"results/tokens/{corpus}/index.tsv", log=f"tokenize-{corpus}-s{shards}")
    r.update(shard_logs(run.work, corpus))
    r["files_per_s"] = r["files"] / r["wall_s"]
    print(
        f"  workflow {corpus}, {run.cores} cores, {shards} shards: {r['files']} files in "
        f"{r['wall_s']:.1f} s = {r['files_per_s']:.1f} files/s (shard loops {r['loop_s']:.1f} s)"
    )
    return r


def stored_files(work: Path, corpus: str) -> list[str]:
    from tokentransfer.corpus import read_manifest

    rows = read_manifest(work / "results" / "corpora" / corpus / "manifest.tsv")
    store = work / "resources" / "corpora" / corpus / "midi"
    return sorted(str(store / f"{r.file_id}.mid") for r in rows if r.status == "ok")


def plain(paths: list[str], processes: int) -> dict:
    import symusic

    tb = _load_tokenize_bench()
    tokenizer = tb.make_tokenizer()
    if processes == 1:
        r = tb.plain_loop(tokenizer, paths, symusic.Score)
    else:
        r = tb.plain_parallel(tokenizer, paths, symusic.Score, processes)
    r["files_per_s"] = r["files"] / r["wall_s"]
    print(
        f"  plain loop, {processes} process(es): {r['files']} files in {r['wall_s']:.1f} s = "
        f"{r['files_per_s']:.1f} files/s"
    )
    return r


def add_files(run: Runner, config: Path, originals, full: Path, start: int, n: int) -> dict:
    write_copies(originals, full, start, start + n)
    since = time.time() - 1
    r = run(config, "results/tokens/lakh/index.tsv", log="add")
    r.update(shard_logs(run.work, "lakh", since=since))
    r["ingest_job_s"] = sum(job_seconds(run.work, "ingest", since))
    shard_s = job_seconds(run.work, "tokenize", since)
    r["shard_job_s"] = {"sum": sum(shard_s), "max": max(shard_s, default=0.0)}
    r["index_job_s"] = sum(job_seconds(run.work, "token_index", since))
    found = INGEST_LOG.findall((run.work / "logs" / "ingest" / "lakh.log").read_text())
    if found:
        checked, _accepted, known = (int(x) for x in found[-1])
        r["ingest_checked"], r["ingest_from_cache"] = checked, known
    noop = run(config, "results/tokens/lakh/index.tsv", log="add-noop")
    r["noop_s"] = noop["wall_s"]
    print(
        f"  add {n} files: {r['wall_s']:.1f} s; jobs {r['jobs']}; ingest job "
        f"{r['ingest_job_s']:.1f} s ({r.get('ingest_from_cache', '?')} of "
        f"{r.get('ingest_checked', '?')} files from its cache); {r['shard_jobs']} shard jobs "
        f"(sum {r['shard_job_s']['sum']:.1f} s, longest {r['shard_job_s']['max']:.1f} s) wrote "
        f"{r['files']} files, tokenized {r['tokenized']} ({r['from_cache']} from their caches); "
        f"index {r['index_job_s']:.1f} s; then nothing to do: {noop['wall_s']:.1f} s"
    )
    return r


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


# --------------------------------------------------------------------------- main


def main(argv=None) -> int:
    args = parse_args(argv)
    root = args.root.resolve()
    args.root = root
    if root == REPO or REPO in root.parents:
        sys.exit(f"--root {root} is inside the repository; use a folder outside it")
    if root.exists() and any(root.iterdir()) and not args.reuse:
        sys.exit(f"--root {root} exists and is not empty; remove it or name another")
    if not args.mirror.is_dir():
        sys.exit(f"Tegridy mirror not found at {args.mirror} (TOKENTRANSFER_SHARED or --mirror)")
    from importlib.metadata import version

    print(
        f"python {platform.python_version()}, {os.cpu_count()} cpus, miditok "
        f"{version('miditok')}, symusic {version('symusic')}, snakemake {version('snakemake')}; "
        f"load average {loadavg()}"
    )
    commit = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    fig: dict = {"files": args.files, "small_files": args.small_files, "commit": commit}
    fig["steps"] = list(args.steps)
    fig["load_start"] = loadavg()
    root.mkdir(parents=True, exist_ok=True)
    try:
        t0 = time.perf_counter()
        originals = tegridy_originals(args.mirror)
        full, small = reuse_corpus(args) if args.reuse else build_corpus(args, originals)
        fig["build_s"] = time.perf_counter() - t0
        print(
            f"corpus: {args.files} files from {len(originals)} unique Tegridy files in {full} "
            f"({args.small_files} linked in {small}), {fig['build_s']:.0f} s"
        )
        counts = [DEFAULT_SHARDS, *[s for s in args.shards if s != DEFAULT_SHARDS]]
        configs = {s: write_config(args, full, small, s) for s in counts}
        default = configs[DEFAULT_SHARDS]
        run = Runner(root, args.cores)
        # (key, runner) of this checkout and of the baseline's, measured in turn
        runs = [("", run)]
        if args.baseline is not None:
            fig["baseline"] = str(args.baseline)
            runs.insert(0, ("baseline_", Runner(root, args.cores, args.baseline, "baseline")))

        steps = set(args.steps)
        if "dag" in steps:
            print("DAG before the manifest exists:")
            for key, r in runs:
                fig[f"{key}dag_before"] = dag(r, {DEFAULT_SHARDS: default}, "before")
        if "slurm" in steps:
            print("SLURM submissions:")
            fig["slurm"] = slurm(run, configs)
        if "ingest" in steps:
            print("Ingestion:")
            fig["ingest_small"] = ingest(run, default, "lakh_small")
            fig["ingest_full"] = ingest(run, default, "lakh")
        if "memory" in steps:
            print("Ingestion alone (peak memory), fresh, then again (every file cached):")
            for corpus in ("lakh_small", "lakh"):
                for key, r in runs:
                    fig[f"{key}memory_{corpus}"] = ingest_alone(r, default, corpus, "fresh", True)
                    fig[f"{key}rerun_{corpus}"] = ingest_alone(r, default, corpus, "rerun", False)
        if "cached" in steps:
            print("Ingestion alone (peak memory), every file known from a seeded cache:")
            for corpus in ("lakh_small", "lakh"):
                for key, r in runs:
                    fig[f"{key}cached_{corpus}"] = cached_memory(r, default, corpus)
        if "dag" in steps and {"ingest", "memory", "cached"} & steps:
            print("DAG after the manifest exists:")
            for key, r in runs:
                fig[f"{key}dag_after"] = dag(r, configs, "after")

        if "tokenize" in steps:
            print(f"Tokenization of lakh_small ({args.small_files} files):")
            run(default, "results/tokenizer/tokenizer.json", log="tokenizer")
            paths = stored_files(run.work, "lakh_small")
            tb = _load_tokenize_bench()
            fig["cpu_before"] = tb.cpu_scaling(2)
            print(f"  CPU check: 2 busy processes do {fig['cpu_before']:.2f}x the work of one")
            fig["plain_1"] = plain(paths, 1)
            fig["plain_2"] = plain(paths, 2)
            fig["workflow_small"] = {
                s: tokenize_workflow(run, configs[s], "lakh_small", s) for s in counts
            }
            fig["cpu_after"] = tb.cpu_scaling(2)
            print(f"  CPU check: 2 busy processes do {fig['cpu_after']:.2f}x the work of one")
        if "full" in steps:
            print(
                f"Tokenization of the whole corpus ({args.files} files, {DEFAULT_SHARDS} shards):"
            )
            fig["workflow_full"] = tokenize_workflow(run, default, "lakh", DEFAULT_SHARDS)
        if "add" in steps:
            print(f"Add {args.add} files:")
            fig["add"] = add_files(run, default, originals, full, args.files, args.add)
        fig["load_end"] = loadavg()
        report(fig, args)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(fig, indent=1, default=str))
    print(f"written: {args.out}")
    return 0


def report(fig: dict, args) -> None:
    print()
    print(f"Figures ({args.files} files; load average {fig['load_start']} -> {fig['load_end']})")
    if "dag_before" in fig:
        print(
            f"DAG (snakemake -n), before the manifest: "
            f"{fig['dag_before'][DEFAULT_SHARDS]['wall_s']:.1f} s; after: "
            + ", ".join(
                f"{v['wall_s']:.1f} s ({s} shards)" for s, v in fig.get("dag_after", {}).items()
            )
            + " (goal <= 30 s)"
        )
    if "baseline" in fig:
        report_baseline(fig)
    report_memory(fig)
    if "ingest_full" in fig:
        a, b = fig["ingest_small"], fig["ingest_full"]
        print(
            f"ingestion: {a['rows']} files {a['wall_s']:.0f} s, job peak "
            f"{a['job_max_rss_mb']:.0f} MB; {b['rows']} files {b['wall_s']:.0f} s, job peak "
            f"{b['job_max_rss_mb']:.0f} MB: x{b['job_max_rss_mb'] / a['job_max_rss_mb']:.2f} "
            f"memory for x{b['rows'] / a['rows']:.2f} files, "
            f"{(b['job_max_rss_mb'] - a['job_max_rss_mb']) * 2**20 / (b['rows'] - a['rows']):.0f}"
            " bytes per added file (goal: bounded)"
        )
    if "plain_1" in fig:
        p1 = fig["plain_1"]["files_per_s"]
        print(
            f"tokenization ({fig['plain_1']['files']} files): plain 1 process {p1:.1f} files/s; "
            f"plain 2 processes {fig['plain_2']['files_per_s']:.1f} files/s "
            f"({fig['plain_2']['files_per_s'] / p1:.2f}x); CPU check (2 busy processes / one) "
            f"{fig['cpu_before']:.2f}x before, {fig['cpu_after']:.2f}x after"
        )
        for s, w in fig["workflow_small"].items():
            print(
                f"  workflow {args.cores} cores, {s} shards: {w['files_per_s']:.1f} files/s = "
                f"{w['files_per_s'] / p1:.2f}x the plain loop (goal >= 1.6x)"
            )
    if "workflow_full" in fig:
        w = fig["workflow_full"]
        print(
            f"  whole corpus, {DEFAULT_SHARDS} shards: {w['files']} files ({w['tokens']} tokens) "
            f"in {w['wall_s']:.0f} s = {w['files_per_s']:.1f} files/s"
        )
    if "add" in fig:
        ad = fig["add"]
        print(
            f"add {args.add} files and rerun: {ad['wall_s']:.0f} s (ingest job "
            f"{ad['ingest_job_s']:.0f} s; {ad['shard_jobs']} shard jobs, {ad['tokenized']} files "
            f"tokenized, {ad['from_cache']} from the shard caches; longest shard job "
            f"{ad['shard_job_s']['max']:.0f} s) (goal <= 120 s)"
        )
    if "slurm" in fig:
        print(
            "SLURM submissions: "
            + ", ".join(
                f"{v['submissions']} for {v['jobs'].get('total')} jobs ({s} shards)"
                for s, v in fig["slurm"].items()
            )
        )


def report_baseline(fig: dict) -> None:
    """This checkout's figures against the baseline's, as ratios (this / baseline)."""
    print(f"against the baseline {fig['baseline']} (ratio: this / baseline):")
    for step in ("dag_before", "dag_after"):
        if f"baseline_{step}" not in fig or step not in fig:
            continue
        for s, b in fig[f"baseline_{step}"].items():
            a = fig[step][s]
            print(
                f"  DAG {step[4:]} the manifest, {s} shards: {a['wall_s']:.1f} s against "
                f"{b['wall_s']:.1f} s = {a['wall_s'] / b['wall_s']:.2f}; CPU {a['cpu_s']:.1f} s "
                f"against {b['cpu_s']:.1f} s = {a['cpu_s'] / b['cpu_s']:.2f}"
            )
    for kind in ("memory", "rerun", "cached"):
        for corpus in ("lakh_small", "lakh"):
            a, b = fig.get(f"{kind}_{corpus}"), fig.get(f"baseline_{kind}_{corpus}")
            if a is None or b is None:
                continue
            print(
                f"  ingestion alone, {MEMORY_KINDS[kind]}, {corpus} ({a['rows']} files): peak RSS "
                f"{a['max_rss_mb']:.1f} MB against {b['max_rss_mb']:.1f} MB = "
                f"{a['max_rss_mb'] / b['max_rss_mb']:.2f}; files per CPU s "
                f"{a['files_per_cpu_s']:.0f} against {b['files_per_cpu_s']:.0f} = "
                f"{a['files_per_cpu_s'] / b['files_per_cpu_s']:.2f}; wall {a['wall_s']:.1f} s "
                f"against {b['wall_s']:.1f} s"
            )


MEMORY_KINDS = {"memory": "fresh", "rerun": "rerun", "cached": "seeded cache"}


def report_memory(fig: dict) -> None:
    """Peak RSS per file added, small -> full corpus, of each ingestion measured alone."""
    for key in ("baseline_", ""):
        for kind in ("memory", "rerun", "cached"):
            small, full = fig.get(f"{key}{kind}_lakh_small"), fig.get(f"{key}{kind}_lakh")
            if not (small and full and full["rows"] > small["rows"]):
                continue
            per_file = (full["max_rss_mb"] - small["max_rss_mb"]) * 2**20
            per_file /= full["rows"] - small["rows"]
            print(
                f"ingestion alone, {MEMORY_KINDS[kind]} ({'baseline' if key else 'this checkout'})"
                f": peak RSS {small['max_rss_mb']:.1f} MB at {small['rows']} files, "
                f"{full['max_rss_mb']:.1f} MB at {full['rows']}: {per_file:.0f} bytes per added "
                "file (goal: bounded)"
            )


if __name__ == "__main__":
    sys.exit(main())
