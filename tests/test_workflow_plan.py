"""What the DAG needs from the config (tokentransfer.workflow): the decisions behind
rules/common.smk's input functions and params, on configs filled in as Snakemake fills them."""

from __future__ import annotations

import copy
import stat

import pytest
from snakemake.utils import validate

from tokentransfer import workflow as plan
from tokentransfer.config import SCHEMA_PATH, ConfigError, check, load_yaml
from tokentransfer.methods import LINKPRED_KEYS

BASE = {
    "corpora": {
        "base": {"role": "base", "sources": [{"music21": {"composer": "palestrina"}}]},
        "bach": {"role": "target", "sources": [{"dir": {"path": "/data/bach"}}]},
        "jazz": {"role": "target", "sources": [{"dir": {"path": "/data/jazz"}}]},
        "off": {"role": "target", "enabled": False, "sources": [{"dir": {"path": "/x"}}]},
    },
    "split": {"base_val_fraction": 0.05, "target_test_fraction": 0.2},
    "finetune": {"targets": ["bach"]},
    "evaluate": {"methods": ["markov2", "transformer", "finetuned", "real_target"]},
    "generate": {"variants": ["counts", "emb_neighbours", "random"]},
    "linkpred": {"variants": ["emb_neighbours", "random"], "seeds": [0, 1]},
}


def filled(overrides: dict | None = None) -> dict:
    """BASE with ``overrides`` (top-level sections replaced), checked and filled with the
    schema's defaults as rules/common.smk does."""
    config = copy.deepcopy(BASE)
    config.update(copy.deepcopy(overrides or {}))
    check(config)
    validate(config, str(SCHEMA_PATH))
    return config


def test_split_part_and_fraction_by_role():
    config = filled()
    assert plan.split_part(config, "base") == "val"
    assert plan.split_fraction(config, "base") == 0.05
    for target in ("bach", "jazz"):
        assert plan.split_part(config, target) == "test"
        assert plan.split_fraction(config, target) == 0.2


def test_finetuned_baseline_only_where_fine_tuned():
    config = filled()
    assert plan.finetune_targets(config) == ["bach"]
    assert plan.eval_methods(config, "bach") == [
        "markov2",
        "transformer",
        "finetuned",
        "real_target",
    ]
    assert plan.eval_methods(config, "jazz") == ["markov2", "transformer", "real_target"]
    # the walks first, in generate.variants order, then the baselines
    assert plan.eval_set_names(config, "jazz") == [
        "counts",
        "emb_neighbours",
        "random",
        "markov2",
        "transformer",
        "real_target",
    ]


def test_gpu_only_for_transformer_methods_and_only_with_use_gpu():
    config = filled()
    assert {m: plan.method_gpu(config, m) for m in ("markov2", "transformer", "finetuned")} == {
        "markov2": 0,
        "transformer": 0,
        "finetuned": 0,
    }
    config = filled({"use_gpu": True})
    gpus = {m: plan.method_gpu(config, m) for m in ("markov2", "transformer", "finetuned")}
    assert gpus == {"markov2": 0, "transformer": 1, "finetuned": 1}
    assert plan.method_gpu(config, "real_target") == 0


def test_linkpred_variants_the_walks_use():
    assert plan.linkpred_variants_used(filled()) == ["emb_neighbours", "random"]
    walks_on_counts = filled({"generate": {"variants": ["counts"]}})
    assert plan.linkpred_variants_used(walks_on_counts) == []


def test_contextual_embeddings_only_when_a_variant_reads_them():
    assert not plan.contextual_variant_used(filled())
    # trained for link prediction only, not walked: still computed
    trained = {"linkpred": {"variants": ["random", "contextual"]}, "generate": {"variants": []}}
    assert plan.contextual_variant_used(filled(trained))
    both = {
        "linkpred": {"variants": ["emb_neighbours", "contextual"]},
        "generate": {"variants": ["counts", "contextual"]},
    }
    assert plan.contextual_variant_used(filled(both))
    # a few-shot variant counts only when the few-shot curve is on
    off = {"fewshot": {"enabled": False, "variants": ["contextual"]}}
    on = {"fewshot": {"enabled": True, "variants": ["contextual"]}}
    assert not plan.contextual_variant_used(filled(off))
    assert plan.contextual_variant_used(filled(on))


