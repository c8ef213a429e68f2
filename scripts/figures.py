"""The report's figures of one target: metric chart, pitch-class histograms, piano rolls
(several samples per method under test excerpts of the same length)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821

from tokentransfer.fileio import setup_logging  # noqa: E402
from tokentransfer.jobs.evaluate import run_figures  # noqa: E402
from tokentransfer.tokenize import corpus_tokens  # noqa: E402

smk = snakemake  # noqa: F821
setup_logging(smk.log[0])
run_figures(
    tokenizer_json=smk.input.tokenizer,
    metrics_tsv=smk.input.metrics,
    sets=dict(zip(smk.params.methods, smk.input.sets, strict=True)),
    metrics_png=smk.output.metrics,
    pitch_png=smk.output.pitch,
    rolls_png=smk.output.rolls,
    title=smk.wildcards.corpus,
    reference=corpus_tokens(list(smk.input.shards), [smk.input.split], "test"),
    per_method=smk.params.pianorolls,
    seed=smk.params.seed,
)
