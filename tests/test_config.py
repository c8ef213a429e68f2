"""The config schema refuses bad configs with a message that names the key."""

from __future__ import annotations

import copy

import pytest

from tests.conftest import REPO
from tokentransfer.config import SCHEMA_PATH, ConfigError, check, enabled_corpora, load_yaml

GOOD = {
    "corpora": {
        "base": {"role": "base", "sources": [{"music21": {"composer": "palestrina"}}]},
        "bach": {"role": "target", "sources": [{"dir": {"path": "/data/bach"}}]},
    }
}


@pytest.fixture(scope="module")
def schema():
    return load_yaml(SCHEMA_PATH)


@pytest.mark.parametrize("name", ["config.yaml", "tegridy.yaml"])
def test_shipped_configs_validate(name, schema):
    check(load_yaml(REPO / "config" / name), schema)


def test_gpu_config_validates_on_top_of_tegridy(schema):
    from snakemake.utils import update_config

    config = load_yaml(REPO / "config" / "tegridy.yaml")
    update_config(config, load_yaml(REPO / "config" / "gpu.yaml"))
    check(config, schema)
    assert config["use_gpu"] and config["model"]["layers"] == 8
    assert config["corpora"]["bach"]["role"] == "target"  # merged, not replaced


def test_fewshot_overlay_validates_on_top_of_tegridy(schema):
    from snakemake.utils import update_config

    config = load_yaml(REPO / "config" / "tegridy.yaml")
    update_config(config, load_yaml(REPO / "config" / "tegridy-fewshot-quick.yaml"))
    check(config, schema)
    assert config["linkpred"]["variants"] == ["emb_neighbours", "random"]


def test_minimal_config_validates(schema):
    check(copy.deepcopy(GOOD), schema)


def _bad(schema, mutate):
    cfg = copy.deepcopy(GOOD)
    mutate(cfg)
    with pytest.raises(ConfigError) as err:
        check(cfg, schema)
    return str(err.value)


@pytest.mark.parametrize(
    ("mutate", "key", "words"),
    [
        (lambda c: c.update(shardz=3), "(top level)", ["'shardz'", "allowed:", "shards"]),
        (lambda c: c.update(shards=0), "shards", ["minimum"]),
        (lambda c: c.update(shards="many"), "shards", ["not of type 'integer'"]),
        (lambda c: c.update(seed=-1), "seed", ["minimum"]),
        (lambda c: c.update(use_gpu="yes"), "use_gpu", ["boolean"]),
        (lambda c: c.update(tokenizer={"kind": "REMX"}), "tokenizer.kind", ["REMI"]),
        (lambda c: c.update(tokenizer={"kind": "TSD"}), "tokenizer.kind", ["REMI"]),
        (
            lambda c: c.update(tokenizer={"kind": "REMI", "use_rests": True}),
            "tokenizer.use_rests",
            ["the REMI grammar", "not modelled"],
        ),
        (
            lambda c: c.update(
                tokenizer={"use_programs": True, "one_token_stream_for_programs": 0}
            ),
            "tokenizer.one_token_stream_for_programs",
            ["one sequence per track"],
        ),
        (lambda c: c.update(ingest={"max_depth": -1}), "ingest.max_depth", ["minimum"]),
        (lambda c: c.update(ingest={"max_mb": 3}), "ingest", ["'max_mb'", "max_file_mb"]),
        (lambda c: c.update(tegridy={"mirror": 3}), "tegridy.mirror", ["not of type"]),
        (lambda c: c.update(threads={"ingest": 0}), "threads.ingest", ["minimum"]),
        (
            lambda c: c["corpora"]["bach"].update(role="tgt"),
            "corpora.bach.role",
            ["base", "target"],
        ),
        (lambda c: c["corpora"]["bach"].pop("sources"), "corpora.bach", ["'sources'", "required"]),
        (lambda c: c["corpora"]["bach"].update(enabled=1), "corpora.bach.enabled", ["boolean"]),
        (
            lambda c: c["corpora"]["bach"]["sources"][0]["dir"].update(limt=3),
            "corpora.bach.sources[0].dir",
            ["'limt'", "limit"],
        ),
        (
            lambda c: c["corpora"]["bach"]["sources"][0]["dir"].update(limit=0),
            "corpora.bach.sources[0].dir.limit",
            ["minimum"],
        ),
        (
            lambda c: c["corpora"]["bach"]["sources"].append({"ftp": {"path": "x"}}),
            "corpora.bach.sources[1]",
            ["'ftp'", "music21", "tegridy", "dir"],
        ),
        (
            lambda c: c["corpora"]["bach"]["sources"].append({"tegridy": {"zip": "nope.zip"}}),
            "corpora.bach.sources[1].tegridy.zip",
            ["POP909-Score.zip"],
        ),
        (
            lambda c: c["corpora"].update({"bad name!": c["corpora"]["bach"]}),
            "corpora",
            ["'bad name!'", "must match"],
        ),
        (
            lambda c: c["corpora"]["base"].update(role="target"),
            "corpora",
            ["role 'base'"],
        ),
        (
            lambda c: c["corpora"]["bach"].update(enabled=False),
            "corpora",
            ["role 'target'"],
        ),
        # the graph networks' section was called gcn: refused as renamed, not as unknown
        (lambda c: c.update(gcn={"variants": ["emb"]}), "gcn", ["renamed", "now linkpred"]),
        # the fine-tuned targets were baselines.finetune, beside the finetune section
        (
            lambda c: c.update(baselines={"finetune": ["bach"]}),
            "baselines.finetune",
            ["renamed", "now finetune.targets"],
        ),
        (lambda c: c.update(baselines={}), "baselines", ["renamed", "now finetune.targets"]),
        (
            lambda c: c.update(finetune={"targets": ["base"]}),
            "finetune.targets",
            ["'base' is not an enabled target corpus"],
        ),
        (
            lambda c: c.update(linkpred={"variants": ["emb"]}, generate={"variants": ["random"]}),
            "generate.variants",
            ["'random' is not trained", "linkpred.variants"],
        ),
    ],
)
def test_bad_config_names_key(schema, mutate, key, words):
    msg = _bad(schema, mutate)
    assert msg.startswith(f"config key {key}:"), msg
    for w in words:
        assert w in msg, msg


def test_enabled_corpora_by_role():
    cfg = copy.deepcopy(GOOD)
    cfg["corpora"]["off"] = {"role": "target", "enabled": False, "sources": []}
    assert enabled_corpora(cfg) == ["base", "bach"]
    assert enabled_corpora(cfg, "target") == ["bach"]