def test_section_keeps_only_the_keys_a_rule_reads():
    config = filled()
    hp = plan.section(config, "linkpred", without=("variants", "encoders", "seeds", "threads"))
    assert "variants" not in hp and "seeds" not in hp and hp["hidden"] == 128
    assert plan.section(config, "generate", only=("samples", "length", "seed")) == {
        "samples": 4,
        "length": 1024,
        "seed": 0,
    }
    assert plan.method_section(config, "evaluate", ["markov2"]) == {"bits_tokens": 20000}
    assert plan.method_section(config, "sampling", ["markov2"]) == {"markov_discount": 0.75}
    assert plan.method_section(config, "sampling", ["transformer"]) == {
        "temperature": 1.0,
        "top_k": 0,
    }
    assert plan.method_section(config, "evaluate", ["real_target"]) == {}
    assert plan.method_section(config, "sampling", ["real_target"]) == {}


def test_fewshot_jobs_and_params_come_from_the_registry():
    fewshot = {
        "enabled": True,
        "methods": ["markov2", "counts", "finetuned"],
        "variants": ["emb_neighbours"],
        "finetune_steps": 7,
    }
    config = filled({"fewshot": fewshot})
    assert plan.fewshot_jobs_run(config) == ["point", "finetune"]
    assert plan.fewshot_job_methods(config, "point") == ["markov2", "counts", "emb_neighbours"]
    point = plan.fewshot_params(config, "point")
    assert point["job"] == "point"
    assert point["cfg"]["methods"] == ["markov2", "counts"]
    assert point["cfg"]["variants"] == ["emb_neighbours"]
    assert "finetune_steps" not in point["cfg"]  # no gradient step in this job
    # the walk's graph network reads the linkpred keys it trains with, and no other: changing
    # linkpred.original_protocol or linkpred.variants does not rerun a few-shot point
    assert set(point["linkpred"]) == set(LINKPRED_KEYS)
    assert point["linkpred"]["seeds"] == [0, 1]
    assert point["finetune"] == {}
    assert {"samples", "length", "bars", "seed", "temperature"} <= set(point["gen"])
    # adaptation and sampling read no scoring key: changing copy_n or the reference excerpts
    # reruns rule fewshot_curve only
    assert not {"copy_n", "reference_excerpts"} & set(point["eval"])
    assert point["sampling"] == {"markov_discount": 0.75}  # the chain's; no transformer here
    assert point["eval"] == {"bits_tokens": 20000}
    tuned = plan.fewshot_params(config, "finetune")
    assert tuned["cfg"]["methods"] == ["finetuned"] and tuned["cfg"]["variants"] == []
    assert tuned["cfg"]["finetune_steps"] == 7
    assert set(tuned["finetune"]) == {"batch", "lr", "warmup"}
    assert tuned["linkpred"] == {} and tuned["graph"] == {}
    lora = filled({"fewshot": {**fewshot, "methods": ["markov2", "lora"], "variants": []}})
    assert plan.fewshot_jobs_run(lora) == ["point", "transfer"]


def _fake_path(tmp_path, with_fluidsynth: bool) -> str:
    folder = tmp_path / ("with" if with_fluidsynth else "without")
    folder.mkdir()
    if with_fluidsynth:
        exe = folder / "fluidsynth"
        exe.write_text("#!/bin/sh\nexit 0\n")
        exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return str(folder)


def test_audio_needs_fluidsynth_on_the_path_and_the_soundfont(tmp_path):
    soundfont = tmp_path / "gm.sf2"
    soundfont.write_bytes(b"sfbk")
    config = filled({"report": {"audio": True, "soundfont": str(soundfont)}})
    plan.check_audio(config, path=_fake_path(tmp_path, True))
    with pytest.raises(ConfigError) as err:
        plan.check_audio(config, path=_fake_path(tmp_path, False))
    assert str(err.value).startswith("config key report.audio: the fluidsynth program"), err.value
    soundfont.unlink()
    with pytest.raises(ConfigError) as err:
        plan.check_audio(config, path=str(tmp_path / "with"))
    assert str(err.value).startswith(f"config key report.soundfont: {soundfont} does not exist")


def test_default_path_is_the_environment(tmp_path, monkeypatch):
    config = filled({"report": {"audio": True, "soundfont": str(tmp_path / "none.sf2")}})
    monkeypatch.setenv("PATH", _fake_path(tmp_path, False))
    with pytest.raises(ConfigError, match="report.audio"):
        plan.check_audio(config)
    monkeypatch.setenv("PATH", _fake_path(tmp_path, True))
    with pytest.raises(ConfigError, match="report.soundfont"):
        plan.check_audio(config)


def test_shipped_default_config():
    config = load_yaml(SCHEMA_PATH.parents[1] / "config" / "config.yaml")
    check(config)
    validate(config, str(SCHEMA_PATH))
    assert plan.contextual_variant_used(config)  # linkpred.variants trains all five
    assert plan.linkpred_variants_used(config) == ["emb_neighbours"]
    assert plan.eval_methods(config, "bach")[-5:] == [
        "finetuned",
        "fused_markov",
        "knn",
        "real_target",
        "real_base",
    ]
