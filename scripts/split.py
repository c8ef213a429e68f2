"""Grouped, seeded split of one corpus (validation for base corpora, test for targets)."""

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821

from tokentransfer.fileio import setup_logging  # noqa: E402
from tokentransfer.split import write_split  # noqa: E402

smk = snakemake  # noqa: F821
setup_logging(smk.log[0])
counts = write_split(
    smk.input[0], smk.output[0], smk.params.fraction, smk.params.seed, smk.params.held
)
logging.info("split of %s: %s", smk.wildcards.corpus, dict(counts))
