"""The style classifier and the music-level evaluation on four real corpora.

The real job functions run on four corpora (tests/eval_fixture_run.py): the style classifier
trained on every corpus's training pieces, and for each target the real-piece baselines
evaluated against its test pieces. The corpora are exported from music21's corpus
(tests/music21_corpora.py) and play the roles eval_fixture_run gives its four corpora (named
after the Tegridy fixtures): :data:`ROLES`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from tests import eval_fixture_run as fx
from tokentransfer.evaluate import OA_COLUMNS
from tokentransfer.fileio import read_tsv
from tokentransfer.style import (
    ALL_ROW,
    MAJORITY_ROW,
    STYLE_FEATURES,
    StyleClassifier,
    feature_labels,
    read_heldout,
    style_vector,
    train_classifier,
)

#: eval_fixture_run's corpus -> (fixture, folder): the base is the workflow tests' base folder
#: (Renaissance polyphony, versions of one piece grouped, a text file and a truncated MIDI file
#: left out), the targets Bach chorales, chorales played by a band with drums, and fiddle tunes
#: (one tune in five keys, grouped)
ROLES = {
    fx.BASE: ("music21_corpora", "base"),
    "bach": ("midi_corpora", "chorales"),
    "karaoke": ("midi_corpora", "band"),
    "jazzlead": ("music21_corpora", "fiddle"),
}


@pytest.fixture(scope="module")
def fixture_run(request, tmp_path_factory):
    corpora = tmp_path_factory.mktemp("eval_corpora")
    assert set(ROLES) == {fx.BASE, *fx.TARGETS}
    for name, (fixture, folder) in ROLES.items():
        shutil.copytree(request.getfixturevalue(fixture) / folder, corpora / name)
    return fx.full_run(corpora, tmp_path_factory.mktemp("eval_fixtures"))


def metrics_of(run, target) -> dict[str, dict[str, str]]:
    return {r["method"]: r for r in read_tsv(run.metrics[target])}


# -- the classifier on the four corpora ----------------------------------------------------------


def test_classifier_beats_the_majority_class(fixture_run):
    table = read_heldout(fixture_run.heldout_tsv)
    accuracy = float(table[ALL_ROW]["recall"])
    majority = float(table[MAJORITY_ROW]["recall"])
    assert set(table) == {fx.BASE, *fx.TARGETS, ALL_ROW, MAJORITY_ROW}
    assert accuracy == pytest.approx(fixture_run.style_result["accuracy"], abs=1e-4)
    assert majority == pytest.approx(0.25)  # as many held-out windows of each of 4 corpora
    assert accuracy > majority + 0.25, table
    for name in (fx.BASE, *fx.TARGETS):  # each row's shares over the classes sum to one
        shares = [float(table[name][f"as_{c}"]) for c in sorted(fixture_run.shards)]
        assert sum(shares) == pytest.approx(1.0, abs=1e-3)
        assert float(table[name]["recall"]) == float(table[name][f"as_{name}"])


def test_classifier_is_deterministic(fixture_run, tmp_path):
    again = fx.train_style(fixture_run, tmp_path)
    assert again["accuracy"] == fixture_run.style_result["accuracy"]
    assert (tmp_path / "heldout.tsv").read_bytes() == Path(fixture_run.heldout_tsv).read_bytes()
    assert (tmp_path / "classifier.json").read_bytes() == Path(fixture_run.classifier).read_bytes()


def test_real_target_scores_above_real_base(fixture_run):
    """Excerpts of a target's training pieces are closer to its test pieces than excerpts of
    the base corpus, by feature fidelity, on every fixture target; the classifier agrees."""
    for target in fx.TARGETS:
        rows = metrics_of(fixture_run, target)
        assert list(rows) == ["test_pieces", "real_target", "real_base"]
        real, base = rows["real_target"], rows["real_base"]
        assert float(real["feature_fidelity"]) > float(base["feature_fidelity"]), target
        assert float(real["style_share"]) > float(base["style_share"]), target
        for name in ("feature_fidelity", *OA_COLUMNS, "style_share", "style_prob"):
            for row in (real, base):
                assert 0.0 <= float(row[name]) <= 1.0, (target, name)
        # the reference itself has no fidelity; its style share is the recall on test pieces
        assert rows["test_pieces"]["feature_fidelity"] == ""
        assert 0.0 <= float(rows["test_pieces"]["style_share"]) <= 1.0


def test_fidelity_is_the_mean_overlap(fixture_run):
    rows = metrics_of(fixture_run, "bach")
    features = read_tsv(fixture_run.root / "eval" / "bach" / "features.tsv")
    for method in ("real_target", "real_base"):
        oas = [float(rows[method][c]) for c in OA_COLUMNS]
        assert float(rows[method]["feature_fidelity"]) == pytest.approx(np.mean(oas), abs=1e-3)
        per_feature = {r["feature"]: r for r in features if r["method"] == method}
        assert len(per_feature) == len(OA_COLUMNS)
        for col in OA_COLUMNS:
            assert float(per_feature[col[3:]]["oa"]) == pytest.approx(float(rows[method][col]))
        density = per_feature["note_density"]  # a numeric feature has its mean and std
        assert float(density["mean"]) > 0 and float(density["ref_mean"]) > 0


def test_samples_carry_their_style(fixture_run):
    samples = read_tsv(fixture_run.root / "eval" / "bach" / "samples.tsv")
    rows = metrics_of(fixture_run, "bach")
    for method in ("real_target", "real_base"):
        mine = [r for r in samples if r["method"] == method]
        assert len(mine) == fx.GEN["samples"]
        share = np.mean([r["style"] == "bach" for r in mine])
        assert float(rows[method]["style_share"]) == pytest.approx(share, abs=1e-4)
        assert {r["style"] for r in mine} <= set(fixture_run.shards)


# -- the classifier itself ---------------------------------------------------------------------


def test_separable_classes_are_learned_and_saved(tmp_path):
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 1, (50, 3)), rng.normal(6, 1, (50, 3))])
    x[::7, 1] = np.nan  # an undefined feature sits at the mean
    y = np.repeat([0, 1], 50)
    model = train_classifier(x, y, ["a", "b"])
    assert (model.predict(x) == y).mean() == 1.0
    prob = model.probabilities(x)
    np.testing.assert_allclose(prob.sum(axis=1), 1.0)
    model.save(tmp_path / "m.json")
    loaded = StyleClassifier.load(tmp_path / "m.json")
    assert loaded.classes == ["a", "b"]
    np.testing.assert_array_equal(loaded.probabilities(x), prob)


def test_one_class_is_refused():
    with pytest.raises(ValueError, match="two or more"):
        train_classifier(np.zeros((4, 2)), np.zeros(4, dtype=int), ["a"])


def test_style_vector_has_no_velocity_and_names_its_entries():
    from symusic import Note, Score, Track

    def score(velocity):
        s = Score(480)
        t = Track(program=0)
        for i, p in enumerate([60, 64, 67, 72]):
            t.notes.append(Note(i * 240, 240, p, velocity))
        s.tracks.append(t)
        return s

    v = style_vector(score(40))
    np.testing.assert_array_equal(v, style_vector(score(120)))  # velocity is not heard
    labels = feature_labels(score(40))
    assert len(labels) == len(v)
    assert labels[: len(STYLE_FEATURES)][:2] == ["note_density", "polyphony"]
    assert "pitch_class_histogram[11]" in labels


def test_figures_of_a_fixture_target(fixture_run):
    """The target's figures from its metrics table and sample sets: piano rolls of every
    method's samples under test excerpts of the same length."""
    from tokentransfer.jobs.evaluate import run_figures
    from tokentransfer.tokenize import corpus_tokens

    out = fixture_run.root / "figures"
    sets = {
        m: str(fixture_run.root / "baselines" / "bach" / m / "tokens.h5")
        for m in ("real_target", "real_base")
    }
    names = {k: out / f"{k}.png" for k in ("metrics", "pitch", "rolls")}
    run_figures(
        tokenizer_json=fixture_run.tokenizer_json,
        metrics_tsv=fixture_run.metrics["bach"],
        sets=sets,
        metrics_png=str(names["metrics"]),
        pitch_png=str(names["pitch"]),
        rolls_png=str(names["rolls"]),
        title="bach",
        reference=corpus_tokens(fixture_run.shards["bach"], [fixture_run.splits["bach"]], "test"),
        per_method=3,
        seed=0,
    )
    for path in names.values():
        assert path.read_bytes()[:4] == b"\x89PNG"


