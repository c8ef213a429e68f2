"""Safe ingestion (tokentransfer.corpus) on real MIDI bytes and hostile archives built in the test.

The real MIDI is exported from music21's corpus (tests/music21_corpora.py): the plain pieces of
``midi_corpora`` and the workflow tests' folders of ``music21_corpora``, whose awkward files
(duplicates, versions of one piece, odd names, a text file, a truncated MIDI file) are made there.
"""

from __future__ import annotations

import io
import os
import random
import shutil
import stat
import warnings
import zipfile
from pathlib import Path

import pytest
import symusic

from tests import music21_corpora as m21
from tokentransfer.corpus import (
    NESTED_SEPARATOR,
    CorpusError,
    Found,
    Limits,
    Row,
    check_midi,
    group_key,
    iter_dir,
    read_manifest,
    select,
    sources,
    summarize,
    write_manifest,
)
from tokentransfer.fileio import sha256_bytes
from tokentransfer.shards import shard_of

# --------------------------------------------------------------------------- helpers


def _midi(corpora: Path, rel: str) -> bytes:
    return (corpora / rel).read_bytes()


def _zip_bytes(entries: list[tuple[str | zipfile.ZipInfo, bytes]], deflate: bool = True) -> bytes:
    """A zip of (name or ZipInfo, content); duplicate names are allowed on purpose."""
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "Duplicate name"
        with zipfile.ZipFile(buf, "w") as zf:
            for name, data in entries:
                info = name if isinstance(name, zipfile.ZipInfo) else zipfile.ZipInfo(name)
                info.compress_type = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
                zf.writestr(info, data)
    return buf.getvalue()


