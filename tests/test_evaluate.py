"""The evaluation's set metrics, tables and cost bookkeeping, on hand-made token sets."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from tokentransfer.evaluate import (
    build_reference,
    evaluate_set,
    method_kind,
    pooled_pitch_classes,
)
from tokentransfer.fileio import read_tsv, to_tsv
from tokentransfer.jobs.evaluate import collect_costs


def piece(tokenizer, bars: list[list[int]]) -> np.ndarray:
    """4/4 bars of quarter notes with the given pitches, encoded by the tokenizer."""
    from symusic import Note, Score, Track

    score = Score(480)
    track = Track(program=0, is_drum=False)
    for b, pitches in enumerate(bars):
        for i, p in enumerate(pitches):
            track.notes.append(Note((4 * b + i) * 480, 480, p, 80))
    score.tracks.append(track)
    ids = tokenizer.encode(score)
    ids = ids.ids if hasattr(ids, "ids") else ids[0].ids
    return np.asarray(ids, dtype=np.int64)


def test_identical_sets_have_zero_divergence(tok):
    test = [piece(tok, [[60, 62, 64, 65], [67, 69, 71, 72]])]
    train = [piece(tok, [[48, 50, 52, 53]])]
    ref = build_reference(tok, test, train, copy_n=4)
    set_metrics, rows = evaluate_set(tok, test, 0, ref, copy_n=4)
    assert set_metrics == {"js_bigram": 0.0, "js_trigram": 0.0, "pch_distance": 0.0}
    assert rows[0]["scale_consistency"] == 1.0  # C major
    assert rows[0]["token_error_rate"] == 0.0
    assert rows[0]["polyphony"] == 1.0


def test_copy_metrics_see_training_spans(tok):
    test = [piece(tok, [[60, 62, 64, 65]])]
    train = [piece(tok, [[60, 62, 64, 65], [67, 69, 71, 72]])]
    ref = build_reference(tok, test, train, copy_n=4)
    copied = train[0][: len(train[0]) // 2 + 3]
    fresh = piece(tok, [[61, 63, 66, 68]])
    _, rows = evaluate_set(tok, [copied, fresh], 0, ref, copy_n=4)
    assert rows[0]["copy_rate"] == 1.0 and rows[0]["longest_copy"] == len(copied)
    assert rows[1]["copy_rate"] < 1.0 and rows[1]["longest_copy"] < len(fresh)


def test_prompt_tokens_are_left_out(tok):
    """A prompt copied from the training pieces does not count as the method's copying."""
    train = [piece(tok, [[60, 62, 64, 65], [67, 69, 71, 72]])]
    test = [piece(tok, [[61, 63, 66, 68]])]
    ref = build_reference(tok, test, train, copy_n=4)
    prompt = train[0][:11]
    sample = np.concatenate([prompt, piece(tok, [[49, 51, 54, 56]])])
    _, with_prompt = evaluate_set(tok, [sample], len(prompt), ref, copy_n=4)
    _, counted = evaluate_set(tok, [sample], 0, ref, copy_n=4)
    assert with_prompt[0]["longest_copy"] < counted[0]["longest_copy"]


def test_silent_set_has_no_pitch_class_distance(tok):
    v = tok.vocab
    silent = [np.array([v["Bar_None"]] * 8, dtype=np.int64)]
    test = [piece(tok, [[60, 62, 64, 65]])]
    ref = build_reference(tok, test, test, copy_n=4)
    assert pooled_pitch_classes(tok, silent).sum() == 0
    set_metrics, rows = evaluate_set(tok, silent, 0, ref, copy_n=4)
    assert math.isnan(set_metrics["pch_distance"])
    assert math.isnan(rows[0]["polyphony"])


def test_no_test_pieces_is_refused(tok):
    with pytest.raises(ValueError, match="no test pieces"):
        build_reference(tok, [], [], copy_n=4)


def test_tsv_round_trip(tmp_path):
    rows = [{"method": "counts", "js": 0.123456, "n": 3, "x": math.nan, "y": None}]
    path = tmp_path / "t.tsv"
    path.write_text(to_tsv(rows))
    assert read_tsv(path) == [{"method": "counts", "js": "0.1235", "n": "3", "x": "", "y": ""}]
    assert to_tsv([]) == ""


def test_method_kinds():
    assert method_kind("emb_neighbours") == "graph"
    assert method_kind("counts") == "graph"
    assert method_kind("markov3") == "baseline"
    assert method_kind("finetuned") == "baseline"
    assert method_kind("real_base") == "reference"
    assert method_kind("test_pieces") == "reference"


def test_costs_come_from_the_training_records(tmp_path):
    linkpred = tmp_path / "linkpred" / "emb_neighbours" / "metrics.json"
    linkpred.parent.mkdir(parents=True)
    linkpred.write_text(
        json.dumps(
            {
                "encoders": ["gcn", "sage"],
                "per_seed": [
                    {"methods": {"gcn": {"seconds": 2.5}, "sage": {"seconds": 9.0}}},
                    {"methods": {"gcn": {"seconds": 3.5}}},
                ],
            }
        )
    )
    finetune = tmp_path / "finetune.json"
    finetune.write_text(json.dumps({"seconds": 15.25}))
    assert collect_costs({"emb_neighbours": str(linkpred)}, str(finetune)) == {
        "emb_neighbours": 2.5,  # the seed-0 model of the first encoder: the one the walk uses
        "finetuned": 15.25,
    }
    assert collect_costs({}, None) == {}


def test_the_table_leads_with_the_music(tmp_path):
    """`tokentransfer results`: feature fidelity and style share lead, the classifier's
    held-out accuracy follows the evaluation table."""
    from tokentransfer.style import ALL_ROW, MAJORITY_ROW
    from tokentransfer.tables import results_markdown

    (tmp_path / "eval").mkdir()
    (tmp_path / "eval" / "summary.tsv").write_text(
        to_tsv(
            [{"corpus": "bach", "method": "counts", "feature_fidelity": 0.61, "style_share": 0.25}]
        )
    )
    (tmp_path / "style").mkdir()
    (tmp_path / "style" / "heldout.tsv").write_text(
        to_tsv(
            [
                {"corpus": "bach", "windows": 10, "pieces": 3, "recall": 0.9},
                {"corpus": ALL_ROW, "windows": 20, "pieces": None, "recall": 0.8},
                {"corpus": MAJORITY_ROW, "windows": 20, "pieces": None, "recall": 0.5},
            ]
        )
    )
    out = results_markdown(tmp_path)
    head = "| target | method | feature fidelity | fidelity (texture) | fidelity (melody, form) |"
    assert head + " style share | JS bigram |" in out
    assert "| bach | counts | 0.610 | – | – | 0.250 | – |" in out
    # the registry's results columns, every one under its header, steps and leaps among them
    from tokentransfer.tables import EVAL_COLUMNS

    assert ("step_share", "steps") in EVAL_COLUMNS and ("bar_return_share", "bars return") in (
        EVAL_COLUMNS
    )
    header = next(line for line in out.splitlines() if line.startswith("| target |"))
    assert header.count("|") == len(EVAL_COLUMNS) + 3  # target, method and every column
    assert "| (all) | 20 | – | 0.800 |" in out and "| (majority class) | 20 | – | 0.500 |" in out