def test_a_classifier_keeps_the_features_it_was_trained_on(tmp_path):
    """A classifier saved with fewer features (one trained before melody and form joined)
    still reads its own vector in the evaluation; a vector of the wrong size is refused."""
    from symusic import Note, Score, Track

    from tokentransfer.evaluate import music_measures
    from tokentransfer.features import score_features

    def score(step):
        s = Score(480)
        t = Track(program=0)
        for i in range(16):
            t.notes.append(Note(i * 240, 240, 60 + (i * step) % 24, 80))
        s.tracks.append(t)
        return s

    feats = [score_features(score(step)) for step in (1, 2, 5, 7)]
    old = ("note_density", "pitch_range", "pitch_class_histogram")
    x = np.stack([np.concatenate([f[n] for n in old]) for f in feats])
    model = train_classifier(x, np.array([0, 0, 1, 1]), ["steps", "leaps"])
    model.features = old
    model.save(tmp_path / "old.json")
    loaded = StyleClassifier.load(tmp_path / "old.json")
    assert loaded.features == old
    np.testing.assert_array_equal(loaded.vector(feats[0]), x[0])
    row, _, per_sample = music_measures([score(1), score(7)], feats, loaded, "steps")
    np.testing.assert_allclose(
        [r["style_prob"] for r in per_sample], loaded.probabilities(x[[0, 3]])[:, 0]
    )
    loaded.features = ("note_density",)
    with pytest.raises(ValueError, match="takes 14 inputs, its features give 1"):
        loaded.vector(feats[0])
