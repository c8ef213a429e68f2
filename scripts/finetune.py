"""Fine-tune the pretrained model on a target's training pieces (the costly baseline)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821

from tokentransfer.fileio import setup_logging  # noqa: E402
from tokentransfer.jobs.model import run_finetune  # noqa: E402

smk = snakemake  # noqa: F821
setup_logging(smk.log[0])
run_finetune(
    model_dir=smk.input.model,
    shards=list(smk.input.shards),
    split=smk.input.split,
    out_dir=smk.output.model,
    log_path=smk.output.log,
    metrics_json=smk.output.metrics,
    checkpoint_dir=smk.params.checkpoints,
    cfg=dict(smk.params.cfg),
    eval_tokens=smk.params.eval_tokens,
    seed=smk.params.seed,
    use_gpu=smk.params.use_gpu,
    threads=smk.threads,
)
