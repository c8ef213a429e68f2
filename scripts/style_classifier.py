"""Train the style classifier on real windows of every corpus; measure it on held-out pieces."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821

from tokentransfer.fileio import setup_logging  # noqa: E402
from tokentransfer.jobs.evaluate import run_style_classifier  # noqa: E402

smk = snakemake  # noqa: F821
setup_logging(smk.log[0])
style = smk.params.style
run_style_classifier(
    tokenizer_json=smk.input.tokenizer,
    corpora={name: (list(shards), split) for name, (shards, split) in smk.params.corpora.items()},
    out_model=smk.output.model,
    out_tsv=smk.output.heldout,
    length=smk.params.length,
    bars=smk.params.bars,
    windows=style["windows"],
    heldout_windows=style["heldout_windows"],
    l2=style["l2"],
    seed=smk.params.seed,
)
