"""Defects found by trying to break the workflow (issue 16, section 2), one test or more each.

Every input here is built in the test (MIDI written with symusic, zips with zipfile), except the
Tegridy zip of item 3, which is a real copy from the mirror with some bytes changed.
"""

from __future__ import annotations

import copy
import io
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import symusic
import yaml

from tests.conftest import REPO, snakemake, write_config
from tokentransfer.config import SCHEMA_PATH, ConfigError, check, load_yaml
from tokentransfer.corpus import Limits, check_midi, read_manifest, sources
from tokentransfer.fileio import sha256_bytes
from tokentransfer.split import read_split, write_split
from tokentransfer.tegridy import TegridyError, catalogue

# --------------------------------------------------------------------------- helpers


def midi_bytes(pitches: list[int], tpq: int = 480, repeat: int = 1) -> bytes:
    """A one-track MIDI file: ``pitches`` as quarter notes, the whole line ``repeat`` times."""
    score = symusic.Score(tpq)
    track = symusic.Track()
    t = 0
    for _ in range(repeat):
        for p in pitches:
            track.notes.append(symusic.Note(t, tpq // 2, p, 80))
            t += tpq
    score.tracks.append(track)
    return score.dumps_midi()


def tiny_corpora(root: Path) -> dict:
    """Two `dir` corpora of four distinct MIDI files each; the config's ``corpora`` key."""
    for name, low in (("b", 50), ("t", 60)):
        folder = root / "data" / name
        folder.mkdir(parents=True)
        for i in range(4):
            (folder / f"p{i}.mid").write_bytes(midi_bytes([low + i, low + i + 4, low + i + 7]))
    return {
        "base": {"role": "base", "sources": [{"dir": {"path": str(root / "data" / "b")}}]},
        "tgt": {"role": "target", "sources": [{"dir": {"path": str(root / "data" / "t")}}]},
    }


def tiny_config(root: Path, **extra) -> Path:
    return write_config(root / "config.yaml", {"shards": 1, "corpora": tiny_corpora(root), **extra})


GOOD = {
    "corpora": {
        "base": {"role": "base", "sources": [{"music21": {"composer": "palestrina"}}]},
        "bach": {
            "role": "target",
            "sources": [
                {"dir": {"path": "/data/bach"}},
                {"tegridy": {"zip": "POP909-Score.zip"}},
                {"music21": {"composer": "bach"}},
            ],
        },
    }
}


def refused(config: dict) -> str:
    with pytest.raises(ConfigError) as err:
        check(config, load_yaml(SCHEMA_PATH))
    return str(err.value)


# --------------------------------------------------------------------------- 1. odd file names


def test_1_non_utf8_file_name_in_a_dir_source_is_ingested_by_the_workflow(tmp_path):
    cfg = tiny_config(tmp_path)
    folder = os.fsencode(tmp_path / "data" / "t")
    odd = midi_bytes([70, 74, 77])
    with open(folder + b"/bad_\xff.mid", "wb") as fh:
        fh.write(odd)
    manifest = "results/corpora/tgt/manifest.tsv"
    snakemake(tmp_path, "--configfile", str(cfg), "--cores", "2", manifest)
    rows = {r.path: r for r in read_manifest(tmp_path / manifest)}
    assert set(rows) == {"bad_\\xff.mid", "p0.mid", "p1.mid", "p2.mid", "p3.mid"}
    row = rows["bad_\\xff.mid"]
    assert row.status == "ok" and row.file_id == sha256_bytes(odd)
    stored = tmp_path / "resources/corpora/tgt/midi" / f"{row.file_id}.mid"
    assert stored.read_bytes() == odd
    # nothing to do on a second look; a second such file in the folder reruns the ingestion
    proc = snakemake(tmp_path, "--configfile", str(cfg), "-n", manifest)
    assert "Nothing to be done" in proc.stdout + proc.stderr
    with open(folder + b"/bad_\xfe.mid", "wb") as fh:
        fh.write(midi_bytes([71, 75, 78]))
    proc = snakemake(tmp_path, "--configfile", str(cfg), "-n", manifest)
    assert re.search(r"^ingest\s+1$", proc.stdout + proc.stderr, re.M), proc.stdout


# --------------------------------------------------------------------------- 2. memory


def long_midi(seed: int, notes: int) -> bytes:
    """A valid, 4-bytes-per-event MIDI file of ``notes`` one-tick notes on four pitches.

    Built as bytes (symusic would take seconds per file at this size): each note is
    ``01 90 p 40`` (on) and ``01 80 p 00`` (off) after a one-tick delta, so it lasts
    ``2 * notes`` ticks at 480 per quarter (17 minutes for 500,000 notes) and compresses
    about tenfold, well under every per-entry limit.
    """
    import numpy as np

    pitches = np.random.default_rng(seed).integers(60, 64, size=notes, dtype=np.uint8)
    events = np.empty((notes, 8), dtype=np.uint8)
    events[:] = (1, 0x90, 0, 0x40, 1, 0x80, 0, 0)
    events[:, 2] = pitches
    events[:, 6] = pitches
    track = events.tobytes() + b"\x00\xff\x2f\x00"
    header = b"MThd" + (6).to_bytes(4, "big") + (0).to_bytes(2, "big") + (1).to_bytes(2, "big")
    header += (480).to_bytes(2, "big")
    return header + b"MTrk" + len(track).to_bytes(4, "big") + track


MEMORY_PROBE = """
import resource, sys
from pathlib import Path
from tokentransfer.corpus import sources
from tokentransfer.corpus import Limits, check_midi

check_midi(Path(sys.argv[1]).read_bytes(), Limits())  # symusic loaded before the limit
vm = int(next(l for l in open("/proc/self/status") if l.startswith("VmSize")).split()[1]) * 1024
headroom = int(sys.argv[3]) * 2**20
resource.setrlimit(resource.RLIMIT_AS, (vm + headroom, vm + headroom))
work = Path(sys.argv[2])
rows = sources.ingest(
    "big",
    {"sources": [{"dir": {"path": str(work / "src")}}]},
    store=work / "store",
    manifest=work / "manifest.tsv",
    limits=Limits(),
    seed=0,
)
print(len(rows), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
"""


def test_2_ingestion_memory_does_not_grow_with_the_archives(tmp_path):
    """Two 10 MB zips of 24 distinct 4 MB MIDI files each (183 MB expanded, every entry under
    every per-entry limit) are ingested as one corpus in a process whose address space may
    grow by only 160 MB: entries are read one at a time, never all held."""
    src = tmp_path / "src"
    src.mkdir()
    expanded = 0
    for z in range(2):
        with zipfile.ZipFile(
            src / f"part{z}.zip", "w", zipfile.ZIP_DEFLATED, compresslevel=1
        ) as zf:
            for i in range(24):
                data = long_midi(100 * z + i, 500_000)
                expanded += len(data)
                zf.writestr(f"piece_{i:02d}.mid", data)
    assert expanded > 180 * 2**20
    for z in range(2):
        with zipfile.ZipFile(src / f"part{z}.zip") as zf:
            info = zf.infolist()[0]
            assert 2 < info.file_size / info.compress_size < Limits().max_ratio
    probe = tmp_path / "probe.py"
    probe.write_text(MEMORY_PROBE)
    small = tmp_path / "small.mid"
    small.write_bytes(midi_bytes([60, 64, 67]))
    proc = subprocess.run(
        [sys.executable, str(probe), str(small), str(tmp_path), "160"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    n_rows, peak_mb = map(int, proc.stdout.split())
    print(f"48 entries, {expanded / 2**20:.0f} MB expanded: peak RSS {peak_mb} MB")
    rows = read_manifest(tmp_path / "manifest.tsv")
    assert n_rows == len(rows) == 48 and {r.status for r in rows} == {"ok"}
    for r in rows:
        assert (tmp_path / "store" / f"{r.file_id}.mid").stat().st_size == r.bytes


def test_2_damaged_deflate_data_is_listed_not_fatal(tmp_path):
    """Found while altering a Tegridy zip for item 3: an entry whose compressed bytes are
    damaged raised zlib.error out of ingestion; it is now listed as unreadable."""
    src = tmp_path / "src"
    src.mkdir()
    good, hurt = long_midi(1, 20_000), long_midi(2, 20_000)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("good.mid", good)
        zf.writestr("hurt.mid", hurt)
    data = bytearray(buf.getvalue())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as zf:
        info = zf.getinfo("hurt.mid")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra) + 64
    data[start : start + 16] = bytes(16)
    (src / "a.zip").write_bytes(bytes(data))
    rows = sources.ingest(
        "t",
        {"sources": [{"dir": {"path": str(src)}}]},
        store=tmp_path / "store",
        manifest=tmp_path / "manifest.tsv",
        limits=Limits(),
        seed=0,
    )
    by_path = {r.path: r for r in rows}
    assert by_path["a.zip!good.mid"].status == "ok"
    assert by_path["a.zip!good.mid"].file_id == sha256_bytes(good)
    hurt_row = by_path["a.zip!hurt.mid"]
    assert hurt_row.status == "rejected" and hurt_row.reason.startswith("unreadable entry: ")
    assert os.listdir(tmp_path / "store") == [f"{sha256_bytes(good)}.mid"]


# --------------------------------------------------------------------------- 3. Tegridy mirror

GOTHIC = "Gothic-Horror-Movies-CC-BY-NC-SA.zip"  # the smallest zip (43 kB, 12 MIDI files)


def altered_mirror(tmp_path: Path, tegridy_dir: Path) -> tuple[Path, str]:
    """A mirror folder holding a copy of GOTHIC with 16 bytes in the middle changed.

    The copy still opens as a zip (the bytes sit inside one entry's compressed data), so
    without a checksum it would be ingested quietly, that entry lost or changed.
    """
    data = bytearray((tegridy_dir / GOTHIC).read_bytes())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as zf:
        info = max(zf.infolist(), key=lambda i: i.compress_size)
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra) + 64
    data[start : start + 16] = bytes(16)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / GOTHIC).write_bytes(bytes(data))
    with zipfile.ZipFile(mirror / GOTHIC) as zf:  # still a zip
        assert len(zf.infolist()) >= 12
    return mirror, sha256_bytes(bytes(data))


def test_3_altered_mirror_zip_is_refused_where_the_workflow_hands_it_over(tmp_path, tegridy_dir):
    mirror, altered = altered_mirror(tmp_path, tegridy_dir)
    pinned = catalogue()[GOTHIC].sha256
    assert altered != pinned
    corpora = tiny_corpora(tmp_path)
    corpora["tgt"]["sources"] = [{"tegridy": {"zip": GOTHIC}}]
    cfg = write_config(
        tmp_path / "config.yaml",
        {"shards": 1, "tegridy": {"mirror": str(mirror)}, "corpora": corpora},
    )
    manifest = "results/corpora/tgt/manifest.tsv"
    proc = snakemake(tmp_path, "--configfile", str(cfg), "--cores", "1", manifest, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    lines = [x for x in out.splitlines() if "fails its checksum" in x]
    assert lines, out[-3000:]
    assert GOTHIC in lines[0] and altered in lines[0] and pinned in lines[0], lines[0]
    assert not (tmp_path / manifest).exists()
    assert not (tmp_path / "resources/corpora/tgt").exists()
    # the pinned copy goes through the same input function
    shutil.copy(tegridy_dir / GOTHIC, mirror / GOTHIC)
    snakemake(tmp_path, "--configfile", str(cfg), "--cores", "1", manifest)
    assert {r.status for r in read_manifest(tmp_path / manifest)} >= {"ok"}


def test_3_ingestion_refuses_an_altered_tegridy_zip(tmp_path, tegridy_dir):
    """Ingestion itself checks what it is handed (a mirror copy or a download)."""
    mirror, altered = altered_mirror(tmp_path, tegridy_dir)
    with pytest.raises(TegridyError) as err:
        sources.ingest(
            "tgt",
            {"sources": [{"tegridy": {"zip": GOTHIC}}]},
            store=tmp_path / "store",
            manifest=tmp_path / "manifest.tsv",
            limits=Limits(),
            seed=0,
            tegridy_zips={GOTHIC: str(mirror / GOTHIC)},
        )
    msg = str(err.value)
    assert GOTHIC in msg and altered in msg and catalogue()[GOTHIC].sha256 in msg, msg
    assert not (tmp_path / "manifest.tsv").exists() and not list(tmp_path.glob("store/*"))


# --------------------------------------------------------------------------- 4. bad regexes


REGEX_KEYS = [
    (kind, index, key)
    for kind, index in (("dir", 0), ("tegridy", 1))
    for key in ("group", "include", "exclude")
] + [("music21", 2, "group")]  # music21 sources select by composer and glob, no include/exclude


@pytest.mark.parametrize(("kind", "index", "key"), REGEX_KEYS)
def test_4_bad_regex_is_refused_at_config_time_naming_the_key(kind, index, key):
    config = copy.deepcopy(GOOD)
    config["corpora"]["bach"]["sources"][index][kind][key] = "^(.+_v\\d+$"
    msg = refused(config)
    assert msg.startswith(f"config key corpora.bach.sources[{index}].{kind}.{key}: "), msg
    assert "'^(.+_v\\\\d+$'" in msg and "missing )" in msg, msg
    assert "\n" not in msg


def test_4_validate_and_dry_run_refuse_a_bad_group(tmp_path, capsys):
    from tokentransfer.cli import main

    cfg = tiny_config(tmp_path)
    config = yaml.safe_load(cfg.read_text())
    config["corpora"]["tgt"]["sources"][0]["dir"]["group"] = "(["
    write_config(cfg, config)
    assert main(["validate", str(cfg)]) == 1
    err = capsys.readouterr().err
    assert "config key corpora.tgt.sources[0].dir.group: invalid regex '(['" in err
    proc = snakemake(tmp_path, "--configfile", str(cfg), "-n", check=False)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "config key corpora.tgt.sources[0].dir.group: invalid regex '(['" in out, out
    assert "Traceback" not in out


# --------------------------------------------------------------------------- 5. generate CLI


@pytest.fixture(scope="module")
def walk_results(tmp_path_factory) -> Path:
    """A real results/ folder with a target's graphs, built by the workflow (no model needed
    for ``--counts-only``)."""
    work = tmp_path_factory.mktemp("walk_results")
    cfg = tiny_config(work)
    snakemake(work, "--configfile", str(cfg), "--cores", "2", "results/graphs/tgt/successors.npz")
    return work / "results"


def generate(walk_results: Path, *flags: str):
    """The argv of a short counts-only ``tokentransfer generate`` on ``walk_results``, and main."""
    from tokentransfer.cli import main

    argv = ["generate", "--corpus", "tgt", "--results", str(walk_results), "--counts-only"]
    return argv + ["--n", "2", "--length", "64", *flags], main


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--n", "-3"], "--n: need at least one sample, got -3"),
        (["--n", "0"], "--n: need at least one sample, got 0"),
        (["--length", "0"], "--length: need at least one token per sample, got 0"),
        (["--top-k", "-1"], "--top-k: must be >= 0 (0: all successors), got -1"),
        (["--temperature", "0"], "--temperature: must be > 0, got 0.0"),
        (["--restart", "1.5"], "--restart: a probability, in [0, 1], got 1.5"),
    ],
)
def test_5_generate_refuses_bad_flags_naming_the_flag(
    walk_results, tmp_path, capsys, flags, expected
):
    out = tmp_path / "out"
    argv, main = generate(walk_results, "--out", str(out), *flags)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err == f"tokentransfer generate: {expected}\n"
    assert "generate." not in err  # the flag, not a config key
    assert not out.exists() and os.listdir(tmp_path) == []


