"""``tokentransfer generate --method`` and ``tokentransfer infill`` on a finished run.

The run is tests/run_fixture.py's (real tokenizer, shards, graphs and a tiny transformer
pretrained and fine-tuned by the workflow's jobs), made once for this module.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import symusic

from tests.run_fixture import build_run
from tokentransfer.bars import count_bars
from tokentransfer.cli import main
from tokentransfer.infill import bar_quarters, infill_tokens, note_rows
from tokentransfer.samples import read_samples


@pytest.fixture(scope="module")
def run_results(tmp_path_factory, midi_corpora) -> Path:
    return build_run(midi_corpora, tmp_path_factory.mktemp("finished_run"))


@pytest.fixture(scope="module")
def prompt(midi_corpora, tmp_path_factory) -> Path:
    """The first two bars (4/4) of a chorale, as a MIDI file."""
    score = symusic.Score(str(midi_corpora / "chorales" / "bwv1.6.mid"))
    path = tmp_path_factory.mktemp("prompt") / "prompt.mid"
    score.clip(0, 8 * score.ticks_per_quarter, clip_end=False).dump_midi(str(path))
    return path


def onsets_pitches_durations(rows):
    return Counter((r[2], r[3], r[4]) for r in rows)


@pytest.mark.parametrize(
    "method", ["counts", "markov3c", "transformer", "finetuned", "fused_markov"]
)
def test_generate_continues_the_prompt_for_8_bars(run_results, prompt, tmp_path, method, capsys):
    out = tmp_path / "out"
    argv = ["generate", "--method", method, "--corpus", "bach", "--results", str(run_results)]
    argv += ["--prompt", str(prompt), "--bars", "8", "--n", "2", "--seed", "0", "--out", str(out)]
    assert main(argv) == 0, capsys.readouterr().err
    info = json.loads((out / "generation.json").read_text())
    assert info["method"] == method and info["token_error_rate"] == [0.0, 0.0]
    assert info["short"] == 0 and info["prompt_notes_kept"] is True
    samples, prompt_len = read_samples(out / "tokens.h5")
    from tokentransfer.baselines import bar_id
    from tokentransfer.tokenize import load_tokenizer

    bar = bar_id(load_tokenizer(run_results / "tokenizer" / "tokenizer.json"))
    given = note_rows(symusic.Score(str(prompt)))
    last_onset = max(r[2] for r in given)
    for i, ids in enumerate(samples):
        assert count_bars(ids[prompt_len:], bar) == 8  # 8 bars after the prompt, cut at the 9th
        rows = note_rows(symusic.Score(str(out / f"sample_{i:03d}.mid")))
        # every prompt note is there as it was (onset, pitch, duration, velocity, program) ...
        left = Counter(rows)
        left.subtract(Counter(given))
        assert min(left.values()) >= 0
        new = list(left.elements())
        # ... and the generated notes follow it: none starts before the prompt's last onset
        assert new and min(r[2] for r in new) >= last_onset
        # so the sample's first notes are the prompt's: all those before its last onset
        before = [r for r in rows if r[2] < last_onset]
        assert onsets_pitches_durations(before) == onsets_pitches_durations(
            [r for r in given if r[2] < last_onset]
        )
    assert f"{method}: 2 samples of 8 bars" in capsys.readouterr().out


def test_generate_is_seeded(run_results, prompt, tmp_path):
    argv = ["generate", "--method", "markov2", "--corpus", "fiddle", "--results", str(run_results)]
    argv += ["--bars", "4", "--n", "2", "--seed", "3"]
    assert main([*argv, "--out", str(tmp_path / "a")]) == 0
    assert main([*argv, "--out", str(tmp_path / "b")]) == 0
    a, _ = read_samples(tmp_path / "a" / "tokens.h5")
    b, _ = read_samples(tmp_path / "b" / "tokens.h5")
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def _infill(run_results, midi, out, *flags):
    argv = ["infill", "--method", "counts", "--corpus", "fiddle", "--results", str(run_results)]
    return main([*argv, "--midi", str(midi), "--seed", "0", "--out", str(out), *flags])


def test_infill_keeps_every_note_outside_the_bars(run_results, midi_corpora, tmp_path, capsys):
    tune = sorted((midi_corpora / "tunes").glob("*.mid"))[0]
    out = tmp_path / "new.mid"
    assert _infill(run_results, tune, out, "--bars", "2:3") == 0, capsys.readouterr().err
    record = json.loads(out.with_suffix(".json").read_text())
    a, b = record["window_quarters"]
    old, new = symusic.Score(str(tune)), symusic.Score(str(out))
    tpq = old.ticks_per_quarter
    assert new.ticks_per_quarter == tpq and record["token_errors"] == 0.0
    lo, hi = round(a * tpq), round(b * tpq)

    def outside(score):
        return Counter(r for r in note_rows(score) if not lo <= r[2] < hi)

    def inside(score):
        return sorted(r for r in note_rows(score) if lo <= r[2] < hi)

    assert outside(new) == outside(old)  # onset, pitch, duration, velocity, program: unchanged
    assert inside(new) and inside(new) != inside(old)
    # bars 2..3 of the tune: from the end of bar 1 to the start of bar 4 of its time signature
    sig = old.time_signatures[0] if len(old.time_signatures) else None
    per_bar = 4 * sig.numerator / sig.denominator if sig is not None else 4.0
    assert (a, b) == (per_bar, 3 * per_bar)
    scores = record["candidate_scores_bits"]
    assert record["selection"] == "log_probs of the following bars"
    assert scores[record["chosen"]] == max(
        s for s, ok in zip(scores, record["candidate_bar_lengths_match"], strict=True) if ok
    )
    # its own earlier output may be replaced; any other existing file is refused
    assert _infill(run_results, tune, out, "--bars", "2:2") == 0
    other = tmp_path / "mine.mid"
    other.write_bytes(tune.read_bytes())
    capsys.readouterr()
    assert _infill(run_results, tune, other, "--bars", "2:2") == 2
    err = capsys.readouterr().err
    assert err == (
        f"tokentransfer infill: --out {other}: exists and is not an earlier output of infill "
        "(no mine.json beside it); give a new file\n"
    )
    assert other.read_bytes() == tune.read_bytes()


def test_infill_keeps_the_candidate_scored_highest_on_the_following_bars(run_results, midi_corpora):
    """The kept candidate is the one under which the method's log_probs of the bars after
    the infilled ones sum highest: recomputed here from the candidates themselves, over seeds
    where that is not the first candidate (so that keeping the first would fail)."""
    from tokentransfer.runs import Run
    from tokentransfer.tokenize import tokenize_file

    run = Run.open(run_results)
    method = run.method("markov2", "fiddle")
    fitted = run.fit(method, "fiddle", dict(run.config["generate"]), dict(run.config["evaluate"]))
    tune = sorted((midi_corpora / "tunes").glob("*.mid"))[1]
    ids = tokenize_file(run.tokenizer, tune)
    per_bar = run.tokens_per_bar("fiddle")
    not_first = 0
    for seed in range(4):
        res = infill_tokens(
            fitted, run.tokenizer, ids, 3, 4, seed, bar_id=run.bar_id, per_bar=per_bar
        )
        head, tail = ids[: res.span[0]], np.asarray(res.ids)[res.span[1] :]
        assert len(res.middles) == 8 and np.array_equal(tail, ids[len(ids) - len(tail) :])
        scores = []
        for mid in res.middles:  # each candidate's bars 3..4: bars 1..2 and 5.. as in the file
            assert count_bars(mid, run.bar_id) == 2
            lp = fitted.log_probs(np.concatenate([head, mid, tail]))
            scores.append(float(lp[len(head) + len(mid) - 1 :].sum()))
        assert scores == pytest.approx(res.scores)
        assert len(set(np.round(scores, 6))) > 1
        pool = [i for i, ok in enumerate(res.fits) if ok] or list(range(len(scores)))
        assert res.chosen == max(pool, key=lambda i: (scores[i], -i))
        assert np.array_equal(res.ids, np.concatenate([head, res.middles[res.chosen], tail]))
        not_first += res.chosen != 0
    assert not_first > 0


def test_bar_quarters_follow_the_time_signature_tokens(run_results):
    from tokentransfer.runs import Run

    run = Run.open(run_results)
    vocab = run.tokenizer.vocab
    bar, ts34, ts44 = vocab["Bar_None"], vocab["TimeSig_3/4"], vocab["TimeSig_4/4"]
    ids = np.array([bar, ts34, bar, bar, ts44, bar])
    assert bar_quarters(run.tokenizer, ids, bar).tolist() == [0, 3, 6, 10, 14]


# --------------------------------------------------------------------------- one-line errors


def _err(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_unknown_or_missing_method_names_those_the_run_has(run_results, tmp_path, capsys):
    base = ["--corpus", "fiddle", "--results", str(run_results), "--out", str(tmp_path / "o")]
    assert main(["generate", "--method", "nope", *base]) == 2
    err = _err(capsys)
    assert err.startswith("tokentransfer generate: --method nope: unknown method for fiddle ")
    have = re.search(r"\(this run has: (.*)\)$", err.strip()).group(1).split(", ")
    assert {"counts", "markov3c", "transformer", "fused_markov"} <= set(have)
    assert "finetuned" not in have  # fine-tuned on bach only
    assert "emb_neighbours" not in have  # no graph network in this run
    assert main(["generate", "--method", "finetuned", *base]) == 2
    assert "--method finetuned: this run does not have it for fiddle" in _err(capsys)
    assert main(["generate", "--method", "markov2", *base[2:], "--corpus", "base"]) == 2
    assert "--corpus base: not a target corpus of this run (it has: bach, fiddle)" in _err(capsys)
    assert not (tmp_path / "o").exists()


def test_errors_are_one_line(run_results, midi_corpora, tmp_path, capsys):
    text = tmp_path / "notes.txt"
    text.write_text("not music\n")
    tune = sorted((midi_corpora / "tunes").glob("*.mid"))[0]
    gen = ["generate", "--corpus", "fiddle", "--results", str(run_results)]
    out = ["--out", str(tmp_path / "o")]
    cases = [
        (
            [*gen, "--method", "markov2", "--prompt", str(text), *out],
            f"tokentransfer generate: --prompt {text}: not a MIDI file",
        ),
        (
            [*gen, "--method", "markov2", "--length", "99999999999", *out],
            "tokentransfer generate: --length 99999999999: 4 samples of 99999999999 tokens need "
            "2.9 TiB (8 bytes a token); the limit is ",
        ),
        (
            [*gen, "--method", "markov2", "--temperature", "0.5", *out],
            "tokentransfer generate: --temperature: markov2 has no sampling temperature",
        ),
        ([*gen, "--method", "markov2", "--bars", "0", *out], "--bars: need at least one bar"),
        (
            [
                *gen,
                "--method",
                "markov2",
                "--audio",
                "--soundfont",
                str(text.with_suffix(".sf2")),
                *out,
            ],
            "tokentransfer generate: --audio: ",
        ),
    ]
    cases.append(
        (
            [*gen, "--method", "real_target", "--prompt", str(tune), *out],
            "tokentransfer generate: --prompt: real_target takes no prompt (it samples real "
            "excerpts)",
        )
    )
    infill = ["infill", "--method", "counts", "--corpus", "fiddle", "--results", str(run_results)]
    cases += [
        (
            [*infill, "--midi", str(tune), "--bars", "40:50", "--out", str(tmp_path / "x.mid")],
            "tokentransfer infill: --bars 40:50: bars 40:50 out of range: the file has ",
        ),
        (
            [*infill, "--midi", str(tune), "--bars", "3:2", "--out", str(tmp_path / "x.mid")],
            "tokentransfer infill: --bars 3:2: bars 3:2 out of range",
        ),
        (
            [*infill, "--midi", str(tune), "--bars", "5", "--out", str(tmp_path / "x.mid")],
            "tokentransfer infill: --bars 5: give the first and last bar as A:B",
        ),
        (
            [*infill, "--midi", str(tune), "--bars", "1:2", "--temperature", "0"]
            + ["--out", str(tmp_path / "x.mid")],
            "tokentransfer infill: --temperature: must be > 0, got 0.0",
        ),
        (
            [*infill, "--midi", str(text), "--bars", "1:2", "--out", str(tmp_path / "x.mid")],
            f"tokentransfer infill: --midi {text}: not a MIDI file",
        ),
    ]
    for argv, expected in cases:
        assert main(argv) == 2, argv
        err = _err(capsys)
        assert err.startswith(expected) or expected in err, (expected, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_generate_replaces_only_its_own_output(run_results, tmp_path, capsys):
    argv = ["generate", "--method", "markov2", "--corpus", "fiddle", "--results", str(run_results)]
    argv += ["--bars", "2", "--n", "1"]
    out = tmp_path / "out"
    assert main([*argv, "--out", str(out)]) == 0
    assert json.loads((out / "generation.json").read_text())["command"] == "generate"
    assert main([*argv, "--out", str(out), "--seed", "1"]) == 0  # an earlier output: replaced
    # a workflow's sample set (its generation.json names no command) is not replaced
    workflow_set = tmp_path / "baselines"
    workflow_set.mkdir()
    (workflow_set / "generation.json").write_text('{"method": "markov2"}')
    capsys.readouterr()
    assert main([*argv, "--out", str(workflow_set)]) == 2
    assert _err(capsys) == (
        f"tokentransfer generate: --out {workflow_set}: the folder holds other files (no "
        "generation.json of an earlier tokentransfer generate); give a new or empty folder\n"
    )
    assert os.listdir(workflow_set) == ["generation.json"]


def test_generate_without_method_names_the_walk_flag(run_results, tmp_path, capsys):
    """Without --method, generate walks (--variant, default emb_neighbours, or --counts-only);
    a run without that walk's graph network is refused naming --variant."""
    argv = ["generate", "--corpus", "fiddle", "--results", str(run_results)]
    assert main([*argv, "--out", str(tmp_path / "o")]) == 2
    assert _err(capsys).startswith(
        "tokentransfer generate: --variant emb_neighbours: this run does not have it for fiddle"
    )
    assert (
        main([*argv, "--counts-only", "--length", "32", "--n", "1", "--out", str(tmp_path / "o")])
        == 0
    )
    info = json.loads((tmp_path / "o" / "generation.json").read_text())
    assert info["method"] == "counts" and info["tokens_generated"] == 32


def test_a_method_registered_later_is_offered_and_sampled(run_results, tmp_path, capsys):
    """The command enumerates the registry: a method registered after it was written (a real
    order-4 chain here) is listed, documented in --help and sampled."""
    from tokentransfer.methods import Chain, register, unregister
    from tokentransfer.runs import Run

    chain = Chain(4)
    chain.name = "markov4_test"
    register(chain)
    try:
        assert "markov4_test" in Run.open(run_results).available("fiddle")
        with pytest.raises(SystemExit):
            main(["generate", "--help"])
        assert "markov4_test" in capsys.readouterr().out
        out = tmp_path / "o"
        argv = ["generate", "--method", "markov4_test", "--corpus", "fiddle"]
        argv += ["--results", str(run_results), "--bars", "2", "--n", "1", "--out", str(out)]
        assert main(argv) == 0, capsys.readouterr().err
        info = json.loads((out / "generation.json").read_text())
        assert info["order"] == 4 and info["method"] == "markov4_test"
    finally:
        unregister("markov4_test")
