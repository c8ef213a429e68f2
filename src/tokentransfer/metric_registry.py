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
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from . import melody as mel
from . import metrics as m

LEVELS = ("sample", "set")
KINDS = ("scalar", "histogram", "matrix")
TABLES = ("summary", "features", "curve", "results")
FIGURES = ("chart", "curve")
GROUPS = (
    "fidelity",
    "style",
    "texture",
    "pitch",
    "rhythm",
    "melody",
    "form",
    "tokens",
    "copy",
    "cost",
    "likelihood",
)


@dataclass(frozen=True)
class Metric:
    """One metric and where it goes (see the module's docstring)."""

    name: str
    group: str
    level: str
    doc: str
    kind: str = "scalar"
    fn: Callable | None = None
    family: Callable | None = None
    tables: tuple[str, ...] = ()
    figures: tuple[str, ...] = ()
    fidelity: bool = False
    style: bool = False
    empty: float | None = None
    label: str = ""
    curve_label: str = ""
    header: str = ""
    digits: int = 3
    of_groups: tuple[str, ...] = ()
    record: str = ""

    def __post_init__(self) -> None:
        def bad(what: str, value, allowed) -> None:
            if value not in allowed:
                raise ValueError(f"metric {self.name}: {what} {value!r} is not one of {allowed}")

        bad("level", self.level, LEVELS)
        bad("kind", self.kind, KINDS)
        bad("group", self.group, GROUPS)
        for t in self.tables:
            bad("table", t, TABLES)
        for f in self.figures:
            bad("figure", f, FIGURES)
        for g in self.of_groups:
            bad("group", g, GROUPS)
        if (self.fidelity or self.style or "features" in self.tables) and self.fn is None:
            raise ValueError(f"metric {self.name}: a fidelity or style feature needs its fn")
        if self.figures and not self.label:
            raise ValueError(f"metric {self.name}: a metric in a figure needs its label")
        if "results" in self.tables and not self.header:
            raise ValueError(f"metric {self.name}: a column of the results table needs a header")


#: every metric by name, in the order of registration
REGISTRY: dict[str, Metric] = {}


def register(metric: Metric) -> Metric:
    """Add ``metric``; a name registered twice is refused."""
    if metric.name in REGISTRY:
        raise ValueError(f"metric {metric.name} is registered twice")
    REGISTRY[metric.name] = metric
    return metric


def get(name: str) -> Metric:
    """The metric called ``name``; an unknown name is refused with the known ones."""
    if name not in REGISTRY:
        raise KeyError(f"no metric {name!r}; known: {', '.join(REGISTRY)}")
    return REGISTRY[name]


def select(
    *,
    level: str | None = None,
    table: str | None = None,
    figure: str | None = None,
    groups: tuple[str, ...] | None = None,
    fidelity: bool | None = None,
    style: bool | None = None,
    kind: str | None = None,
    feature: bool | None = None,
) -> tuple[Metric, ...]:
    """The registered metrics that match every filter given (``feature``: has a score
    function), in the order of registration."""
    out = []
    for mt in REGISTRY.values():
        if level is not None and mt.level != level:
            continue
        if table is not None and table not in mt.tables:
            continue
        if figure is not None and figure not in mt.figures:
            continue
        if groups is not None and mt.group not in groups:
            continue
        if fidelity is not None and mt.fidelity != fidelity:
            continue
        if style is not None and mt.style != style:
            continue
        if kind is not None and mt.kind != kind:
            continue
        if feature is not None and (mt.fn is not None) != feature:
            continue
        out.append(mt)
    return tuple(out)


def names(**filters) -> tuple[str, ...]:
    """Names of :func:`select`'s metrics."""
    return tuple(mt.name for mt in select(**filters))


def labels(figure: str) -> tuple[tuple[str, str], ...]:
    """``(name, label)`` of the panels of ``figure``, in order."""
    out = []
    for mt in select(figure=figure):
        label = mt.curve_label if figure == "curve" and mt.curve_label else mt.label
        out.append((mt.name, label))
    return tuple(out)


# ============================================================================================
# The metrics. Sets first (what the music sounds like leads every table), then the features of
# a score by group, then tokens, copying, likelihood and cost.

