"""Few-shot subsets: nested, grouped, deterministic; and the curve's rows on fixture data."""

from __future__ import annotations

import pytest

from tokentransfer.fewshot import group_order, read_groups, subset


def groups_of(n_groups: int, per_group: int = 1) -> dict[str, list[str]]:
    return {f"g{g:02d}": sorted(f"f{g:02d}_{i}" for i in range(per_group)) for g in range(n_groups)}


def test_subsets_are_nested_within_a_draw():
    groups = groups_of(30)
    for draw in range(3):
        previous: set[str] = set()
        for k in (1, 2, 5, 10, 20):
            ids = set(subset(groups, k, seed=0, draw=draw))
            assert len(ids) == k
            assert previous <= ids  # the k=5 subset contains the k=2 subset of the same draw
            previous = ids


def test_draws_differ_and_are_deterministic():
    groups = groups_of(30)
    assert subset(groups, 5, 0, 0) == subset(groups, 5, 0, 0)
    assert subset(groups, 5, 0, 0) != subset(groups, 5, 0, 1)
    assert subset(groups, 5, 0, 0) != subset(groups, 5, 1, 0)
    assert group_order(list(groups), 0, 2) == group_order(list(reversed(groups)), 0, 2)


def test_a_piece_is_a_group_with_all_its_versions():
    groups = groups_of(6, per_group=12)  # a song in 12 keys
    ids = subset(groups, 2, 0, 0)
    assert len(ids) == 24
    chosen = {f.split("_")[0] for f in ids}
    assert len(chosen) == 2
    for g in chosen:
        assert {f for f in ids if f.startswith(g)} == set(groups["g" + g[1:]])


def test_all_and_too_many():
    groups = groups_of(4, per_group=2)
    assert subset(groups, 0, 0, 0) == sorted(f for fs in groups.values() for f in fs)
    assert subset(groups, 4, 0, 0) == subset(groups, 0, 0, 0)
    assert subset(groups, 5, 0, 0) is None  # more pieces than the target has: skipped


def test_read_groups_keeps_only_training_pieces(tmp_path):
    split = tmp_path / "split.tsv"
    split.write_text(
        "file_id\tgroup\tsplit\n"
        "b\tpiece:x\ttrain\n"
        "a\tpiece:x\ttrain\n"
        "c\tpiece:y\ttest\n"
        "d\td\ttrain\n"
    )
    assert read_groups(split) == {"d": ["d"], "piece:x": ["a", "b"]}
    assert read_groups(split, "test") == {"piece:y": ["c"]}


@pytest.mark.e2e
def test_fewshot_curve_on_fixtures(tmp_path, music21_corpora):
    """The curve's jobs on a target (the music21 fiddle tunes, one tune in five keys): every
    method at every k and draw, its samples kept as MIDI of generate.bars bars, subsets grouped
    away from the test pieces; the figure is drawn. A target added to the run reruns the
    points' scoring (the style classifier changed), not their adaptation and sampling."""
    import copy

    from tests.conftest import snakemake, write_config
    from tests.test_workflow import dag_config, job_counts
    from tokentransfer.bars import count_bars
    from tokentransfer.fewshot import CURVE_METRICS
    from tokentransfer.fileio import read_tsv
    from tokentransfer.samples import read_samples
    from tokentransfer.tokenize import load_tokenizer

    config = dag_config(music21_corpora)
    full = copy.deepcopy(config)
    config["corpora"] = {n: config["corpora"][n] for n in ("base", "fiddle")}
    config["finetune"]["targets"] = ["fiddle"]
    config["linkpred"]["variants"] = ["emb_neighbours"]
    config["generate"]["variants"] = ["counts"]
    config["evaluate"] = {"methods": ["transformer"], "figures": False}
    config["fewshot"] = {
        "enabled": True,
        "ks": [1, 2, 0, 50],
        "draws": 2,
        "variants": ["emb_neighbours"],
        "finetune_steps": 2,
    }
    cfg = write_config(tmp_path / "config.yaml", config)
    snakemake(
        tmp_path,
        "--configfile",
        str(cfg),
        "--cores",
        "2",
        "results/fewshot/small/fiddle/curve.tsv",
    )
    rows = read_tsv(tmp_path / "results/fewshot/small/fiddle/curve.tsv")
    assert (tmp_path / "results/fewshot/small/fiddle/curve.png").stat().st_size > 0
    n_train = len(read_groups(tmp_path / "results/splits/fiddle.tsv"))
    methods = ["markov1", "markov2", "markov3", "counts", "emb_neighbours", "finetuned"]
    bars, n = config["generate"]["bars"], config["generate"]["samples"]
    bar = load_tokenizer(tmp_path / "results/tokenizer/tokenizer.json").vocab["Bar_None"]
    for method in methods:
        for k in ("1", "2", "0"):
            for draw in ("0", "1"):
                got = {
                    r["metric"]: r["value"]
                    for r in rows
                    if (r["method"], r["k"], r["draw"]) == (method, k, draw)
                }
                assert set(got) >= set(CURVE_METRICS), (method, k, draw)
                # the samples are kept: MIDI and tokens, each of generate.bars bars
                job = "_finetuned" if method == "finetuned" else ""
                folder = tmp_path / f"results/fewshot/small/fiddle/samples/k{k}_d{draw}{job}"
                samples, _ = read_samples(folder / method / "tokens.h5")
                assert len(list((folder / method).glob("sample_*.mid"))) == n
                assert [count_bars(x, bar) for x in samples] == [bars] * n, (method, k, draw)
                assert float(got["tokens"]) == sum(len(x) for x in samples), (method, k, draw)
                # the evaluation's music measures, against the test pieces and the classifier
                assert 0 < float(got["feature_fidelity"]) <= 1, (method, k, draw)
                assert 0 <= float(got["style_share"]) <= 1, (method, k, draw)
    assert not [r for r in rows if r["k"] == "50"]  # more pieces than fiddle has: skipped
    assert {r["pieces"] for r in rows if r["k"] == "0"} == {str(n_train)}
    reference = [r for r in rows if r["method"] == "transformer"]
    assert reference and {r["k"] for r in reference} == {"-1"}
    ref = {r["metric"]: r["value"] for r in reference}
    assert 0 < float(ref["feature_fidelity"]) <= 1 and 0 <= float(ref["style_share"]) <= 1
    assert float(ref["bits_per_token"]) > 0  # from the evaluation's record of its samples
    # a new target: fiddle's points are scored again against the new classifier (its curve
    # job), and nothing of fiddle is adapted or sampled again
    config["corpora"]["bach"] = full["corpora"]["bach"]
    grown = write_config(tmp_path / "grown.yaml", config)
    curve = "results/fewshot/small/fiddle/curve.tsv"
    proc = snakemake(tmp_path, "--configfile", str(grown), "-n", "--cores", "2", curve)
    plan = job_counts(proc.stdout + proc.stderr)
    assert plan["fewshot_curve"] == 1 and plan["style_classifier"] == 1
    for rule in ("fewshot_point", "fewshot_finetune", "fewshot_transfer", "baseline", "generate"):
        assert rule not in plan, (rule, plan)
