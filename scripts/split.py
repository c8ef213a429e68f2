"""Grouped, seeded split of one corpus (validation for base corpora, test for targets)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821

from tokentransfer.fileio import setup_logging  # noqa: E402
from tokentransfer.jobs.model import run_split  # noqa: E402

smk = snakemake  # noqa: F821
setup_logging(smk.log[0])
run_split(
    manifest=smk.input[0],
    out=smk.output[0],
    corpus=smk.wildcards.corpus,
    fraction=smk.params.fraction,
    held=smk.params.held,
    seed=smk.params.seed,
)
