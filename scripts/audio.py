"""Render the first sample of one method to FLAC (FluidSynth) for the report."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821

from tokentransfer.fileio import setup_logging  # noqa: E402
from tokentransfer.jobs.evaluate import run_audio  # noqa: E402

smk = snakemake  # noqa: F821
setup_logging(smk.log[0])
run_audio(
    midi=smk.input[0],
    out=smk.output[0],
    soundfont=smk.params.soundfont,
    sample_rate=smk.params.rate,
    max_seconds=smk.params.max_seconds,
)