_FIDELITY_DOC = "mean overlapping area (Yang & Lerch 2020) with the test pieces' excerpts over "
register(
    Metric(
        "feature_fidelity",
        "fidelity",
        "set",
        _FIDELITY_DOC + "every fidelity feature (texture, pitch, rhythm, melody, form)",
        tables=("summary", "curve", "results"),
        figures=("chart", "curve"),
        label="feature fidelity: mean OA to test (higher: closer)",
        curve_label="feature fidelity (1: like the test pieces)",
        header="feature fidelity",
    )
)
register(
    Metric(
        "feature_fidelity_texture",
        "fidelity",
        "set",
        _FIDELITY_DOC + "the texture, pitch and rhythm features only (the score before the "
        "melody and form features joined)",
        tables=("summary", "curve", "results"),
        figures=("chart",),
        label="feature fidelity, texture/pitch/rhythm only",
        header="fidelity (texture)",
        of_groups=("texture", "pitch", "rhythm"),
    )
)
register(
    Metric(
        "feature_fidelity_melody",
        "fidelity",
        "set",
        _FIDELITY_DOC + "the melody and form features only",
        tables=("summary", "curve", "results"),
        figures=("chart",),
        label="feature fidelity, melody/form only",
        header="fidelity (melody, form)",
        of_groups=("melody", "form"),
    )
)
register(
    Metric(
        "style_share",
        "style",
        "set",
        "share of samples the style classifier assigns to the target",
        tables=("summary", "curve", "results"),
        figures=("chart", "curve"),
        label="share classified as the target style",
        header="style share",
    )
)
register(
    Metric(
        "style_prob",
        "style",
        "set",
        "the style classifier's mean probability of the target over the samples",
        tables=("summary",),
    )
)
register(
    Metric(
        "js_bigram",
        "tokens",
        "set",
        "Jensen-Shannon divergence of the set's token bigrams from the test pieces'",
        tables=("summary", "results"),
        figures=("chart",),
        label="bigram JS divergence to test (lower: closer)",
        header="JS bigram",
    )
)
register(
    Metric(
        "js_trigram",
        "tokens",
        "set",
        "Jensen-Shannon divergence of the set's token trigrams from the test pieces'",
        tables=("summary", "curve", "results"),
        figures=("chart", "curve"),
        label="trigram JS divergence to test (lower: closer)",
        curve_label="trigram JS divergence to test",
        header="JS trigram",
    )
)
register(
    Metric(
        "js_4gram",
        "tokens",
        "set",
        "Jensen-Shannon divergence of the set's token 4-grams from the test pieces'",
        tables=("curve",),
    )
)
register(
    Metric(
        "bits_per_token",
        "likelihood",
        "set",
        "held-out bits per token of the test pieces under the method's next-token distribution",
        tables=("summary", "curve", "results"),
        figures=("curve",),
        label="bits per token on test pieces",
        header="bits/token",
        record="bits_per_token",
    )
)
register(
    Metric(
        "pch_distance",
        "pitch",
        "set",
        "total variation distance of the set's pooled pitch classes from the test pieces'",
        tables=("summary", "curve", "results"),
        figures=("chart",),
        label="pitch-class distance to test (lower: closer)",
        header="pitch-class dist.",
    )
)

# -- features of a score: texture ------------------------------------------------------------

register(
    Metric(
        "note_density",
        "texture",
        "sample",
        "notes (drums included) per quarter note, from the first onset to the last note end",
        fn=m.note_density,
        tables=("summary", "features", "curve", "results"),
        figures=("chart",),
        fidelity=True,
        style=True,
        empty=0.0,
        label="notes per beat",
        header="notes/beat",
    )
)
register(
    Metric(
        "polyphony",
        "texture",
        "sample",
        "mean number of pitches sounding at once while any sounds (MusPy)",
        fn=m.polyphony,
        tables=("summary", "features", "results"),
        figures=("chart",),
        fidelity=True,
        style=True,
        empty=0.0,
        label="polyphony",
        header="polyphony",
    )
)
register(
    Metric(
        "empty_beat_rate",
        "texture",
        "sample",
        "fraction of beats in which no note sounds (MusPy)",
        fn=m.empty_beat_rate,
        tables=("summary", "features", "curve", "results"),
        figures=("chart", "curve"),
        fidelity=True,
        style=True,
        empty=1.0,
        label="empty-beat rate",
        header="empty beats",
    )
)

# -- pitch -----------------------------------------------------------------------------------

