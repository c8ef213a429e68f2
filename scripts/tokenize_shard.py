"""Tokenize the MIDI files of one shard, each on its own, into one HDF5 file."""

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821
# miditok imports torch when it is installed (~1.5 s per job); tokenization never needs it
sys.modules.setdefault("torch", None)

from tokentransfer.corpus import shard_paths  # noqa: E402
from tokentransfer.fileio import setup_logging  # noqa: E402
from tokentransfer.tokenize import tokenize_shard  # noqa: E402

smk = snakemake  # noqa: F821
setup_logging(smk.log[0])
midi = shard_paths(
    smk.input.manifest,
    int(smk.wildcards.shard),
    smk.params.shards,
    smk.params.store,
    digest=smk.params.files,
)
result = tokenize_shard(
    smk.input.tokenizer,
    midi,
    smk.output[0],
    corpus=smk.wildcards.corpus,
    shard=smk.wildcards.shard,
    cache=smk.params.cache,
)
logging.info(
    "%d files, %d tokens, %d failed in %.2f s (%d files from the cache)",
    len(result.file_ids),
    result.tokens,
    len(result.failed),
    result.seconds,
    result.reused,
)
