"""Take a local HF checkpoint as the workflow's model (validated against its tokenizer)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821

from tokentransfer.fileio import setup_logging  # noqa: E402
from tokentransfer.jobs.model import run_import_model  # noqa: E402

smk = snakemake  # noqa: F821
setup_logging(smk.log[0])
run_import_model(
    model_path=smk.params.path,
    tokenizer_json=smk.input.tokenizer,
    out_dir=smk.output.model,
    log_path=smk.output.log,
    train_json=smk.output.info,
)
