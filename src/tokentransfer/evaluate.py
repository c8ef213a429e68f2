"""Evaluation: the graph walks against baselines, on the target's held-out test pieces.

Every method produces one *sample set* in the same layout (``sample_NNN.mid``, ``tokens.h5``,
``generation.json``; see :mod:`tokentransfer.samples`): the same number of
samples of the same length, from the same prompt and seed.

Methods (``evaluate.methods`` beside the walk variants of ``generate.variants``):

- ``markov1`` .. ``markov3``: n-gram chains fitted on the target's training pieces, with
  interpolated absolute-discount smoothing (:class:`tokentransfer.baselines.NgramModel`);
  ``markov1c`` .. ``markov3c``: the same chains sampled under the REMI grammar mask
  (renormalised over the allowed tokens: zero token errors); ``markov2ci``, ``markov3ci``: the
  masked chains with the walk's pitch memory (the interval model on ``Pitch`` tokens);
- ``transformer``: the pretrained transformer, unadapted; ``finetuned``: fine-tuned on the
  target (only for the targets of ``finetune.targets``); ``fused_markov``: its logits plus
  lambda times the log-probabilities of the target's trigram chain; ``knn``: its distribution
  interpolated with that of the nearest stored hidden states of the target's pieces (kNN-LM,
  :mod:`tokentransfer.knn`);
- ``real_target``: excerpts of the target's *training* pieces (the ceiling: real music of the
  style that is not in the reference; the test pieces themselves would score a divergence of 0
  by construction); ``real_base``: excerpts of base pieces (the floor).

Metrics against the target's test pieces, in the order of the table:

- what the music sounds like: **feature fidelity**, the mean over the features of
  :data:`tokentransfer.features.FIDELITY_FEATURES` (texture: note density, polyphony,
  empty-beat rate; pitch: range, pitch-class histogram, scale consistency; rhythm:
  inter-onset-interval and duration histograms, groove consistency; melody of the top lines:
  average interval, step, leap and repeated-pitch shares, contour changes, pitch-class and
  note-length transition matrices; form over the first 16 bars: bar return share,
  self-similarity at lags 1, 2, 4 and 8 bars, structureness) of the overlapping area of Yang &
  Lerch (2020) between the sample set and ``evaluate.reference_excerpts`` excerpts of the test
  pieces of the same token length (each feature's OA in ``oa_<feature>``; OA, KL and the
  feature's mean and std per method and over the excerpts in ``features.tsv``), beside it
  ``feature_fidelity_texture`` (texture, pitch and rhythm only: the score before the melody
  and form features) and ``feature_fidelity_melody`` (melody and form only); and the **style
  share**, the share of samples that the style classifier
  (:mod:`tokentransfer.style`, trained on every corpus's training pieces) assigns to the
  target (``style_prob``: its mean probability of the target);
- token bigram/trigram Jensen-Shannon divergence and the pitch-class histogram distance (of the
  pooled set);
- per-sample music metrics (the registry's score features of ``summary.tsv``: texture,
  pitch, rhythm, the melody shares and the form scalars), the token error rate,
  memorisation (the share of a sample's n-grams found in the training pieces, and the longest
  span copied from one) and cost (generation tokens/s, adaptation seconds).

Fidelity and style look at a sample's generated tokens only (a prompt is left out). The jobs
that read the sample sets and write the tables are in :mod:`tokentransfer.jobs.evaluate`.
Every metric and the table, figure and curve it enters is registered once in
:mod:`tokentransfer.metric_registry`; the tuples below are read from it.
"""

from __future__ import annotations

import logging
import math
import time

import numpy as np

from . import metric_registry as reg
from .features import FIDELITY_FEATURES

log = logging.getLogger(__name__)

# The columns below are the registry's (tokentransfer.metric_registry): change them there.

