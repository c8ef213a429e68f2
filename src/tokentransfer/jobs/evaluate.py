"""The jobs of ``rules/evaluate.smk`` (the evaluation stage): ``baseline`` (one method's sample
set), ``style_classifier`` (trained on real windows of every corpus), ``evaluate`` (every
sample set of a target measured against its held-out test pieces), ``eval_summary`` (the
table over every target), ``figures`` (a target's figures) and ``training_figure`` (the
training curves). Rule ``audio``'s script renders a sample with
:func:`tokentransfer.audio.render` directly.

The measures are :mod:`tokentransfer.evaluate`'s, the classifier :mod:`tokentransfer.style`'s
and the drawings :mod:`tokentransfer.figures`'s; these functions read the inputs, call them
and write the outputs.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from pathlib import Path

import numpy as np

from .. import metric_registry as reg
from ..evaluate import (
    COST_COLUMNS,
    FEATURE_COLUMNS,
    FIDELITY_COLUMNS,
    LIKELIHOOD_COLUMNS,
    MUSIC_SET_METRICS,
    OA_COLUMNS,
    SAMPLE_METRICS,
    SET_METRICS,
    build_reference,
    evaluate_set,
    heldout_bits,
    method_kind,
    music_measures,
    pooled_pitch_classes,
)
from ..figures import (
    metrics_chart,
    notes_in_beats,
    piano_rolls,
    pitch_class_chart,
    span_beats,
    test_excerpts,
    training_curves,
)
from ..fileio import read_tsv, to_tsv, write_text_atomic
from ..samples import read_samples, write_samples
from ..style import (
    ALL_ROW,
    MAJORITY_ROW,
    STYLE_FEATURES,
    StyleClassifier,
    style_vectors,
    train_classifier,
)
from ..tokenize import corpus_tokens, load_tokenizer, tokenize_file

log = logging.getLogger(__name__)


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
    sampling_cfg: dict | None = None,
    prompt_midi: str | None = None,
    use_gpu: bool = False,
    threads: int = 1,
) -> dict:
    """Produce one method's sample set (``generate.samples`` samples of ``generate.bars`` bars,
    or of ``generate.length`` tokens where ``bars`` is 0: :class:`tokentransfer.bars.SampleLength`):
    the registry's method (:mod:`tokentransfer.methods`) fitted on the target's training
    pieces and sampled, with the ``sampling`` and ``evaluate`` keys it reads (``sampling_cfg``,
    ``eval_cfg``). The record gives ``setup_seconds`` (loading and fitting) and
    ``sample_seconds`` apart."""
    from ..bars import SampleLength, tokens_per_bar
    from ..baselines import bar_id
    from ..methods import Env, get
    from ..model import set_threads

    t_setup = time.perf_counter()
    set_threads(threads)
    m = get(method)
    tokenizer = load_tokenizer(tokenizer_json)
    n, seed = int(gen_cfg["samples"]), int(gen_cfg["seed"])
    length = SampleLength.from_section(gen_cfg)
    prompt = tokenize_file(tokenizer, prompt_midi) if prompt_midi else None
    train = corpus_tokens(target_shards, [target_split], "train")
    env = Env(
        tokenizer,
        tokenizer_json,
        gen=gen_cfg,
        eval=eval_cfg,
        sampling=dict(sampling_cfg or {}),
        model_dir=model_dir,
        use_gpu=use_gpu,
        base_shards=list(base_shards),
    )
    fitted = m.fit(train, env)
    if not fitted.takes_prompt:
        prompt = None
    bar = bar_id(tokenizer)
    per_bar = tokens_per_bar(train, bar)
    setup_seconds = time.perf_counter() - t_setup
    t0 = time.perf_counter()
    samples, drawn = length.draw(fitted.sample, n, seed, prompt, bar_id=bar, per_bar=per_bar)
    seconds = time.perf_counter() - t0
    extra: dict = {"method": method, "samples_seed": seed, "prompt": prompt_midi, "length": drawn}
    extra.update(fitted.record)
    extra["adapt_seconds"] = round(fitted.adapt_seconds, 4)
    if fitted.log_probs is not None:
        test = corpus_tokens(target_shards, [target_split], "test")
        extra.update(heldout_bits(fitted.log_probs, test, eval_cfg.get("bits_tokens")))
    info = write_samples(
        tokenizer, tokenizer_json, samples, out_dir, prompt, seconds, extra, setup_seconds
    )
    log.info("%s: %d samples (%s) in %.2f s", method, n, drawn, seconds)
    return info


def heldout_parts(split_tsv: str | os.PathLike) -> list[str]:
    """The split parts other than ``train`` (``test`` for a target, ``val`` for the base)."""
    from ..split import read_split

    return sorted(set(read_split(split_tsv).values()) - {"train"})


def run_style_classifier(
    *,
    tokenizer_json: str,
    corpora: dict[str, tuple[list[str], str]],
    out_model: str,
    out_tsv: str,
    length: int,
    windows: int,
    heldout_windows: int,
    l2: float,
    seed: int,
    bars: int = 0,
) -> dict:
    """Train on ``windows`` training windows of ``length`` tokens (of ``bars`` bars where
    ``bars > 0``, as the samples are) per corpus (``corpora``:
    name -> (shards, split file)), measure on ``heldout_windows`` windows of each corpus's
    held-out pieces, and write the model (JSON) and the held-out table (TSV: one row per
    corpus with its windows, pieces, recall and the share predicted as each class, then a row
    :data:`ALL_ROW` with the accuracy and a row :data:`MAJORITY_ROW` with the majority-class
    rate, in the ``recall`` column).
    """
    from ..baselines import bar_id, real_excerpts

    tokenizer = load_tokenizer(tokenizer_json)
    bar = bar_id(tokenizer)
    classes = sorted(corpora)
    root = np.random.SeedSequence(int(seed))
    train_seeds = root.spawn(len(classes))
    test_seeds = root.spawn(len(classes))
    xs, ys, held = [], [], {}
    for c, (name, ss_train, ss_test) in enumerate(
        zip(classes, train_seeds, test_seeds, strict=True)
    ):
        shards, split = corpora[name]
        train = corpus_tokens(shards, [split], "train")
        if not train:
            log.warning("%s: no training pieces; left out of the classifier", name)
            continue
        picks = real_excerpts(train, windows, length, _int_seed(ss_train), bar, bars)
        xs.append(style_vectors(tokenizer, picks))
        ys.append(np.full(len(picks), c))
        held_pieces = [
            s for part in heldout_parts(split) for s in corpus_tokens(shards, [split], part)
        ]
        if held_pieces:
            picks = real_excerpts(
                held_pieces, heldout_windows, length, _int_seed(ss_test), bar, bars
            )
            held[name] = (style_vectors(tokenizer, picks), c, len(held_pieces))
        else:
            log.warning("%s: no held-out pieces; not in the held-out accuracy", name)
        log.info("%s: %d training pieces, %d held-out pieces", name, len(train), len(held_pieces))
    if len({int(y[0]) for y in ys if len(y)}) < 2:
        raise ValueError("the style classifier needs training pieces of two or more corpora")
    model = train_classifier(np.concatenate(xs), np.concatenate(ys), classes, l2=l2)
    rows, correct, total, counts = [], 0, 0, {}
    for name, (x, c, pieces) in held.items():
        pred = model.predict(x)
        share = np.bincount(pred, minlength=len(classes)) / len(pred)
        correct += int((pred == c).sum())
        total += len(pred)
        counts[name] = len(pred)
        rows.append(
            {
                "corpus": name,
                "windows": len(pred),
                "pieces": pieces,
                "recall": float(share[c]),
                **{f"as_{k}": float(v) for k, v in zip(classes, share, strict=True)},
            }
        )
    accuracy = correct / total if total else math.nan
    majority = max(counts.values()) / total if total else math.nan
    empty = {f"as_{k}": None for k in classes}
    for label, value in ((ALL_ROW, accuracy), (MAJORITY_ROW, majority)):
        rows.append({"corpus": label, "windows": total, "pieces": None, "recall": value, **empty})
    model.save(
        out_model,
        features=list(STYLE_FEATURES),
        length=int(length),
        bars=int(bars),
        windows=int(windows),
        l2=float(l2),
        seed=int(seed),
        train_windows={classes[int(y[0])]: len(y) for y in ys},
    )
    write_text_atomic(out_tsv, to_tsv(rows))
    log.info(
        "held-out accuracy %.3f (majority class %.3f) over %d windows", accuracy, majority, total
    )
    return {"accuracy": accuracy, "majority": majority, "rows": rows}


def _int_seed(ss: np.random.SeedSequence) -> int:
    return int(ss.generate_state(1, dtype=np.uint32)[0])


def _adapt_seconds(method: str, info: dict, costs: dict) -> float | None:
    """Seconds spent adapting to the target (graph network training, fine-tuning, fitting)."""
    if method in costs:
        return costs[method]
    return info.get("adapt_seconds")


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
    stds, cost: the registry's ``summary`` metrics, :mod:`tokentransfer.metric_registry`),
    ``samples_tsv`` (one row per sample) and ``features_tsv`` (one row per method and feature
    of :data:`tokentransfer.features.FIDELITY_FEATURES`, melody and form included: OA, KL, and
    the mean and std of a numeric feature over the samples and over the reference excerpts).
    Cost and likelihood columns come from the set's ``generation.json`` under the registry's
    ``record`` key. ``costs`` maps a method to its
    adaptation seconds where the sample set's own record does not hold them; ``classifier`` is
    the style classifier's JSON (without one the style columns are empty). A
    ``test_pieces`` row gives the metrics of excerpts of the test pieces themselves
    (divergences and fidelity left empty: they are the reference; its style share is the
    classifier's recall on the target's test pieces).

    Reads ``eval_cfg`` keys ``copy_n``, ``reference_excerpts`` and ``seed``, and ``gen_cfg``
    keys ``samples``, ``length``, ``bars`` and ``seed`` (the reference excerpts and the test
    pieces' row have the samples' length: ``bars`` bars, or ``length`` tokens).
    """
    from ..bars import SampleLength
    from ..baselines import bar_id
    from ..features import score_features
    from ..metrics import describe
    from ..midi import decode

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
    n, seed = int(gen_cfg["samples"]), int(gen_cfg["seed"])
    length = SampleLength.from_section(gen_cfg)
    bar = bar_id(tokenizer)
    ref_excerpts = length.excerpts(test, int(eval_cfg["reference_excerpts"]), eval_cfg["seed"], bar)
    ref_features = [score_features(decode(tokenizer, s)) for s in ref_excerpts]
    log.info("reference: %d excerpts of %d test pieces", len(ref_excerpts), len(test))
    test_excerpts = length.excerpts(test, n, seed, bar)
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
        music, per_feature, styles = music_measures(
            new_scores, ref_features, model, corpus, overlap=method != "test_pieces"
        )
        if method == "test_pieces":  # the reference itself: its divergences say nothing
            set_metrics = dict.fromkeys(SET_METRICS, math.nan)
            music.update(dict.fromkeys((*FIDELITY_COLUMNS, *OA_COLUMNS), math.nan))
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
        for name in (*LIKELIHOOD_COLUMNS, *COST_COLUMNS):  # from the set's record
            row[name] = info.get(reg.get(name).record, math.nan)
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


