"""The HDF5 embedding cache of one target corpus."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821

from tokentransfer.fileio import setup_logging  # noqa: E402
from tokentransfer.jobs.model import run_embed  # noqa: E402

smk = snakemake  # noqa: F821
setup_logging(smk.log[0])
run_embed(
    model_dir=smk.input.model,
    shards=list(smk.input.shards),
    split=smk.input.split,
    manifest=smk.input.manifest,
    out=smk.output[0],
    batch=smk.params.batch,
    stride=smk.params.stride,
    use_gpu=smk.params.use_gpu,
    threads=smk.threads,
    contextual_pass=smk.params.contextual,
)
