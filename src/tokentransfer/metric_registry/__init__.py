"""Every metric of the project, registered once: the one list the evaluation, feature fidelity,
the style classifier, the few-shot curve, the figures and the tables read.

A :class:`Metric` says what it measures and where it goes:

- ``level``: ``sample`` (a value per sample: per-sample metrics are averaged over a set, with
  their std, in ``summary.tsv``; score features enter ``features.tsv`` per set) or ``set``
  (one value per sample set);
- ``kind``: ``scalar``, ``histogram`` (a vector) or ``matrix`` (flattened row by row where a
  vector is needed);
- ``fn``: for a *score feature*, its function of a ``symusic.Score`` (ticks); ``family``: a
  function computing several features at once (a dict by name), which
  :func:`tokentransfer.features.score_features` calls once per score; metrics without ``fn``
  are computed from tokens or records by :mod:`tokentransfer.evaluate` and its jobs;
- ``tables``: of :data:`TABLES`: ``summary`` (a column of ``summary.tsv``, the per-target
  ``metrics.tsv``), ``features`` (rows of ``features.tsv``: every fidelity feature),
  ``curve`` (a metric of the few-shot curve ``curve.tsv``), ``results`` (a column of the
  markdown table of ``tokentransfer results``, under ``header``);
- ``figures``: of :data:`FIGURES`: ``chart`` (a panel of the evaluation's metrics chart,
  :func:`tokentransfer.figures.metrics_chart`), ``curve`` (a panel of the few-shot figure);
  under ``label`` (``curve_label`` where the curve says it differently);
- ``fidelity``: a feature whose overlapping area enters feature fidelity (``oa_<name>``
  columns; ``features.tsv``); ``style``: a feature of the style classifier's vector;
- ``group``: of :data:`GROUPS`; ``of_groups``: for a feature-fidelity score, the groups of the
  fidelity features it averages (empty: all);
- ``empty``: the value of a score where the feature is undefined (e.g. without notes) when the
  feature has a natural one (0 notes per beat, every beat empty, nothing returns), else None
  (left out of that feature's distances);
- ``record``: for cost and likelihood metrics, the key of the sample set's
  ``generation.json`` that holds the value.

Lists come out in the order of registration, which is the order of the tables and figures.

Modules: :mod:`.core` (:class:`Metric`, the registry and its lookups) and the metrics, by
concept, in their order: :mod:`.comparisons` (a set against the test pieces),
:mod:`.score_features` (the features of a score) and :mod:`.tokens_and_cost`; every public name
is re-exported here.
"""

from .core import (
    FIGURES,
    GROUPS,
    KINDS,
    LEVELS,
    REGISTRY,
    TABLES,
    Metric,
    get,
    labels,
    names,
    register,
    select,
)

# The metrics, registered in the order of the tables and figures: the set comparisons, the
# features of a score, then tokens, copying and cost.
from . import comparisons  # isort: skip
from . import score_features  # isort: skip
from . import tokens_and_cost  # isort: skip

__all__ = [
    "FIGURES",
    "GROUPS",
    "KINDS",
    "LEVELS",
    "REGISTRY",
    "TABLES",
    "Metric",
    "comparisons",
    "get",
    "labels",
    "names",
    "register",
    "score_features",
    "select",
    "tokens_and_cost",
]
