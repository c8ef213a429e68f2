"""Concatenate the evaluation tables of every target into results/eval/summary.tsv."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821

from tokentransfer.fileio import setup_logging  # noqa: E402
from tokentransfer.jobs.evaluate import run_eval_summary  # noqa: E402

smk = snakemake  # noqa: F821
setup_logging(smk.log[0])
run_eval_summary(list(smk.input), smk.output[0])
