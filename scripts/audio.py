"""Render the first sample of one method to FLAC (FluidSynth) for the report."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821

from tokentransfer.audio import render  # noqa: E402
from tokentransfer.fileio import setup_logging  # noqa: E402

smk = snakemake  # noqa: F821
setup_logging(smk.log[0])
seconds = render(
    smk.input[0],
    smk.output[0],
    smk.params.soundfont,
    sample_rate=smk.params.rate,
    max_seconds=smk.params.max_seconds,
)
print(f"{smk.input[0]}: {seconds:.1f} s of audio", file=sys.stderr)
