"""Render MIDI samples to audio (FLAC) with FluidSynth, for the report.

FluidSynth plays a MIDI file to its last event, which for a model's garbage can lie days
after the last note (a tempo change at tick 2**28): every file is clipped to ``max_seconds``
first, with symusic, and rendered from that copy.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path


class AudioError(RuntimeError):
    """FluidSynth is missing or failed; the message says which and how to install it."""


def clip_midi(midi: str | os.PathLike, out: str | os.PathLike, max_seconds: float) -> float:
    """Write the first ``max_seconds`` of ``midi`` to ``out``; return the clipped length (s)."""
    import symusic

    score = symusic.Score(str(midi)).to("second")
    clipped = score.clip(0, float(max_seconds), clip_end=True)
    clipped.dump_midi(str(out))
    return float(clipped.end())


def render(
    midi: str | os.PathLike,
    out: str | os.PathLike,
    soundfont: str | os.PathLike,
    *,
    sample_rate: int = 22050,
    max_seconds: float = 30.0,
    fluidsynth: str = "fluidsynth",
) -> float:
    """Render ``midi`` (its first ``max_seconds``) to FLAC at ``out``, atomically; return the
    audio's length in seconds. Raises :class:`AudioError` naming what is missing."""
    exe = shutil.which(fluidsynth)
    if exe is None:
        raise AudioError(
            f"{fluidsynth}: not installed (Debian/Ubuntu: apt-get install fluidsynth "
            "fluid-soundfont-gm)"
        )
    if not Path(soundfont).is_file():
        raise AudioError(f"soundfont {soundfont} not found (apt-get install fluid-soundfont-gm)")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".tmp-audio-") as tmp:
        clipped = Path(tmp) / "clip.mid"
        seconds = clip_midi(midi, clipped, max_seconds)
        flac = Path(tmp) / "out.flac"
        cmd = [exe, "-ni", "-q", "-T", "flac", "-r", str(int(sample_rate)), "-F", str(flac)]
        proc = subprocess.run(
            [*cmd, str(soundfont), str(clipped)], capture_output=True, text=True, timeout=600
        )
        if proc.returncode != 0 or not flac.is_file():
            raise AudioError(f"fluidsynth failed on {midi}: {proc.stderr.strip()[-2000:]}")
        os.chmod(flac, 0o644)
        os.replace(flac, out)
    return seconds
