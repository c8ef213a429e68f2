"""The report's figures (matplotlib, drawn off-screen to PNG).

Per target: the evaluation metrics with methods side by side, the pooled pitch-class
histograms of every sample set beside the test pieces', and piano rolls of several samples of
every set under excerpts of the test pieces of the same length in quarter notes, all on one
time axis. For the model: the training curves of pretraining and fine-tuning.
"""

from __future__ import annotations

import logging
import math
import os

import numpy as np

from . import metric_registry as reg

log = logging.getLogger(__name__)

#: metrics drawn in the chart, with their labels ("lower is better" is said where it holds):
#: the registry's panels of the figure "chart" (tokentransfer.metric_registry)
CHART_METRICS: tuple[tuple[str, str], ...] = reg.labels("chart")
KIND_COLOURS = {"graph": "tab:blue", "baseline": "tab:orange", "reference": "tab:gray"}
PNG_METADATA = {"Software": None}  # no version string: the same figure gives the same bytes


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed); for every figure module."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_png(fig, path: str | os.PathLike) -> None:
    """Write a figure as PNG atomically, without a version string (same figure, same bytes)."""
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
    plt = pyplot()
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
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / (nrows * height)))  # room for the title
    save_png(fig, path)
    plt.close(fig)


def pitch_class_chart(
    histograms: dict[str, np.ndarray], path: str | os.PathLike, title: str = ""
) -> None:
    """Pooled pitch-class histograms, one line per sample set (the test pieces in black)."""
    plt = pyplot()
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
    save_png(fig, path)
    plt.close(fig)


def notes_in_beats(score) -> dict[str, np.ndarray]:
    """A score's notes with onset and end in quarter notes."""
    from .metrics import note_arrays

    notes = note_arrays(score)
    tpq = max(int(score.tpq), 1)
    return {
        "start": notes["time"] / tpq,
        "end": notes["end"] / tpq,
        "pitch": notes["pitch"],
        "drum": notes["drum"],
    }


def span_beats(notes: dict[str, np.ndarray]) -> float:
    """Quarter notes from 0 to the end of the last note (0 without notes)."""
    return float(notes["end"].max()) if len(notes["end"]) else 0.0


def cut_beats(notes: dict[str, np.ndarray], start: float, beats: float) -> dict[str, np.ndarray]:
    """The notes that start in ``[start, start + beats)``, moved to start at 0 and cut off at
    ``beats``."""
    keep = (notes["start"] >= start) & (notes["start"] < start + beats)
    out = {k: v[keep] for k, v in notes.items()}
    out["start"] = out["start"] - start
    out["end"] = np.minimum(out["end"] - start, beats)
    return out


def test_excerpts(scores: list, count: int, beats: float, seed: int) -> list[dict]:
    """``count`` excerpts of ``beats`` quarter notes of the (decoded) test pieces, each from a
    bar line (the first time signature's bar) chosen at random among those that leave
    ``beats`` before the piece's end (the first bar when none does). Pieces are taken in a
    seeded random order, without replacement while there are pieces left."""
    from .metrics import _bar_quarters

    if not scores:
        return []
    rng = np.random.default_rng(np.random.SeedSequence(int(seed)))
    order = list(rng.permutation(len(scores)))
    order += list(rng.integers(0, len(scores), size=max(0, count - len(order))))
    out = []
    for idx in order[:count]:
        score = scores[int(idx)]
        notes = notes_in_beats(score)
        bar = _bar_quarters(score)
        first = float(notes["start"].min()) if len(notes["start"]) else 0.0
        first_bar = np.floor(first / bar) * bar
        last = span_beats(notes) - beats
        starts = np.arange(first_bar, max(last, first_bar) + 1e-9, bar)
        starts = starts[starts <= last + 1e-9] if (starts <= last + 1e-9).any() else starts[:1]
        out.append(cut_beats(notes, float(rng.choice(starts)), beats))
    return out


