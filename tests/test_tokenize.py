"""Per-file tokenization into HDF5 shards, with real miditok on real MIDI."""

from __future__ import annotations

import hashlib
import json

import h5py
import numpy as np
import pytest
import symusic
from miditok import REMI, TokenizerConfig

from tokentransfer.fileio import sha256_file
from tokentransfer.tokenize import (
    TOKENIZER_KINDS,
    TokenizeError,
    build_tokenizer,
    load_tokenizer,
    read_listing,
    read_shard,
    save_tokenizer,
    tokenize_file,
    tokenize_shard,
    write_index,
)


@pytest.fixture(scope="module")
def store(tmp_path_factory, midi_corpora):
    """A content-addressed store of Bach chorales (tests/music21_corpora.py), as ingestion
    writes it."""
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


def test_build_tokenizer_from_config():
    tok = build_tokenizer({"kind": "REMI", "use_programs": True, "beat_res": {"0-4": 8}})
    assert type(tok).__name__ == "REMI"
    assert tok.config.use_programs
    assert tok.config.beat_res == {(0, 4): 8}


def test_every_listed_kind_works_and_no_other_is_built():
    """Each kind of TOKENIZER_KINDS (the schema's enum lists the same) builds a tokenizer whose
    token stream the grammar models; a miditok class the grammar does not model is refused
    when the tokenizer is built, naming the config key."""
    from tokentransfer.config import SCHEMA_PATH, load_yaml
    from tokentransfer.grammar import unsupported

    schema = load_yaml(SCHEMA_PATH)["properties"]["tokenizer"]["properties"]["kind"]
    assert tuple(schema["enum"]) == TOKENIZER_KINDS and schema["default"] in TOKENIZER_KINDS
    for kind in TOKENIZER_KINDS:
        assert unsupported(build_tokenizer({"kind": kind, "use_programs": True})) is None, kind
    for kind in ("TSD", "MIDILike", "Structured", "CPWord", "Octuple", "MuMIDI", "MMM"):
        with pytest.raises(TokenizeError, match=f"tokenizer.kind: '{kind}' is not one of"):
            build_tokenizer({"kind": kind})


def test_build_tokenizer_refuses_unknown_field():
    with pytest.raises(TokenizeError, match="config key tokenizer"):
        build_tokenizer({"kind": "REMI", "no_such_field": 1})
    with pytest.raises(TokenizeError, match="tokenizer.kind"):
        build_tokenizer({"kind": "NOPE"})


def test_saved_tokenizer_round_trips_and_hash_is_stable(tmp_path, tok_path):
    again = tmp_path / "again.json"
    digest = save_tokenizer(build_tokenizer({"kind": "REMI", "use_programs": True}), again)
    assert digest == sha256_file(tok_path)  # same config -> same bytes -> same hash
    other = save_tokenizer(build_tokenizer({"kind": "REMI"}), tmp_path / "other.json")
    assert other != digest
    loaded = load_tokenizer(tok_path)
    assert loaded.vocab == build_tokenizer({"kind": "REMI", "use_programs": True}).vocab


def test_load_tokenizer_errors_name_the_file(tmp_path):
    with pytest.raises(TokenizeError, match="not found"):
        load_tokenizer(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"hello": 1}))
    with pytest.raises(TokenizeError, match="bad.json"):
        load_tokenizer(bad)


def test_tokenize_file_matches_plain_miditok(store, tok_path):
    path = sorted(store.glob("*.mid"))[0]
    ours = tokenize_file(load_tokenizer(tok_path), path)
    plain = REMI(TokenizerConfig(use_programs=True)).encode(symusic.Score(str(path))).ids
    assert ours.dtype == np.int32
    assert ours.tolist() == plain


def test_shard_round_trip_isolates_a_bad_file(tmp_path, store, tok_path):
    paths = [str(p) for p in sorted(store.glob("*.mid"))][:4]
    bad = tmp_path / ("f" * 64 + ".mid")
    bad.write_bytes(b"MThd\x00\x00\x00\x06garbage")  # a truncated file that slipped through
    out = tmp_path / "0000.h5"
    result = tokenize_shard(tok_path, [*paths, str(bad)], out, corpus="bach", shard="0000")
    assert len(result.file_ids) == 4 and [f for f, _ in result.failed] == ["f" * 64]
    shard = read_shard(out)
    assert shard.file_ids == sorted(p.split("/")[-1][:-4] for p in paths)
    assert shard.tokenizer_hash == sha256_file(tok_path)
    assert list(shard.failed) == ["f" * 64]
    tok = load_tokenizer(tok_path)
    for i, fid in enumerate(shard.file_ids):
        assert shard.sequence(i).tolist() == tokenize_file(tok, store / f"{fid}.mid").tolist()
    with h5py.File(out) as h5:
        assert h5.attrs["corpus"] == "bach" and h5.attrs["shard"] == "0000"
        assert h5["ids"].compression == "gzip"