def collect_costs(
    linkpred_metrics: dict[str, str], finetune_metrics: str | None
) -> dict[str, float]:
    """Adaptation seconds by method: each walk variant's graph-network training
    (``linkpred_metrics``: variant -> its ``metrics.json``) and the fine-tuning run."""
    costs = {}
    for variant, path in linkpred_metrics.items():
        seconds = graph_adapt_seconds(path)
        if seconds is not None:
            costs[variant] = float(seconds)
    if finetune_metrics:
        costs["finetuned"] = float(json.loads(Path(finetune_metrics).read_text())["seconds"])
    return costs


def run_eval_summary(tables: list[str], out_tsv: str) -> None:
    """Concatenate the per-target tables into one."""

    rows = [r for t in tables for r in read_tsv(t)]
    write_text_atomic(out_tsv, to_tsv(rows))


def run_figures(
    *,
    tokenizer_json: str,
    metrics_tsv: str,
    sets: dict[str, str],
    metrics_png: str,
    pitch_png: str,
    rolls_png: str,
    title: str = "",
    reference: list[np.ndarray] | None = None,
    per_method: int = 3,
    seed: int = 0,
) -> None:
    """All figures of one target from its metrics table and its sample sets' ``tokens.h5``;
    ``reference``: the test pieces' token sequences; ``per_method`` samples of each set in the
    piano rolls, under as many test excerpts (seeded by ``seed``) of the same length, with the
    bar lines of the first sample's first time signature."""
    from ..metrics import _bar_quarters
    from ..midi import decode

    tokenizer = load_tokenizer(tokenizer_json)
    metrics_chart(read_tsv(metrics_tsv), metrics_png, title)
    histograms, shown = {}, {}
    if reference:
        histograms["test_pieces"] = pooled_pitch_classes(tokenizer, reference)
    for method, tokens_h5 in sets.items():
        samples, _ = read_samples(tokens_h5)
        histograms[method] = pooled_pitch_classes(tokenizer, samples)
        shown[method] = [decode(tokenizer, s) for s in samples[:per_method]]
    pitch_class_chart(histograms, pitch_png, title)
    spans = [span_beats(notes_in_beats(sc)) for scores in shown.values() for sc in scores]
    beats = max([*spans, 1.0])
    excerpts = None
    count = max([len(v) for v in shown.values()] + [1])  # as many as samples are shown
    if reference:
        rng = np.random.default_rng(np.random.SeedSequence(int(seed)))
        picked = rng.permutation(len(reference))[:count]  # decode only the pieces cut from
        decoded = [decode(tokenizer, reference[int(i)]) for i in picked]
        excerpts = test_excerpts(decoded, count, beats, seed)
    first = next((sc for scores in shown.values() for sc in scores), None)
    bar = _bar_quarters(first) if first is not None else None
    piano_rolls(shown, excerpts, rolls_png, title, beats, bar)


def run_training_figure(logs: dict[str, str], path: str | os.PathLike) -> None:
    """Loss against step of each training log (``logs``: a curve's name -> its
    ``training_log.tsv``: step, loss, ...), drawn by
    :func:`tokentransfer.figures.training_curves`."""
    training_curves({name: read_tsv(tsv) for name, tsv in logs.items()}, path)


def run_audio(
    *,
    midi: str | os.PathLike,
    out: str | os.PathLike,
    soundfont: str | os.PathLike,
    sample_rate: int,
    max_seconds: float,
) -> float:
    """Rule ``audio``: the first ``max_seconds`` of one set's first sample (``midi``) rendered
    by FluidSynth with ``soundfont`` to FLAC at ``out`` (:func:`tokentransfer.audio.render`);
    returns the audio's length in seconds. Reads config keys ``report.soundfont``,
    ``report.sample_rate`` and ``report.max_seconds``."""
    from ..audio import render

    seconds = render(midi, out, soundfont, sample_rate=sample_rate, max_seconds=max_seconds)
    log.info("%s: %.1f s of audio", midi, seconds)
    return seconds
