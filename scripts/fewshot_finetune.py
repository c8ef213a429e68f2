"""One few-shot point of the costly baseline: the transformer fine-tuned on one subset."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821

from tokentransfer.fewshot import run_finetune_point  # noqa: E402
from tokentransfer.fileio import setup_logging  # noqa: E402

smk = snakemake  # noqa: F821
setup_logging(smk.log[0])
run_finetune_point(
    tokenizer_json=smk.input.tokenizer,
    model_dir=smk.input.model,
    shards=list(smk.input.shards),
    split=smk.input.split,
    corpus=smk.wildcards.corpus,
    k=int(smk.wildcards.k),
    draw=int(smk.wildcards.draw),
    cfg=dict(smk.params.cfg),
    gen_cfg=dict(smk.params.gen),
    eval_cfg=dict(smk.params.eval),
    finetune_cfg=dict(smk.params.finetune),
    checkpoint=smk.params.checkpoint,
    out_tsv=smk.output[0],
    use_gpu=smk.params.use_gpu,
    threads=smk.threads,
)
