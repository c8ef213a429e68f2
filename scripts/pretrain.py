"""Pretrain the transformer on the base corpus (resumes from its checkpoint after a kill)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821

from tokentransfer.fileio import setup_logging  # noqa: E402
from tokentransfer.jobs.model import run_pretrain  # noqa: E402

smk = snakemake  # noqa: F821
setup_logging(smk.log[0])
run_pretrain(
    tokenizer_json=smk.input.tokenizer,
    shards=list(smk.input.shards),
    splits=list(smk.input.splits),
    out_dir=smk.output.model,
    log_path=smk.output.log,
    train_json=smk.output.info,
    checkpoint_dir=smk.params.checkpoints,
    cfg=dict(smk.params.cfg),
    seed=smk.params.seed,
    use_gpu=smk.params.use_gpu,
    threads=smk.threads,
)
