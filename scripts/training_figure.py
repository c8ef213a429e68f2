"""The report's training curves: pretraining and fine-tuning loss."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821

from tokentransfer.fileio import setup_logging  # noqa: E402
from tokentransfer.jobs.evaluate import run_training_figure  # noqa: E402

smk = snakemake  # noqa: F821
setup_logging(smk.log[0])
logs = {"pretrain": smk.input.pretrain}
logs.update(
    {
        f"finetune {name}": p
        for name, p in zip(smk.params.finetuned, smk.input.finetune, strict=True)
    }
)
run_training_figure(logs, smk.output[0])