#: per-sample metrics, in the order of the table (each with its mean and ``_std``)
SAMPLE_METRICS: tuple[str, ...] = reg.names(level="sample", table="summary")
#: what the music sounds like, set by set: they lead the table (see the module's docstring)
MUSIC_SET_METRICS: tuple[str, ...] = reg.names(
    level="set", table="summary", groups=("fidelity", "style")
)
#: the feature-fidelity columns (feature_fidelity, feature_fidelity_texture, ...)
FIDELITY_COLUMNS: tuple[str, ...] = reg.names(table="summary", groups=("fidelity",))
#: cost columns, each read from the sample set's record (the registry's ``record`` key)
COST_COLUMNS: tuple[str, ...] = reg.names(table="summary", groups=("cost",))
#: held-out likelihood of the methods that define a next-token distribution (their record)
LIKELIHOOD_COLUMNS: tuple[str, ...] = reg.names(table="summary", groups=("likelihood",))
#: metrics of a whole sample set, measured by :func:`evaluate_set`
SET_METRICS: tuple[str, ...] = tuple(
    n
    for n in reg.names(level="set", table="summary")
    if n not in (*MUSIC_SET_METRICS, *COST_COLUMNS, *LIKELIHOOD_COLUMNS)
)
#: columns of each feature's overlapping area
OA_COLUMNS: tuple[str, ...] = tuple(f"oa_{name}" for name in FIDELITY_FEATURES)
#: columns of features.tsv
FEATURE_COLUMNS = ("corpus", "method", "feature", "oa", "kld", "mean", "std", "ref_mean", "ref_std")
#: the per-sample metrics measured on the decoded score (the rest come from the tokens)
SCORE_METRICS: tuple[str, ...] = reg.names(level="sample", table="summary", feature=True)


def method_kind(method: str) -> str:
    """``graph`` (a walk), ``baseline`` (a generator) or ``reference`` (real pieces), as the
    method registry says (:mod:`tokentransfer.methods`); ``test_pieces`` is the reference
    row."""
    from .methods import REGISTRY

    if method == "test_pieces":
        return "reference"
    m = REGISTRY.get(method)
    return m.kind if m is not None else "graph"


# --------------------------------------------------------------------------- likelihood


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
    from .features import score_features
    from .midi import decode, token_errors

    score = decode(tokenizer, ids) if score is None else score
    feats = score_features(score, SCORE_METRICS, empty=False)  # undefined stays nan
    out = {name: float(value[0]) for name, value in feats.items()}
    out["token_error_rate"] = token_errors(tokenizer, ids)
    return out


def pooled_pitch_classes(tokenizer, seqs: list[np.ndarray], scores: list | None = None):
    """Pitch-class histogram of all notes of a set (``scores``: the sequences decoded, if
    already at hand)."""
    from .metrics import pitch_class_histogram
    from .midi import decode

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


def music_measures(
    scores: list,
    reference_features: list[dict[str, np.ndarray]],
    classifier=None,
    target: str = "",
    overlap: bool = True,
) -> tuple[dict[str, float], dict[str, dict[str, float]], list[dict]]:
    """Feature fidelity and style of one sample set (its generated parts, decoded).

    Returns the set's columns (:data:`MUSIC_SET_METRICS`: the feature-fidelity scores of
    :func:`tokentransfer.features.fidelity_scores` and the style share; :data:`OA_COLUMNS`), the
    per-feature record of :func:`tokentransfer.features.feature_fidelity`, and per sample the
    class the classifier gives (``style``) and its probability of the target (``style_prob``).
    ``overlap=False`` skips the overlapping areas (nan): for the reference's own excerpts.
    """
    from .features import feature_fidelity, fidelity_scores, score_features

    feats = [score_features(sc) for sc in scores]
    per_feature = feature_fidelity(feats, reference_features, overlap=overlap)
    row: dict = fidelity_scores(per_feature)
    per_sample = [{"style": "", "style_prob": math.nan} for _ in scores]
    row["style_share"] = row["style_prob"] = math.nan
    if classifier is not None and target in classifier.classes and feats:
        x = np.stack([classifier.vector(f) for f in feats])  # the features it was trained on
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
