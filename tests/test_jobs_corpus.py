"""The job functions of the corpus, tokenization and split rules (:mod:`tokentransfer.jobs.corpus`,
:mod:`tokentransfer.jobs.tokenize`, ``run_split`` of :mod:`tokentransfer.jobs.model`), each on
tiny real inputs, asserting on what it writes.

Real music: the fiddle tunes and the band's chorales exported from music21's corpus (the
``midi_corpora`` fixture) ingested by ``run_ingest`` itself, tokenized by the real miditok REMI
tokenizer; a pinned Tegridy zip (from the ``tegridy_dir`` mirror) downloaded by
``run_fetch_tegridy`` from a real HTTP server on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from tests.test_tegridy import SMALL, _serve, _upstream
from tokentransfer.corpus import CorpusError, read_manifest
from tokentransfer.fileio import sha256_file
from tokentransfer.jobs.corpus import run_fetch_tegridy, run_ingest
from tokentransfer.jobs.model import run_split
from tokentransfer.jobs.tokenize import run_token_index, run_tokenize_shard, run_tokenizer
from tokentransfer.model import ModelError
from tokentransfer.shards import shard_digests, shard_of
from tokentransfer.split import read_split
from tokentransfer.tegridy import TegridyError, catalogue
from tokentransfer.tokenize import load_tokenizer, read_shard, save_tokenizer, tokenize_file

#: the tunes' kind (jig, reel, hornpipe) is their group: three groups
TUNE_GROUP = "(Jig|Reel|Hornpipe)$"
SHARDS = 2


@pytest.fixture(autouse=True)
def _no_proxy_for_loopback(monkeypatch: pytest.MonkeyPatch):
    """A proxy set in the environment must not swallow requests to the local test server."""
    for var in ("no_proxy", "NO_PROXY"):
        monkeypatch.setenv(var, "127.0.0.1,localhost")


def _sources(midi_corpora: Path) -> list[dict]:
    return [
        {"dir": {"path": str(midi_corpora / "tunes"), "group": TUNE_GROUP}},
        {"dir": {"path": str(midi_corpora / "band")}},
    ]


@pytest.fixture(scope="module")
def ingested(tmp_path_factory, midi_corpora):
    """``run_ingest`` of the tunes (grouped by kind) and the band (one exact copy)."""
    out = tmp_path_factory.mktemp("jobs_corpus")
    counts = run_ingest(
        corpus="tunes",
        sources=_sources(midi_corpora),
        store=str(out / "midi"),
        manifest=str(out / "manifest.tsv"),
        limits={"max_file_mb": 4.0},
        seed=0,
        zips={},
    )
    return SimpleNamespace(
        out=out,
        counts=counts,
        store=out / "midi",
        manifest=str(out / "manifest.tsv"),
        rows=read_manifest(out / "manifest.tsv"),
    )


@pytest.fixture(scope="module")
def tokenizer_json(tmp_path_factory, tok) -> str:
    path = tmp_path_factory.mktemp("jobs_tokenizer") / "tokenizer.json"
    save_tokenizer(tok, path)
    return str(path)


@pytest.fixture(scope="module")
def shards(ingested, tokenizer_json):
    """Both shards of the ingested corpus by ``run_tokenize_shard``, each with its cache."""
    digests = shard_digests(ingested.manifest, SHARDS)
    results, paths = [], []
    for i in range(SHARDS):
        path = ingested.out / "tokens" / f"{i:04d}.h5"
        results.append(
            run_tokenize_shard(
                tokenizer_json=tokenizer_json,
                manifest=ingested.manifest,
                store=str(ingested.store),
                corpus="tunes",
                shard=f"{i:04d}",
                shards=SHARDS,
                files=digests[i],
                out=str(path),
                cache=str(ingested.out / "tokens" / ".cache" / f"{i:04d}.h5"),
            )
        )
        paths.append(str(path))
    return SimpleNamespace(results=results, paths=paths, digests=digests)


# --------------------------------------------------------------------------- fetch_tegridy


def test_run_fetch_tegridy_downloads_the_pinned_zip_over_http(tmp_path, tegridy_dir, caplog):
    good = (tegridy_dir / SMALL).read_bytes()
    _upstream(tmp_path / "upstream", SMALL, good)
    out = tmp_path / "resources" / "tegridy" / SMALL
    with _serve(tmp_path / "upstream") as url, caplog.at_level(logging.INFO):
        got = run_fetch_tegridy(zipname=SMALL, out=str(out), url=url)
    assert Path(got) == out and out.read_bytes() == good
    assert sha256_file(out) == catalogue()[SMALL].sha256
    assert sorted(p.name for p in out.parent.iterdir()) == [SMALL]  # no temporary left
    assert f"downloaded {SMALL} ({len(good)} bytes, checksum ok)" in caplog.messages


def test_run_fetch_tegridy_refuses_a_corrupt_zip_and_keeps_the_old_file(tmp_path, tegridy_dir):
    good = (tegridy_dir / SMALL).read_bytes()
    bad = bytearray(good)
    bad[100] ^= 0x01  # same size, one bit off
    _upstream(tmp_path / "upstream", SMALL, bytes(bad))
    out = tmp_path / "resources" / SMALL
    with _serve(tmp_path / "upstream") as url:
        with pytest.raises(TegridyError, match="checksum"):
            run_fetch_tegridy(zipname=SMALL, out=str(out), url=url)
        assert not out.exists() and list(out.parent.iterdir()) == []
        out.write_bytes(good)
        with pytest.raises(TegridyError, match="checksum"):
            run_fetch_tegridy(zipname=SMALL, out=str(out), url=url)
    assert out.read_bytes() == good
    with pytest.raises(TegridyError, match="unknown Tegridy zip"):
        run_fetch_tegridy(
            zipname="nothing.zip", out=str(tmp_path / "x.zip"), url="http://127.0.0.1:9/"
        )


def test_run_ingest_of_a_fetched_tegridy_zip_with_a_seeded_limit(tmp_path, tegridy_dir):
    """The zip ``run_fetch_tegridy`` downloaded is what ``run_ingest`` reads; ``limit`` keeps a
    sample drawn with the config's seed, the same one each time."""
    _upstream(tmp_path / "upstream", SMALL, (tegridy_dir / SMALL).read_bytes())
    zip_path = tmp_path / "resources" / SMALL
    with _serve(tmp_path / "upstream") as url:
        run_fetch_tegridy(zipname=SMALL, out=str(zip_path), url=url)
    manifests = []
    for run in ("a", "b"):
        counts = run_ingest(
            corpus="gothic",
            sources=[{"tegridy": {"zip": SMALL, "limit": 3}}],
            store=str(tmp_path / run / "midi"),
            manifest=str(tmp_path / run / "manifest.tsv"),
            limits=None,
            seed=5,
            zips={SMALL: str(zip_path)},
        )
        rows = read_manifest(tmp_path / run / "manifest.tsv")
        assert counts == {s: sum(r.status == s for r in rows) for s in counts}
        assert counts["ok"] >= 1 and counts["ok"] + counts.get("duplicate", 0) <= 3
        assert {r.source for r in rows} == {f"tegridy:{SMALL}"}
        manifests.append((tmp_path / run / "manifest.tsv").read_bytes())
    assert manifests[0] == manifests[1]


