"""The link-prediction summary table: every corpus, variant and method."""

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821

from tokentransfer.fileio import setup_logging  # noqa: E402
from tokentransfer.jobs.graph import run_linkpred_summary  # noqa: E402

smk = snakemake  # noqa: F821
setup_logging(smk.log[0])
rows = run_linkpred_summary(list(smk.input), smk.output[0], [tuple(n) for n in smk.params.names])
logging.info("%d rows", len(rows))