register(
    Metric(
        "pitch_range",
        "pitch",
        "sample",
        "highest minus lowest non-drum pitch in semitones (MusPy)",
        fn=m.pitch_range,
        tables=("summary", "features"),
        fidelity=True,
        style=True,
        empty=0.0,
    )
)
register(
    Metric(
        "pitch_class_entropy",
        "pitch",
        "sample",
        "Shannon entropy (bits) of the pitch-class histogram (MusPy)",
        fn=m.pitch_class_entropy,
        tables=("summary", "curve"),
        figures=("chart",),
        style=True,
        empty=0.0,
        label="pitch-class entropy (bits)",
    )
)
register(
    Metric(
        "scale_consistency",
        "pitch",
        "sample",
        "largest fraction of non-drum notes inside one major or natural minor scale (MusPy)",
        fn=m.scale_consistency,
        tables=("summary", "features", "curve"),
        figures=("chart",),
        fidelity=True,
        style=True,
        label="scale consistency",
    )
)

# -- rhythm ----------------------------------------------------------------------------------

register(
    Metric(
        "groove_consistency",
        "rhythm",
        "sample",
        "one minus the mean Hamming distance of consecutive bars' onset patterns (Wu & Yang)",
        fn=m.groove_consistency,
        tables=("summary", "features", "curve"),
        figures=("chart",),
        fidelity=True,
        style=True,
        label="groove consistency",
    )
)

# -- pitch, not in the summary ---------------------------------------------------------------

register(
    Metric(
        "pitch_mean",
        "pitch",
        "sample",
        "mean MIDI pitch of the non-drum notes (the register)",
        fn=m.pitch_mean,
        style=True,
    )
)
register(
    Metric(
        "pitch_std",
        "pitch",
        "sample",
        "standard deviation of the non-drum notes' MIDI pitches",
        fn=m.pitch_std,
        style=True,
    )
)
register(
    Metric(
        "used_pitches",
        "pitch",
        "sample",
        "number of distinct non-drum pitches (mgeval total_used_pitch)",
        fn=m.used_pitches,
        style=True,
        empty=0.0,
    )
)

# -- histograms ------------------------------------------------------------------------------

register(
    Metric(
        "pitch_class_histogram",
        "pitch",
        "sample",
        "normalised count of non-drum notes per pitch class",
        kind="histogram",
        fn=m.pitch_class_histogram,
        tables=("features",),
        fidelity=True,
        style=True,
    )
)
register(
    Metric(
        "ioi_histogram",
        "rhythm",
        "sample",
        "normalised histogram of inter-onset intervals over the length classes (mgeval)",
        kind="histogram",
        fn=m.ioi_histogram,
        tables=("features",),
        fidelity=True,
        style=True,
    )
)
register(
    Metric(
        "duration_histogram",
        "rhythm",
        "sample",
        "normalised histogram of non-drum note durations over the length classes (mgeval)",
        kind="histogram",
        fn=m.duration_histogram,
        tables=("features",),
        fidelity=True,
        style=True,
    )
)
register(
    Metric(
        "chord_size_histogram",
        "texture",
        "sample",
        "normalised histogram of how many non-drum notes start at each onset (1 .. 6+)",
        kind="histogram",
        fn=m.chord_size_histogram,
        style=True,
    )
)
register(
    Metric(
        "onset_phase_histogram",
        "rhythm",
        "sample",
        "normalised histogram of onset positions within the beat (12 per quarter note)",
        kind="histogram",
        fn=m.onset_phase_histogram,
        style=True,
    )
)

# -- melody (tokentransfer.melody: the top line of each track, skyline) ----------------------


def _melody(name: str, doc: str, **kw) -> None:
    register(
        Metric(
            name,
            "melody",
            "sample",
            doc,
            fn=getattr(mel, name),
            family=mel.melody_features,
            fidelity=True,
            style=True,
            **kw,
        )
    )


