"""The tokentransfer command on real outputs."""

from __future__ import annotations

import hashlib

import yaml

from tests.conftest import REPO
from tokentransfer.cli import main
from tokentransfer.corpus import Limits, Row, build_rows, iter_dir, write_manifest
from tokentransfer.tokenize import build_tokenizer, save_tokenizer, tokenize_shard


def test_validate(tmp_path, capsys):
    assert main(["validate", str(REPO / "config" / "config.yaml")]) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"shards": 0, "corpora": {}}))
    assert main(["validate", str(bad)]) == 1
    assert "config key" in capsys.readouterr().err


def test_inspect_manifest_and_shard(tmp_path, capsys, fixtures_dir):
    found = list(iter_dir(fixtures_dir / "karaoke", "dir:k", Limits()))
    rows: list[Row] = build_rows([(found, None)], tmp_path / "store", Limits())
    write_manifest(rows, tmp_path / "manifest.tsv")
    assert main(["inspect", str(tmp_path / "manifest.tsv")]) == 0
    out = capsys.readouterr().out
    assert f"{len(rows)} files" in out and "duplicate 1" in out
    tok = tmp_path / "tok.json"
    save_tokenizer(build_tokenizer({"kind": "REMI"}), tok)
    mids = sorted(str(p) for p in (tmp_path / "store").glob("*.mid"))
    tokenize_shard(tok, mids, tmp_path / "0000.h5", corpus="k", shard="0000")
    assert main(["inspect", str(tmp_path / "0000.h5")]) == 0
    out = capsys.readouterr().out
    assert f"{len(mids)} files" in out
    assert hashlib.sha256(tok.read_bytes()).hexdigest()[:12] in out