# --------------------------------------------------------------------------- ingest


def test_run_ingest_stores_each_accepted_file_once_by_its_hash(ingested, midi_corpora):
    tunes = sorted((midi_corpora / "tunes").glob("*.mid"))
    band = sorted((midi_corpora / "band").glob("*.mid"))
    assert ingested.counts == {"ok": len(tunes) + len(band) - 1, "duplicate": 1}
    assert len(ingested.rows) == len(tunes) + len(band)
    ok = [r for r in ingested.rows if r.status == "ok"]
    assert sorted(p.name for p in ingested.store.iterdir()) == sorted(
        f"{r.file_id}.mid" for r in ok
    )
    for r in ok:  # stored under the sha256 of its bytes, the bytes unchanged
        data = (ingested.store / f"{r.file_id}.mid").read_bytes()
        assert hashlib.sha256(data).hexdigest() == r.file_id and len(data) == r.bytes
    (dup,) = [r for r in ingested.rows if r.status == "duplicate"]
    (kept,) = [r for r in ok if r.file_id == dup.duplicate_of]  # the same bytes, kept once
    assert {dup.path, kept.path} == {"bwv257.mid", "bwv257 (copy).mid"}
    groups = {r.group for r in ok if r.source.endswith("tunes")}
    assert groups == {"piece:jig", "piece:reel", "piece:hornpipe"}


