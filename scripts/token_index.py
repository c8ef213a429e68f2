"""Aggregate a corpus's token shards into one index TSV."""

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821

from tokentransfer.fileio import setup_logging  # noqa: E402
from tokentransfer.tokenize import write_index  # noqa: E402

smk = snakemake  # noqa: F821
setup_logging(smk.log[0])
totals = write_index(list(smk.input), smk.output[0])
logging.info("corpus %s: %s", smk.wildcards.corpus, totals)
