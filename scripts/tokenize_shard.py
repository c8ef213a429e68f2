"""Tokenize the MIDI files of one shard, each on its own, into one HDF5 file."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821
# miditok imports torch when it is installed (~1.5 s per job); tokenization never needs it
sys.modules.setdefault("torch", None)

from tokentransfer.fileio import setup_logging  # noqa: E402
from tokentransfer.jobs.tokenize import run_tokenize_shard  # noqa: E402

smk = snakemake  # noqa: F821
setup_logging(smk.log[0])
run_tokenize_shard(
    tokenizer_json=smk.input.tokenizer,
    manifest=smk.input.manifest,
    store=smk.params.store,
    corpus=smk.wildcards.corpus,
    shard=smk.wildcards.shard,
    shards=smk.params.shards,
    files=smk.params.files,
    out=smk.output[0],
    cache=smk.params.cache,
)