def _zipinfo(name: str, mode: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = mode << 16
    return info


def _set_encrypted(data: bytes, name: str) -> bytes:
    """Set bit 0 (encrypted) of ``name``'s general purpose flags, local and central headers.

    ``ZipFile.writestr`` resets ``flag_bits``, so the flag is patched into the bytes.
    """
    out = bytearray(data)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        offset = zf.getinfo(name).header_offset
    assert out[offset : offset + 4] == b"PK\x03\x04"
    out[offset + 6] |= 0x01
    pos = out.find(b"PK\x01\x02")
    patched = False
    while pos != -1:
        name_len = int.from_bytes(out[pos + 28 : pos + 30], "little")
        if out[pos + 46 : pos + 46 + name_len].decode("utf-8", "replace") == name:
            out[pos + 8] |= 0x01
            patched = True
        pos = out.find(b"PK\x01\x02", pos + 4)
    assert patched
    with zipfile.ZipFile(io.BytesIO(bytes(out))) as zf:
        assert zf.getinfo(name).flag_bits & 0x1
    return bytes(out)


def _tree(root: Path) -> set[str]:
    """Every path under ``root`` (files, folders, links), relative, posix."""
    out = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            out.add(Path(dirpath, name).relative_to(root).as_posix())
    return out


def _by_path(rows: list[Row]) -> dict[str, list[Row]]:
    out: dict[str, list[Row]] = {}
    for r in rows:
        out.setdefault(r.path, []).append(r)
    return out


def _ingest_dir(tmp: Path, src: Path, limits: Limits | None = None, **spec) -> list[Row]:
    return sources.ingest(
        "t",
        {"sources": [{"dir": {"path": str(src), **spec}}]},
        store=tmp / "store",
        manifest=tmp / "manifest.tsv",
        limits=limits or Limits(),
        seed=0,
    )


# --------------------------------------------------------------------------- hostile zip


@pytest.fixture
def hostile(tmp_path: Path, midi_corpora: Path) -> dict:
    """A folder with one hostile zip, plus the bytes it holds by role."""
    good = {
        "good.mid": _midi(midi_corpora, "chorales/bwv1.6.mid"),
        "sub/good2.midi": _midi(midi_corpora, "chorales/bwv11.6.mid"),
        "nested": _midi(midi_corpora, "chorales/bwv144.6.mid"),
        "dup_a": _midi(midi_corpora, "tunes/BannocksOBarleyMealJig.mid"),
        "dup_b": _midi(midi_corpora, "tunes/BloomingMeadowsJig.mid"),
        "deep": _midi(midi_corpora, "chorales/bwv177.5.mid"),
        "evil": _midi(midi_corpora, "chorales/bwv185.6.mid"),
    }
    assert len(set(good.values())) == len(good)  # seven different pieces
    inner = _zip_bytes([("x.mid", good["nested"])])
    outer = _zip_bytes([("inner.zip", inner)], deflate=False)
    # too deep: top -> d1 -> d2 -> d3 -> d4.zip (refused with max_depth 3) -> deep.mid
    d4 = _zip_bytes([("deep.mid", good["deep"])])
    d3 = _zip_bytes([("d4.zip", d4)], deflate=False)
    d2 = _zip_bytes([("d3.zip", d3)], deflate=False)
    d1 = _zip_bytes([("d2.zip", d2)], deflate=False)
    entries: list[tuple[str | zipfile.ZipInfo, bytes]] = [
        ("good.mid", good["good.mid"]),
        ("sub/good2.midi", good["sub/good2.midi"]),
        ("../evil.mid", good["evil"]),
        ("..\\..\\evil2.mid", good["evil"]),
        ("/abs.mid", good["evil"]),
        ("C:/win.mid", good["evil"]),
        (_zipinfo("link.mid", stat.S_IFLNK | 0o777), b"../../../etc/passwd"),
        (_zipinfo("fifo.mid", stat.S_IFIFO | 0o644), good["evil"]),
        (_zipinfo("dev.mid", stat.S_IFCHR | 0o644), good["evil"]),
        ("readme.txt", b"hello, not music\n"),
        ("trunc.mid", good["good.mid"][:30]),
        ("empty.mid", b""),
        ("secret.mid", good["evil"]),
        ("big.mid", b"\x00" * (5 * 1024 * 1024)),
        ("dup.mid", good["dup_a"]),
        ("dup.mid", good["dup_b"]),
        ("outer.zip", outer),
        ("d1.zip", d1),
        ("broken.zip", b"PK\x03\x04 this is not really a zip"),
    ]
    data = _set_encrypted(_zip_bytes(entries), "secret.mid")
    src = tmp_path / "src"
    src.mkdir()
    (src / "hostile.zip").write_bytes(data)
    return {"src": src, "good": good}


EXPECTED_REJECTED = {
    "hostile.zip!../evil.mid": "unsafe path: leaves the target folder",
    "hostile.zip!..\\..\\evil2.mid": "unsafe path: leaves the target folder",
    "hostile.zip!/abs.mid": "unsafe path: absolute",
    "hostile.zip!C:/win.mid": "unsafe path: absolute",
    "hostile.zip!link.mid": "symbolic link",
    "hostile.zip!fifo.mid": "special file (device, fifo or socket)",
    "hostile.zip!dev.mid": "special file (device, fifo or socket)",
    "hostile.zip!readme.txt": "not a MIDI file",
    "hostile.zip!empty.mid": "empty file",
    "hostile.zip!secret.mid": "encrypted entry",
    "hostile.zip!d1.zip!d2.zip!d3.zip!d4.zip": "nested archive too deep (limit 3)",
}


def test_hostile_zip_ingest(tmp_path: Path, hostile: dict, monkeypatch: pytest.MonkeyPatch):
    # Work from a folder inside tmp_path so that any relative write ("../evil.mid") would land
    # inside the snapshot.
    cwd = tmp_path / "cwd" / "deeper"
    cwd.mkdir(parents=True)
    monkeypatch.chdir(cwd)
    before = _tree(tmp_path)
    parent_before = set(os.listdir(tmp_path.parent))

    rows = _ingest_dir(tmp_path, hostile["src"])

    by_path = _by_path(rows)
    for path, reason in EXPECTED_REJECTED.items():
        assert path in by_path, f"no manifest row for {path}: {sorted(by_path)}"
        (row,) = by_path[path]
        assert row.status == "rejected", row
        assert row.reason == reason, row

    (trunc,) = by_path["hostile.zip!trunc.mid"]
    assert trunc.status == "rejected"
    assert trunc.reason.startswith(("unreadable MIDI", "no notes")), trunc.reason
    (big,) = by_path["hostile.zip!big.mid"]
    assert big.status == "rejected"
    assert big.reason.startswith("suspicious compression ratio"), big.reason
    assert "limit 200" in big.reason
    assert big.bytes == 5 * 1024 * 1024
    (broken,) = by_path["hostile.zip!broken.zip"]
    assert broken.status == "rejected"
    assert broken.reason.startswith("not a readable zip archive"), broken.reason

    good = hostile["good"]
    ok_expected = {
        "hostile.zip!good.mid": good["good.mid"],
        "hostile.zip!sub/good2.midi": good["sub/good2.midi"],
        "hostile.zip!outer.zip!inner.zip!x.mid": good["nested"],
    }
    for path, data in ok_expected.items():
        (row,) = by_path[path]
        assert row.status == "ok", row
        assert row.file_id == sha256_bytes(data)
        assert row.bytes == len(data)
    nested = "hostile.zip!outer.zip!inner.zip!x.mid"
    assert nested.split(NESTED_SEPARATOR) == ["hostile.zip", "outer.zip", "inner.zip", "x.mid"]

    # Duplicate entry names: each entry is read by its own header, so both contents arrive.
    dups = by_path["hostile.zip!dup.mid"]
    assert len(dups) == 2
    assert {r.status for r in dups} == {"ok"}
    assert {r.file_id for r in dups} == {sha256_bytes(good["dup_a"]), sha256_bytes(good["dup_b"])}

    # The file inside the too-deep archive never shows up; the evil content is never stored.
    assert not any(r.path.endswith("deep.mid") for r in rows)
    assert sha256_bytes(good["evil"]) not in {r.file_id for r in rows}
    assert sha256_bytes(good["deep"]) not in {r.file_id for r in rows}

    counts = summarize(rows)
    assert counts == {"ok": 5, "rejected": len(EXPECTED_REJECTED) + 3}, counts

    # Nothing was written outside the store and the manifest.
    after = _tree(tmp_path)
    ok_ids = {r.file_id for r in rows if r.status == "ok"}
    expected_new = {"store", "manifest.tsv"} | {f"store/{fid}.mid" for fid in ok_ids}
    assert after - before == expected_new
    assert before <= after
    assert set(os.listdir(tmp_path.parent)) - parent_before <= {tmp_path.name}
    # (an unrelated /abs.mid could exist on some machine; it must not hold the entry's bytes)
    assert not Path("/abs.mid").is_file() or Path("/abs.mid").read_bytes() != good["evil"]
    for p in (tmp_path / "store").iterdir():
        assert p.name == f"{sha256_bytes(p.read_bytes())}.mid"

    # The manifest on disk holds the same rows.
    assert read_manifest(tmp_path / "manifest.tsv") == rows


def test_hostile_zip_with_stricter_limits(tmp_path: Path, hostile: dict):
    """max_depth=1: outer.zip opens, inner.zip is refused; a ratio limit of 1e9 lets big.mid in
    as far as the MIDI check (it is zeros, so no MThd)."""
    rows = _ingest_dir(tmp_path, hostile["src"], limits=Limits(max_depth=1, max_ratio=1e9))
    by_path = _by_path(rows)
    (inner,) = by_path["hostile.zip!outer.zip!inner.zip"]
    assert (inner.status, inner.reason) == ("rejected", "nested archive too deep (limit 1)")
    (d2,) = by_path["hostile.zip!d1.zip!d2.zip"]
    assert d2.reason == "nested archive too deep (limit 1)"
    (big,) = by_path["hostile.zip!big.mid"]
    assert (big.status, big.reason) == ("rejected", "not a MIDI file (no MThd header)")


def test_declared_size_limit_in_zip(tmp_path: Path, midi_corpora: Path):
    data = _midi(midi_corpora, "band/bwv123.6.mid")  # 6674 bytes
    small = _midi(midi_corpora, "tunes/BannocksOBarleyMealJig.mid")  # 877 bytes
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.zip").write_bytes(_zip_bytes([("big.mid", data), ("small.mid", small)]))
    limits = Limits(max_file_mb=5000 / (1024 * 1024))
    assert len(data) > limits.max_file_bytes > len(small)
    rows = _ingest_dir(tmp_path, src, limits=limits)
    by_path = _by_path(rows)
    (big,) = by_path["a.zip!big.mid"]
    assert big.status == "rejected"
    assert big.reason == f"too large: {len(data)} bytes declared (limit {limits.max_file_bytes})"
    (ok,) = by_path["a.zip!small.mid"]
    assert ok.status == "ok"


def test_archive_budget(tmp_path: Path, midi_corpora: Path):
    """The expanded size of one archive is bounded by max_archive_mb, in entry order."""
    names = ["bwv1.6", "bwv11.6", "bwv144.6"]
    datas = [_midi(midi_corpora, f"chorales/{n}.mid") for n in names]
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.zip").write_bytes(
        _zip_bytes([(f"{n}.mid", d) for n, d in zip(names, datas, strict=True)])
    )
    budget = len(datas[0]) + len(datas[1]) + 10
    rows = _ingest_dir(tmp_path, src, limits=Limits(max_archive_mb=budget / (1024 * 1024)))
    assert [r.status for r in rows] == ["ok", "ok", "rejected"]
    assert rows[2].reason == "archive expands beyond the size limit"


