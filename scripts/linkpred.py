"""Graph networks for one feature variant of one target's graph, with baselines."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821

from tokentransfer.fileio import setup_logging  # noqa: E402
from tokentransfer.jobs.graph import run_linkpred  # noqa: E402
from tokentransfer.model import device_name, set_threads  # noqa: E402

smk = snakemake  # noqa: F821
setup_logging(smk.log[0])
set_threads(smk.threads)
run_linkpred(
    adjacency=smk.input.adjacency,
    embeddings=smk.input.embeddings,
    variant=smk.wildcards.variant,
    encoders=list(smk.params.encoders),
    seeds=list(smk.params.seeds),
    hp=dict(smk.params.hp),
    checkpoint=smk.output.checkpoint,
    nodes_h5=smk.output.nodes,
    log_tsv=smk.output.log,
    metrics_json=smk.output.metrics,
    device=device_name(smk.params.use_gpu),
)
