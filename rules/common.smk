# Config validation, input functions and wildcard constraints shared by every stage. The input
# functions are functions of the config in tokentransfer.inputs (the files of results/ named by
# tokentransfer.layout; a corpus's sources dispatched on their kind, Tegridy zips verified
# once); the decisions they rest on (which split part a corpus holds out, which methods a
# target is evaluated with, which keys a job reads, whether audio can be rendered) are in
# tokentransfer.workflow; both unit-tested. The ones here only pass the wildcards on.

import os
import sys
from pathlib import Path

from snakemake.utils import validate

sys.path.insert(0, str(Path(workflow.basedir) / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from tokentransfer.config import (
    ConfigError,
    check,
    enabled_corpora,
    load_yaml,
)  # noqa: E402
from tokentransfer.methods import WALK_KEYS, names as method_names  # noqa: E402
from tokentransfer.model import PRETRAIN_KEYS  # noqa: E402
import tokentransfer.inputs as inputs  # noqa: E402
import tokentransfer.layout as layout  # noqa: E402
from tokentransfer.layout import RESULTS as L  # noqa: E402
import tokentransfer.workflow as plan  # noqa: E402
from tokentransfer.shards import shard_digests  # noqa: E402

SCHEMA = Path(workflow.basedir) / "schemas" / "config.schema.yaml"
check(config, load_yaml(SCHEMA))  # a refused config names its key
validate(config, str(SCHEMA))  # fills in the schema's defaults

CORPORA = enabled_corpora(config)
BASES = enabled_corpora(config, "base")
TARGETS = enabled_corpora(config, "target")
N_SHARDS = config["shards"]
MODEL = config["model"]["name"]
MODEL_SOURCE = config["model"]["source"]
FINETUNE = plan.finetune_targets(config)
# gpu=1 asks a cluster (and Snakemake's local scheduler, if given --resources gpu=N) for a GPU
GPU = 1 if config["use_gpu"] else 0


wildcard_constraints:
    corpus="|".join(CORPORA) if CORPORA else "(?!)",
    shard=r"\d{4}",
    model=MODEL,
    variant="|".join(config["linkpred"]["variants"] + ["counts"]),
    zipname=r"[A-Za-z0-9_.()-]+\.zip",
    method="|".join(method_names(folder="baselines")),
    k=r"\d+",
    setname="|".join(
        config["linkpred"]["variants"] + ["counts"] + method_names(folder="baselines")
    ),
    draw=r"\d+",


def section(name, *, only=None, without=()):
    """A config section narrowed to the keys a rule reads, so that its jobs rerun only when
    one of those keys changes (Snakemake reruns a job whose params changed)."""
    return plan.section(config, name, only=only, without=without)


def refused(fn, *args):
    """fn(config, *args), a refused config (ConfigError, naming its key) reported in one line."""
    try:
        return fn(config, *args)
    except ConfigError as exc:
        raise WorkflowError(str(exc)) from None


def ingest_inputs(wildcards):
    return refused(inputs.ingest_inputs, wildcards.corpus)


def ingest_listing(wildcards):
    return inputs.ingest_listing(config, wildcards.corpus)


def tegridy_zips(wildcards):
    return refused(inputs.tegridy_zips, wildcards.corpus)


STORE = layout.STORE


def shard_manifest(wildcards):
    """The corpus's manifest, known once ingestion has run. Marked ancient: ingestion rewrites
    it whenever any file changes, and only the shards whose file list changed must rerun
    (shard_files)."""
    return ancient(checkpoints.ingest.get(corpus=wildcards.corpus).output.manifest)


def shard_files(wildcards):
    """A digest of one shard's file ids (the manifest is read once per version for all its
    shards): as a param, it reruns exactly the shards whose file list changed."""
    manifest = checkpoints.ingest.get(corpus=wildcards.corpus).output.manifest
    return shard_digests(manifest, N_SHARDS)[int(wildcards.shard)]


def corpus_shards(wildcards):
    return shards_of([wildcards.corpus])


def shards_of(corpora):
    return inputs.shards_of(config, corpora)


def split_part(wildcards):
    return plan.split_part(config, wildcards.corpus)


def split_fraction(wildcards):
    return plan.split_fraction(config, wildcards.corpus)


def generate_inputs(wildcards):
    return inputs.generate_inputs(
        config, wildcards.model, wildcards.corpus, wildcards.variant
    )


def method_gpu(wildcards):
    return plan.method_gpu(config, wildcards.method)


def baseline_inputs(wildcards):
    return inputs.baseline_inputs(
        config, wildcards.model, wildcards.corpus, wildcards.method
    )


def baseline_eval_keys(wildcards):
    """The evaluate keys the method reads."""
    return plan.method_section(config, "evaluate", [wildcards.method])


def baseline_sampling_keys(wildcards):
    """The sampling keys the method reads."""
    return plan.method_section(config, "sampling", [wildcards.method])


def eval_set_names(wildcards):
    """The methods of a target's sets, in the order of its ``sets`` input."""
    return plan.eval_set_names(config, wildcards.corpus)


def contextual_variant_used():
    """Whether rule embed computes the contextual embeddings (rules/model.smk)."""
    return plan.contextual_variant_used(config)


def evaluate_inputs(wildcards):
    return inputs.evaluate_inputs(config, wildcards.model, wildcards.corpus)


def style_inputs(wildcards):
    return inputs.style_inputs(config)


def figure_inputs(wildcards):
    return inputs.figure_inputs(config, wildcards.model, wildcards.corpus)


def style_corpora(wildcards):
    return inputs.style_corpora(config)


def linkpred_summary_names():
    """(model, corpus, variant) of each metrics file of rule linkpred_summary, in its order."""
    return [[MODEL, c, v] for c in TARGETS for v in config["linkpred"]["variants"]]


def training_figure_inputs(wildcards):
    return inputs.training_figure_inputs(config, wildcards.model)


def audio_midi(wildcards):
    """The first sample of a walk variant or of a baseline; refused, naming the config key,
    where this machine lacks fluidsynth or the soundfont (before any job runs)."""
    plan.check_audio(config)
    folder = inputs.set_folder(wildcards.model, wildcards.corpus, wildcards.setname)
    return L.set_midi(folder, 0)


def fewshot_params(job):
    """The keys one few-shot job reads (tokentransfer.workflow.fewshot_params)."""
    return plan.fewshot_params(config, job)


def fewshot_curve_inputs(wildcards):
    return inputs.fewshot_curve_inputs(config, wildcards.model, wildcards.corpus)


def all_targets():
    return inputs.all_targets(config)
