"""The few-shot curve: every method adapted on k pieces of a target style, k = 1, 2, 5, ...

The target's test pieces are fixed (its grouped split). From its training pieces, nested
subsets are drawn *by group* — a "piece" is a group, so the 12 transpositions of one song are
one piece and come together: draw d orders the training groups with a seeded shuffle, and the
subset of k pieces is the first k groups in that order (so the k=5 subset contains the k=2
subset of the same draw). ``k = 0`` in the config means all training pieces; a k larger than
the number of training pieces is skipped (recorded, no rows).

Each point draws its subset, then loops over the methods of the registry
(:mod:`tokentransfer.methods`) that declare a few-shot job and are chosen in
``fewshot.methods`` (or, for the graph-network walks, ``fewshot.variants``): each is fitted on
the subset alone (:meth:`tokentransfer.methods.Method.fit`) and produces ``generate.samples``
samples of ``generate.bars`` bars (or ``generate.length`` tokens), kept as MIDI and measured
like the evaluation's by the target's curve job. A method's job is where it runs: ``point``
(n-gram chains ``markov1`` .. ``markov3ci``, smoothed so that they can leave
the subset's own transitions; the walk on the subset's successor counts, ``counts``; the
biased walk of each ``fewshot.variants`` entry, its graph network trained by link prediction
on the subset's graph), ``finetune`` (the pretrained transformer fine-tuned on the subset for
``fewshot.finetune_steps`` steps) or ``transfer`` (the pretrained transformer in the loop,
issue 14: ``fused_markov`` / ``fused_walk``, its logits plus lambda times the log-probabilities
of the subset's order-2 chain / counts walk under the grammar, lambda chosen on held-out groups
of the subset; ``transplant``, graph-network embeddings adapted on the subset put into its
input table, whose ``adapt_seconds`` are the per-target part; ``embed_ft`` / ``lora``, its
input embedding table alone / LoRA adapters trained for the budget of ``finetuned``). The
unadapted transformer is a reference line (the evaluation's ``transformer`` samples).

Every method with a next-token distribution also gets ``bits_per_token`` on the test pieces
(at most ``evaluate.bits_tokens`` of their tokens, as in the evaluation;
:mod:`tokentransfer.likelihood`: the chains and walks smoothed by its floor, the ``...c``
chains and every transformer under the grammar mask); the unadapted transformer's reference
line takes its value from the evaluation's record.

Rows of ``curve.tsv``: corpus, method, k, draw, pieces (groups), files, metric, value. The jobs
that read the inputs and write the points and the curve are in :mod:`tokentransfer.jobs.fewshot`.
"""

from __future__ import annotations

import csv
import math
import os

import numpy as np

from . import metric_registry as reg

# The curve's metrics are the registry's (tokentransfer.metric_registry, table "curve").

#: the evaluation's measures of the music (tokentransfer.evaluate.music_measures): feature
#: fidelity against excerpts of the test pieces of the samples' length (all features, and
#: the texture/pitch/rhythm and melody/form scores beside it), and the share the style
#: classifier assigns to the target
MUSIC_METRICS: tuple[str, ...] = reg.names(table="curve", groups=("fidelity", "style"))
LIKELIHOOD_METRICS: tuple[str, ...] = reg.names(table="curve", groups=("likelihood",))
COST_METRICS: tuple[str, ...] = reg.names(table="curve", groups=("cost",))
#: the metrics of the curve measured on the samples (set metrics and per-sample means; see
#: tokentransfer.evaluate)
CURVE_METRICS: tuple[str, ...] = tuple(
    n
    for n in reg.names(table="curve")
    if n not in (*MUSIC_METRICS, *LIKELIHOOD_METRICS, *COST_METRICS)
)
COLUMNS = ("corpus", "method", "k", "draw", "pieces", "files", "metric", "value")


def read_groups(split_tsv: str | os.PathLike, part: str = "train") -> dict[str, list[str]]:
    """``{group: [file_id, ...]}`` of one part of a split file, both sorted."""
    groups: dict[str, list[str]] = {}
    with open(split_tsv, encoding="utf-8") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            if row["split"] == part:
                groups.setdefault(row["group"], []).append(row["file_id"])
    return {g: sorted(f) for g, f in sorted(groups.items())}