def test_run_ingest_is_deterministic_and_logs_its_counts(ingested, midi_corpora, tmp_path, caplog):
    with caplog.at_level(logging.INFO):
        counts = run_ingest(
            corpus="again",
            sources=_sources(midi_corpora),
            store=str(tmp_path / "midi"),
            manifest=str(tmp_path / "manifest.tsv"),
            limits={"max_file_mb": 4.0},
            seed=0,
            zips={},
        )
    assert counts == ingested.counts
    assert (tmp_path / "manifest.tsv").read_bytes() == Path(ingested.manifest).read_bytes()
    assert f"corpus again: duplicate 1, ok {counts['ok']}" in caplog.messages


def test_run_ingest_refuses_a_corpus_with_no_usable_file(tmp_path, ingested):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.mid").write_text("not MIDI at all")
    manifest = tmp_path / "manifest.tsv"
    shutil.copy(ingested.manifest, manifest)
    with pytest.raises(CorpusError, match="corpus empty: no usable MIDI file among 1 files"):
        run_ingest(
            corpus="empty",
            sources=[{"dir": {"path": str(tmp_path / "notes")}}],
            store=str(tmp_path / "midi"),
            manifest=str(manifest),
            limits={},
            seed=0,
            zips={},
        )
    assert manifest.read_bytes() == Path(ingested.manifest).read_bytes()  # the old one kept


# --------------------------------------------------------------------------- tokenizer


def test_run_tokenizer_from_config_is_the_configured_tokenizer(tmp_path, tok, caplog):
    cfg = {"kind": "REMI", "use_programs": True}
    model = {"source": "pretrain", "path": None, "tokenizer": None}
    with caplog.at_level(logging.INFO):
        digest = run_tokenizer(tokenizer_cfg=cfg, model=model, out=str(tmp_path / "a.json"))
    assert digest == sha256_file(tmp_path / "a.json")
    loaded = load_tokenizer(tmp_path / "a.json")
    assert type(loaded).__name__ == "REMI" and len(loaded) == len(tok)
    assert loaded.config.use_programs
    assert f"tokenizer REMI: {len(tok)} tokens, sha256 {digest}" in caplog.messages
    # the same config, the same bytes; the config dict is not changed
    assert run_tokenizer(tokenizer_cfg=cfg, model=model, out=str(tmp_path / "b.json")) == digest
    assert cfg == {"kind": "REMI", "use_programs": True}
    other = run_tokenizer(
        tokenizer_cfg={"kind": "REMI", "use_programs": False},
        model=model,
        out=str(tmp_path / "c.json"),
    )
    assert other != digest and len(load_tokenizer(tmp_path / "c.json")) < len(tok)


def test_run_tokenizer_of_a_local_model_takes_its_tokenizer(tmp_path, tok, tokenizer_json):
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    shutil.copy(tokenizer_json, model_dir / "tokenizer.json")
    (model_dir / "config.json").write_text(json.dumps({"vocab_size": len(tok)}))
    model = {"source": "local", "path": str(model_dir), "tokenizer": None}
    # the config's tokenizer is not read: the model's is taken as it is
    out = tmp_path / "tokenizer.json"
    digest = run_tokenizer(tokenizer_cfg={"kind": "TSD"}, model=model, out=str(out))
    assert (
        digest == sha256_file(tokenizer_json)
        and out.read_bytes() == Path(tokenizer_json).read_bytes()
    )
    (model_dir / "config.json").write_text(json.dumps({"vocab_size": len(tok) + 1}))
    with pytest.raises(ModelError, match="vocab mismatch"):
        run_tokenizer(tokenizer_cfg={}, model=model, out=str(tmp_path / "other.json"))


# --------------------------------------------------------------------------- tokenize_shard


def test_run_tokenize_shard_tokenizes_exactly_the_shards_files(
    ingested, shards, tok, tokenizer_json
):
    ok = sorted(r.file_id for r in ingested.rows if r.status == "ok")
    got: list[str] = []
    for i, (path, result) in enumerate(zip(shards.paths, shards.results, strict=True)):
        mine = [f for f in ok if shard_of(f, SHARDS) == i]
        assert result.file_ids == mine and result.failed == [] and result.reused == 0
        shard = read_shard(path)
        assert shard.file_ids == mine and shard.tokenizer_hash == sha256_file(tokenizer_json)
        for j, fid in enumerate(mine):
            want = tokenize_file(tok, ingested.store / f"{fid}.mid")
            assert np.array_equal(shard.sequence(j), want) and len(want) > 0
        assert result.tokens == len(shard.ids)
        got += mine
    assert sorted(got) == ok  # every accepted file in one shard