def test_zip_in_dir_bigger_than_file_limit_is_opened(tmp_path: Path, midi_corpora: Path):
    src = tmp_path / "src"
    src.mkdir()
    tunes = sorted((midi_corpora / "tunes").glob("*.mid"))
    entries = [(f"{k}.mid", p.read_bytes()) for k, p in zip("abcde", tunes, strict=False)]
    (src / "j.zip").write_bytes(_zip_bytes(entries, deflate=False))
    shutil.copy(tunes[5], src / "f.mid")  # one plain file
    limits = Limits(max_file_mb=3000 / (1024 * 1024))  # each tune (< 2.7 KB) fits; the zip not
    assert (src / "j.zip").stat().st_size > limits.max_file_bytes
    assert all(len(d) < limits.max_file_bytes for _, d in entries)
    rows = _ingest_dir(tmp_path, src, limits=limits)
    assert summarize(rows) == {"ok": 6}


# --------------------------------------------------------------------------- check_midi


def _score_bytes(notes: list[tuple[int, int]], tpq: int = 480, bpm: float | None = None) -> bytes:
    score = symusic.Score(tpq)
    track = symusic.Track("t", 0, False)
    for start, dur in notes:
        track.notes.append(symusic.Note(start, dur, 60, 100))
    score.tracks.append(track)
    if bpm is not None:
        score.tempos.append(symusic.Tempo(0, bpm))
    return score.dumps_midi()


