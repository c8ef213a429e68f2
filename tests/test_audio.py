"""Audio for the report: samples clipped to a few seconds, rendered to FLAC by FluidSynth."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from symusic import Note, Score, Tempo, Track

from tokentransfer.audio import AudioError, clip_midi, render

SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")


def runaway_midi(path: Path) -> Path:
    """Four notes, then a tempo change at tick 2**28 (days later): what a model's garbage
    tokens decode to."""
    score = Score(480)
    score.tempos.append(Tempo(0, 120.0))
    score.tempos.append(Tempo(1 << 28, 120.0))
    track = Track(program=0, is_drum=False)
    for i, p in enumerate((60, 64, 67, 72)):
        track.notes.append(Note(i * 480, 480, p, 80))
    score.tracks.append(track)
    score.dump_midi(str(path))
    return path


def test_clip_keeps_the_start_and_drops_the_far_end(tmp_path):
    midi = runaway_midi(tmp_path / "in.mid")
    assert Score(str(midi)).to("second").end() > 1e5  # days of silence
    seconds = clip_midi(midi, tmp_path / "clip.mid", 30)
    clipped = Score(str(tmp_path / "clip.mid"))
    assert seconds <= 30
    assert clipped.note_num() == 4  # the notes (2 s at 120 bpm) are kept


def test_missing_fluidsynth_is_named(tmp_path):
    midi = runaway_midi(tmp_path / "in.mid")
    with pytest.raises(AudioError, match="no-such-synth: not installed .*apt-get install"):
        render(midi, tmp_path / "a.flac", SOUNDFONT, fluidsynth="no-such-synth")


def test_render_flac(tmp_path):
    if shutil.which("fluidsynth") is None or not SOUNDFONT.is_file():
        msg = "fluidsynth or fluid-soundfont-gm not installed (apt-get install both)"
        if os.environ.get("CI"):
            pytest.fail(f"{msg}: .ci/run installs them")
        pytest.skip(msg)
    midi = runaway_midi(tmp_path / "in.mid")
    out = tmp_path / "audio" / "a.flac"
    seconds = render(midi, out, SOUNDFONT, max_seconds=5)
    assert 1.9 <= seconds <= 5
    data = out.read_bytes()
    assert data[:4] == b"fLaC" and len(data) > 1000
    assert sorted(p.name for p in out.parent.iterdir()) == ["a.flac"]  # no temporary left
    render(midi, tmp_path / "b.flac", SOUNDFONT, max_seconds=5)
    assert (tmp_path / "b.flac").read_bytes() == data  # deterministic
    with pytest.raises(AudioError, match="soundfont .* not found"):
        render(midi, tmp_path / "c.flac", tmp_path / "none.sf2")
    # rule audio's job: the same file, its length returned
    from tokentransfer.jobs.evaluate import run_audio

    job = run_audio(
        midi=midi, out=tmp_path / "job.flac", soundfont=SOUNDFONT, sample_rate=22050, max_seconds=5
    )
    assert job == seconds and (tmp_path / "job.flac").read_bytes() == data
