"""The config schema refuses bad configs with a message that names the key."""

from __future__ import annotations

import copy

import pytest
import yaml

from tests.conftest import REPO
from tokentransfer.config import (
    MOVED,
    SCHEMA_PATH,
    ConfigError,
    check,
    enabled_corpora,
    load_yaml,
)

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


@pytest.mark.parametrize(("old", "new"), sorted(MOVED.items()))
def test_a_sampling_key_under_evaluate_is_refused_naming_its_new_home(schema, old, new, tmp_path):
    """evaluate.temperature, top_k and markov_discount moved to the sampling section: the old
    key is refused in one line naming the new one (by the workflow's check and by the CLI's
    --config), and the new key takes the same value (the schema's default)."""
    from tokentransfer.runs import RunError, run_config

    (old_section, old_key), (new_section, new_key) = old.split("."), new.split(".")
    value = schema["properties"][new_section]["properties"][new_key]["default"]
    msg = _bad(schema, lambda c: c.update({old_section: {old_key: value}}))
    assert msg == (
        f"config key {old}: {old} moved to {new} (same setting and default); "
        f"move it to {new} in the config"
    )
    path = tmp_path / "old.yaml"
    path.write_text(yaml.safe_dump({**GOOD, old_section: {old_key: value}}))
    with pytest.raises(RunError) as err:
        run_config(path)
    assert str(err.value) == f"--config {path}: {msg}"
    moved = {**copy.deepcopy(GOOD), new_section: {new_key: value}}
    check(moved, schema)
    path.write_text(yaml.safe_dump(moved))
    assert run_config(path)[new_section][new_key] == value


def test_sampling_flags_go_to_the_section_the_method_samples_with():
    """The CLI's --temperature and --top-k: a transformer's into its sampling settings, a
    walk's into generate; the other section keeps the run config's values."""
    from types import SimpleNamespace

    from tokentransfer.cli import build_parser
    from tokentransfer.cli.common import method_settings
    from tokentransfer.methods import get
    from tokentransfer.runs import run_config

    run = SimpleNamespace(config=run_config())
    flags = ["--temperature", "0.7", "--top-k", "5"]
    args = build_parser().parse_args(["generate", "--corpus", "b", "--out", "o", *flags])
    gen, _, sampling = method_settings(args, run, get("transformer"))
    assert (sampling["temperature"], sampling["top_k"]) == (0.7, 5)
    assert sampling["markov_discount"] == run.config["sampling"]["markov_discount"]
    walk = run.config["generate"]
    assert (gen["temperature"], gen["top_k"]) == (walk["temperature"], walk["top_k"]) != (0.7, 5)
    gen, _, sampling = method_settings(args, run, get("counts"))
    assert (gen["temperature"], gen["top_k"]) == (0.7, 5)
    assert sampling == run.config["sampling"]
    # the defaults that evaluate.temperature, top_k and markov_discount had: the default run's
    # outputs stay the same
    assert sampling == {"temperature": 1.0, "top_k": 0, "markov_discount": 0.75}


def test_the_schemas_default_name_lists_hold_registry_names(schema):
    """The schema keeps the lists' defaults, not their allowed names: each default holds only
    names the registry has (defaults are filled in after the check, so it never sees them)."""
    from tokentransfer.methods import allowed_names

    for key, allowed in allowed_names().items():
        section, name = key.split(".")
        spec = schema["properties"][section]["properties"][name]
        assert "enum" not in spec["items"], key
        assert set(spec["default"]) <= set(allowed), key


def test_enabled_corpora_by_role():
    cfg = copy.deepcopy(GOOD)
    cfg["corpora"]["off"] = {"role": "target", "enabled": False, "sources": []}
    assert enabled_corpora(cfg) == ["base", "bach"]
    assert enabled_corpora(cfg, "target") == ["bach"]


def test_knn_quick_overlay_validates_on_top_of_the_quick_tegridy_run(schema):
    from snakemake.utils import update_config

    config = load_yaml(REPO / "config" / "tegridy.yaml")
    for name in ("tegridy-melody-quick.yaml", "tegridy-knn-quick.yaml"):
        update_config(config, load_yaml(REPO / "config" / name))
    check(config, schema)
    assert config["model"]["name"] == "tegridy-quick" and config["fewshot"]["enabled"]
    assert "knn" in config["fewshot"]["methods"] and config["fewshot"]["ks"] == [1, 5, 20, 0]


def test_the_full_tegridy_knn_overlay_is_a_valid_config(schema):
    """config/tegridy-knn.yaml on config/tegridy.yaml: the 3.4 M model's knn curve, k = 1-20."""
    from snakemake.utils import update_config

    config = load_yaml(REPO / "config" / "tegridy.yaml")
    update_config(config, load_yaml(REPO / "config" / "tegridy-knn.yaml"))
    check(config, schema)
    assert config["model"]["name"] == "tegridy" and config["model"]["layers"] == 4
    assert "knn" in config["fewshot"]["methods"] and config["fewshot"]["ks"] == [1, 5, 20]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("beta", -0.5),
        ("temperature", 0.0),
        ("top_k", -1),
        ("restart", 1.5),
        ("similarity", "euclid"),
        ("context", "bar"),
        ("scale", "dorian"),
        ("chromatic", -0.1),
        ("melody", "contour"),
        ("form", "rondo"),
    ],
)
def test_walk_settings_are_checked_by_the_walks_own_rule(schema, key, value):
    """generate's walk keys: refused at config load with the text WalkConfig gives, naming the
    key (the schema holds their types and defaults, the walk the one rule)."""
    from tokentransfer.walkconfig import WalkConfig

    message = _bad(schema, lambda c: c.setdefault("generate", {}).update({key: value}))
    assert message.startswith(f"config key generate.{key}: ")
    with pytest.raises(ValueError) as err:
        WalkConfig.from_section({key: value})
    assert message == f"config key {err.value}"