def test_check_midi_good(midi_corpora: Path):
    limits = Limits()
    for rel in ["chorales/bwv1.6.mid", "band/bwv123.6.mid", "tunes/BannocksOBarleyMealJig.mid"]:
        assert check_midi(_midi(midi_corpora, rel), limits) is None, rel
    assert check_midi(_score_bytes([(0, 480)], bpm=60), limits) is None


def test_check_midi_rejects(midi_corpora: Path):
    limits = Limits()
    real = _midi(midi_corpora, "chorales/bwv1.6.mid")
    assert check_midi(b"", limits) == "empty file"
    assert check_midi(b"RIFF" + real[4:], limits) == "not a MIDI file (no MThd header)"
    assert check_midi(b"MTh", limits) == "not a MIDI file (no MThd header)"
    trunc = check_midi(real[:30], limits)
    assert trunc is not None and trunc.startswith(("unreadable MIDI", "no notes")), trunc
    assert check_midi(_score_bytes([]), limits) == "no notes"

    zero_tpq = real[:12] + (0).to_bytes(2, "big") + real[14:]
    assert check_midi(zero_tpq, limits) == "absurd ticks per quarter: 0 (allowed: 24 to 32767)"
    huge_tpq = real[:12] + (30000).to_bytes(2, "big") + real[14:]
    assert check_midi(huge_tpq, Limits(max_ticks_per_quarter=960)) == (
        "absurd ticks per quarter: 30000 (allowed: 24 to 960)"
    )
    assert check_midi(huge_tpq, limits) is None  # within the default limit

    ten_hours = _score_bytes([(0, 11 * 3600 * 480)], bpm=60)
    assert check_midi(ten_hours, limits) == "too long: 11.0 hours (limit 2)"
    assert check_midi(ten_hours, Limits(max_hours=12)) is None

    three = _score_bytes([(0, 480), (480, 480), (960, 480)])
    assert check_midi(three, Limits(min_notes=4)) == "only 3 notes (minimum 4)"
    assert check_midi(three, Limits(min_notes=3)) is None


