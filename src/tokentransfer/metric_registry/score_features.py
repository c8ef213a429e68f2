"""The features of a score (a ``fn`` of a ``symusic.Score``), registered after the set
comparisons, by group: texture, pitch, rhythm, the histograms, melody (the top line,
:mod:`tokentransfer.melody`) and form (the first bars)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from .. import melody as mel
from .. import metrics as m
from .core import Metric, register

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
