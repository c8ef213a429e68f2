"""Build the miditok tokenizer from config (or take a local model's) and save it as JSON."""

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821

from tokentransfer.fileio import setup_logging  # noqa: E402
from tokentransfer.jobs.tokenize import import_tokenizer  # noqa: E402
from tokentransfer.tokenize import build_tokenizer, save_tokenizer  # noqa: E402

smk = snakemake  # noqa: F821
setup_logging(smk.log[0])
model = smk.params.model
if model["source"] == "local":
    digest = import_tokenizer(model["path"], model["tokenizer"], smk.output[0])
    logging.info("tokenizer of local model %s, sha256 %s", model["path"], digest)
else:
    tokenizer = build_tokenizer(dict(smk.params.tokenizer))
    digest = save_tokenizer(tokenizer, smk.output[0])
    logging.info(
        "tokenizer %s: %d tokens, sha256 %s", type(tokenizer).__name__, len(tokenizer), digest
    )
