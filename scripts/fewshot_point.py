"""One few-shot point: the n-gram chains and the walks adapted on one subset of a target."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821

from tokentransfer.fewshot import run_point  # noqa: E402
from tokentransfer.fileio import setup_logging  # noqa: E402

smk = snakemake  # noqa: F821
setup_logging(smk.log[0])
run_point(
    tokenizer_json=smk.input.tokenizer,
    shards=list(smk.input.shards),
    split=smk.input.split,
    embeddings=smk.input.embeddings,
    corpus=smk.wildcards.corpus,
    k=int(smk.wildcards.k),
    draw=int(smk.wildcards.draw),
    cfg=dict(smk.params.cfg),
    gen_cfg=dict(smk.params.gen),
    eval_cfg=dict(smk.params.eval),
    graph_cfg=dict(smk.params.graph),
    gcn_cfg=dict(smk.params.gcn),
    out_tsv=smk.output[0],
)
