"""The files each rule reads: the rules' input functions, as functions of the (validated) config.

``rules/common.smk`` wraps each in a function of Snakemake's wildcards; the paths come from
:mod:`tokentransfer.layout`, the decisions (which sets a target is evaluated with, which
graph-network variants are used, which few-shot jobs run) from :mod:`tokentransfer.workflow`.
Unit-tested in tests/test_inputs.py.

A corpus's sources are dispatched on their kind here: a ``tegridy`` source reads its zip from
the mirror (``tegridy.mirror``, each zip verified against its pinned sha256 once per size and
mtime, :class:`tokentransfer.tegridy.VerifiedMirror`) or from where rule ``fetch_tegridy``
downloads it; a ``dir`` source's folder is checked to be one, and its files enter as a digest
of their listing (a param), not one by one.
"""

from __future__ import annotations

from . import workflow as plan
from .config import ConfigError, enabled_corpora
from .corpus import folder_problem, listing_digest, source_kind
from .layout import RESULTS as L
from .layout import tegridy_download
from .methods import FEWSHOT_JOBS, REGISTRY
from .tegridy import TegridyError, VerifiedMirror

#: the zips of the mirror verified in this process (one Snakemake run)
MIRROR = VerifiedMirror()


# --------------------------------------------------------------------------- corpus sources


def corpus_sources(config: dict, corpus: str) -> list[tuple[str, dict]]:
    """The (kind, settings) of each source of ``corpus``."""
    return [source_kind(s) for s in config["corpora"][corpus]["sources"]]


def tegridy_zip_path(config: dict, name: str, mirror: VerifiedMirror = MIRROR) -> str:
    """The mirror's copy of Tegridy zip ``name``, checked against its pinned sha256 (a
    corrupted or substituted copy is refused, naming the key, the zip and both hashes); else
    where rule ``fetch_tegridy`` downloads it (and verifies it)."""
    try:
        local = mirror.path(config["tegridy"]["mirror"], name)
    except TegridyError as exc:
        raise ConfigError(f"config key tegridy.mirror: {exc}") from None
    return tegridy_download(name) if local is None else str(local)


def ingest_inputs(config: dict, corpus: str, mirror: VerifiedMirror = MIRROR) -> dict:
    """The zips and source folders of a corpus. A folder's files are not inputs one by one
    (176,581 at Lakh size: the DAG's time grows with its inputs); :func:`ingest_listing`
    reruns ingestion when one is added, removed or changed. A ``dir`` path that is no folder
    is refused, naming its key."""
    zips, folders = [], []
    for i, (kind, spec) in enumerate(corpus_sources(config, corpus)):
        if kind == "tegridy":
            zips.append(tegridy_zip_path(config, spec["zip"], mirror))
        elif kind == "dir":
            problem = folder_problem(spec["path"])
            if problem is not None:
                raise ConfigError(f"config key corpora.{corpus}.sources[{i}].dir.path: {problem}")
            folders.append(spec["path"])
    return {"zips": zips, "folders": folders}


def ingest_listing(config: dict, corpus: str) -> str:
    """A digest of the path, size and mtime of every file in the corpus's folders: as a
    param, it reruns ingestion when a file is added, removed or changed."""
    return listing_digest(
        spec["path"] for kind, spec in corpus_sources(config, corpus) if kind == "dir"
    )


def tegridy_zips(config: dict, corpus: str, mirror: VerifiedMirror = MIRROR) -> dict[str, str]:
    """Zip name -> path of each Tegridy source of the corpus (ingestion's ``zips`` param)."""
    return {
        spec["zip"]: tegridy_zip_path(config, spec["zip"], mirror)
        for kind, spec in corpus_sources(config, corpus)
        if kind == "tegridy"
    }


# --------------------------------------------------------------------------- tokens


def shard_names(config: dict) -> list[str]:
    """The shard names ``0000``, ``0001``... of config key ``shards``."""
    return [f"{i:04d}" for i in range(config["shards"])]


def shards_of(config: dict, corpora) -> list[str]:
    """The token shards of ``corpora``, corpus by corpus."""
    return [L.shard(c, s) for c in corpora for s in shard_names(config)]


def _target(config: dict, corpus: str) -> dict:
    """The tokenizer, shards and split of one corpus, as a job that reads a target takes them."""
    return {
        "tokenizer": L.tokenizer(),
        "shards": shards_of(config, [corpus]),
        "split": L.split(corpus),
    }


# --------------------------------------------------------------------------- sample sets


def set_folder(model: str, corpus: str, method: str) -> str:
    """The sample folder of a method's set: results/<its registry folder>/..."""
    return L.sample_set(REGISTRY[method].folder, model, corpus, method)


def eval_sets(config: dict, model: str, corpus: str) -> dict[str, str]:
    """Method name -> sample folder of every set evaluated on a target, walks first."""
    return {m: set_folder(model, corpus, m) for m in plan.eval_set_names(config, corpus)}


def generate_inputs(config: dict, model: str, corpus: str, variant: str) -> dict:
    """A walk needs the tokenizer and successor graph; with context, the context successors;
    with melody or form, the walk tables; a biased one also the node embeddings; its bits per
    token, the target's shards and split (test pieces)."""
    gen = config["generate"]
    out = {"tokenizer": L.tokenizer(), "successors": L.successors(corpus)}
    out["shards"] = shards_of(config, [corpus])
    out["split"] = L.split(corpus)
    if gen["context"] != "none":
        out["context"] = L.context_successors(corpus)
    if gen.get("melody") != "none" or gen.get("form") != "none":
        out["walk"] = L.walk_tables(corpus)
    if variant != "counts":
        out["nodes"] = L.nodes(model, corpus, variant)
    if gen["prompt"]:
        out["prompt"] = gen["prompt"]
    return out


