"""Ingest one corpus: read its sources safely, store MIDI by content hash, write the manifest."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821

from tokentransfer.fileio import setup_logging  # noqa: E402
from tokentransfer.jobs.corpus import run_ingest  # noqa: E402

smk = snakemake  # noqa: F821
setup_logging(smk.log[0])
run_ingest(
    corpus=smk.wildcards.corpus,
    sources=list(smk.params.sources),
    store=smk.params.store,
    manifest=smk.output.manifest,
    limits=smk.params.limits,
    seed=smk.params.seed,
    zips=dict(smk.params.zips),
    workers=smk.threads,
)
