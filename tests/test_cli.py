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


def test_inspect_manifest_and_shard(tmp_path, capsys, midi_corpora):
    found = list(iter_dir(midi_corpora / "band", "dir:k", Limits()))  # one file twice
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
    # the token counts printed are the stored sequences' (read from the offsets)
    from tokentransfer.tokenize import read_shard

    shard = read_shard(tmp_path / "0000.h5")
    lengths = [len(shard.sequence(i)) for i in range(len(shard))]
    assert f"{sum(lengths)} tokens" in out
    assert f"tokens per file: min {min(lengths)}, max {max(lengths)}" in out


def test_results_prints_the_tables(tmp_path, capsys):
    """`tokentransfer results` turns summary.tsv and curve.tsv into markdown tables."""
    from tokentransfer.fileio import to_tsv

    (tmp_path / "eval").mkdir()
    (tmp_path / "eval" / "summary.tsv").write_text(
        to_tsv(
            [
                {
                    "corpus": "bach",
                    "method": "counts",
                    "js_trigram": 0.5,
                    "gen_tokens_per_second": 1e4,
                },
                {
                    "corpus": "bach",
                    "method": "markov2",
                    "js_trigram": 0.75,
                    "gen_tokens_per_second": "",
                },
            ]
        )
    )
    curve = tmp_path / "fewshot" / "small" / "bach" / "curve.tsv"
    curve.parent.mkdir(parents=True)
    rows = [
        {
            "corpus": "bach",
            "method": m,
            "k": k,
            "draw": d,
            "pieces": p,
            "files": p,
            "metric": "js_trigram",
            "value": v,
        }
        for m, k, d, p, v in [
            ("counts", 1, 0, 1, 0.8),
            ("counts", 1, 1, 1, 0.6),
            ("counts", 0, 0, 9, 0.4),
            ("transformer", -1, 0, 0, 0.9),
        ]
    ]
    curve.write_text(to_tsv(rows))
    assert main(["results", "--results", str(tmp_path), "--metric", "js_trigram"]) == 0
    out = capsys.readouterr().out
    # feature fidelity (all, texture, melody and form), style share, JS bigram: empty
    assert "| bach | counts | – | – | – | – | – | 0.500 |" in out
    assert "10,000" in out
    assert "| counts | 0.700 ± 0.100 | 0.400 |" in out  # one draw at all pieces: no spread
    assert "| transformer (unadapted) | 0.900 | 0.900 |" in out
    assert main(["results", "--results", str(tmp_path / "nope")]) == 2
