"""One few-shot point: the methods adapted on one subset of a target (rule fewshot_point: the
chains and walks; rule fewshot_finetune: the fine-tuned transformer; rule fewshot_transfer:
fusion, the embedding transplant, embedding-only and LoRA fine-tuning)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821

from tokentransfer.fewshot import run_point  # noqa: E402
from tokentransfer.fileio import setup_logging  # noqa: E402

smk = snakemake  # noqa: F821
setup_logging(smk.log[0])
finetune = None
if smk.rule == "fewshot_finetune":
    finetune = {
        "model_dir": smk.input.model,
        "cfg": dict(smk.params.finetune),
        "checkpoint": smk.params.checkpoint,
        "use_gpu": smk.params.use_gpu,
        "threads": smk.threads,
    }
transfer = None
if smk.rule == "fewshot_transfer":
    transfer = {
        "model_dir": smk.input.model,
        "cfg": dict(smk.params.finetune),
        "checkpoint": smk.params.checkpoint,
        "use_gpu": smk.params.use_gpu,
        "threads": smk.threads,
        "base_shards": list(smk.input.base_shards),
        "base_splits": list(smk.input.base_splits),
    }
run_point(
    tokenizer_json=smk.input.tokenizer,
    shards=list(smk.input.shards),
    split=smk.input.split,
    corpus=smk.wildcards.corpus,
    k=int(smk.wildcards.k),
    draw=int(smk.wildcards.draw),
    cfg=dict(smk.params.cfg),
    gen_cfg=dict(smk.params.gen),
    eval_cfg=dict(smk.params.eval),
    out_tsv=smk.output[0],
    embeddings=smk.input.get("embeddings"),
    graph_cfg=dict(smk.params.get("graph", {})),
    gcn_cfg=dict(smk.params.get("gcn", {})),
    finetune=finetune,
    transfer=transfer,
)
