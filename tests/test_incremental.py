"""Incremental reruns at corpus scale: a shard whose file list changed takes the tokens of the
files it held before from its cache, and ingestion reuses what it learned about unchanged source
files; both give exactly what a run from scratch gives."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from tokentransfer.corpus import (
    INGEST_CACHE_NAME,
    CorpusError,
    Limits,
    Row,
    build_rows,
    listing_digest,
    read_manifest,
    sources,
    summarize,
    write_manifest,
)
from tokentransfer.fileio import sha256_file
from tokentransfer.shards import (
    shard_digest,
    shard_digests,
    shard_file_ids,
    shard_of,
    shard_paths,
)
from tokentransfer.tokenize import (
    build_tokenizer,
    read_shard,
    save_tokenizer,
    tokenize_shard,
)


@pytest.fixture(scope="module")
def store(tmp_path_factory, midi_corpora):
    """A content-addressed store of the chorales (midi_corpora), as ingestion writes it."""
    out = tmp_path_factory.mktemp("store")
    for p in sorted((midi_corpora / "chorales").glob("*.mid")):
        data = p.read_bytes()
        (out / f"{hashlib.sha256(data).hexdigest()}.mid").write_bytes(data)
    return out


@pytest.fixture(scope="module")
def tok_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    save_tokenizer(build_tokenizer({"kind": "REMI", "use_programs": True}), path)
    return path


def _contents(path: Path) -> dict:
    """Every dataset and attribute of an HDF5 file."""
    with h5py.File(path, "r") as h5:
        out = {k: h5[k][()] for k in h5}
        out.update({f"@{k}": h5.attrs[k] for k in h5.attrs})
    return {k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in out.items()}


def _shard(tok, paths, out, cache=None):
    return tokenize_shard(tok, paths, out, corpus="c", shard="0000", cache=cache)


def test_grown_shard_reuses_its_cache_and_equals_a_clean_run(tmp_path, store, tok_path, caplog):
    paths = [str(p) for p in sorted(store.glob("*.mid"))]
    bad = tmp_path / ("f" * 64 + ".mid")
    bad.write_bytes(b"MThd\x00\x00\x00\x06garbage")
    out = tmp_path / "tokens" / "0000.h5"
    cache = tmp_path / "tokens" / ".cache" / "0000.h5"
    first = _shard(tok_path, [*paths[:5], str(bad)], out, cache)
    assert first.reused == 0 and cache.exists()
    assert os.path.samefile(out, cache)  # a hard link, not a copy
    out.unlink()  # what Snakemake does before it runs the job again
    grown = _shard(tok_path, [*paths, str(bad)], out, cache)
    assert grown.reused == 5  # the failed file is tried again, not taken from the cache
    assert [f for f, _ in grown.failed] == ["f" * 64]
    assert os.path.samefile(out, cache)
    clean = tmp_path / "clean" / "0000.h5"
    _shard(tok_path, [*paths, str(bad)], clean)
    assert not (clean.parent / ".cache").exists()  # no cache unless asked for
    assert out.read_bytes() == clean.read_bytes()
    assert _contents(out) == _contents(clean)
    # a shard that lost files takes the rest from its cache as well
    out.unlink()
    caplog.set_level(logging.INFO)
    shrunk = _shard(tok_path, paths[2:4], out, cache)
    assert shrunk.reused == 2 and read_shard(out).file_ids == sorted(
        Path(p).stem for p in paths[2:4]
    )


def test_cache_of_another_tokenizer_or_format_or_damaged_is_ignored(
    tmp_path, store, tok_path, caplog
):
    paths = [str(p) for p in sorted(store.glob("*.mid"))][:3]
    out = tmp_path / "0000.h5"
    cache = tmp_path / ".cache" / "0000.h5"
    _shard(tok_path, paths, out, cache)
    clean = out.read_bytes()
    caplog.set_level(logging.INFO, logger="tokentransfer.tokenize")

    # another tokenizer: nothing reused, the shard is the other tokenizer's own
    other = tmp_path / "other.json"
    save_tokenizer(build_tokenizer({"kind": "REMI", "use_programs": False}), other)
    out.unlink()
    result = _shard(other, paths, out, cache)
    assert result.reused == 0 and "its tokenizer_hash is" in caplog.text
    assert read_shard(out).tokenizer_hash == sha256_file(other)

    # another tokens format (the cache now holds the other tokenizer's shard: write one with an
    # old format)
    out.unlink()
    _shard(tok_path, paths, out, cache)
    os.unlink(cache)
    shutil.copyfile(out, cache)
    with h5py.File(cache, "r+") as h5:
        h5.attrs["tokens_format"] = 0
    out.unlink()
    caplog.clear()
    assert _shard(tok_path, paths, out, cache).reused == 0
    assert "its tokens_format is 0, now 1" in caplog.text
    assert out.read_bytes() == clean

    # a damaged cache: logged, every file tokenized again, the shard still right
    out.unlink()
    os.unlink(cache)
    cache.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    caplog.clear()
    assert _shard(tok_path, paths, out, cache).reused == 0
    assert "unreadable" in caplog.text and out.read_bytes() == clean
    assert os.path.samefile(out, cache)  # and the cache is whole again


def test_cache_with_tampered_offsets_is_ignored(tmp_path, store, tok_path, caplog):
    paths = [str(p) for p in sorted(store.glob("*.mid"))][:3]
    out = tmp_path / "0000.h5"
    cache = tmp_path / ".cache" / "0000.h5"
    _shard(tok_path, paths, out, cache)
    clean = out.read_bytes()
    os.unlink(cache)
    shutil.copyfile(out, cache)
    with h5py.File(cache, "r+") as h5:
        offsets = h5["offsets"][:]
        offsets[-1] += 7
        h5["offsets"][:] = offsets
    out.unlink()
    caplog.set_level(logging.INFO, logger="tokentransfer.tokenize")
    assert _shard(tok_path, paths, out, cache).reused == 0
    assert "offsets do not fit" in caplog.text and out.read_bytes() == clean


# --------------------------------------------------------------------------- ingestion


def _ingest(work: Path, src: Path, limits: Limits | None = None, **spec) -> list[Row]:
    return sources.ingest(
        "t",
        {"sources": [{"dir": {"path": str(src), "group": r"^(\d+)", **spec}}]},
        store=work / "store",
        manifest=work / "manifest.tsv",
        limits=limits or Limits(),
        seed=0,
    )


@pytest.fixture
def source(tmp_path, midi_corpora) -> Path:
    """A folder of real MIDI files, a duplicate, a text file and a truncated MIDI file."""
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    files = sorted((midi_corpora / "chorales").glob("*.mid"))
    for p in files[:8]:
        shutil.copy(p, src / "sub" / p.name)
    shutil.copy(files[0], src / "copy of first.mid")
    (src / "notes.txt").write_text("not music\n")
    (src / "broken.mid").write_bytes(b"MThd\x00\x00\x00\x06\x00\x01\x00\x01\x01\xe0MTrk")
    return src


def _grow(src: Path, midi_corpora: Path) -> None:
    for p in sorted((midi_corpora / "chorales").glob("*.mid"))[8:]:
        shutil.copy(p, src / p.name)
    shutil.copy(sorted((midi_corpora / "chorales").glob("*.mid"))[1], src / "another copy.mid")


def _log_count(text: str) -> int:
    import re

    found = re.findall(r"(\d+) known from the ingestion cache, not read", text)
    return int(found[-1])


def test_rerun_after_adding_files_reads_only_them_and_equals_a_clean_ingest(
    tmp_path, source, midi_corpora, caplog
):
    caplog.set_level(logging.INFO, logger="tokentransfer.corpus")
    work = tmp_path / "work"
    first = _ingest(work, source)
    assert _log_count(caplog.text) == 0 and (work / INGEST_CACHE_NAME).exists()
    assert {r.status for r in first} == {"ok", "duplicate", "rejected"}
    _grow(source, midi_corpora)
    caplog.clear()
    again = _ingest(work, source)
    # every file read before (the 8 pieces, the copy, the broken file) is known; the text file
    # is refused by its name, never read
    assert _log_count(caplog.text) == 10
    clean = tmp_path / "clean"
    fresh = _ingest(clean, source)
    assert (work / "manifest.tsv").read_bytes() == (clean / "manifest.tsv").read_bytes()
    assert again == fresh
    assert sorted(os.listdir(work / "store")) == sorted(os.listdir(clean / "store"))
    # and a rerun with nothing changed reads nothing
    caplog.clear()
    assert _ingest(work, source) == fresh
    assert _log_count(caplog.text) == 17


def test_cache_met_in_another_order_is_found_through_its_index(
    tmp_path, source, midi_corpora, caplog, monkeypatch
):
    """The cache is read ahead in its rows' order (the last run's); files met in another order
    (the sources swapped) are found through its key index: every file read before is known,
    and the manifest is a clean ingestion's. Windows of 2 rows, so that most lookups miss them."""
    from tokentransfer.corpus import cache

    monkeypatch.setattr(cache, "CACHE_WINDOW", 2)
    other = tmp_path / "other"
    other.mkdir()
    for p in sorted((midi_corpora / "tunes").glob("*.mid")):
        shutil.copy(p, other / p.name)
    n_other = len(list(other.iterdir()))

    def run(work: Path, *folders: Path) -> list[Row]:
        return sources.ingest(
            "t",
            {"sources": [{"dir": {"path": str(f)}} for f in folders]},
            store=work / "store",
            manifest=work / "manifest.tsv",
            limits=Limits(),
            seed=0,
        )

    caplog.set_level(logging.INFO, logger="tokentransfer.corpus")
    run(tmp_path / "work", source, other)
    caplog.clear()
    again = run(tmp_path / "work", other, source)
    assert _log_count(caplog.text) == 10 + n_other  # the text file is never read
    assert again == run(tmp_path / "clean", other, source)
    assert (tmp_path / "work" / "manifest.tsv").read_bytes() == (
        tmp_path / "clean" / "manifest.tsv"
    ).read_bytes()