# --------------------------------------------------------------------------- dedup, groups


def test_dedup_points_to_kept_file(tmp_path: Path, music21_corpora: Path, midi_corpora: Path):
    base, band = music21_corpora / "base", midi_corpora / "band"
    rows = sources.ingest(
        "t",
        {"sources": [{"dir": {"path": str(base)}}, {"dir": {"path": str(band)}}]},
        store=tmp_path / "store",
        manifest=tmp_path / "manifest.tsv",
        limits=Limits(),
        seed=0,
    )
    dup_rows = [r for r in rows if r.status == "duplicate"]
    dup_paths = {r.path for r in dup_rows}
    # Byte-identical pairs in the folders (second name in sorted order is the duplicate).
    pairs = [
        (base, "Agnus_00 (copy).mid", "Agnus_00.mid"),
        (band, "bwv257 (copy).mid", "bwv257.mid"),
    ]
    for folder, first, second in pairs:
        assert (folder / first).read_bytes() == (folder / second).read_bytes()
    assert dup_paths == {second for _, _, second in pairs}

    index = {id(r): i for i, r in enumerate(rows)}
    for dup in dup_rows:
        kept = [r for r in rows if r.status == "ok" and r.file_id == dup.duplicate_of]
        assert len(kept) == 1, dup
        assert index[id(kept[0])] < index[id(dup)]
        assert dup.file_id == dup.duplicate_of
        assert dup.group == kept[0].group
        assert (tmp_path / "store" / f"{dup.duplicate_of}.mid").is_file()
    # One stored file per ok row, and no more.
    ok_ids = [r.file_id for r in rows if r.status == "ok"]
    assert len(ok_ids) == len(set(ok_ids))
    assert {p.name for p in (tmp_path / "store").iterdir()} == {f"{f}.mid" for f in ok_ids}


