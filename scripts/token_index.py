"""Aggregate a corpus's token shards into one index TSV."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821

from tokentransfer.fileio import setup_logging  # noqa: E402
from tokentransfer.jobs.tokenize import run_token_index  # noqa: E402

smk = snakemake  # noqa: F821
setup_logging(smk.log[0])
run_token_index(shards=list(smk.input), out=smk.output[0], corpus=smk.wildcards.corpus)
