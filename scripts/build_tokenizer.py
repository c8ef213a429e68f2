"""Build the miditok tokenizer from config (or take a local model's) and save it as JSON."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821

from tokentransfer.fileio import setup_logging  # noqa: E402
from tokentransfer.jobs.tokenize import run_tokenizer  # noqa: E402

smk = snakemake  # noqa: F821
setup_logging(smk.log[0])
run_tokenizer(
    tokenizer_cfg=dict(smk.params.tokenizer), model=dict(smk.params.model), out=smk.output[0]
)