def test_group_key_chords_melody_pattern(tmp_path: Path, music21_corpora: Path, midi_corpora: Path):
    pattern = m21.FIDDLE_GROUP  # r"^(.+)_[a-g]s?$": a tune in several keys, one file a key
    src = tmp_path / "src"
    shutil.copytree(music21_corpora / "fiddle", src)  # alistair_{a..e}.mid and other tunes
    shutil.copy(midi_corpora / "tunes/CupOfTeaReel.mid", src / "cup_of_tea_c.mid")
    shutil.copy(midi_corpora / "tunes/TurnpikeReel.mid", src / "turnpike_eb.mid")
    rows = _ingest_dir(tmp_path, src, group=pattern)
    tune = m21.FIDDLE_VERSIONED[1]
    versions = [r for r in rows if r.path.startswith(f"{tune}_")]
    assert len(versions) == len(m21.FIDDLE_KEYS) == 5
    assert {r.status for r in versions} == {"ok"}
    assert len({r.file_id for r in versions}) == 5
    (group,) = {r.group for r in versions}
    # The group names the piece (its exact prefix, "piece:" today, is not the point here).
    assert group.endswith(f":{tune}")
    others = {r.path: r for r in rows if not r.path.startswith(f"{tune}_")}
    assert others["cup_of_tea_c.mid"].group.endswith(":cup_of_tea")
    assert others["cup_of_tea_c.mid"].group != group
    # "eb" is not a key the pattern knows: the file is its own group.
    eb = others["turnpike_eb.mid"]
    assert eb.group == eb.file_id
    acacia = others["AcaciaReel.mid"]  # no key suffix: its own group
    assert acacia.status == "ok" and acacia.group == acacia.file_id
    # Pure function, including nested paths.
    assert group_key(f"x.zip!a/{tune.capitalize()}_fs.mid", pattern, "id") == group


def test_group_key_pianocore_pattern(tmp_path: Path, music21_corpora: Path):
    # base/ holds Agnus_09_score_A.mid and Agnus_09_score_B.mid: two versions of one piece
    rows = _ingest_dir(tmp_path, music21_corpora / "base", group=m21.BASE_GROUP)
    little = [r for r in rows if "_score_" in r.path]
    assert len(little) == 2
    assert {r.status for r in little} == {"ok"}
    assert len({r.file_id for r in little}) == 2
    (group,) = {r.group for r in little}
    assert group.endswith(":agnus_09")
    # Files the pattern does not match are their own group.
    for r in rows:
        if r.status == "ok" and r not in little:
            assert r.group == r.file_id


def test_group_key_without_pattern():
    assert group_key("a/b_c.mid", None, "abc123") == "abc123"
    assert group_key("a/b_c.mid", "", "abc123") == "abc123"
    assert group_key("a/b_c.mid", r"^zzz", "abc123") == "abc123"
    assert group_key("a/Foo_c.mid", r"^foo", "abc123") == "abc123"  # case-sensitive regex
    whole = group_key("a/Foo_c.mid", r"^Foo", "abc123")  # whole match, lower-cased
    assert whole.endswith(":foo") and whole != "abc123"
    assert group_key("b/foo_d.mid", r"^foo", "x") == whole


# --------------------------------------------------------------------------- names, manifest


ODD_NAME = 'a "quoted" #3 – ü.mid'


def test_odd_names_round_trip(tmp_path: Path, music21_corpora: Path, midi_corpora: Path):
    src = tmp_path / "src with space"
    shutil.copytree(music21_corpora / "base", src)
    (src / "sub dir").mkdir()
    shutil.copy(midi_corpora / "chorales/bwv40.8.mid", src / "sub dir" / ODD_NAME)
    rows = _ingest_dir(tmp_path, src)
    paths = {r.path for r in rows}
    expected = {p.relative_to(src).as_posix() for p in src.rglob("*") if p.is_file()}
    assert paths == expected
    assert f"sub dir/{ODD_NAME}" in paths
    assert m21.ODD_NAME in paths  # 'Missa «Pathétique» #4, "quoted".mid'
    assert m21.BASE_NESTED[1] in paths and m21.DUPLICATE_NAME in paths
    assert {r.status for r in rows} == {"ok", "duplicate", "rejected"}

    back = read_manifest(tmp_path / "manifest.tsv")
    assert back == rows
    # And once more through write_manifest/read_manifest directly.
    write_manifest(back, tmp_path / "again.tsv")
    assert read_manifest(tmp_path / "again.tsv") == rows
    assert (tmp_path / "again.tsv").read_bytes() == (tmp_path / "manifest.tsv").read_bytes()


