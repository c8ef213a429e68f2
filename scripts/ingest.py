"""Ingest one corpus: read its sources safely, store MIDI by content hash, write the manifest."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821

from tokentransfer.corpus import Limits  # noqa: E402
from tokentransfer.fileio import setup_logging  # noqa: E402
from tokentransfer.sources import ingest_manifest  # noqa: E402

smk = snakemake  # noqa: F821
setup_logging(smk.log[0])
ingest_manifest(
    smk.wildcards.corpus,
    smk.params.corpus,
    store=smk.params.store,
    manifest=smk.output.manifest,
    limits=Limits.from_config(smk.params.limits),
    seed=smk.params.seed,
    tegridy_zips=dict(smk.params.zips),
    workers=smk.threads,
)
