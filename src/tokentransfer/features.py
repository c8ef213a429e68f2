"""Per-sample musical features and how close a sample set's feature distributions are to real
music's: the overlapping area (OA) of Yang & Lerch (2020, "On the evaluation of generative
models in music", the mgeval method).

For one feature (a number, a histogram or a flattened matrix per piece), with the reference set
R (excerpts of the target's test pieces) and the sample set S of a method:

- the *intra-set* distances: ``|f(r_i) - f(r_j)|`` (Euclidean for histograms) over all pairs
  ``i < j`` of R: how much real pieces of the style differ from each other;
- the *inter-set* distances: ``|f(s) - f(r)|`` over all pairs of S x R;
- each set of distances is smoothed by a Gaussian kernel density estimate (Scott's bandwidth,
  as ``scipy.stats.gaussian_kde``), and OA is the area under the minimum of the two densities,
  integrated over the whole line: 1 when samples differ from real pieces exactly as real pieces
  differ from each other, towards 0 when they are further away (or all alike).

mgeval integrates only between the smallest and largest distance, so that two identical sets
score below 1; here the integral runs over the densities' tails too. A set of distances that are
all equal (a point mass: e.g. every piece in one major scale) has no spread for Scott's rule:
every bandwidth is at least :data:`BANDWIDTH_FLOOR` of the range of both sets' distances. The
Kullback-Leibler divergence KL(intra || inter) of the same densities (nats, on the same grid) is
reported beside OA, as mgeval does.

**Feature fidelity** of a method is the mean OA over :data:`FIDELITY_FEATURES`, the features
the registry (:mod:`tokentransfer.metric_registry`) marks as fidelity features: texture (note
density, polyphony, empty beats), pitch (range, pitch-class histogram, scale consistency),
rhythm (inter-onset and duration histograms, groove consistency), melody (the top lines'
intervals and transitions, :mod:`tokentransfer.melody`) and form (bar returns,
self-similarity, structureness). ``feature_fidelity_texture`` is the mean over the texture,
pitch and rhythm features alone (the score before melody and form joined),
``feature_fidelity_melody`` over the melody and form features (:func:`fidelity_scores`).

A sample without notes has 0 notes per beat, polyphony 0, pitch range 0, every beat empty,
nothing that returns (form features 0) and all-zero histograms and transition matrices (so a
silent sample is far from real music, not left out); groove and scale consistency and the
interval features are undefined for it (and groove for a sample shorter than two bars), and
such a sample is left out of those features' distances.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from . import metric_registry as reg

if TYPE_CHECKING:
    from symusic import Score

#: the features compared by feature fidelity, in the registry's order
FIDELITY_FEATURES: tuple[str, ...] = reg.names(fidelity=True)

#: every feature of a piece (the registry's metrics with a score function): scalars return a
#: float, histograms an array, matrices a 2-D array (flattened by :func:`score_features`)
FEATURES: dict[str, Callable[[Score], float | np.ndarray]] = {
    mt.name: mt.fn for mt in reg.select(feature=True)
}

#: what a piece scores where the feature is undefined, where the feature has a natural value
EMPTY_VALUES: dict[str, float] = {
    mt.name: mt.empty for mt in reg.select(feature=True) if mt.empty is not None
}

#: the feature-fidelity scores of a set (columns of summary.tsv): name -> the groups of the
#: fidelity features it averages (empty: every fidelity feature)
FIDELITY_SCORES: dict[str, tuple[str, ...]] = {
    mt.name: mt.of_groups for mt in reg.select(groups=("fidelity",))
}

#: smallest kernel bandwidth, as a share of the range of both distance sets
BANDWIDTH_FLOOR = 0.01
#: points of the integration grid
GRID_POINTS = 4097


def score_features(
    score: Score, names: Sequence[str] | None = None, empty: bool = True
) -> dict[str, np.ndarray]:
    """The features ``names`` (default: all of :data:`FEATURES`) of one score, each as a 1-D
    float array (length 1 for a number, a matrix flattened row by row; nan where undefined,
    replaced by :data:`EMPTY_VALUES` unless ``empty`` is False). A family of features (the
    registry's ``family``, e.g. every melody feature) is computed once."""
    out = {}
    families: dict = {}
    for name in names if names is not None else FEATURES:
        metric = reg.get(name)
        if metric.fn is None:
            raise ValueError(f"{name} is not a feature of a score")
        if metric.family is not None:
            if metric.family not in families:
                families[metric.family] = metric.family(score)
            raw = families[metric.family][name]
        else:
            raw = metric.fn(score)
        value = np.asarray(raw, dtype=np.float64).ravel()
        if empty and name in EMPTY_VALUES and not np.isfinite(value).all():
            value = np.full(value.shape, EMPTY_VALUES[name])
        out[name] = value
    return out


def feature_matrix(features: Sequence[dict[str, np.ndarray]], name: str) -> np.ndarray:
    """``[pieces, dim]`` values of one feature over pieces (rows with a nan are undefined)."""
    if not features:
        return np.zeros((0, 1))
    return np.stack([np.asarray(f[name], dtype=np.float64) for f in features])


def _defined(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    return x[np.isfinite(x).all(axis=1)]


def intra_distances(x: np.ndarray) -> np.ndarray:
    """Euclidean distances of every pair ``i < j`` of the rows of ``x`` (undefined rows out)."""
    x = _defined(x)
    i, j = np.triu_indices(len(x), k=1)
    return np.linalg.norm(x[i] - x[j], axis=1)


def inter_distances(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Euclidean distances of every row of ``x`` to every row of ``y`` (undefined rows out)."""
    x, y = _defined(x), _defined(y)
    return np.linalg.norm(x[:, None, :] - y[None, :, :], axis=2).ravel()


def scott_bandwidth(data: np.ndarray) -> float:
    """Kernel standard deviation of ``scipy.stats.gaussian_kde`` for 1-D ``data``: Scott's
    factor ``n ** -0.2`` times the sample standard deviation (ddof 1); 0 for fewer than two
    points or no spread."""
    data = np.asarray(data, dtype=np.float64)
    if len(data) < 2:
        return 0.0
    return float(np.std(data, ddof=1) * len(data) ** -0.2)


def _kde(data: np.ndarray, bandwidth: float, x: np.ndarray) -> np.ndarray:
    """Gaussian KDE of ``data`` at ``x``, in blocks to bound memory."""
    out = np.zeros(len(x))
    norm = 1.0 / (len(data) * bandwidth * math.sqrt(2 * math.pi))
    for lo in range(0, len(data), 512):
        z = (x[None, :] - data[lo : lo + 512, None]) / bandwidth
        out += np.exp(-0.5 * z * z).sum(axis=0)
    return out * norm


def _densities(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Both KDEs on one grid over their support, or None when both are one and the same point."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    lo, hi = min(a.min(), b.min()), max(a.max(), b.max())
    spread = hi - lo
    if spread <= 0:
        return None
    floor = BANDWIDTH_FLOOR * spread
    ha, hb = max(scott_bandwidth(a), floor), max(scott_bandwidth(b), floor)
    pad = 6.0 * max(ha, hb)
    x = np.linspace(lo - pad, hi + pad, GRID_POINTS)
    return x, _kde(a, ha, x), _kde(b, hb, x)


def overlap_and_kl(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """:func:`overlap_area` and :func:`kl_divergence` of ``a`` and ``b`` from one evaluation
    of the two densities."""
    if len(a) == 0 or len(b) == 0:
        return math.nan, math.nan
    dens = _densities(a, b)
    if dens is None:
        return 1.0, 0.0
    x, pa, pb = dens
    oa = float(min(np.trapezoid(np.minimum(pa, pb), x), 1.0))
    pa, pb = pa / pa.sum(), pb / pb.sum()
    tiny = np.finfo(np.float64).tiny
    keep = pa > 0
    kl = float(np.sum(pa[keep] * (np.log(pa[keep]) - np.log(np.maximum(pb[keep], tiny)))))
    return oa, kl


def overlap_area(a: np.ndarray, b: np.ndarray) -> float:
    """Area under ``min(kde_a, kde_b)`` over the line (trapezoidal rule on
    :data:`GRID_POINTS` points): 1 for identical sets, 0 for sets far apart; nan when either
    set is empty."""
    return overlap_and_kl(a, b)[0]


def kl_divergence(a: np.ndarray, b: np.ndarray) -> float:
    """KL(kde_a || kde_b) in nats on the grid of :func:`overlap_area` (mgeval's ``kl_dist``:
    both densities normalised over the grid points); nan when either set is empty."""
    return overlap_and_kl(a, b)[1]


def feature_fidelity(
    samples: Sequence[dict[str, np.ndarray]],
    reference: Sequence[dict[str, np.ndarray]],
    names: Sequence[str] = FIDELITY_FEATURES,
    overlap: bool = True,
) -> dict[str, dict[str, float]]:
    """OA and KL per feature of a sample set against the reference set (both lists of
    :func:`score_features`), with the feature's mean and std over each set (numbers only).
    ``overlap=False`` leaves OA and KL nan (for the reference set itself: means and stds
    only, without the densities' cost).

    Returns ``{feature: {"oa", "kld", "mean", "std", "ref_mean", "ref_std"}}``.
    """
    out = {}
    for name in names:
        x, r = feature_matrix(samples, name), feature_matrix(reference, name)
        row = {"oa": math.nan, "kld": math.nan}
        if overlap:
            intra = intra_distances(r)
            inter = inter_distances(x, r) if len(x) and len(r) else np.zeros(0)
            row["oa"], row["kld"] = overlap_and_kl(intra, inter)
        for key, mat in (("", x), ("ref_", r)):
            vals = _defined(mat)
            scalar = mat.ndim == 2 and mat.shape[1] == 1 and len(vals)
            row[f"{key}mean"] = float(vals.mean()) if scalar else math.nan
            row[f"{key}std"] = float(vals.std()) if scalar else math.nan
        out[name] = row
    return out


def mean_overlap(per_feature: dict[str, dict[str, float]], groups: Sequence[str] = ()) -> float:
    """Feature fidelity: the mean OA over the features that have one (nan if none); with
    ``groups``, over the features of those registry groups only."""
    values = [
        v["oa"]
        for name, v in per_feature.items()
        if math.isfinite(v["oa"]) and (not groups or reg.get(name).group in groups)
    ]
    return float(np.mean(values)) if values else math.nan


def fidelity_scores(per_feature: dict[str, dict[str, float]]) -> dict[str, float]:
    """Every score of :data:`FIDELITY_SCORES` of one set (:func:`mean_overlap` over its
    groups): ``feature_fidelity`` over all fidelity features, ``feature_fidelity_texture``
    over the texture, pitch and rhythm ones (the score before the melody and form features),
    ``feature_fidelity_melody`` over the melody and form ones."""
    return {name: mean_overlap(per_feature, groups) for name, groups in FIDELITY_SCORES.items()}
