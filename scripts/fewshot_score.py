"""A few-shot point's sample sets measured against the target's test pieces and the style
classifier (rule fewshot_score)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821

from tokentransfer.fileio import setup_logging  # noqa: E402
from tokentransfer.jobs.fewshot import run_fewshot_score  # noqa: E402

smk = snakemake  # noqa: F821
setup_logging(smk.log[0])
run_fewshot_score(
    tokenizer_json=smk.input.tokenizer,
    shards=list(smk.input.shards),
    split=smk.input.split,
    samples_dir=smk.input.samples,
    eval_cfg=dict(smk.params.eval),
    gen_cfg=dict(smk.params.gen),
    out_tsv=smk.output[0],
    classifier=smk.input.classifier,
)
