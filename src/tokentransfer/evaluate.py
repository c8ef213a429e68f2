"""Evaluation: the graph walks against baselines, on the target's held-out test pieces.

Every method produces one *sample set* in the same layout (``sample_NNN.mid``, ``tokens.h5``,
``generation.json``; see :mod:`tokentransfer.samples`): the same number of
samples of the same length, from the same prompt and seed.

Methods (``evaluate.methods`` beside the walk variants of ``generate.variants``):

- ``markov1`` .. ``markov3``: n-gram chains fitted on the target's training pieces, with
  interpolated absolute-discount smoothing (:class:`tokentransfer.baselines.NgramModel`);
  ``markov1c`` .. ``markov3c``: the same chains sampled under the REMI grammar mask
  (renormalised over the allowed tokens: zero token errors);
- ``transformer``: the pretrained transformer, unadapted; ``finetuned``: fine-tuned on the
  target (only for the targets of ``baselines.finetune``);
- ``real_target``: excerpts of the target's *training* pieces (the ceiling: real music of the
  style that is not in the reference; the test pieces themselves would score a divergence of 0
  by construction); ``real_base``: excerpts of base pieces (the floor).

Metrics against the target's test pieces, in the order of the table:

- what the music sounds like: **feature fidelity**, the mean over the features of
  :data:`tokentransfer.features.FIDELITY_FEATURES` (note density, polyphony, empty-beat rate,
  pitch range, pitch-class, inter-onset-interval and duration histograms, groove and scale
  consistency) of the overlapping area of Yang & Lerch (2020) between the sample set and
  ``evaluate.reference_excerpts`` excerpts of the test pieces of the same token length (each
  feature's OA in ``oa_<feature>``; OA, KL and the feature's mean and std per method in
  ``features.tsv``); and the **style share**, the share of samples that the style classifier
  (:mod:`tokentransfer.style`, trained on every corpus's training pieces) assigns to the
  target (``style_prob``: its mean probability of the target);
- token bigram/trigram Jensen-Shannon divergence and the pitch-class histogram distance (of the
  pooled set);
- per-sample music metrics (:data:`tokentransfer.metrics.MUSIC_METRICS`), the token error rate,
  memorisation (the share of a sample's n-grams found in the training pieces, and the longest
  span copied from one) and cost (generation tokens/s, adaptation seconds).

Fidelity and style look at a sample's generated tokens only (a prompt is left out).
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path

import numpy as np

from .features import FIDELITY_FEATURES
from .fileio import read_tsv, to_tsv

log = logging.getLogger(__name__)

#: per-sample metrics, in the order of the table (music metrics come from metrics.MUSIC_METRICS)
SAMPLE_METRICS = (
    "pitch_class_entropy",
    "pitch_range",
    "polyphony",
    "note_density",
    "scale_consistency",
    "groove_consistency",
    "empty_beat_rate",
    "token_error_rate",
    "copy_rate",
    "longest_copy",
)
#: metrics of a whole sample set
SET_METRICS = ("js_bigram", "js_trigram", "pch_distance")
#: what the music sounds like, set by set: they lead the table (see the module's docstring)
MUSIC_SET_METRICS = ("feature_fidelity", "style_share", "style_prob")
#: columns of each feature's overlapping area
OA_COLUMNS = tuple(f"oa_{name}" for name in FIDELITY_FEATURES)
#: columns of features.tsv
FEATURE_COLUMNS = ("corpus", "method", "feature", "oa", "kld", "mean", "std", "ref_mean", "ref_std")
COST_COLUMNS = ("gen_tokens_per_second", "gen_seconds", "adapt_seconds")
#: held-out likelihood of the methods that define a next-token distribution (their record)
LIKELIHOOD_COLUMNS = ("bits_per_token",)


def method_kind(method: str) -> str:
    """``graph`` (a walk), ``baseline`` (a generator) or ``reference`` (real pieces), as the
    method registry says (:mod:`tokentransfer.methods`); ``test_pieces`` is the reference
    row."""
    from .methods import REGISTRY

    if method == "test_pieces":
        return "reference"
    m = REGISTRY.get(method)
    return m.kind if m is not None else "graph"


# --------------------------------------------------------------------------- baselines


def run_baseline(
    method: str,
    *,
    tokenizer_json: str,
    target_shards: list[str],
    target_split: str,
    base_shards: list[str],
    model_dir: str | None,
    out_dir: str,
    gen_cfg: dict,
    eval_cfg: dict,
    prompt_midi: str | None = None,
    use_gpu: bool = False,
    threads: int = 1,
) -> dict:
    """Produce one method's sample set (``generate.samples`` x ``generate.length`` tokens):
    the registry's method (:mod:`tokentransfer.methods`) fitted on the target's training
    pieces and sampled."""
    from .methods import Env, get
    from .model import set_threads
    from .samples import write_samples
    from .tokenize import corpus_tokens, load_tokenizer, tokenize_file

    set_threads(threads)
    m = get(method)
    tokenizer = load_tokenizer(tokenizer_json)
    n, length, seed = int(gen_cfg["samples"]), int(gen_cfg["length"]), int(gen_cfg["seed"])
    prompt = tokenize_file(tokenizer, prompt_midi) if prompt_midi else None
    train = corpus_tokens(target_shards, [target_split], "train")
    env = Env(
        tokenizer,
        tokenizer_json,
        gen=gen_cfg,
        eval=eval_cfg,
        model_dir=model_dir,
        use_gpu=use_gpu,
        base_shards=list(base_shards),
    )
    fitted = m.fit(train, env)
    if not fitted.takes_prompt:
        prompt = None
    t0 = time.perf_counter()
    samples = fitted.sample(n, length, seed, prompt)
    seconds = time.perf_counter() - t0
    extra: dict = {"method": method, "samples_seed": seed, "prompt": prompt_midi}
    extra.update(fitted.record)
    extra["adapt_seconds"] = round(fitted.adapt_seconds, 4)
    if fitted.log_probs is not None:
        test = corpus_tokens(target_shards, [target_split], "test")
        extra.update(heldout_bits(fitted.log_probs, test, eval_cfg.get("bits_tokens")))
    info = write_samples(tokenizer, tokenizer_json, samples, out_dir, prompt, seconds, extra)
    log.info("%s: %d samples x %d tokens in %.2f s", method, n, length, seconds)
    return info


def heldout_bits(log_probs_fn, test: list[np.ndarray], max_tokens: int | None) -> dict:
    """``bits_per_token`` (and the tokens scored) of a method's next-token distribution on
    the test pieces (:func:`tokentransfer.likelihood.corpus_bits`, at most ``max_tokens``
    tokens; default :data:`tokentransfer.likelihood.BITS_TOKENS`)."""
    from .likelihood import BITS_TOKENS, corpus_bits

    if not test:
        return {}
    t0 = time.perf_counter()
    out = corpus_bits(log_probs_fn, test, BITS_TOKENS if max_tokens is None else int(max_tokens))
    log.info(
        "bits per token on %d test tokens: %.4f (%.1f s)",
        out["tokens"],
        out["bits_per_token"],
        time.perf_counter() - t0,
    )
    return {"bits_per_token": out["bits_per_token"], "bits_scored_tokens": out["tokens"]}


# --------------------------------------------------------------------------- metrics


def _score_metrics(tokenizer, ids: np.ndarray, score=None) -> dict[str, float]:
    from .metrics import MUSIC_METRICS
    from .rwr import decode, token_errors

    score = decode(tokenizer, ids) if score is None else score
    out = {name: float(fn(score)) for name, fn in MUSIC_METRICS.items()}
    out["token_error_rate"] = token_errors(tokenizer, ids)
    return out


def pooled_pitch_classes(tokenizer, seqs: list[np.ndarray], scores: list | None = None):
    """Pitch-class histogram of all notes of a set (``scores``: the sequences decoded, if
    already at hand)."""
    from .metrics import pitch_class_histogram
    from .rwr import decode

    total = np.zeros(12)
    for i, ids in enumerate(seqs):
        score = decode(tokenizer, ids) if scores is None else scores[i]
        total += pitch_class_histogram(score) * max(int(score.note_num()), 0)
    return total / total.sum() if total.sum() > 0 else total


def _pch_distance(hist: np.ndarray, reference: np.ndarray) -> float:
    """Total variation distance of two pitch-class histograms; nan when either has no note."""
    from .metrics import histogram_distance

    if hist.sum() == 0 or reference.sum() == 0:
        return math.nan
    return histogram_distance(hist, reference)


def _js(counts, reference) -> float:
    """Jensen-Shannon divergence of two n-gram tables; nan for a set too short to have any."""
    from .ngrams import js_divergence

    if counts[1].sum() == 0:
        return math.nan
    return js_divergence(counts, reference)


def evaluate_set(
    tokenizer,
    samples: list[np.ndarray],
    prompt_tokens: int,
    reference: dict,
    copy_n: int,
    scores: list | None = None,
) -> tuple[dict[str, float], list[dict[str, float]]]:
    """Set-level metrics and per-sample metrics of one sample set against ``reference``.

    ``reference`` is :func:`build_reference`'s dict; ``scores`` the samples decoded, if at
    hand. A prompt's tokens are left out of every metric that could credit the method with
    them (divergences, copying).
    """
    from .metrics import longest_copies, ngram_copy_rate
    from .ngrams import ngram_counts

    new = [s[prompt_tokens:] for s in samples]
    set_metrics = {
        JS_NAMES[n]: _js(ngram_counts(new, n), counts) for n, counts in reference["ngrams"].items()
    }
    set_metrics["pch_distance"] = _pch_distance(
        pooled_pitch_classes(tokenizer, samples, scores), reference["pch"]
    )
    longest = longest_copies(new, reference["train"]) if reference["train"] else [0] * len(new)
    rows = []
    for i, (ids, tail, span) in enumerate(zip(samples, new, longest, strict=True)):
        row = _score_metrics(tokenizer, ids, None if scores is None else scores[i])
        row["copy_rate"] = (
            ngram_copy_rate(tail, reference["train"], copy_n, reference["train_hashes"])
            if reference["train"]
            else math.nan
        )
        row["longest_copy"] = float(span)
        rows.append(row)
    return set_metrics, rows


#: names of the n-gram divergences by order
JS_NAMES = {2: "js_bigram", 3: "js_trigram", 4: "js_4gram"}


def build_reference(
    tokenizer,
    test: list[np.ndarray],
    train: list[np.ndarray],
    copy_n: int,
    orders: tuple[int, ...] = (2, 3),
):
    """What every sample set is compared with: the test pieces' n-grams (of ``orders``) and
    pitch classes, and the training pieces (for the copy metrics)."""
    from .metrics import unique_window_hashes
    from .ngrams import ngram_counts

    if not test:
        raise ValueError("the target has no test pieces to evaluate against")
    return {
        "ngrams": {n: ngram_counts(test, n) for n in orders},
        "pch": pooled_pitch_classes(tokenizer, test),
        "train": train,
        "train_hashes": unique_window_hashes(train, copy_n) if train else None,
    }


def _adapt_seconds(method: str, info: dict, costs: dict) -> float | None:
    """Seconds spent adapting to the target (graph network training, fine-tuning, fitting)."""
    if method in costs:
        return costs[method]
    return info.get("adapt_seconds")


def music_measures(
    scores: list,
    reference_features: list[dict[str, np.ndarray]],
    classifier=None,
    target: str = "",
) -> tuple[dict[str, float], dict[str, dict[str, float]], list[dict]]:
    """Feature fidelity and style of one sample set (its generated parts, decoded).

    Returns the set's columns (:data:`MUSIC_SET_METRICS` and :data:`OA_COLUMNS`), the
    per-feature record of :func:`tokentransfer.features.feature_fidelity`, and per sample the
    class the classifier gives (``style``) and its probability of the target (``style_prob``).
    """
    from .features import feature_fidelity, mean_overlap, score_features
    from .style import vector_of

    feats = [score_features(sc) for sc in scores]
    per_feature = feature_fidelity(feats, reference_features)
    row: dict = {"feature_fidelity": mean_overlap(per_feature)}
    per_sample = [{"style": "", "style_prob": math.nan} for _ in scores]
    row["style_share"] = row["style_prob"] = math.nan
    if classifier is not None and target in classifier.classes and feats:
        x = np.stack([vector_of(f) for f in feats])
        prob = classifier.probabilities(x)
        pred = np.argmax(prob, axis=1)
        t = classifier.classes.index(target)
        row["style_share"] = float(np.mean(pred == t))
        row["style_prob"] = float(prob[:, t].mean())
        for r, c, p in zip(per_sample, pred, prob[:, t], strict=True):
            r.update(style=classifier.classes[int(c)], style_prob=float(p))
    for name in FIDELITY_FEATURES:
        row[f"oa_{name}"] = per_feature[name]["oa"]
    return row, per_feature, per_sample


def run_evaluate(
    *,
    tokenizer_json: str,
    target_shards: list[str],
    target_split: str,
    sets: dict[str, str],
    out_tsv: str,
    samples_tsv: str,
    eval_cfg: dict,
    gen_cfg: dict,
    costs: dict[str, float] | None = None,
    corpus: str = "",
    classifier: str | None = None,
    features_tsv: str | None = None,
) -> list[dict]:
    """Evaluate every sample set (method -> its ``tokens.h5``) against the target's test pieces.

    Writes ``out_tsv`` (one row per method: music measures, set metrics, per-sample means and
    stds, cost), ``samples_tsv`` (one row per sample) and ``features_tsv`` (one row per method
    and feature of :data:`FIDELITY_FEATURES`: OA, KL, and the mean and std of a numeric feature
    over the samples and over the reference excerpts). ``costs`` maps a method to its
    adaptation seconds where the sample set's own record does not hold them; ``classifier`` is
    the style classifier's JSON (without one the style columns are empty). A
    ``test_pieces`` row gives the metrics of excerpts of the test pieces themselves
    (divergences and fidelity left empty: they are the reference; its style share is the
    classifier's recall on the target's test pieces).

    Reads ``eval_cfg`` keys ``copy_n``, ``reference_excerpts`` and ``seed``, and ``gen_cfg``
    keys ``samples``, ``length`` and ``seed``.
    """
    from .baselines import bar_id, real_excerpts
    from .features import score_features
    from .fileio import write_text_atomic
    from .metrics import describe
    from .rwr import decode
    from .samples import read_samples
    from .style import StyleClassifier
    from .tokenize import corpus_tokens, load_tokenizer

    tokenizer = load_tokenizer(tokenizer_json)
    test = corpus_tokens(target_shards, [target_split], "test")
    train = corpus_tokens(target_shards, [target_split], "train")
    copy_n = int(eval_cfg["copy_n"])
    reference = build_reference(tokenizer, test, train, copy_n)
    costs = costs or {}
    model = StyleClassifier.load(classifier) if classifier else None
    if model is not None and corpus not in model.classes:
        log.warning("%s is not a class of the style classifier %s", corpus, classifier)
    rows, sample_rows, feature_rows = [], [], []
    n, length, seed = int(gen_cfg["samples"]), int(gen_cfg["length"]), int(gen_cfg["seed"])
    bar = bar_id(tokenizer)
    ref_excerpts = real_excerpts(
        test, int(eval_cfg["reference_excerpts"]), length, int(eval_cfg["seed"]), bar_id=bar
    )
    ref_features = [score_features(decode(tokenizer, s)) for s in ref_excerpts]
    log.info("reference: %d excerpts of %d test pieces", len(ref_excerpts), len(test))
    test_excerpts = real_excerpts(test, n, length, seed, bar_id=bar)
    entries = [("test_pieces", test_excerpts, 0, {})]
    for method, tokens_h5 in sets.items():
        samples, prompt = read_samples(tokens_h5)
        info_path = Path(tokens_h5).with_name("generation.json")
        info = json.loads(info_path.read_text()) if info_path.exists() else {}
        entries.append((method, samples, prompt, info))
    for method, samples, prompt, info in entries:
        t0 = time.perf_counter()
        new_scores = [decode(tokenizer, s[prompt:]) for s in samples]
        set_metrics, per_sample = evaluate_set(
            tokenizer, samples, prompt, reference, copy_n, new_scores if prompt == 0 else None
        )
        music, per_feature, styles = music_measures(new_scores, ref_features, model, corpus)
        if method == "test_pieces":  # the reference itself: its divergences say nothing
            set_metrics = dict.fromkeys(SET_METRICS, math.nan)
            music.update(dict.fromkeys(("feature_fidelity", *OA_COLUMNS), math.nan))
            for rec in per_feature.values():
                rec.update(oa=math.nan, kld=math.nan)
        row: dict = {
            "corpus": corpus,
            "method": method,
            "kind": method_kind(method),
            "samples": len(samples),
            "tokens": int(sum(len(s) - prompt for s in samples)),
            **{k: music[k] for k in MUSIC_SET_METRICS},
            **{k: music[k] for k in OA_COLUMNS},
            **set_metrics,
        }
        for name in SAMPLE_METRICS:
            mean, std, _ = describe([r[name] for r in per_sample])
            row[name] = mean
            row[f"{name}_std"] = std
        row["bits_per_token"] = info.get("bits_per_token", math.nan)
        row["gen_tokens_per_second"] = info.get("tokens_per_second")
        row["gen_seconds"] = info.get("seconds")
        row["adapt_seconds"] = _adapt_seconds(method, info, costs)
        rows.append(row)
        for i, (r, st) in enumerate(zip(per_sample, styles, strict=True)):
            sample_rows.append({"corpus": corpus, "method": method, "sample": i, **r, **st})
        for name, rec in per_feature.items():
            rec = {"corpus": corpus, "method": method, "feature": name, **rec}
            feature_rows.append({k: rec[k] for k in FEATURE_COLUMNS})
        log.info(
            "%s: evaluated %d samples in %.2f s (feature fidelity %.3f, style share %.3f)",
            method,
            len(samples),
            time.perf_counter() - t0,
            music["feature_fidelity"],
            music["style_share"],
        )
    write_text_atomic(out_tsv, to_tsv(rows))
    write_text_atomic(samples_tsv, to_tsv(sample_rows))
    if features_tsv:
        write_text_atomic(features_tsv, to_tsv(feature_rows))
    return rows


def graph_adapt_seconds(metrics_json: str) -> float | None:
    """Training seconds of the graph network whose node embeddings a walk uses (first seed,
    first encoder: the checkpoint that ``nodes.h5`` comes from)."""
    info = json.loads(Path(metrics_json).read_text())
    encoders = info.get("encoders") or []
    per_seed = info.get("per_seed") or []
    if not encoders or not per_seed:
        return None
    return per_seed[0]["methods"].get(encoders[0], {}).get("seconds")


def collect_costs(gcn_metrics: dict[str, str], finetune_metrics: str | None) -> dict[str, float]:
    """Adaptation seconds by method: each walk variant's graph-network training (``gcn_metrics``:
    variant -> its ``metrics.json``) and the fine-tuning run."""
    costs = {}
    for variant, path in gcn_metrics.items():
        seconds = graph_adapt_seconds(path)
        if seconds is not None:
            costs[variant] = float(seconds)
    if finetune_metrics:
        costs["finetuned"] = float(json.loads(Path(finetune_metrics).read_text())["seconds"])
    return costs


def run_summary(tables: list[str], out_tsv: str) -> None:
    """Concatenate the per-target tables into one."""
    from .fileio import write_text_atomic

    rows = [r for t in tables for r in read_tsv(t)]
    write_text_atomic(out_tsv, to_tsv(rows))
