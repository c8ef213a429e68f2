"""Corpus sources (music21, tegridy, dir) on the real music21 corpus and the Tegridy mirror."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tokentransfer.corpus import (
    NESTED_SEPARATOR,
    CorpusError,
    Limits,
    check_midi,
    read_manifest,
    sources,
    summarize,
)
from tokentransfer.fileio import sha256_bytes

JSBACH = "www_jsbach_net_mirror_copy.zip"
BCLASSI = "B-CLassi-MIDI-Dataset-CC-BY-NC-SA.zip"
BACH3 = {"music21": {"composer": "bach", "limit": 3}}


# --------------------------------------------------------------------------- music21


@pytest.fixture(scope="module")
def bach_seed0():
    found, group = sources.collect(BACH3, limits=Limits(), seed=0)
    return found, group


def test_music21_collect_returns_midi(bach_seed0):
    found, group = bach_seed0
    assert group is None
    assert len(found) == 3
    for f in found:
        assert f.source == "music21:bach"
        assert f.reason is None
        assert f.path.startswith("bach/")
        assert f.data is not None and f.data[:4] == b"MThd"
        assert f.size == len(f.data)
        assert check_midi(f.data, Limits()) is None
    assert [f.path for f in found] == sorted(f.path for f in found)
    assert len({sha256_bytes(f.data) for f in found}) == 3


def test_music21_same_seed_same_bytes(bach_seed0):
    found, _ = bach_seed0
    again, _ = sources.collect(BACH3, limits=Limits(), seed=0)
    assert [f.path for f in again] == [f.path for f in found]
    assert [f.data for f in again] == [f.data for f in found]


def test_music21_export_is_deterministic_across_processes(bach_seed0):
    """A fresh interpreter exports the same works to the same bytes (no run-dependent state)."""
    found, _ = bach_seed0
    code = (
        "from tokentransfer import sources\n"
        "from tokentransfer.corpus import Limits\n"
        f"found, _ = sources.collect({BACH3!r}, limits=Limits(), seed=0)\n"
        "from tokentransfer.fileio import sha256_bytes\n"
        "for f in found: print(f.path, sha256_bytes(f.data))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300
    ).stdout.split("\n")
    assert [line for line in out if line] == [f"{f.path} {sha256_bytes(f.data)}" for f in found]


def test_music21_other_seed_other_selection(bach_seed0):
    found, _ = bach_seed0
    other, _ = sources.collect(BACH3, limits=Limits(), seed=1)
    assert len(other) == 3
    assert [f.path for f in other] != [f.path for f in found]


def test_music21_unknown_composer():
    with pytest.raises(CorpusError, match="no works of composer 'nosuchcomposer'"):
        sources.collect({"music21": {"composer": "nosuchcomposer"}}, limits=Limits(), seed=0)


def test_music21_path_filter_selecting_nothing():
    with pytest.raises(CorpusError, match="selects no works"):
        sources.collect(
            {"music21": {"composer": "bach", "path": "nothing/*.xyz"}}, limits=Limits(), seed=0
        )


def test_source_kind_errors():
    with pytest.raises(CorpusError, match="unknown source kind"):
        sources.collect({"ftp": {"path": "x"}}, limits=Limits(), seed=0)
    with pytest.raises(CorpusError, match="exactly one kind"):
        sources.collect({"dir": {"path": "x"}, "tegridy": {"zip": "y"}}, limits=Limits(), seed=0)
    with pytest.raises(CorpusError, match="no local copy"):
        sources.collect({"tegridy": {"zip": JSBACH}}, limits=Limits(), seed=0, tegridy_zips={})


# --------------------------------------------------------------------------- tegridy


def test_tegridy_jsbach_mirror_ingest(tmp_path: Path, tegridy_dir: Path):
    rows = sources.ingest(
        "jsbach",
        {"sources": [{"tegridy": {"zip": JSBACH}}]},
        store=tmp_path / "store",
        manifest=tmp_path / "manifest.tsv",
        limits=Limits(),
        seed=0,
        tegridy_zips={JSBACH: str(tegridy_dir / JSBACH)},
    )
    counts = summarize(rows)
    reasons = Counter(r.reason for r in rows if r.status == "rejected")
    ok = [r for r in rows if r.status == "ok"]
    nested_ok = [r for r in ok if NESTED_SEPARATOR in r.path]
    suffixes = Counter(Path(r.path).suffix.lower() for r in rows if r.status == "rejected")
    print(
        f"jsbach: {counts}; rejected reasons {dict(reasons)}; suffixes {dict(suffixes)}; "
        f"ok inside nested zips {len(nested_ok)}"
    )

    assert {r.source for r in rows} == {f"tegridy:{JSBACH}"}
    # Nested zips were opened: ok rows like midi/bwv1001.zip!something.mid.
    assert len(nested_ok) > 100
    for r in nested_ok:
        outer, inner = r.path.split(NESTED_SEPARATOR, 1)
        assert outer.endswith(".zip") and inner.lower().endswith((".mid", ".midi"))
    # html and gif files are refused as not MIDI.
    for suffix in (".html", ".gif"):
        hits = [r for r in rows if r.path.lower().endswith(suffix)]
        assert hits, suffix
        assert {(r.status, r.reason) for r in hits} == {("rejected", "not a MIDI file")}
    # About 490 unique MIDI files (the count); duplicates point to kept ones.
    assert 450 <= counts["ok"] <= 530, counts
    assert counts.get("duplicate", 0) > 0
    ok_ids = {r.file_id for r in ok}
    assert len(ok_ids) == len(ok)
    assert all(r.duplicate_of in ok_ids for r in rows if r.status == "duplicate")
    stored = {p.name for p in (tmp_path / "store").iterdir()}
    assert stored == {f"{fid}.mid" for fid in ok_ids}
    assert read_manifest(tmp_path / "manifest.tsv") == rows


def test_tegridy_include_exclude(tegridy_dir: Path):
    zips = {BCLASSI: str(tegridy_dir / BCLASSI)}
    everything, _ = sources.collect(
        {"tegridy": {"zip": BCLASSI}}, limits=Limits(), seed=0, tegridy_zips=zips
    )
    bad, _ = sources.collect(
        {"tegridy": {"zip": BCLASSI, "include": "^BAD/"}},
        limits=Limits(),
        seed=0,
        tegridy_zips=zips,
    )
    not_bad, _ = sources.collect(
        {"tegridy": {"zip": BCLASSI, "exclude": "^BAD/"}},
        limits=Limits(),
        seed=0,
        tegridy_zips=zips,
    )
    print(f"B-CLassi: all {len(everything)}, include ^BAD/ {len(bad)}, exclude {len(not_bad)}")
    assert bad and not_bad
    assert all(f.path.startswith("BAD/") for f in bad)
    assert not any(f.path.startswith("BAD/") for f in not_bad)
    assert len(bad) + len(not_bad) == len(everything)
    assert {f.path for f in bad} | {f.path for f in not_bad} == {f.path for f in everything}
    # Both filters together; then a limit applied after them, seeded.
    spec = {"zip": BCLASSI, "include": "^BAD/", "exclude": r"_0000[0-4]\.mid$"}
    both, _ = sources.collect({"tegridy": spec}, limits=Limits(), seed=5, tegridy_zips=zips)
    dropped = {f.path for f in bad} - {f.path for f in both}
    assert len(dropped) == 5
    assert all(re.fullmatch(r"BAD/.*_0000[0-4]\.mid", p) for p in dropped)
    limited = {"tegridy": {**spec, "limit": 10}}
    sample, _ = sources.collect(limited, limits=Limits(), seed=5, tegridy_zips=zips)
    again, _ = sources.collect(limited, limits=Limits(), seed=5, tegridy_zips=zips)
    other, _ = sources.collect(limited, limits=Limits(), seed=6, tegridy_zips=zips)
    assert len(sample) == 10
    assert {f.path for f in sample} <= {f.path for f in both}
    assert [f.path for f in again] == [f.path for f in sample]
    assert [f.path for f in other] != [f.path for f in sample]


def test_mixed_corpus_dedups_across_sources(tmp_path: Path, tegridy_dir: Path, fixtures_dir: Path):
    """The bach fixtures are copies of files in the jsbach zip: listed after it, they are all
    duplicates of its files, and the manifest keeps both sources in config order."""
    rows = sources.ingest(
        "mixed",
        {
            "sources": [
                {"tegridy": {"zip": JSBACH}},
                {"dir": {"path": str(fixtures_dir / "bach")}},
            ]
        },
        store=tmp_path / "store",
        manifest=tmp_path / "manifest.tsv",
        limits=Limits(),
        seed=0,
        tegridy_zips={JSBACH: str(tegridy_dir / JSBACH)},
    )
    fixture_rows = [r for r in rows if r.source.startswith("dir:")]
    assert len(fixture_rows) == 14
    assert {r.status for r in fixture_rows} == {"duplicate"}
    first_dir = next(i for i, r in enumerate(rows) if r.source.startswith("dir:"))
    assert all(r.source.startswith("tegridy:") for r in rows[:first_dir])
    kept = {r.file_id for r in rows[:first_dir] if r.status == "ok"}
    assert {r.duplicate_of for r in fixture_rows} <= kept
