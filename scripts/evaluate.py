"""Evaluate every sample set of one target against its held-out test pieces."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821

from tokentransfer.fileio import setup_logging  # noqa: E402
from tokentransfer.jobs.evaluate import collect_costs, run_evaluate  # noqa: E402

smk = snakemake  # noqa: F821
setup_logging(smk.log[0])
# names from the rule, in the order of its inputs
sets = dict(zip(smk.params.methods, smk.input.sets, strict=True))
linkpred = dict(zip(smk.params.linkpred_variants, smk.input.linkpred, strict=True))
run_evaluate(
    tokenizer_json=smk.input.tokenizer,
    target_shards=list(smk.input.shards),
    target_split=smk.input.split,
    sets=sets,
    out_tsv=smk.output.metrics,
    samples_tsv=smk.output.samples,
    features_tsv=smk.output.features,
    eval_cfg=dict(smk.params.eval),
    gen_cfg=dict(smk.params.gen),
    costs=collect_costs(linkpred, smk.input.get("finetune")),
    corpus=smk.wildcards.corpus,
    classifier=smk.input.classifier,
)
