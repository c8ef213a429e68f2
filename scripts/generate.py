"""Generate MIDI samples by the biased random walk with restart over a target's graph."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821

from tokentransfer.fileio import setup_logging  # noqa: E402
from tokentransfer.jobs.generate import run_generate  # noqa: E402

smk = snakemake  # noqa: F821
setup_logging(smk.log[0])
run_generate(
    tokenizer_json=smk.input.tokenizer,
    successors_npz=smk.input.successors,
    context_npz=smk.input.get("context"),
    walk_npz=smk.input.get("walk"),
    nodes_h5=smk.input.get("nodes"),
    out_dir=str(Path(smk.output.info).parent),
    cfg=dict(smk.params.cfg),
    prompt_midi=smk.params.prompt,
    test_shards=list(smk.input.shards),
    split_tsv=smk.input.split,
    bits_tokens=smk.params.bits_tokens,
)
