"""The metrics of tokens and copying (from the token ids: no score function) and of cost (from
the sample set's ``generation.json``), registered last."""

from __future__ import annotations

from .core import Metric, register

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
