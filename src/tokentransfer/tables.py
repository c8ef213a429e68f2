"""Markdown tables of the results, for the README and for people reading a run's outputs.

``tokentransfer results --results results/`` prints them: the evaluation summary (one row per
target and method), the style classifier's held-out accuracy and the few-shot curves' key
numbers (each method at a few k, mean and spread over draws).
"""

from __future__ import annotations

import glob
import math
import os
from collections import defaultdict
from pathlib import Path

import numpy as np

from . import metric_registry as reg
from .fileio import read_tsv
from .layout import RESULTS, Layout

#: columns of the evaluation table: (column, header), the registry's ``results`` columns
#: (tokentransfer.metric_registry). What the music sounds like leads: feature fidelity (mean
#: OA of the musical features' distributions with the test pieces', over all features, then
#: texture/pitch/rhythm alone and melody/form alone), the share the style classifier assigns
#: to the target, then the texture the piano rolls show and the top lines' steps and leaps
#: and the bars' returns.
EVAL_COLUMNS: tuple[tuple[str, str], ...] = tuple(
    (mt.name, mt.header) for mt in reg.select(table="results")
)


def _cell(value: str, digits: int = 3) -> str:
    if value in ("", None):
        return "–"
    v = float(value)
    if not math.isfinite(v):
        return "–"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.{digits}f}"


def eval_markdown(summary_tsv: str | os.PathLike) -> str:
    """The evaluation summary as a markdown table."""
    rows = read_tsv(summary_tsv)
    head = ["target", "method", *(h for _, h in EVAL_COLUMNS)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["corpus"], r["method"]]
        cells += [_cell(r.get(c, ""), reg.get(c).digits) for c, _ in EVAL_COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def style_markdown(heldout_tsv: str | os.PathLike) -> str:
    """The style classifier's held-out table: recall per corpus, accuracy, majority rate."""
    rows = read_tsv(heldout_tsv)
    lines = ["| corpus | held-out windows | pieces | recall |", "|---|---|---|---|"]
    for r in rows:
        pieces = r.get("pieces") or "–"
        lines.append(f"| {r['corpus']} | {r['windows']} | {pieces} | {_cell(r['recall'])} |")
    return "\n".join(lines) + "\n"


def fewshot_summary(curve_tsv: str | os.PathLike, metric: str) -> dict[str, dict[int, list]]:
    """``{method: {pieces: [values over draws]}}`` of one metric of a curve (k = -1, the
    unadapted reference, under pieces -1)."""
    out: dict[str, dict[int, list]] = defaultdict(lambda: defaultdict(list))
    for r in read_tsv(curve_tsv):
        if r["metric"] != metric or r["value"] in ("", None):
            continue
        pieces = -1 if r["k"] == "-1" else int(r["pieces"])
        out[r["method"]][pieces].append(float(r["value"]))
    return {m: dict(v) for m, v in out.items()}


def fewshot_markdown(
    curve_tsv: str | os.PathLike, metric: str, ks: tuple[int, ...] = (1, 5, 20)
) -> str:
    """One metric of a curve at k in ``ks`` and at all pieces: mean ± std over draws."""
    data = fewshot_summary(curve_tsv, metric)
    all_pieces = max((p for v in data.values() for p in v), default=0)
    measured = {p for v in data.values() for p in v}
    columns = [k for k in ks if k < all_pieces and k in measured] + [all_pieces]
    head = ["method", *(f"k={k}" if k != all_pieces else f"all ({k})" for k in columns)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for method in sorted(data):
        by_k = data[method]
        if -1 in by_k:  # the unadapted reference: one value for every k
            v = by_k[-1][0]
            lines.append(
                f"| {method} (unadapted) | " + " | ".join(f"{v:.3f}" for _ in columns) + " |"
            )
            continue
        cells = []
        for k in columns:
            vals = [x for x in by_k.get(k, []) if math.isfinite(x)]
            if len(vals) == 1:  # one draw: no spread to give
                cells.append(f"{vals[0]:.3f}")
            else:
                cells.append(f"{np.mean(vals):.3f} ± {np.std(vals):.3f}" if vals else "–")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def results_markdown(
    results: str | os.PathLike,
    metrics: tuple[str, ...] = ("feature_fidelity", "bits_per_token", "js_trigram"),
) -> str:
    """Every table a run has: the evaluation summary, and each target's few-shot numbers."""
    results = Path(results)
    layout = Layout(str(results))
    parts = []
    summary = Path(layout.eval_summary())
    if summary.exists():
        parts.append(f"### Evaluation (`{RESULTS.eval_summary()}`)\n\n" + eval_markdown(summary))
    heldout = Path(layout.style_heldout())
    if heldout.exists():
        parts.append(
            f"### Style classifier, held-out pieces (`{RESULTS.style_heldout()}`)\n\n"
            + style_markdown(heldout)
        )
    curves = Layout(glob.escape(str(results))).fewshot_curve("*", "*")
    for curve in sorted(map(Path, glob.glob(curves))):
        for metric in metrics:
            parts.append(
                f"### Few-shot: {curve.parent.name}, {metric} (mean ± std over draws)\n\n"
                + fewshot_markdown(curve, metric)
            )
    return "\n".join(parts) if parts else f"no results under {results}\n"