def test_manifest_round_trip_of_hand_made_rows(tmp_path: Path):
    rows = [
        Row("ab" * 32, "dir:/x y", ODD_NAME, 12, "ok", "", "", 'dir:/x y:a "q"'),
        Row("", "tegridy:z.zip", "a/b.zip!c.mid", 0, "rejected", "not a MIDI file"),
        Row("cd" * 32, "s", "comma, and ;semicolon.mid", 7, "duplicate", "", "cd" * 32, "g"),
    ]
    write_manifest(rows, tmp_path / "m.tsv")
    assert read_manifest(tmp_path / "m.tsv") == rows


def test_read_manifest_refuses_other_tsv(tmp_path: Path):
    (tmp_path / "x.tsv").write_text("a\tb\n1\t2\n")
    with pytest.raises(CorpusError, match="not a manifest"):
        read_manifest(tmp_path / "x.tsv")


def test_manifest_keeps_hex_like_names(tmp_path: Path, midi_corpora: Path):
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(midi_corpora / "chorales/bwv1.6.mid", src / "loop_0x1f.mid")
    rows = _ingest_dir(tmp_path, src)
    assert [r.path for r in rows] == ["loop_0x1f.mid"]
    assert read_manifest(tmp_path / "manifest.tsv") == rows


def test_non_utf8_file_name_does_not_crash(tmp_path: Path, midi_corpora: Path):
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(midi_corpora / "chorales/bwv1.6.mid", src / "fine.mid")
    raw = os.fsencode(src) + b"/caf\xe9.mid"
    with open(raw, "wb") as fh:
        fh.write((midi_corpora / "chorales/bwv11.6.mid").read_bytes())
    rows = _ingest_dir(tmp_path, src)
    assert len(rows) == 2 and {r.status for r in rows} == {"ok"}
    assert sorted(r.path for r in rows) == ["caf\\xe9.mid", "fine.mid"]  # escaped, not lost
    assert read_manifest(tmp_path / "manifest.tsv") == rows


def test_ingest_is_idempotent(tmp_path: Path, midi_corpora: Path):
    rows = _ingest_dir(tmp_path, midi_corpora / "chorales")
    store = tmp_path / "store"
    stamps = {p.name: p.stat().st_mtime_ns for p in store.iterdir()}
    manifest = (tmp_path / "manifest.tsv").read_bytes()
    assert len(stamps) == len(m21.CHORALES) == 14
    again = _ingest_dir(tmp_path, midi_corpora / "chorales")
    assert again == rows
    assert {p.name: p.stat().st_mtime_ns for p in store.iterdir()} == stamps
    assert (tmp_path / "manifest.tsv").read_bytes() == manifest


def test_all_rejected_raises(tmp_path: Path, midi_corpora: Path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "notes.txt").write_text("no music here")
    (src / "empty.mid").write_bytes(b"")
    (src / "fake.mid").write_bytes(b"RIFF0000")
    (src / "trunc.mid").write_bytes(_midi(midi_corpora, "chorales/bwv1.6.mid")[:30])
    with pytest.raises(CorpusError, match="no usable MIDI file") as exc:
        _ingest_dir(tmp_path, src)
    assert "among 4 files" in str(exc.value)
    assert "empty file" in str(exc.value)
    assert not (tmp_path / "manifest.tsv").exists()


def test_empty_dir_raises(tmp_path: Path):
    (tmp_path / "src").mkdir()
    with pytest.raises(CorpusError, match="no usable MIDI file among 0 files"):
        _ingest_dir(tmp_path, tmp_path / "src")


def test_missing_dir_raises(tmp_path: Path):
    with pytest.raises(CorpusError, match="does not exist"):
        list(iter_dir(tmp_path / "nope", "s", Limits()))


