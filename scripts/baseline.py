"""Produce one baseline's sample set (n-gram chain, transformer, or real excerpts)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821

from tokentransfer.fileio import setup_logging  # noqa: E402
from tokentransfer.jobs.evaluate import run_baseline  # noqa: E402

smk = snakemake  # noqa: F821
setup_logging(smk.log[0])
run_baseline(
    smk.wildcards.method,
    tokenizer_json=smk.input.tokenizer,
    target_shards=list(smk.input.shards),
    target_split=smk.input.split,
    base_shards=list(smk.input.get("base_shards", [])),
    model_dir=smk.input.get("model"),
    out_dir=str(Path(smk.output.info).parent),
    gen_cfg=dict(smk.params.gen),
    sampling_cfg=dict(smk.params.sampling),
    eval_cfg=dict(smk.params.eval),
    prompt_midi=smk.params.prompt,
    use_gpu=smk.params.use_gpu,
    threads=smk.threads,
)