def baseline_inputs(config: dict, model: str, corpus: str, method: str) -> dict:
    """What the method's job reads, as the method registry says."""
    m = REGISTRY[method]
    out = _target(config, corpus)
    if m.base:
        out["base_shards"] = shards_of(config, enabled_corpora(config, "base"))
    if m.model:
        out["model"] = L.transformer(m.model, model, corpus)
    if config["generate"]["prompt"]:
        out["prompt"] = config["generate"]["prompt"]
    return out


def evaluate_inputs(config: dict, model: str, corpus: str) -> dict:
    """Every set of a target (tokens and records), the graph networks' records (their
    training seconds), the fine-tuning's where a set samples the fine-tuned model, and the
    style classifier."""
    sets = eval_sets(config, model, corpus)
    out = _target(config, corpus)
    out["sets"] = [L.set_tokens(d) for d in sets.values()]
    out["infos"] = [L.set_info(d) for d in sets.values()]
    out["linkpred"] = [
        L.linkpred_metrics(model, corpus, v) for v in plan.linkpred_variants_used(config)
    ]
    if any(REGISTRY[m].model == "finetuned" for m in sets):
        out["finetune"] = L.finetune_metrics(model, corpus)
    out["classifier"] = L.style_classifier()
    return out


# --------------------------------------------------------------------------- style, figures


def style_inputs(config: dict) -> dict:
    """The style classifier reads every corpus's tokens and split (base and targets)."""
    corpora = enabled_corpora(config)
    return {
        "tokenizer": L.tokenizer(),
        "shards": shards_of(config, corpora),
        "splits": [L.split(c) for c in corpora],
    }


def style_corpora(config: dict) -> dict[str, list]:
    """Each corpus's token shards and split, by name, for the style classifier's job."""
    return {c: [shards_of(config, [c]), L.split(c)] for c in enabled_corpora(config)}


def figure_inputs(config: dict, model: str, corpus: str) -> dict:
    """A target's metrics table, its sets' tokens, its shards and split."""
    sets = eval_sets(config, model, corpus)
    return {
        "tokenizer": L.tokenizer(),
        "metrics": L.eval_metrics(model, corpus),
        "sets": [L.set_tokens(d) for d in sets.values()],
        "shards": shards_of(config, [corpus]),
        "split": L.split(corpus),
    }


def training_figure_inputs(config: dict, model: str) -> dict:
    """The pretraining's log and that of every fine-tuning."""
    return {
        "pretrain": L.model_log(model),
        "finetune": [L.finetune_log(model, c) for c in plan.finetune_targets(config)],
    }


# --------------------------------------------------------------------------- few-shot


def fewshot_curve_inputs(config: dict, model: str, corpus: str) -> dict:
    """Every (k, draw) point of a target (one sample folder per few-shot job the methods
    need), and the unadapted transformer's samples if made."""
    fs = config["fewshot"]
    points = [
        L.fewshot_point(model, corpus, k, draw, FEWSHOT_JOBS[job])
        for job in plan.fewshot_jobs_run(config)
        for k in fs["ks"]
        for draw in range(fs["draws"])
    ]
    out = _target(config, corpus)
    out["classifier"] = L.style_classifier()
    out["points"] = points
    if "transformer" in config["evaluate"]["methods"]:
        out["transformer"] = L.set_tokens(L.baseline(model, corpus, "transformer"))
    return out


# --------------------------------------------------------------------------- targets


def audio_targets(config: dict) -> list[str]:
    """The report's audio: the first sample of every set of every target, when on."""
    if not config["report"]["audio"]:
        return []
    model = config["model"]["name"]
    return [
        L.audio(model, corpus, name)
        for corpus in enabled_corpora(config, "target")
        for name in eval_sets(config, model, corpus)
    ]


def eval_targets(config: dict) -> list[str]:
    """The evaluation summary, the audio and, when on, the figures."""
    model = config["model"]["name"]
    out = [L.eval_summary(), *audio_targets(config)]
    if config["evaluate"]["figures"]:
        out += [L.figure(model, c) for c in enabled_corpora(config, "target")]
        out.append(L.training_figure(model))
    return out


def fewshot_targets(config: dict) -> list[str]:
    """Each target's few-shot curve, when on."""
    if not config["fewshot"]["enabled"]:
        return []
    model = config["model"]["name"]
    return [L.fewshot_curve(model, c) for c in enabled_corpora(config, "target")]


def all_targets(config: dict) -> list[str]:
    """What rule ``all`` asks for: every stage's final outputs."""
    model = config["model"]["name"]
    targets = enabled_corpora(config, "target")
    return (
        [L.token_index(c) for c in enabled_corpora(config)]
        + [L.model_metrics(model)]
        + [L.embeddings(model, c) for c in targets]
        + [L.finetune_metrics(model, c) for c in plan.finetune_targets(config)]
        + [L.graph_stats(c) for c in targets]
        + [L.linkpred_summary()]
        + [
            L.set_info(L.generated(model, c, v))
            for c in targets
            for v in config["generate"]["variants"]
        ]
        + eval_targets(config)
        + fewshot_targets(config)
    )