def test_5_generate_refuses_bad_prompt_and_out_naming_the_file(walk_results, tmp_path, capsys):
    text = tmp_path / "notes.txt"
    text.write_text("not music\n")
    out = tmp_path / "out"
    cases = [
        (["--prompt", str(text), "--out", str(out)], f"--prompt {text}: not a MIDI file"),
        (
            ["--prompt", str(tmp_path / "gone.mid"), "--out", str(out)],
            f"--prompt {tmp_path / 'gone.mid'}: no such file",
        ),
        (["--out", str(text)], f"--out {text}: is a file; give a folder"),
        (["--out", str(text / "sub")], f"--out {text / 'sub'}: lies under {text}, which is a file"),
    ]
    for flags, expected in cases:
        argv, main = generate(walk_results, *flags)
        assert main(argv) == 2, flags
        err = capsys.readouterr().err
        assert err.startswith(f"tokentransfer generate: {expected}"), err
        assert err.count("\n") == 1 and "run the workflow first" not in err, err
    assert sorted(os.listdir(tmp_path)) == ["notes.txt"]


def test_5_generate_writes_its_folder_whole_and_replaces_only_its_own(
    walk_results, tmp_path, capsys
):
    out = tmp_path / "samples"
    prompt = walk_results.parent / "data" / "t" / "p1.mid"
    argv, main = generate(walk_results, "--prompt", str(prompt), "--out", str(out))
    assert main(argv) == 0
    first = sorted(os.listdir(out))
    assert first == ["generation.json", "sample_000.mid", "sample_001.mid", "tokens.h5"]
    assert oct(out.stat().st_mode & 0o777) == oct(0o777 & ~_umask())
    # again with one sample: the earlier output is replaced whole (no stale sample_001.mid)
    argv, main = generate(walk_results, "--out", str(out), "--n", "1")
    assert main(argv) == 0
    assert sorted(os.listdir(out)) == ["generation.json", "sample_000.mid", "tokens.h5"]
    assert os.listdir(tmp_path) == ["samples"]  # no temporary folder left beside it
    # a folder holding something else is refused, untouched
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "keep.txt").write_text("mine")
    argv, main = generate(walk_results, "--out", str(mine))
    capsys.readouterr()
    assert main(argv) == 2
    assert "--out" in capsys.readouterr().err and os.listdir(mine) == ["keep.txt"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# --------------------------------------------------------------------------- 6. split rows


def test_6_split_has_one_row_per_file_id(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    pieces = [midi_bytes([60 + i, 64 + i]) for i in range(5)]
    for i, data in enumerate(pieces):
        (src / f"p{i}.mid").write_bytes(data)
    (src / "copy_of_p0.mid").write_bytes(pieces[0])  # two duplicates of p0 and one of p1
    (src / "again_p0.mid").write_bytes(pieces[0])
    (src / "copy_of_p1.mid").write_bytes(pieces[1])
    rows = sources.ingest(
        "t",
        {"sources": [{"dir": {"path": str(src)}}]},
        store=tmp_path / "store",
        manifest=tmp_path / "manifest.tsv",
        limits=Limits(),
        seed=0,
    )
    assert [r.status for r in rows].count("duplicate") == 3
    write_split(tmp_path / "manifest.tsv", tmp_path / "split.tsv", 0.2, 0, "test")
    lines = (tmp_path / "split.tsv").read_text().splitlines()
    ids = [line.split("\t")[0] for line in lines[1:]]
    assert len(ids) == len(set(ids)) == 5
    assert set(ids) == {
        r.file_id for r in read_manifest(tmp_path / "manifest.tsv") if r.status == "ok"
    }
    assert set(read_split(tmp_path / "split.tsv")) == set(ids)


# --------------------------------------------------------------------------- 7. messages


def test_7_bad_corpus_name_blames_only_that_name():
    config = copy.deepcopy(GOOD)
    config["corpora"]["my bach"] = config["corpora"].pop("bach")
    msg = refused(config)
    assert msg.startswith("config key corpora: "), msg
    assert "'my bach'" in msg and "'base'" not in msg, msg
    assert "^[A-Za-z0-9][A-Za-z0-9_-]*$" in msg, msg


@pytest.mark.parametrize("what", ["file", "missing"])
def test_7_dir_path_that_is_a_file_says_so(tmp_path, what):
    cfg = tiny_config(tmp_path)
    config = yaml.safe_load(cfg.read_text())
    target = tmp_path / "data" / "t" / "p0.mid"
    if what == "missing":
        target = tmp_path / "data" / "nowhere"
    config["corpora"]["tgt"]["sources"][0]["dir"]["path"] = str(target)
    write_config(cfg, config)
    proc = snakemake(tmp_path, "--configfile", str(cfg), "-n", check=False)
    assert proc.returncode != 0
    expected = "is a file, not a folder" if what == "file" else "does not exist"
    assert (
        f"config key corpora.tgt.sources[0].dir.path: {target} {expected}"
        in proc.stdout + proc.stderr
    ), (proc.stdout + proc.stderr)[-3000:]
    with pytest.raises(sources.CorpusError, match=re.escape(f"{target} {expected}")):
        sources.collect(config["corpora"]["tgt"]["sources"][0], limits=Limits(), seed=0)


# --------------------------------------------------------------------------- 9. resolution


def test_9_ticks_per_quarter_below_the_lower_bound_is_refused():
    limits = Limits()
    assert limits.min_ticks_per_quarter == 24
    for tpq in (1, 2, 23):
        assert check_midi(midi_bytes([60, 62, 64], tpq=tpq), limits) == (
            f"absurd ticks per quarter: {tpq} (allowed: 24 to 32767)"
        )
    assert check_midi(midi_bytes([60, 62, 64], tpq=24), limits) is None
    assert check_midi(midi_bytes([60, 62, 64], tpq=4), Limits(min_ticks_per_quarter=4)) is None
    config = copy.deepcopy(GOOD)
    config["ingest"] = {"min_ticks_per_quarter": 960, "max_ticks_per_quarter": 480}
    msg = refused(config)
    assert msg.startswith("config key ingest.min_ticks_per_quarter: 960 is larger than"), msg


def test_9_lower_bound_is_documented():
    schema = load_yaml(SCHEMA_PATH)
    assert schema["properties"]["ingest"]["properties"]["min_ticks_per_quarter"]["default"] == 24
    doc = (REPO / "config" / "README.md").read_text()
    assert "| `ingest.min_ticks_per_quarter` | 24 |" in doc


# --------------------------------------------------------------------------- 10. docs


def test_10_docs_say_a_grown_corpus_reruns_embed_perplexity_and_figures():
    """The rules tests/test_workflow.py::test_grown_corpus_reruns_one_shard sees rerun."""
    text = (REPO / "docs" / "incremental.md").read_text()
    (row,) = [line for line in text.splitlines() if line.startswith("| a target corpus grew")]
    for stage in ("embedding", "perplexity", "figures", "split", "graph", "walks", "evaluation"):
        assert stage in row, (stage, row)


# --------------------------------------------------------------------------- 8. training log

TRAIN_SCRIPT = """
import sys, torch
torch.set_num_threads(1)
from tokentransfer.model import ModelSpec, TrainSpec, WindowSampler, build_model, special_ids, train
from tokentransfer.tokenize import load_tokenizer, tokenize_file
tok = load_tokenizer(sys.argv[1])
special = special_ids(tok)
seqs = [tokenize_file(tok, p) for p in sys.argv[4:]]
spec = ModelSpec(arch="gpt2", layers=1, dim=16, heads=2, context=32, dropout=0.1)
model = build_model(spec, len(tok), special, 0)
ts = TrainSpec(steps=150, batch=2, lr=5e-3, warmup=2, checkpoint_every=5, log_every=5)
train(model, WindowSampler(seqs, special, 32, 0), ts, checkpoint=sys.argv[2], log_path=sys.argv[3])
"""


def test_8_killed_training_leaves_no_training_log_and_a_resumed_one_writes_it_whole(tmp_path):
    import signal
    import time

    from tokentransfer.tokenize import build_tokenizer, save_tokenizer

    tok = tmp_path / "tokenizer.json"
    save_tokenizer(build_tokenizer({"kind": "REMI", "use_programs": True}), tok)
    files = []
    for i in range(3):
        files.append(tmp_path / f"p{i}.mid")
        files[-1].write_bytes(midi_bytes([60 + i, 64, 67, 72 - i], repeat=8))
    script = tmp_path / "train.py"
    script.write_text(TRAIN_SCRIPT)
    ckpt, log = tmp_path / "ckpt.pt", tmp_path / "training_log.tsv"
    cmd = [sys.executable, str(script), str(tok), str(ckpt), str(log), *map(str, files)]
    proc = subprocess.Popen(cmd)
    deadline = time.time() + 120
    while not ckpt.exists() and time.time() < deadline:
        time.sleep(0.02)
    time.sleep(0.1)  # a checkpoint or two later
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    import torch

    step = torch.load(ckpt, weights_only=True)["step"]
    assert 0 < step < 150, "killed too late"
    assert not log.exists(), log.read_text()
    subprocess.run(cmd, check=True, timeout=600)
    steps = [int(line.split("\t")[0]) for line in log.read_text().splitlines()[1:]]
    assert steps == list(range(5, 151, 5))
