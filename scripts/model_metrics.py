"""Collect the model's training record and per-corpus perplexities into metrics.json."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821

from tokentransfer.fileio import setup_logging  # noqa: E402
from tokentransfer.jobs.model import run_model_metrics  # noqa: E402

smk = snakemake  # noqa: F821
setup_logging(smk.log[0])
run_model_metrics(smk.input.info, list(smk.input.perplexities), smk.output[0])
