"""Download one Tegridy zip, verifying its pinned sha256."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821

from tokentransfer.fileio import setup_logging  # noqa: E402
from tokentransfer.tegridy import download  # noqa: E402

setup_logging(snakemake.log[0])  # noqa: F821
download(snakemake.wildcards.zipname, snakemake.output[0], base_url=snakemake.params.url)  # noqa: F821
