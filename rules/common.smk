# Config validation, input functions and wildcard constraints shared by every stage. The
# decisions they rest on (which split part a corpus holds out, which methods a target is
# evaluated with, which keys a job reads, whether audio can be rendered) are functions of the
# config in tokentransfer.workflow, unit-tested there; the ones here only name files.

import os
import sys
from pathlib import Path

from snakemake.utils import validate

sys.path.insert(0, str(Path(workflow.basedir) / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from tokentransfer.config import check, enabled_corpora, load_yaml  # noqa: E402
from tokentransfer.methods import (  # noqa: E402
    FEWSHOT_JOBS,
    REGISTRY as METHODS,
    WALK_KEYS,
    names as method_names,
)
import tokentransfer.workflow as plan  # noqa: E402
from tokentransfer.corpus import (  # noqa: E402
    folder_problem,
    listing_digest,
    source_kind,
)
from tokentransfer.shards import shard_digests  # noqa: E402
from tokentransfer.tegridy import TegridyError, mirror_path, verify  # noqa: E402

SCHEMA = Path(workflow.basedir) / "schemas" / "config.schema.yaml"
check(config, load_yaml(SCHEMA))  # a refused config names its key
validate(config, str(SCHEMA))  # fills in the schema's defaults

CORPORA = enabled_corpora(config)
BASES = enabled_corpora(config, "base")
TARGETS = enabled_corpora(config, "target")
N_SHARDS = config["shards"]
SHARDS = [f"{i:04d}" for i in range(N_SHARDS)]
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


_VERIFIED_MIRROR = set()


def section(name, *, only=None, without=()):
    """A config section narrowed to the keys a rule reads, so that its jobs rerun only when
    one of those keys changes (Snakemake reruns a job whose params changed)."""
    return plan.section(config, name, only=only, without=without)


def tegridy_zip_path(name):
    """The mirror's copy of a Tegridy zip, checked against its pinned sha256 (a corrupted or
    substituted copy is refused, naming the zip and both hashes); else where fetch_tegridy
    downloads it (and verifies it)."""
    local = mirror_path(config["tegridy"]["mirror"], name)
    if local is None:
        return f"resources/tegridy/{name}"
    st = local.stat()
    key = (str(local), st.st_size, st.st_mtime_ns)
    if key not in _VERIFIED_MIRROR:
        try:
            verify(local, name)
        except TegridyError as exc:
            raise WorkflowError(f"config key tegridy.mirror: {exc}") from None
        _VERIFIED_MIRROR.add(key)
    return str(local)


def corpus_sources(corpus):
    return [source_kind(s) for s in config["corpora"][corpus]["sources"]]


def ingest_inputs(wildcards):
    """Zips and source folders of a corpus. A folder's files are not inputs one by one
    (176,581 at Lakh size: the DAG's time grows with its inputs); ingest_listing reruns
    ingestion when one is added, removed or changed."""
    zips, folders = [], []
    for i, (kind, spec) in enumerate(corpus_sources(wildcards.corpus)):
        if kind == "tegridy":
            zips.append(tegridy_zip_path(spec["zip"]))
        elif kind == "dir":
            problem = folder_problem(spec["path"])
            if problem is not None:
                raise WorkflowError(
                    f"config key corpora.{wildcards.corpus}.sources[{i}].dir.path: {problem}"
                )
            folders.append(spec["path"])
    return {"zips": zips, "folders": folders}


def ingest_listing(wildcards):
    """A digest of the path, size and mtime of every file in the corpus's folders: as a
    param, it reruns ingestion when a file is added, removed or changed (params trigger).
    """
    return listing_digest(
        spec["path"] for kind, spec in corpus_sources(wildcards.corpus) if kind == "dir"
    )


def tegridy_zips(wildcards):
    return {
        spec["zip"]: tegridy_zip_path(spec["zip"])
        for kind, spec in corpus_sources(wildcards.corpus)
        if kind == "tegridy"
    }


# where ingestion stores a corpus's accepted files, named {file_id}.mid
STORE = "resources/corpora/{corpus}/midi"


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
    return expand(
        "results/tokens/{corpus}/{shard}.h5", corpus=wildcards.corpus, shard=SHARDS
    )


def shards_of(corpora):
    return expand("results/tokens/{corpus}/{shard}.h5", corpus=corpora, shard=SHARDS)


def split_part(wildcards):
    return plan.split_part(config, wildcards.corpus)


def split_fraction(wildcards):
    return plan.split_fraction(config, wildcards.corpus)


GEN_VARIANTS = config["generate"]["variants"]


def generate_inputs(wildcards):
    """A walk needs the tokenizer and successor graph; a biased one also the node embeddings;
    its bits per token, the target's shards and split (test pieces)."""
    out = {
        "tokenizer": "results/tokenizer/tokenizer.json",
        "successors": f"results/graphs/{wildcards.corpus}/successors.npz",
        "shards": shards_of([wildcards.corpus]),
        "split": f"results/splits/{wildcards.corpus}.tsv",
    }
    if config["generate"]["context"] != "none":
        out["context"] = f"results/graphs/{wildcards.corpus}/context_successors.npz"
    if (
        config["generate"].get("melody") != "none"
        or config["generate"].get("form") != "none"
    ):
        out["walk"] = f"results/graphs/{wildcards.corpus}/walk_tables.npz"
    if wildcards.variant != "counts":
        out["nodes"] = (
            f"results/linkpred/{wildcards.model}/{wildcards.corpus}/{wildcards.variant}/nodes.h5"
        )
    if config["generate"]["prompt"]:
        out["prompt"] = config["generate"]["prompt"]
    return out


def model_folder(kind, model, corpus):
    """The transformer a method samples: pretrained, or fine-tuned on the target."""
    if kind == "finetuned":
        return f"results/finetune/{model}/{corpus}/hf"
    return f"results/models/{model}/hf"


def method_gpu(wildcards):
    return plan.method_gpu(config, wildcards.method)


def baseline_inputs(wildcards):
    """What the method's job reads, as the method registry says."""
    method = METHODS[wildcards.method]
    out = {
        "tokenizer": "results/tokenizer/tokenizer.json",
        "shards": shards_of([wildcards.corpus]),
        "split": f"results/splits/{wildcards.corpus}.tsv",
    }
    if method.base:
        out["base_shards"] = shards_of(BASES)
    if method.model:
        out["model"] = model_folder(method.model, wildcards.model, wildcards.corpus)
    if config["generate"]["prompt"]:
        out["prompt"] = config["generate"]["prompt"]
    return out


def baseline_eval_keys(wildcards):
    """The evaluate keys the method reads."""
    return plan.method_section(config, "evaluate", [wildcards.method])


def baseline_sampling_keys(wildcards):
    """The sampling keys the method reads."""
    return plan.method_section(config, "sampling", [wildcards.method])


def set_folder(model, corpus, method):
    """The sample folder of a method's set: results/<its registry folder>/..."""
    return f"results/{METHODS[method].folder}/{model}/{corpus}/{method}"


def eval_sets(model, corpus):
    """Method name -> sample folder of every set evaluated on a target, walks first."""
    return {
        m: set_folder(model, corpus, m) for m in plan.eval_set_names(config, corpus)
    }


def eval_set_names(wildcards):
    """The methods of a target's sets, in the order of its ``sets`` input."""
    return plan.eval_set_names(config, wildcards.corpus)


def contextual_variant_used():
    """Whether rule embed computes the contextual embeddings (rules/model.smk)."""
    return plan.contextual_variant_used(config)


def evaluate_inputs(wildcards):
    sets = eval_sets(wildcards.model, wildcards.corpus)
    out = {
        "tokenizer": "results/tokenizer/tokenizer.json",
        "shards": shards_of([wildcards.corpus]),
        "split": f"results/splits/{wildcards.corpus}.tsv",
        "sets": [f"{d}/tokens.h5" for d in sets.values()],
        "infos": [f"{d}/generation.json" for d in sets.values()],
        "linkpred": [
            f"results/linkpred/{wildcards.model}/{wildcards.corpus}/{v}/metrics.json"
            for v in plan.linkpred_variants_used(config)
        ],
    }
    if any(METHODS[m].model == "finetuned" for m in sets):
        out["finetune"] = (
            f"results/finetune/{wildcards.model}/{wildcards.corpus}/metrics.json"
        )
    out["classifier"] = "results/style/classifier.json"
    return out


def style_inputs(wildcards):
    """The style classifier reads every corpus's tokens and split (base and targets)."""
    return {
        "tokenizer": "results/tokenizer/tokenizer.json",
        "shards": shards_of(CORPORA),
        "splits": expand("results/splits/{corpus}.tsv", corpus=CORPORA),
    }


def figure_inputs(wildcards):
    sets = eval_sets(wildcards.model, wildcards.corpus)
    return {
        "tokenizer": "results/tokenizer/tokenizer.json",
        "metrics": f"results/eval/{wildcards.model}/{wildcards.corpus}/metrics.tsv",
        "sets": [f"{d}/tokens.h5" for d in sets.values()],
        "shards": shards_of([wildcards.corpus]),
        "split": f"results/splits/{wildcards.corpus}.tsv",
    }


def style_corpora(wildcards):
    """Each corpus's token shards and split, by name, for the style classifier's job."""
    return {c: [shards_of([c]), f"results/splits/{c}.tsv"] for c in CORPORA}


def linkpred_summary_names():
    """(model, corpus, variant) of each metrics file of rule linkpred_summary, in its order."""
    return [[MODEL, c, v] for c in TARGETS for v in config["linkpred"]["variants"]]


def training_figure_inputs(wildcards):
    return {
        "pretrain": f"results/models/{wildcards.model}/training_log.tsv",
        "finetune": expand(
            "results/finetune/{model}/{corpus}/training_log.tsv",
            model=wildcards.model,
            corpus=FINETUNE,
        ),
    }


AUDIO = config["report"]


def audio_midi(wildcards):
    """The first sample of a walk variant or of a baseline; refused, naming the config key,
    where this machine lacks fluidsynth or the soundfont (before any job runs)."""
    plan.check_audio(config)
    folder = set_folder(wildcards.model, wildcards.corpus, wildcards.setname)
    return f"{folder}/sample_000.mid"


def audio_targets():
    if not AUDIO["audio"]:
        return []
    return [
        f"results/eval/{MODEL}/{corpus}/audio/{name}.flac"
        for corpus in TARGETS
        for name in eval_sets(MODEL, corpus)
    ]


def eval_targets():
    out = ["results/eval/summary.tsv"] + audio_targets()
    if config["evaluate"]["figures"]:
        out += expand(
            "results/eval/{model}/{corpus}/figures/metrics.png",
            model=MODEL,
            corpus=TARGETS,
        )
        out.append(f"results/eval/{MODEL}/training.png")
    return out


FEWSHOT = config["fewshot"]
# the few-shot jobs per point that the chosen methods need (the method registry says which)
FEWSHOT_JOBS_RUN = plan.fewshot_jobs_run(config)


def fewshot_params(job):
    """The keys one few-shot job reads (tokentransfer.workflow.fewshot_params)."""
    return plan.fewshot_params(config, job)


def fewshot_curve_inputs(wildcards):
    """Every (k, draw) point of a target (one sample folder per few-shot job the methods
    need), and the unadapted transformer's samples if made."""
    points = [
        f"results/fewshot/{wildcards.model}/{wildcards.corpus}/samples/k{k}_d{draw}{FEWSHOT_JOBS[job]}"
        for job in FEWSHOT_JOBS_RUN
        for k in FEWSHOT["ks"]
        for draw in range(FEWSHOT["draws"])
    ]
    out = {
        "tokenizer": "results/tokenizer/tokenizer.json",
        "shards": shards_of([wildcards.corpus]),
        "split": f"results/splits/{wildcards.corpus}.tsv",
        "classifier": "results/style/classifier.json",
        "points": points,
    }
    if "transformer" in config["evaluate"]["methods"]:
        out["transformer"] = (
            f"results/baselines/{wildcards.model}/{wildcards.corpus}/transformer/tokens.h5"
        )
    return out


def fewshot_targets():
    if not FEWSHOT["enabled"]:
        return []
    return expand(
        "results/fewshot/{model}/{corpus}/curve.tsv", model=MODEL, corpus=TARGETS
    )


def all_targets():
    return (
        expand("results/tokens/{corpus}/index.tsv", corpus=CORPORA)
        + [f"results/models/{MODEL}/metrics.json"]
        + expand("results/embeddings/{model}/{corpus}.h5", model=MODEL, corpus=TARGETS)
        + expand(
            "results/finetune/{model}/{corpus}/metrics.json",
            model=MODEL,
            corpus=FINETUNE,
        )
        + expand("results/graphs/{corpus}/graph_stats.json", corpus=TARGETS)
        + ["results/linkpred/summary.tsv"]
        + expand(
            "results/generated/{model}/{corpus}/{variant}/generation.json",
            model=MODEL,
            corpus=TARGETS,
            variant=GEN_VARIANTS,
        )
        + eval_targets()
        + fewshot_targets()
    )