_melody(
    "average_pitch_interval",
    "mean absolute semitone interval between consecutive top-line notes (mgeval)",
    tables=("summary", "features"),
)
_melody(
    "step_share",
    "share of top-line intervals of 1 or 2 semitones",
    tables=("summary", "features", "curve", "results"),
    figures=("chart", "curve"),
    label="step share of the top line (|interval| 1-2)",
    header="steps",
)
_melody(
    "leap_share",
    "share of top-line intervals of 5 semitones or more",
    tables=("summary", "features", "curve", "results"),
    figures=("chart",),
    label="leap share of the top line (|interval| >= 5)",
    header="leaps",
)
_melody(
    "repeated_pitch_share",
    "share of top-line intervals of 0 (a repeated pitch)",
    tables=("summary", "features"),
)
_melody(
    "contour_changes",
    "share of direction changes among consecutive non-zero top-line intervals",
    tables=("summary", "features"),
)
_melody(
    "pitch_class_transition_matrix",
    "12 x 12 transitions between the pitch classes of consecutive top-line notes (mgeval)",
    kind="matrix",
    tables=("features",),
)
_melody(
    "note_length_transition_matrix",
    "transitions between the length classes of consecutive top-line notes (mgeval)",
    kind="matrix",
    tables=("features",),
)

# -- form (the first melody.FORM_BARS bars) --------------------------------------------------


def _form(name: str, doc: str, fn: Callable, **kw) -> None:
    register(
        Metric(
            name,
            "form",
            "sample",
            doc,
            fn=fn,
            family=mel.form_features,
            fidelity=True,
            style=True,
            empty=0.0,  # nothing returns in silence (or in a piece too short to return)
            **kw,
        )
    )


_form(
    "bar_return_share",
    "share of bars after the first whose (onset, pitch) set has Jaccard >= 0.6 with an "
    "earlier bar's",
    mel.bar_return_share,
    tables=("summary", "features", "curve", "results"),
    figures=("chart", "curve"),
    label="bar return share (first 16 bars)",
    header="bars return",
)
for _lag in mel.SELF_SIMILARITY_LAGS:
    _form(
        f"self_similarity_lag{_lag}",
        f"mean Jaccard index of bar j and bar j - {_lag} (first 16 bars)",
        partial(mel.self_similarity, lag=_lag),
        tables=("summary", "features"),
    )
_form(
    "structureness",
    "best mean similarity of a 2- to 8-bar segment and a later non-overlapping repeat",
    mel.structureness,
    tables=("summary", "features"),
    figures=("chart",),
    label="structureness (best repeated segment)",
)

# -- tokens and copying (from the token ids: no score function) ------------------------------

register(
    Metric(
        "token_error_rate",
        "tokens",
        "sample",
        "share of tokens that break the REMI grammar (miditok's tokens_errors)",
        tables=("summary", "curve", "results"),
        figures=("chart",),
        label="token error rate",
        header="token errors",
    )
)
register(
    Metric(
        "copy_rate",
        "copy",
        "sample",
        "share of the sample's token n-grams found in the training pieces",
        tables=("summary", "curve", "results"),
        figures=("chart", "curve"),
        label="n-gram copy rate from training",
        curve_label="copy rate from the subset",
        header="copy rate",
    )
)
register(
    Metric(
        "longest_copy",
        "copy",
        "sample",
        "longest contiguous token span of the sample found in a training piece",
        tables=("summary", "curve"),
        figures=("chart",),
        label="longest span copied from training (tokens)",
    )
)

# -- cost (from the sample set's generation.json) --------------------------------------------

register(
    Metric(
        "gen_tokens_per_second",
        "cost",
        "set",
        "generated tokens per second of sampling (over sample_seconds: loading, compiling and "
        "fitting are setup_seconds, apart)",
        tables=("summary", "curve", "results"),
        header="gen. tokens/s",
        digits=1,
        record="tokens_per_second",
    )
)
register(
    Metric(
        "sample_seconds",
        "cost",
        "set",
        "seconds of sampling the whole set (nothing else)",
        tables=("summary",),
        record="sample_seconds",
    )
)
register(
    Metric(
        "setup_seconds",
        "cost",
        "set",
        "seconds before the sampling: loading, building tables, compiling the walk's kernel, "
        "fitting",
        tables=("summary",),
        record="setup_seconds",
    )
)
register(
    Metric(
        "adapt_seconds",
        "cost",
        "set",
        "seconds of adapting to the target (fitting, graph-network training, fine-tuning)",
        tables=("summary", "curve", "results"),
        header="adapt s",
        digits=1,
        record="adapt_seconds",
    )
)
register(
    Metric(
        "tokens",
        "cost",
        "set",
        "tokens generated over the set (a prompt left out)",
        tables=("curve",),
    )
)