def test_run_tokenize_shard_takes_unchanged_files_from_its_cache(
    ingested, shards, tokenizer_json, tmp_path, caplog
):
    cache = ingested.out / "tokens" / ".cache" / "0000.h5"
    assert cache.is_file()
    with caplog.at_level(logging.INFO):
        again = run_tokenize_shard(
            tokenizer_json=tokenizer_json,
            manifest=ingested.manifest,
            store=str(ingested.store),
            corpus="tunes",
            shard="0000",
            shards=SHARDS,
            files=shards.digests[0],
            out=str(tmp_path / "0000.h5"),
            cache=str(cache),
        )
    first = shards.results[0]
    assert again.reused == len(first.file_ids) > 0 and again.file_ids == first.file_ids
    assert all(np.array_equal(a, b) for a, b in zip(again.sequences, first.sequences, strict=True))
    before, after = read_shard(shards.paths[0]), read_shard(tmp_path / "0000.h5")
    assert np.array_equal(before.ids, after.ids) and before.file_ids == after.file_ids
    message = (
        f"{len(first.file_ids)} files, {first.tokens} tokens, 0 failed in "
        f"{again.seconds:.2f} s ({len(first.file_ids)} files from the cache)"
    )
    assert message in caplog.messages


def test_run_tokenize_shard_refuses_a_manifest_rewritten_since_planning(
    ingested, shards, tokenizer_json, tmp_path
):
    out = tmp_path / "0000.h5"
    with pytest.raises(CorpusError, match="holds other files than planned"):
        run_tokenize_shard(
            tokenizer_json=tokenizer_json,
            manifest=ingested.manifest,
            store=str(ingested.store),
            corpus="tunes",
            shard="0000",
            shards=SHARDS,
            files=shards.digests[1],  # the other shard's digest
            out=str(out),
        )
    assert not out.exists()


# --------------------------------------------------------------------------- token_index


def test_run_token_index_lists_every_file_of_every_shard(ingested, shards, tmp_path, caplog):
    with caplog.at_level(logging.INFO):
        totals = run_token_index(
            shards=list(reversed(shards.paths)), out=str(tmp_path / "index.tsv"), corpus="tunes"
        )
    n_ok = ingested.counts["ok"]
    tokens = sum(r.tokens for r in shards.results)
    assert totals == {"files": n_ok, "failed": 0, "tokens": tokens}
    lines = (tmp_path / "index.tsv").read_text().splitlines()
    assert lines[0] == "file_id\tshard\ttokens\tstatus\treason" and len(lines) == 1 + n_ok
    rows = [line.split("\t") for line in lines[1:]]
    assert [r[1] for r in rows] == sorted(r[1] for r in rows)  # shard order, whatever is given
    assert sum(int(r[2]) for r in rows) == tokens and {r[3] for r in rows} == {"ok"}
    assert f"corpus tunes: {totals}" in caplog.messages


# --------------------------------------------------------------------------- split


def test_run_split_holds_out_whole_groups_the_same_way_each_time(ingested, tmp_path, caplog):
    with caplog.at_level(logging.INFO):
        counts = run_split(
            manifest=ingested.manifest,
            out=str(tmp_path / "a.tsv"),
            corpus="tunes",
            fraction=0.2,
            held="test",
            seed=0,
        )
    ok = {r.file_id: r.group for r in ingested.rows if r.status == "ok"}
    parts = read_split(tmp_path / "a.tsv")
    assert set(parts) == set(ok) and sum(counts.values()) == len(ok)
    assert counts == {p: sum(v == p for v in parts.values()) for p in ("train", "test")}
    n_groups = len(set(ok.values()))  # 3 tune kinds, and each band piece its own group
    by_group: dict[str, set[str]] = {}
    for fid, part in parts.items():
        by_group.setdefault(ok[fid], set()).add(part)
    assert all(len(v) == 1 for v in by_group.values())  # no group straddles the split
    assert sum(v == {"test"} for v in by_group.values()) == int(np.ceil(0.2 * n_groups))
    assert f"split of tunes: {counts}" in caplog.messages
    again = run_split(
        manifest=ingested.manifest,
        out=str(tmp_path / "b.tsv"),
        corpus="tunes",
        fraction=0.2,
        held="test",
        seed=0,
    )
    assert (
        again == counts and (tmp_path / "a.tsv").read_bytes() == (tmp_path / "b.tsv").read_bytes()
    )
    val = run_split(
        manifest=ingested.manifest,
        out=str(tmp_path / "val.tsv"),
        corpus="tunes",
        fraction=0.2,
        held="val",
        seed=0,
    )
    assert val == {"train": counts["train"], "val": counts["test"]}