def _draw_roll(ax, notes: dict[str, np.ndarray]) -> None:
    """Notes as rectangles (one PolyCollection: fast for thousands of notes); drums in grey."""
    from matplotlib.collections import PolyCollection

    if not len(notes["pitch"]):
        ax.text(0.5, 0.5, "no notes", transform=ax.transAxes, ha="center", fontsize=7)
        return
    x0 = notes["start"]
    x1 = np.maximum(notes["end"], x0 + 0.05)
    y0, y1 = notes["pitch"] - 0.45, notes["pitch"] + 0.45
    verts = np.stack([np.c_[x0, y0], np.c_[x1, y0], np.c_[x1, y1], np.c_[x0, y1]], axis=1)
    colours = np.where(notes["drum"], "0.6", "tab:blue")
    # snap=False: a note is under a pixel tall when many rows share the figure, and snapped to
    # the pixel grid it rounds to no height in rows whose offset falls badly (a whole row of
    # samples drawn empty); unsnapped, antialiased, it is drawn partly covered
    ax.add_collection(
        PolyCollection(verts, facecolors=colours, edgecolors="none", snap=False, antialiased=True)
    )


def bar_lines(beats: float, bar: float | None) -> np.ndarray:
    """Where the bar lines of a piano roll of ``beats`` quarter notes go: every ``bar`` quarter
    notes from 0 (none where ``bar`` is None or not positive)."""
    if not bar or bar <= 0:
        return np.zeros(0)
    return np.arange(0.0, beats + 1e-9, float(bar))


def piano_rolls(
    sets: dict[str, list],
    reference: list[dict[str, np.ndarray]] | None,
    path: str | os.PathLike,
    title: str = "",
    beats: float | None = None,
    bar: float | None = None,
) -> float:
    """Piano rolls of several samples per set (``sets``: method -> decoded scores), one row per
    method, under a first row of test excerpts (``reference``: note dicts in quarter notes, as
    :func:`test_excerpts` cuts them), all on one time axis of ``beats`` quarter notes (default:
    the longest sample's span) and one pitch axis, with a bar line every ``bar`` quarter notes
    (:func:`bar_lines`; None: none). Returns the axis length in quarter notes."""
    plt = pyplot()
    rows = {m: [notes_in_beats(sc) for sc in scores] for m, scores in sets.items()}
    if beats is None:
        spans = [span_beats(n) for notes in rows.values() for n in notes]
        beats = max([*spans, 1.0])
    if reference:
        rows = {"test excerpts": reference, **rows}
    cols = max([len(v) for v in rows.values()] + [1])
    pitches = np.concatenate([n["pitch"] for v in rows.values() for n in v] + [np.zeros(0)])
    low, high = (pitches.min() - 2, pitches.max() + 2) if len(pitches) else (40, 90)
    fig, axes = plt.subplots(
        max(len(rows), 1),
        cols,
        figsize=(3.9 * cols + 1.2, 1.15 * max(len(rows), 1) + 0.9),
        sharex=True,
        sharey=True,
        squeeze=False,
    )
    lines = bar_lines(beats, bar)
    for r, (name, notes_list) in enumerate(rows.items()):
        for c in range(cols):
            ax = axes[r, c]
            for x in lines:
                ax.axvline(x, color="0.82", linewidth=0.4, zorder=0)
            if c < len(notes_list):
                _draw_roll(ax, notes_list[c])
            else:
                ax.set_facecolor("0.95")
            ax.tick_params(labelsize=6)
        axes[r, 0].set_ylabel(name, fontsize=7, rotation=0, ha="right", va="center")
    axes[0, 0].set_xlim(0, beats)
    axes[0, 0].set_ylim(low, high)
    for c in range(cols):
        axes[-1, c].set_xlabel("quarter notes", fontsize=7)
    bars = f", bar lines every {bar:g}" if len(lines) else ""
    fig.suptitle(
        f"{title}: {cols} samples per method under test excerpts of the same length "
        f"({beats:.0f} quarter notes{bars}); one time axis, y: MIDI pitch",
        fontsize=9,
    )
    fig.tight_layout()
    save_png(fig, path)
    plt.close(fig)
    return beats


def training_curves(curves: dict[str, list[dict[str, str]]], path: str | os.PathLike) -> None:
    """Loss against step of each training log (``curves``: a name -> the rows of its
    ``training_log.tsv``: step, loss, ...)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, rows in curves.items():
        steps = [_num(r.get("step")) for r in rows]
        loss = [_num(r.get("loss")) for r in rows]
        if rows:
            ax.plot(steps, loss, label=name)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (cross-entropy, nats)")
    ax.set_title("transformer training", fontsize=10)
    if curves:
        ax.legend(fontsize=8)
    fig.tight_layout()
    save_png(fig, path)
    plt.close(fig)