def test_file_changed_in_place_is_hashed_again(tmp_path, source, caplog):
    caplog.set_level(logging.INFO, logger="tokentransfer.corpus")
    work = tmp_path / "work"
    _ingest(work, source)
    victim = sorted((source / "sub").glob("*.mid"))[0]
    st = victim.stat()
    data = bytearray(victim.read_bytes())
    data[-20:] = b"x" * 20  # the same size, another content (no longer valid MIDI)
    victim.write_bytes(bytes(data))
    os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    caplog.clear()
    rows = {r.path: r for r in _ingest(work, source)}
    assert _log_count(caplog.text) == 9  # all but the changed file
    changed = rows[f"sub/{victim.name}"]
    assert (
        changed.file_id == hashlib.sha256(bytes(data)).hexdigest() and changed.bytes == st.st_size
    )
    clean = tmp_path / "clean"
    _ingest(clean, source)
    assert (work / "manifest.tsv").read_bytes() == (clean / "manifest.tsv").read_bytes()
    # changed again with its old mtime put back: its ctime still differs, so it is read again
    data[-20:] = b"y" * 20
    victim.write_bytes(bytes(data))
    os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    caplog.clear()
    rows = {r.path: r for r in _ingest(work, source)}
    assert _log_count(caplog.text) == 9
    assert rows[f"sub/{victim.name}"].file_id == hashlib.sha256(bytes(data)).hexdigest()


