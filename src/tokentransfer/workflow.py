"""What the workflow's DAG needs from the config: pure functions of the (validated) config dict.

``rules/common.smk`` holds only wildcard constraints and thin wrappers of the input functions
of :mod:`tokentransfer.inputs` (which files a rule reads); the decisions they rest on live here,
unit-tested (tests/test_workflow_plan.py): which part of its split a corpus
holds out, which baselines a target is evaluated with, which graph-network variants the walks
and the embedding cache need, which keys of a section a job reads (its params: Snakemake reruns
a job whose params changed, so a job gets only the keys it reads), which few-shot jobs run, and
whether this machine can render the report's audio.

Every function takes the config as Snakemake holds it after validation (the schema's defaults
filled in).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable

from .config import ConfigError, enabled_corpora
from .methods import REGISTRY, fewshot_jobs, fewshot_methods, reads


def section(config: dict, name: str, *, only: Iterable[str] | None = None, without=()) -> dict:
    """Config section ``name`` narrowed to the keys a rule reads (``only``, less ``without``)."""
    keep = None if only is None else set(only)
    return {
        k: v for k, v in config[name].items() if (keep is None or k in keep) and k not in without
    }


def method_section(config: dict, name: str, methods: Iterable[str], always=()) -> dict:
    """Config section ``name`` narrowed to the keys that ``methods`` read (the method registry
    says which, :func:`tokentransfer.methods.reads`) and ``always``."""
    return section(config, name, only=set(always) | set(reads(methods, name)))


# --------------------------------------------------------------------------- splits


def split_part(config: dict, corpus: str) -> str:
    """The held-out part of a corpus's split: ``val`` for a base corpus (the pretraining's
    validation pieces), ``test`` for a target (the evaluation's test pieces)."""
    return "val" if corpus in enabled_corpora(config, "base") else "test"


def split_fraction(config: dict, corpus: str) -> float:
    """The share of a corpus's groups held out: ``split.base_val_fraction`` for a base corpus,
    ``split.target_test_fraction`` for a target."""
    split = config["split"]
    if corpus in enabled_corpora(config, "base"):
        return split["base_val_fraction"]
    return split["target_test_fraction"]


# --------------------------------------------------------------------------- methods


def finetune_targets(config: dict) -> list[str]:
    """The targets on which the transformer is fine-tuned as a baseline (rule ``finetune``):
    ``finetune.targets``."""
    return list(config["finetune"]["targets"])


def eval_methods(config: dict, corpus: str) -> list[str]:
    """The baselines of ``evaluate.methods`` evaluated on a target: one that samples the
    fine-tuned transformer only where the model is fine-tuned on it."""
    tuned = finetune_targets(config)
    return [
        m
        for m in config["evaluate"]["methods"]
        if REGISTRY[m].model != "finetuned" or corpus in tuned
    ]


def eval_set_names(config: dict, corpus: str) -> list[str]:
    """The methods of every sample set evaluated on a target: the walks of
    ``generate.variants`` first, then :func:`eval_methods`."""
    return list(config["generate"]["variants"]) + eval_methods(config, corpus)


def method_gpu(config: dict, method: str) -> int:
    """GPUs a baseline's job asks for: 1 for a method that samples a transformer when
    ``use_gpu`` is set, else 0."""
    return 1 if config["use_gpu"] and REGISTRY[method].model else 0


# --------------------------------------------------------------------------- graph networks


def linkpred_variants_used(config: dict) -> list[str]:
    """The graph-network variants the evaluated walks use (``generate.variants`` but
    ``counts``), in that order: the link-prediction records whose training seconds are
    their adaptation cost."""
    return [v for v in config["generate"]["variants"] if v != "counts"]


def contextual_variant_used(config: dict) -> bool:
    """Whether a graph network of the run reads contextual embeddings (variant ``contextual``
    in ``linkpred.variants``, ``generate.variants`` or, when on, ``fewshot.variants``): else
    rule ``embed`` skips the forward passes over the target's pieces."""
    used = set(config["linkpred"]["variants"]) | set(config["generate"]["variants"])
    if config["fewshot"]["enabled"]:
        used |= set(config["fewshot"]["variants"])
    return "contextual" in used


# --------------------------------------------------------------------------- few-shot


def fewshot_jobs_run(config: dict) -> list[str]:
    """The few-shot jobs per point that ``fewshot.methods`` and ``fewshot.variants`` need
    (``point`` always; the registry says which job adapts which method)."""
    fs = config["fewshot"]
    return fewshot_jobs(fs["methods"], fs["variants"])


def fewshot_job_methods(config: dict, job: str) -> list[str]:
    """The methods few-shot job ``job`` adapts, in registry order."""
    fs = config["fewshot"]
    return [m.name for m in fewshot_methods(fs["methods"], fs["variants"], job)]


def fewshot_params(config: dict, job: str) -> dict:
    """The params of few-shot job ``job`` (adaptation and sampling): the fewshot section with
    its methods only, and of each other section the keys its methods read (plus the sample
    count, length, bars and seed). The evaluation keys of the scoring (copy_n, the reference
    excerpts) are rule fewshot_curve's, so that changing them does not rerun an adaptation."""
    fs = config["fewshot"]
    methods = fewshot_job_methods(config, job)
    cfg = {
        "seed": fs["seed"],
        "methods": [m for m in methods if m in fs["methods"]],
        "variants": [m for m in methods if m in fs["variants"]],
        **method_section(config, "fewshot", methods),
    }
    return {
        "job": job,
        "cfg": cfg,
        "gen": method_section(config, "generate", methods, ("samples", "length", "bars", "seed")),
        "sampling": method_section(config, "sampling", methods),
        "eval": method_section(config, "evaluate", methods),
        "graph": method_section(config, "graph", methods),
        "linkpred": method_section(config, "linkpred", methods),
        "finetune": method_section(config, "finetune", methods),
    }


# --------------------------------------------------------------------------- machine


def check_audio(config: dict, path: str | None = None) -> None:
    """Raise :class:`~tokentransfer.config.ConfigError` unless this machine can render the
    report's audio: the ``fluidsynth`` program on ``path`` (default: ``$PATH``) and the
    soundfont ``report.soundfont``."""
    report = config["report"]
    if shutil.which("fluidsynth", path=path) is None:
        raise ConfigError(
            "config key report.audio: the fluidsynth program is not installed "
            "(Debian/Ubuntu: apt-get install fluidsynth fluid-soundfont-gm; or --use-conda)"
        )
    if not os.path.isfile(report["soundfont"]):
        raise ConfigError(
            f"config key report.soundfont: {report['soundfont']} does not exist "
            "(Debian/Ubuntu: apt-get install fluid-soundfont-gm)"
        )
