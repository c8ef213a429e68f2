"""Download one Tegridy zip, verifying its pinned sha256."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821

from tokentransfer.fileio import setup_logging  # noqa: E402
from tokentransfer.jobs.corpus import run_fetch_tegridy  # noqa: E402

smk = snakemake  # noqa: F821
setup_logging(smk.log[0])
run_fetch_tegridy(zipname=smk.wildcards.zipname, out=smk.output[0], url=smk.params.url)