def test_file_gone_from_the_store_is_read_and_stored_again(tmp_path, source, caplog):
    caplog.set_level(logging.INFO, logger="tokentransfer.corpus")
    work = tmp_path / "work"
    rows = _ingest(work, source)
    ok = [r for r in rows if r.status == "ok"]
    gone = work / "store" / f"{ok[0].file_id}.mid"
    gone.unlink()
    cut = work / "store" / f"{ok[1].file_id}.mid"
    cut.write_bytes(cut.read_bytes()[:-5])  # a damaged copy in the store
    caplog.clear()
    assert _ingest(work, source) == rows
    assert _log_count(caplog.text) == 10 - 2
    assert sha256_file(gone) == ok[0].file_id  # restored whole
    assert sha256_file(cut) == ok[1].file_id  # a cut copy is replaced


def test_cache_of_other_limits_or_damaged_is_not_used(tmp_path, source, caplog):
    caplog.set_level(logging.INFO, logger="tokentransfer.corpus")
    work = tmp_path / "work"
    first = _ingest(work, source)
    caplog.clear()
    strict = Limits(min_notes=10**6)  # every piece is now rejected: the verdicts differ
    with pytest.raises(sources.CorpusError, match="no usable MIDI"):
        _ingest(work, source, limits=strict)
    assert "not used: made under" in caplog.text and _log_count(caplog.text) == 0
    # the cache now holds the strict verdicts; the default limits do not use them
    caplog.clear()
    assert _ingest(work, source) == first
    assert "not used: made under" in caplog.text and _log_count(caplog.text) == 0
    cache = work / INGEST_CACHE_NAME
    lines = cache.read_text().splitlines()
    cache.write_text("\n".join([*lines[:3], "a\tb\tnot a number", *lines[3:]]) + "\n")
    caplog.clear()
    assert _ingest(work, source) == first
    assert "unreadable" in caplog.text and _log_count(caplog.text) == 0
    assert read_manifest(work / "manifest.tsv") == first


