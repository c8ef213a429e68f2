"""The report's figures (matplotlib, drawn off-screen to PNG).

Per target: the evaluation metrics with methods side by side, the pooled pitch-class
histograms of every sample set beside the test pieces', and piano rolls of the first sample of
every set. For the model: the training curves of pretraining and fine-tuning.
"""

from __future__ import annotations

import logging
import math
import os

import numpy as np

log = logging.getLogger(__name__)

#: metrics drawn in the chart, with their labels ("lower is better" is said where it holds)
CHART_METRICS = (
    ("js_bigram", "bigram JS divergence to test (lower: closer)"),
    ("js_trigram", "trigram JS divergence to test (lower: closer)"),
    ("pch_distance", "pitch-class distance to test (lower: closer)"),
    ("pitch_class_entropy", "pitch-class entropy (bits)"),
    ("polyphony", "polyphony"),
    ("note_density", "notes per beat"),
    ("scale_consistency", "scale consistency"),
    ("groove_consistency", "groove consistency"),
    ("empty_beat_rate", "empty-beat rate"),
    ("token_error_rate", "token error rate"),
    ("copy_rate", "n-gram copy rate from training"),
    ("longest_copy", "longest span copied from training (tokens)"),
)
KIND_COLOURS = {"graph": "tab:blue", "baseline": "tab:orange", "reference": "tab:gray"}
PNG_METADATA = {"Software": None}  # no version string: the same figure gives the same bytes


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | os.PathLike) -> None:
    import io

    from .fileio import write_bytes_atomic

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, metadata=PNG_METADATA)
    write_bytes_atomic(path, buf.getvalue())


def _num(value: str | None) -> float:
    try:
        return float(value) if value not in (None, "") else math.nan
    except ValueError:
        return math.nan


def metrics_chart(rows: list[dict[str, str]], path: str | os.PathLike, title: str = "") -> None:
    """One panel per metric of :data:`CHART_METRICS`, a bar per method (error bar: the std
    over samples), coloured by kind (walk, baseline, real pieces). Costs are left to the table:
    a figure holds no wall time, so two runs draw the same bytes."""
    plt = _pyplot()
    methods = [r["method"] for r in rows]
    cols = 3
    nrows = math.ceil(len(CHART_METRICS) / cols)
    height = 0.28 * len(methods) + 1.0
    fig, axes = plt.subplots(nrows, cols, figsize=(cols * 4.6, nrows * height), squeeze=False)
    y = np.arange(len(methods))
    colours = [KIND_COLOURS.get(r.get("kind", ""), "tab:green") for r in rows]
    for ax, (name, label) in zip(axes.ravel(), CHART_METRICS, strict=False):
        values = np.array([_num(r.get(name)) for r in rows])
        errors = np.array([_num(r.get(f"{name}_std")) for r in rows])
        errors = np.where(np.isfinite(errors), errors, 0.0)
        shown = np.where(np.isfinite(values), values, 0.0)
        ax.barh(y, shown, xerr=errors, color=colours, error_kw={"elinewidth": 0.8})
        ax.set_yticks(y, methods, fontsize=7)
        ax.invert_yaxis()
        ax.set_title(label, fontsize=8)
        ax.tick_params(axis="x", labelsize=7)
        for yi, v in zip(y, values, strict=True):
            if not np.isfinite(v):
                ax.text(0, yi, " n/a", va="center", fontsize=6, color="gray")
    for ax in axes.ravel()[len(CHART_METRICS) :]:
        ax.axis("off")
    fig.suptitle(f"{title}: methods against the held-out test pieces", fontsize=10)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)


def pitch_class_chart(
    histograms: dict[str, np.ndarray], path: str | os.PathLike, title: str = ""
) -> None:
    """Pooled pitch-class histograms, one line per sample set (the test pieces in black)."""
    plt = _pyplot()
    names = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]
    fig, ax = plt.subplots(figsize=(8, 4))
    for method, hist in histograms.items():
        style = {"color": "black", "linewidth": 2.5} if method == "test_pieces" else {}
        ax.plot(range(12), hist, marker="o", markersize=3, label=method, **style)
    ax.set_xticks(range(12), names)
    ax.set_ylabel("share of notes")
    ax.set_title(f"{title}: pitch classes", fontsize=10)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)


def piano_rolls(scores: dict, path: str | os.PathLike, title: str = "") -> None:
    """The first sample of every set as a piano roll (time in quarter notes, MIDI pitch)."""
    from .metrics import note_arrays

    plt = _pyplot()
    cols = 2
    nrows = max(1, math.ceil(len(scores) / cols))
    fig, axes = plt.subplots(nrows, cols, figsize=(12, 1.9 * nrows), squeeze=False)
    for ax, (method, score) in zip(axes.ravel(), scores.items(), strict=False):
        notes = note_arrays(score)
        tpq = max(int(score.tpq), 1)
        if len(notes["pitch"]):
            start = notes["time"] / tpq
            dur = np.maximum((notes["end"] - notes["time"]) / tpq, 0.05)
            ax.barh(notes["pitch"], dur, left=start, height=0.8, color="tab:blue")
        ax.set_title(method, fontsize=8)
        ax.tick_params(labelsize=6)
    for ax in axes.ravel()[len(scores) :]:
        ax.axis("off")
    fig.suptitle(f"{title}: first sample of each method (x: quarter notes, y: pitch)", fontsize=9)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)


def target_figures(
    *,
    tokenizer_json: str,
    metrics_tsv: str,
    sets: dict[str, str],
    metrics_png: str,
    pitch_png: str,
    rolls_png: str,
    title: str = "",
    reference: list[np.ndarray] | None = None,
) -> None:
    """All figures of one target from its metrics table and its sample sets' ``tokens.h5``."""
    from .evaluate import pooled_pitch_classes, read_tsv
    from .rwr import decode
    from .stages import read_samples
    from .tokenize import load_tokenizer

    tokenizer = load_tokenizer(tokenizer_json)
    metrics_chart(read_tsv(metrics_tsv), metrics_png, title)
    histograms, scores = {}, {}
    if reference:
        histograms["test_pieces"] = pooled_pitch_classes(tokenizer, reference)
    for method, tokens_h5 in sets.items():
        samples, _ = read_samples(tokens_h5)
        histograms[method] = pooled_pitch_classes(tokenizer, samples)
        scores[method] = decode(tokenizer, samples[0])
    pitch_class_chart(histograms, pitch_png, title)
    piano_rolls(scores, rolls_png, title)


def training_curves(logs: dict[str, str], path: str | os.PathLike) -> None:
    """Loss against step of each training log (``training_log.tsv``: step, loss, ...)."""
    from .evaluate import read_tsv

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, tsv in logs.items():
        rows = read_tsv(tsv)
        steps = [_num(r.get("step")) for r in rows]
        loss = [_num(r.get("loss")) for r in rows]
        if rows:
            ax.plot(steps, loss, label=name)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (cross-entropy, nats)")
    ax.set_title("transformer training", fontsize=10)
    if logs:
        ax.legend(fontsize=8)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)
