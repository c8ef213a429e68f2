"""One few-shot point: the registry's methods of one job adapted on one subset of a target and
sampled (rule fewshot_point: the chains and walks; rule fewshot_finetune: the fine-tuned
transformer; rule fewshot_transfer: fusion, the embedding transplant, embedding-only and LoRA
fine-tuning); rule fewshot_curve measures the sample sets."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821

from tokentransfer.fileio import setup_logging  # noqa: E402
from tokentransfer.jobs.fewshot import run_fewshot_adapt  # noqa: E402

smk = snakemake  # noqa: F821
setup_logging(smk.log[0])
params = dict(smk.params)
run_fewshot_adapt(
    tokenizer_json=smk.input.tokenizer,
    shards=list(smk.input.shards),
    split=smk.input.split,
    corpus=smk.wildcards.corpus,
    k=int(smk.wildcards.k),
    draw=int(smk.wildcards.draw),
    cfg=dict(smk.params.cfg),
    gen_cfg=dict(smk.params.gen),
    sampling_cfg=dict(smk.params.sampling),
    eval_cfg=dict(smk.params.eval),
    out_dir=smk.output[0],
    job=smk.params.job,
    embeddings=smk.input.get("embeddings"),
    graph_cfg=dict(params.get("graph", {})),
    linkpred_cfg=dict(params.get("linkpred", {})),
    model_dir=smk.input.get("model"),
    finetune_cfg=params.get("finetune"),
    checkpoints=params.get("checkpoints"),
    use_gpu=bool(params.get("use_gpu", False)),
    threads=smk.threads,
    base_shards=list(smk.input.get("base_shards", [])),
    base_splits=list(smk.input.get("base_splits", [])),
)