# --------------------------------------------------------------------------- shards, select


def test_shard_of_deterministic_and_in_range():
    rng = random.Random(7)
    ids = [sha256_bytes(rng.randbytes(16)) for _ in range(2000)]
    for shards in (1, 2, 7, 16):
        got = [shard_of(i, shards) for i in ids]
        assert got == [shard_of(i, shards) for i in ids]
        assert all(0 <= s < shards for s in got)
        if shards > 1:
            assert len(set(got)) == shards  # 2000 random ids reach every shard
    assert shard_of("00000000" + "f" * 56, 7) == 0
    assert shard_of("0000000a" + "0" * 56, 7) == 3
    assert shard_of("ffffffff" + "0" * 56, 16) == 0xFFFFFFFF % 16


def _found(n_ok: int, n_refused: int) -> list[Found]:
    out = [Found("s", f"f{i:03d}.mid", data=b"x") for i in range(n_ok)]
    out += [Found("s", f"r{i:03d}.txt", reason="not a MIDI file") for i in range(n_refused)]
    out.sort(key=lambda f: f.path[1:])
    return out


def test_select_is_seeded_and_keeps_refused():
    found = _found(40, 6)
    a = select(found, 10, seed=3)
    b = select(_found(40, 6), 10, seed=3)
    c = select(found, 10, seed=4)
    assert [f.path for f in a] == [f.path for f in b]
    assert [f.path for f in a] != [f.path for f in c]
    for got in (a, c):
        assert sum(f.is_midi_candidate for f in got) == 10
        assert sum(not f.is_midi_candidate for f in got) == 6
        order = [f.path for f in found]
        assert [order.index(f.path) for f in got] == sorted(order.index(f.path) for f in got)
    assert select(found, None, seed=0) == found
    assert select(found, 40, seed=0) == found
    assert select(found, 100, seed=0) == found


def test_limit_in_dir_source(tmp_path: Path, midi_corpora: Path):
    src = tmp_path / "src"
    shutil.copytree(midi_corpora / "chorales", src)  # 14 pieces
    (src / "readme.txt").write_text("x")
    first = _ingest_dir(tmp_path / "a", src, limit=5)
    second = _ingest_dir(tmp_path / "b", src, limit=5)
    assert first == second
    assert summarize(first) == {"ok": 5, "rejected": 1}
    assert any(r.path == "readme.txt" and r.status == "rejected" for r in first)


# --------------------------------------------------------------------------- iter_dir safety


def test_iter_dir_refuses_links_and_fifos(tmp_path: Path, midi_corpora: Path):
    src = tmp_path / "src"
    src.mkdir()
    outside = tmp_path / "outside.mid"
    shutil.copy(midi_corpora / "chorales/bwv1.6.mid", outside)
    shutil.copy(midi_corpora / "chorales/bwv11.6.mid", src / "real.mid")
    os.symlink(outside, src / "link.mid")
    os.symlink(tmp_path, src / "linkdir")
    os.symlink(src / "missing.mid", src / "dangling.mid")
    os.mkfifo(src / "pipe.mid")
    found = {f.path: f for f in iter_dir(src, "s", Limits())}
    assert set(found) == {"real.mid", "link.mid", "linkdir", "dangling.mid", "pipe.mid"}
    for name in ("link.mid", "linkdir", "dangling.mid"):
        assert found[name].reason == "symbolic link"
        assert found[name].content() is None
    assert found["pipe.mid"].reason == "special file (device, fifo or socket)"
    assert found["pipe.mid"].content() is None  # never opened: a fifo would block
    assert found["real.mid"].reason is None
    assert found["real.mid"].content() == (midi_corpora / "chorales/bwv11.6.mid").read_bytes()

    rows = _ingest_dir(tmp_path, src)
    assert summarize(rows) == {"ok": 1, "rejected": 4}
    assert sha256_bytes(outside.read_bytes()) not in {r.file_id for r in rows}