def test_empty_shard(tmp_path, tok_path):
    out = tmp_path / "0001.h5"
    tokenize_shard(tok_path, [], out, corpus="c", shard="0001")
    shard = read_shard(out)
    assert len(shard) == 0 and shard.ids.size == 0 and shard.offsets.tolist() == [0]


@pytest.mark.parametrize("chunk", [1, 7, 64, 10_000])
def test_shard_ids_are_written_a_chunk_at_a_time(tmp_path, monkeypatch, chunk):
    """write_shard writes the tokens one HDF5 chunk at a time, never concatenated whole: with
    sequences that end before, on and across chunk boundaries (and a chunk larger than the
    shard: one chunk then), the stored ids are the sequences in order, chunked as asked."""
    from tokentransfer import tokenize

    monkeypatch.setattr(tokenize, "SHARD_CHUNK", chunk)
    rng = np.random.default_rng(0)
    lengths = [1, 6, 7, 13, 64, 65, 1, 200]
    seqs = [rng.integers(0, 500, n).astype(np.int32) for n in lengths]
    fids = [f"{i:064x}" for i in range(len(seqs))]
    result = tokenize.ShardResult(fids, seqs, [], 0.0)
    out = tmp_path / "0000.h5"
    tokenize.write_shard(result, out, tokenizer_hash="h", corpus="c", shard="0000")
    shard = read_shard(out)
    assert shard.ids.dtype == np.int32
    assert shard.ids.tolist() == np.concatenate(seqs).tolist()
    assert shard.offsets.tolist() == np.concatenate([[0], np.cumsum(lengths)]).tolist()
    with h5py.File(out) as h5:
        assert h5["ids"].chunks == (min(chunk, sum(lengths)),)


def test_index_aggregates_and_refuses_mixed_tokenizers(tmp_path, store, tok_path):
    paths = [str(p) for p in sorted(store.glob("*.mid"))]
    tokenize_shard(tok_path, paths[:3], tmp_path / "0000.h5", corpus="c", shard="0000")
    tokenize_shard(tok_path, paths[3:6], tmp_path / "0001.h5", corpus="c", shard="0001")
    totals = write_index([str(tmp_path / "0000.h5"), str(tmp_path / "0001.h5")], tmp_path / "i.tsv")
    lines = (tmp_path / "i.tsv").read_text().splitlines()
    assert lines[0].split("\t") == ["file_id", "shard", "tokens", "status", "reason"]
    assert totals["files"] == 6 == len(lines) - 1
    assert totals["tokens"] == sum(int(line.split("\t")[2]) for line in lines[1:])
    # the counts are those of the stored sequences (the index reads the offsets, not the ids)
    counts = {}
    for name in ("0000", "0001"):
        shard = read_shard(tmp_path / f"{name}.h5")
        counts.update({f: len(shard.sequence(i)) for i, f in enumerate(shard.file_ids)})
        listing = read_listing(tmp_path / f"{name}.h5")
        assert listing.file_ids == shard.file_ids and listing.failed == shard.failed
        assert listing.lengths.tolist() == [len(shard.sequence(i)) for i in range(len(shard))]
    assert {line.split("\t")[0]: int(line.split("\t")[2]) for line in lines[1:]} == counts
    assert totals["tokens"] == sum(counts.values())
    other = tmp_path / "other.json"
    save_tokenizer(build_tokenizer({"kind": "REMI"}), other)  # no program tokens
    tokenize_shard(other, paths[6:7], tmp_path / "0002.h5", corpus="c", shard="0002")
    with pytest.raises(TokenizeError, match="different tokenizers"):
        write_index([str(tmp_path / f"000{i}.h5") for i in range(3)], tmp_path / "j.tsv")


def test_killed_writer_leaves_no_shard(tmp_path, store, tok_path, monkeypatch):
    """An exception while writing leaves neither a partial file nor a temporary one."""
    out = tmp_path / "0000.h5"
    import tokentransfer.tokenize as tk

    blocks = tk._blocks

    def boom(seqs, size):  # the first chunk is written, then the write fails
        yield next(blocks(seqs, size))
        raise RuntimeError("disk full")

    monkeypatch.setattr(tk, "SHARD_CHUNK", 16)
    monkeypatch.setattr(tk, "_blocks", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        tokenize_shard(tok_path, [str(next(store.glob("*.mid")))], out, corpus="c", shard="0")
    assert list(tmp_path.iterdir()) == []
