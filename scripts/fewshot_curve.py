"""Gather one target's few-shot points into curve.tsv and draw curve.png."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821

from tokentransfer.fileio import setup_logging  # noqa: E402
from tokentransfer.jobs.fewshot import run_fewshot_curve  # noqa: E402

smk = snakemake  # noqa: F821
setup_logging(smk.log[0])
run_fewshot_curve(
    points=list(smk.input.points),
    out_tsv=smk.output.curve,
    out_png=smk.output.figure,
    corpus=smk.wildcards.corpus,
    transformer_h5=smk.input.get("transformer"),
    tokenizer_json=smk.input.tokenizer,
    shards=list(smk.input.shards),
    split=smk.input.split,
    copy_n=smk.params.copy_n,
    eval_cfg=dict(smk.params.eval),
    length=smk.params.length,
    bars=smk.params.bars,
    classifier=smk.input.classifier,
)
