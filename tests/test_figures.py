"""The report's piano rolls: samples and test excerpts cut to one length in quarter notes."""

from __future__ import annotations

import numpy as np
import pytest
from symusic import Note, Score, TimeSignature, Track

from tokentransfer import figures as fig

TPQ = 480


def score(notes, numerator=4, denominator=4):
    s = Score(TPQ)
    s.time_signatures.append(TimeSignature(0, numerator, denominator))
    t = Track(program=0)
    for time, dur, pitch in notes:
        t.notes.append(Note(int(time * TPQ), int(dur * TPQ), pitch, 80))
    s.tracks.append(t)
    return s


def test_cut_beats_moves_and_clips():
    notes = fig.notes_in_beats(score([(0, 1, 60), (4, 3, 62), (6, 4, 64), (8, 1, 65)]))
    cut = fig.cut_beats(notes, 4.0, 4.0)
    assert cut["start"].tolist() == [0.0, 2.0]
    assert cut["end"].tolist() == [3.0, 4.0]  # the note from 6 to 10 is cut off at 4
    assert cut["pitch"].tolist() == [62, 64]
    assert fig.span_beats(notes) == 10.0 and fig.span_beats(fig.cut_beats(notes, 50, 4)) == 0.0


def test_test_excerpts_start_at_bars_and_fit():
    # a 3/4 piece of 30 bars, a note on every beat, its pitch 20 + the beat's index
    piece = score([(b, 1, 20 + b) for b in range(90)], numerator=3)
    excerpts = fig.test_excerpts([piece], 5, 12.0, seed=3)
    assert len(excerpts) == 5
    for ex in excerpts:
        assert ex["start"].min() == 0.0 and ex["end"].max() <= 12.0
        assert len(ex["pitch"]) == 12
        first_beat = int(ex["pitch"][0]) - 20  # where it was cut from: a bar line
        assert first_beat % 3 == 0 and first_beat + 12 <= 90
    again = fig.test_excerpts([piece], 5, 12.0, seed=3)
    assert all(np.array_equal(a["pitch"], b["pitch"]) for a, b in zip(excerpts, again, strict=True))
    # a piece shorter than the length is shown whole
    short = fig.test_excerpts([score([(0, 1, 60), (1, 1, 62)])], 1, 12.0, seed=0)
    assert short[0]["pitch"].tolist() == [60, 62]
    assert fig.test_excerpts([], 3, 4.0, seed=0) == []


def test_piano_rolls_share_one_time_axis(tmp_path):
    sets = {
        "sparse": [score([(0, 0.25, 60), (30, 0.25, 62)]), score([(4, 1, 64)])],
        "dense": [score([(i / 4, 0.25, 60 + i % 12) for i in range(32)])],
        "silent": [Score(TPQ)],
    }
    reference = fig.test_excerpts([score([(b, 1, 50) for b in range(64)])], 2, 31.0, seed=0)
    path = tmp_path / "rolls.png"
    beats = fig.piano_rolls(sets, reference, path, "t")
    assert beats == pytest.approx(30.25)  # the longest sample's span
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    fig.piano_rolls(sets, reference, tmp_path / "again.png", "t")
    assert (tmp_path / "again.png").read_bytes() == path.read_bytes()
    # bar lines every 4 quarter notes: drawn (a different picture), at 0, 4, ..., 28
    assert fig.bar_lines(beats, 4.0).tolist() == [0, 4, 8, 12, 16, 20, 24, 28]
    assert fig.bar_lines(beats, None).size == 0
    fig.piano_rolls(sets, reference, tmp_path / "bars.png", "t", bar=4.0)
    assert (tmp_path / "bars.png").read_bytes() != path.read_bytes()


def test_piano_rolls_draw_every_row_when_notes_are_under_a_pixel_tall(tmp_path):
    """Eleven rows over 85 semitones leave a note under a pixel of height: every row must
    still show its notes (snapped to the pixel grid, whole rows of them were drawn empty)."""
    import matplotlib.image

    line = score([((p - 20) / 2, 0.5, p) for p in range(20, 106)])  # a rising chromatic line
    sets = {f"m{i}": [line] for i in range(11)}
    path = tmp_path / "rolls.png"
    fig.piano_rolls(sets, None, path, "t")
    img = matplotlib.image.imread(path)[..., :3]
    blue = (img[..., 2] - img[..., 0] > 0.15).any(axis=1)  # image rows holding note colour
    ys = np.flatnonzero(blue)
    runs = 1 + int((np.diff(ys) > 3).sum())  # separate bands of blue: one per drawn row
    assert runs == 11


def test_metrics_chart_and_curve_figure_draw_the_registry_panels(tmp_path):
    """The evaluation chart and the few-shot figure draw every registered panel, new melody
    and form metrics included, from rows that hold them (or lack them: drawn as n/a)."""
    from tokentransfer import metric_registry as reg
    from tokentransfer.fewshot import curve_figure

    assert ("step_share", reg.get("step_share").label) in fig.CHART_METRICS
    rows = [
        {"method": m, "kind": k, **{n: str(0.1 * i) for i, n in enumerate(reg.names())}}
        for m, k in (("counts", "graph"), ("markov2", "baseline"), ("test_pieces", "reference"))
    ]
    rows[2]["step_share"] = ""
    fig.metrics_chart(rows, tmp_path / "chart.png", "t")
    assert (tmp_path / "chart.png").read_bytes()[:4] == b"\x89PNG"
    curve = [
        {"method": "counts", "k": k, "draw": 0, "pieces": k, "metric": n, "value": 0.1 * k}
        for k in (1, 2, 5)
        for n in reg.names(table="curve")
    ]
    curve_figure(curve, tmp_path / "curve.png", "t")
    assert (tmp_path / "curve.png").read_bytes()[:4] == b"\x89PNG"
