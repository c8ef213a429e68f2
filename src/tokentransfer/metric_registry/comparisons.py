"""The metrics of a sample set compared with the test pieces, registered first (what the music
sounds like leads every table): feature fidelity, the style classifier's share, n-gram
Jensen-Shannon divergences, bits per token, the pitch-class distance."""

from __future__ import annotations

from .core import Metric, register

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