def group_order(groups: list[str], seed: int, draw: int) -> list[str]:
    """The seeded order of draw ``draw`` over the (sorted) group names."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, draw]))
    names = sorted(groups)
    return [names[i] for i in rng.permutation(len(names))]


def subset(groups: dict[str, list[str]], k: int, seed: int, draw: int) -> list[str] | None:
    """File ids of the k-piece subset of draw ``draw`` (k = 0: every training piece); None
    when the target has fewer than k training pieces."""
    if k == 0:
        k = len(groups)
    if k > len(groups) or k < 1:
        return None
    chosen = group_order(list(groups), seed, draw)[:k]
    return sorted(f for g in chosen for f in groups[g])


# --------------------------------------------------------------------------- points


def point_rows(corpus, method, k, draw, pieces, files, values: dict[str, float]) -> list[dict]:
    """The rows (:data:`COLUMNS`) of one method at one point, one per metric (nan where
    ``values`` has none)."""
    return [
        {
            "corpus": corpus,
            "method": method,
            "k": k,
            "draw": draw,
            "pieces": pieces,
            "files": files,
            "metric": m,
            "value": values.get(m, math.nan),
        }
        for m in (*MUSIC_METRICS, *CURVE_METRICS, *LIKELIHOOD_METRICS, *COST_METRICS)
    ]


class MusicReference:
    """What feature fidelity and style share are measured against, as in the evaluation
    (:func:`tokentransfer.jobs.evaluate.run_evaluate`): the musical features of
    ``evaluate.reference_excerpts`` excerpts of the samples' ``length`` (a
    :class:`tokentransfer.bars.SampleLength`, or a number of tokens) of the test pieces (seeded
    by ``evaluate.seed``), and the style classifier (None: no style share)."""

    def __init__(self, tokenizer, test, eval_cfg: dict, length, classifier=None) -> None:
        from .bars import SampleLength
        from .baselines import bar_id
        from .features import score_features
        from .midi import decode
        from .style import StyleClassifier

        if not isinstance(length, SampleLength):
            length = SampleLength(int(length))
        excerpts = length.excerpts(
            test, int(eval_cfg["reference_excerpts"]), int(eval_cfg["seed"]), bar_id(tokenizer)
        )
        self.features = [score_features(decode(tokenizer, s)) for s in excerpts]
        self.classifier = StyleClassifier.load(classifier) if classifier else None

    def measure(self, scores, corpus: str) -> dict[str, float]:
        from .evaluate import music_measures

        row, _, _ = music_measures(scores, self.features, self.classifier, corpus)
        return {k: row[k] for k in MUSIC_METRICS}


def measure(
    tokenizer, samples, reference, copy_n: int, music: MusicReference | None = None, corpus=""
) -> dict[str, float]:
    """The curve's metrics of one sample set (means over samples for per-sample metrics;
    with ``music``, feature fidelity and style share)."""
    from .evaluate import evaluate_set
    from .metrics import describe
    from .midi import decode

    scores = [decode(tokenizer, s) for s in samples]
    set_metrics, per_sample = evaluate_set(tokenizer, samples, 0, reference, copy_n, scores)
    out = dict(set_metrics)
    for name in CURVE_METRICS:
        if name not in out:
            out[name] = describe([r[name] for r in per_sample])[0]
    if music is not None:
        out.update(music.measure(scores, corpus))
    return out


def k_key(k) -> int:
    """Sort key of a ``k`` column's value: the number (-1 for a reference line), anything else
    last."""
    return int(k) if str(k).lstrip("-").isdigit() else 10**9


#: metrics drawn, with labels (the registry's panels of the figure "curve")
FIGURE_METRICS: tuple[tuple[str, str], ...] = reg.labels("curve")


def curve_figure(rows: list[dict], path: str | os.PathLike, title: str = "") -> None:
    """Metric against k (log axis), one line per method (mean over draws, band: min to max);
    the unadapted transformer as a dashed horizontal line."""
    from .figures import pyplot, save_png

    plt = pyplot()
    cols = math.ceil(len(FIGURE_METRICS) / 2)
    fig, axes = plt.subplots(2, cols, figsize=(4.7 * cols, 7.5), squeeze=False)
    methods = sorted({r["method"] for r in rows if k_key(r["k"]) >= 0})
    colours = {m: f"C{i % 10}" for i, m in enumerate(methods)}
    for ax in axes.ravel()[len(FIGURE_METRICS) :]:
        ax.axis("off")
    for ax, (metric, label) in zip(axes.ravel(), FIGURE_METRICS, strict=False):
        for method in methods:
            by_k: dict[int, list[float]] = {}
            for r in rows:
                if r["method"] == method and r["metric"] == metric and k_key(r["k"]) >= 0:
                    v = float(r["value"]) if r["value"] not in ("", None) else math.nan
                    if math.isfinite(v):
                        by_k.setdefault(int(r["pieces"]), []).append(v)
            if not by_k:
                continue
            ks = sorted(by_k)
            mean = [float(np.mean(by_k[k])) for k in ks]
            ax.plot(ks, mean, marker="o", markersize=3, label=method, color=colours[method])
            lo = [min(by_k[k]) for k in ks]
            hi = [max(by_k[k]) for k in ks]
            ax.fill_between(ks, lo, hi, alpha=0.15, color=colours[method])
        for r in rows:
            line = r["method"] == "transformer" and r["metric"] == metric and k_key(r["k"]) < 0
            if line and r["value"] not in ("", None) and math.isfinite(float(r["value"])):
                ax.axhline(float(r["value"]), color="black", linestyle="--", linewidth=1)
        ax.set_xscale("log")
        ticks = sorted({int(r["pieces"]) for r in rows if k_key(r["k"]) >= 0})
        if ticks:
            ax.set_xticks(ticks, [str(t) for t in ticks])
            ax.minorticks_off()
        ax.set_xlabel("training pieces k")
        ax.set_title(label, fontsize=9)
    axes[0, 0].legend(fontsize=7)
    fig.suptitle(f"{title}: few-shot adaptation (dashed: the transformer unadapted)", fontsize=10)
    fig.tight_layout()
    save_png(fig, path)
    plt.close(fig)
