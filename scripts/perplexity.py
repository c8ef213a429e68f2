"""Loss and perplexity of the model on one corpus's held-out pieces."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821

from tokentransfer.fileio import setup_logging  # noqa: E402
from tokentransfer.jobs.model import run_perplexity  # noqa: E402

smk = snakemake  # noqa: F821
setup_logging(smk.log[0])
run_perplexity(
    model_dir=smk.input.model,
    shards=list(smk.input.shards),
    split=smk.input.split,
    part=smk.params.part,
    out_json=smk.output[0],
    corpus=smk.wildcards.corpus,
    eval_tokens=smk.params.eval_tokens,
    use_gpu=smk.params.use_gpu,
    threads=smk.threads,
)