def test_unwritable_cache_does_not_fail_ingestion(tmp_path, source, caplog):
    caplog.set_level(logging.INFO, logger="tokentransfer.corpus")
    work = tmp_path / "work"
    (work / INGEST_CACHE_NAME).mkdir(parents=True)  # a folder where the cache file goes
    rows = _ingest(work, source)
    assert "ingestion cache" in caplog.text and len(rows) == 11
    assert read_manifest(work / "manifest.tsv") == rows


def test_listing_digest_changes_exactly_when_the_listing_does(tmp_path, source):
    before = listing_digest([source])
    assert listing_digest([source]) == before  # same listing, same digest
    assert listing_digest([source, tmp_path / "src" / "sub"]) != before
    new = source / "sub" / "new.mid"
    new.write_bytes(b"MThd")
    added = listing_digest([source])
    assert added != before
    st = new.stat()
    os.utime(new, ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    assert listing_digest([source]) not in (before, added)  # changed in place: new mtime
    new.unlink()
    assert listing_digest([source]) == before  # removed again
    (source / "notes.txt").write_text("not music, longer\n")
    assert listing_digest([source]) != before  # another size


# --------------------------------------------------------------------------- streaming ingestion


def test_streamed_manifest_is_the_manifest_of_the_listed_rows(tmp_path, source):
    """ingest_manifest writes rows as they are made: the same bytes as the rows made in a list
    and written at the end (the way ingestion wrote the manifest before)."""
    specs = [
        {"dir": {"path": str(source), "group": r"^(\d+)"}},
        {"dir": {"path": str(source / "sub")}},
    ]
    a, b = tmp_path / "a", tmp_path / "b"
    counts = sources.ingest_manifest(
        "t",
        {"sources": specs},  # the second source holds duplicates of the first's files
        store=a / "store",
        manifest=a / "manifest.tsv",
        limits=Limits(),
        seed=0,
    )
    listed = [sources.collect(spec, limits=Limits(), seed=0) for spec in specs]
    rows = build_rows(listed, b / "store", Limits())
    write_manifest(rows, b / "manifest.tsv")
    assert (a / "manifest.tsv").read_bytes() == (b / "manifest.tsv").read_bytes()
    assert counts == summarize(rows) and counts["duplicate"] == 9
    assert sorted(os.listdir(a / "store")) == sorted(os.listdir(b / "store"))


def test_failed_ingestion_leaves_the_last_manifest(tmp_path, source):
    work = tmp_path / "work"
    _ingest(work, source)
    before = (work / "manifest.tsv").read_bytes()
    with pytest.raises(CorpusError, match=r"no usable MIDI file among 11 files found \(reasons: "):
        _ingest(work, source, limits=Limits(min_notes=10**6))
    assert (work / "manifest.tsv").read_bytes() == before
    assert sorted(p.name for p in work.iterdir()) == sorted(
        [INGEST_CACHE_NAME, "manifest.tsv", "store"]
    )


def _peak_bytes(work: Path, src: Path, trace: bool = True) -> int:
    import gc
    import tracemalloc

    gc.collect()
    if trace:
        tracemalloc.start()
    try:
        sources.ingest_manifest(
            "t",
            {"sources": [{"dir": {"path": str(src)}}]},
            store=work / "store",
            manifest=work / "manifest.tsv",
            limits=Limits(),
            seed=0,
        )
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_ingestion_memory_does_not_grow_with_the_files_found(tmp_path, midi_corpora):
    """Entries refused by name (no content read, nothing to deduplicate) cost no memory once
    their row is written: 10,000 of them peak as high as 1,000 (with the rows and entries
    listed, ~2 MB more)."""
    chorales = sorted((midi_corpora / "chorales").glob("*.mid"))
    folders = {}
    for n in (1_000, 10_000):
        src = folders[n] = tmp_path / f"src{n}"
        for i in range(0, n, 1000):  # 1,000 a folder
            (src / f"d{i // 1000:02d}").mkdir(parents=True)
            for j in range(1000):
                (src / f"d{i // 1000:02d}" / f"{j:04d}.txt").touch()
        for p in chorales:
            shutil.copy(p, src / p.name)
    # first, untraced: what a first run allocates once (imports, the interpreter's tables)
    _peak_bytes(tmp_path / "warm", folders[10_000], trace=False)
    peaks = {n: _peak_bytes(tmp_path / f"work{n}", src) for n, src in folders.items()}
    for n in folders:
        assert len(read_manifest(tmp_path / f"work{n}" / "manifest.tsv")) == n + len(chorales)
    assert peaks[10_000] < peaks[1_000] + 500_000, peaks


def _unique_copy(data: bytes, i: int) -> bytes:
    """A MIDI file's bytes with a text meta event first in its first track: another sha256,
    the same music (benchmarks/lakh.py makes its corpus so)."""
    pos = 8 + int.from_bytes(data[4:8], "big")  # the first chunk after MThd
    assert data[pos : pos + 4] == b"MTrk"
    text = b"copy %d" % i
    event = b"\x00\xff\x01" + bytes([len(text)]) + text
    size = int.from_bytes(data[pos + 4 : pos + 8], "big") + len(event)
    return data[: pos + 4] + size.to_bytes(4, "big") + event + data[pos + 8 :]


#: files of the smaller corpus, and the larger's multiple of it
ACCEPTED_FILES, GROWTH = 200, 4
#: the most the traced peak may grow from the smaller corpus to the larger: 10 bytes per
#: accepted file added (measured: ~2 with the tables on disk; 32 fresh and 70 in the rerun
#: with them in memory, at commit 333e1c2)
ACCEPTED_BOUND = 10 * ACCEPTED_FILES * (GROWTH - 1)


def test_ingestion_memory_does_not_grow_with_the_files_accepted(
    tmp_path, midi_corpora, monkeypatch
):
    """What ingestion keeps for every file it accepts (the dedup table, the ingestion cache) is
    on disk: the traced peak of a fresh ingestion and of a rerun (every file known from the
    cache) of 800 unique real MIDI files (and 80 duplicates) is that of 200 (and 20) within
    :data:`ACCEPTED_BOUND` (6 KB). The batches of the on-disk tables (cache rows read ahead,
    ids inserted together: 1,024 and 4,096 in the workflow) are made smaller than the corpora
    here, so that both sizes fill them."""
    from tokentransfer.corpus import cache

    monkeypatch.setattr(cache, "CACHE_WINDOW", 32)
    monkeypatch.setattr(cache, "SEEN_BATCH", 32)
    originals = [p.read_bytes() for p in sorted((midi_corpora / "chorales").glob("*.mid"))]
    sizes = (ACCEPTED_FILES, GROWTH * ACCEPTED_FILES)
    for n in sizes:
        src = tmp_path / f"src{n}"
        for i in range(n):
            folder = src / f"{i // 25:03d}"  # 25 a folder (iter_dir holds one folder's names)
            folder.mkdir(parents=True, exist_ok=True)
            data = _unique_copy(originals[i % len(originals)], i)
            (folder / f"{i:05d}.mid").write_bytes(data)
            if i % 10 == 0:
                (folder / f"{i:05d} (copy).mid").write_bytes(data)
    # first, untraced, a fresh run and a rerun: what each path allocates once (imports, the
    # interpreter's tables); then each measure twice and the smaller kept, since an earlier
    # test's leftovers can land in one traced window (seen once in a whole-suite run: +19 KB)
    for _ in range(2):
        _peak_bytes(tmp_path / "warm", tmp_path / f"src{sizes[0]}", trace=False)
    fresh = {
        n: min(_peak_bytes(tmp_path / f"work{n}.{i}", tmp_path / f"src{n}") for i in range(2))
        for n in sizes
    }
    rerun = {
        n: min(_peak_bytes(tmp_path / f"work{n}.{i}", tmp_path / f"src{n}") for i in range(2))
        for n in sizes
    }
    for n in sizes:
        counts = summarize(read_manifest(tmp_path / f"work{n}.0" / "manifest.tsv"))
        assert counts == {"ok": n, "duplicate": n // 10}
    small, large = sizes
    assert fresh[large] - fresh[small] < ACCEPTED_BOUND, fresh
    assert rerun[large] - rerun[small] < ACCEPTED_BOUND, rerun


# --------------------------------------------------------------------------- shard file lists


def _fid(i: int) -> str:
    return hashlib.sha256(str(i).encode()).hexdigest()


def _manifest_rows(n: int) -> list[Row]:
    rows = []
    for i in range(n):
        fid = _fid(i)
        if i % 7 == 3:
            rows.append(Row(fid, "dir:x", f"{i}.mid", 10, "rejected", "no notes"))
        elif i % 7 == 5:
            rows.append(Row(fid, "dir:x", f"{i}.mid", 10, "duplicate", "", _fid(0), _fid(0)))
        else:
            rows.append(Row(fid, "dir:x", f"{i}.mid", 10, "ok", "", "", fid))
    return rows


def test_shard_file_lists_digests_and_paths(tmp_path):
    manifest = tmp_path / "manifest.tsv"
    rows = _manifest_rows(200)
    write_manifest(rows, manifest)
    ok = [r.file_id for r in rows if r.status == "ok"]
    per_shard = shard_file_ids(manifest, 4)
    assert per_shard == [sorted(f for f in ok if shard_of(f, 4) == s) for s in range(4)]
    assert all(per_shard)
    digests = shard_digests(manifest, 4)
    assert digests == [shard_digest(ids) for ids in per_shard]
    assert shard_digest(reversed(per_shard[0])) == digests[0]  # the set, not the order
    assert len(set(digests)) == 4
    paths = shard_paths(manifest, 2, 4, "store/c", digest=digests[2])
    assert paths == [os.path.join("store/c", f"{f}.mid") for f in per_shard[2]]
    with pytest.raises(ValueError):
        shard_paths(manifest, 4, 4, "store")

    # a file added in one shard: only its digest changes (the manifest is read again: it was
    # rewritten, under the same name)
    added = _fid(1000)
    rows.append(Row(added, "dir:x", "new.mid", 10, "ok", "", "", added))
    write_manifest(rows, manifest)
    now = shard_digests(manifest, 4)
    grown = shard_of(added, 4)
    assert [i for i in range(4) if now[i] != digests[i]] == [grown]
    # the job refuses a manifest whose shard is not the one planned
    with pytest.raises(CorpusError, match="other files than planned"):
        shard_paths(manifest, grown, 4, "store", digest=digests[grown])
    assert (
        len(shard_paths(manifest, grown, 4, "store", digest=now[grown]))
        == len(per_shard[grown]) + 1
    )
    (tmp_path / "other.tsv").write_text("a\tb\n")
    with pytest.raises(CorpusError, match="not a manifest"):
        shard_digests(tmp_path / "other.tsv", 4)
