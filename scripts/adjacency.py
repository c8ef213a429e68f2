"""Co-occurrence and successor graphs of one target corpus's training pieces."""

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821

from tokentransfer.fileio import setup_logging  # noqa: E402
from tokentransfer.jobs.graph import run_adjacency  # noqa: E402

smk = snakemake  # noqa: F821
setup_logging(smk.log[0])
stats = run_adjacency(
    tokenizer_json=smk.input.tokenizer,
    shards=list(smk.input.shards),
    split=smk.input.split,
    adjacency=smk.output.adjacency,
    successors_out=smk.output.successors,
    context_out=smk.output.context,
    walk_out=smk.output.walk,
    stats_out=smk.output.stats,
    offset_weights=list(smk.params.offset_weights),
    self_loops=smk.params.self_loops,
)
logging.info("graph of %s: %s", smk.wildcards.corpus, stats)
