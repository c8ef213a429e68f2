"""The results layout (tokentransfer.layout) against the workflow: every path a rule writes is
a pattern of the layout, every path a rule reads or passes under results/ is one of them filled
in, and every file pattern of the layout is written by a rule, so the two cannot drift."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from snakemake.api import SnakemakeApi
from snakemake.io import strip_wildcard_constraints
from snakemake.settings.types import (
    ConfigSettings,
    OutputSettings,
    ResourceSettings,
    StorageSettings,
)

from tokentransfer.layout import RESULTS, STORE, Layout, store, tegridy_download

REPO = Path(__file__).resolve().parents[1]

#: layout patterns that no rule writes: folders of outputs, and scratch files that are no
#: outputs (a shard's earlier tokens, training checkpoints)
NOT_WRITTEN = {
    "tokens",
    "model",
    "finetune",
    "graphs",
    "linkpred",
    "eval",
    "fewshot",
    "generated",
    "baseline",
    "shard_cache",
    "checkpoints",
    "checkpoints:finetune",
    "fewshot_checkpoints",
    "fewshot_checkpoints:",
    "fewshot_checkpoints:_finetuned",
    "fewshot_checkpoints:_transfer",
}


@pytest.fixture(scope="module")
def rules():
    """The default workflow's rules, parsed (the embedded config/config.yaml)."""
    with SnakemakeApi(OutputSettings()) as api:
        wf = api.workflow(
            resource_settings=ResourceSettings(),
            config_settings=ConfigSettings(),
            storage_settings=StorageSettings(),
            snakefile=REPO / "Snakefile",
            workdir=REPO,
        )
        return {r.name: r for r in wf._workflow.rules}, wf._workflow.config


def _matcher(pattern: str) -> re.Pattern:
    """A pattern's files: each wildcard filled in, or left as the wildcard."""
    parts = re.split(r"(\{\w+\})", pattern)
    return re.compile(
        "".join(
            rf"(?:\{{{p[1:-1]}\}}|[^/]+)" if re.fullmatch(r"\{\w+\}", p) else re.escape(p)
            for p in parts
        )
    )


def test_paths_and_patterns():
    assert RESULTS.split("bach") == "results/splits/bach.tsv"
    assert RESULTS.split() == "results/splits/{corpus}.tsv"
    assert RESULTS.shard("bach", "0003") == "results/tokens/bach/0003.h5"
    assert RESULTS.nodes("small", "bach", "random") == (
        "results/linkpred/small/bach/random/nodes.h5"
    )
    assert RESULTS.fewshot_point("m", "bach", 5, 1, "_transfer") == (
        "results/fewshot/m/bach/samples/k5_d1_transfer"
    )
    assert RESULTS.checkpoints("small", "bach") == "results/checkpoints/small/bach"
    assert RESULTS.transformer("finetuned", "m", "c") == "results/finetune/m/c/hf"
    assert RESULTS.transformer("pretrained", "m", "c") == "results/models/m/hf"
    folder = RESULTS.baseline("m", "c", "knn")
    assert RESULTS.set_midis(folder, 2) == [
        "results/baselines/m/c/knn/sample_000.mid",
        "results/baselines/m/c/knn/sample_001.mid",
    ]
    other = Layout("/runs/r1/results")
    assert other.eval_summary() == "/runs/r1/results/eval/summary.tsv"
    assert other.model_hf("small") == "/runs/r1/results/models/small/hf"
    assert store("bach") == "resources/corpora/bach/midi" and store() == STORE
    assert tegridy_download("x.zip") == "resources/tegridy/x.zip"


def test_every_rule_output_is_a_layout_pattern(rules):
    by_name, config = rules
    patterns = RESULTS.patterns(samples=config["generate"]["samples"])
    known = set(patterns.values()) | {STORE, tegridy_download()}
    written = set()
    for name, rule in by_name.items():
        for out in rule.output:
            path = strip_wildcard_constraints(str(out))
            assert path in known, f"rule {name} writes {path}, not a pattern of layout.py"
            written.add(path)
    unwritten = {n for n, p in patterns.items() if p not in written}
    assert unwritten == NOT_WRITTEN, unwritten ^ NOT_WRITTEN


def test_every_results_path_a_rule_reads_or_passes_is_in_the_layout(rules):
    by_name, config = rules
    matchers = [_matcher(p) for p in RESULTS.patterns(config["generate"]["samples"]).values()]
    seen = 0
    for name, rule in by_name.items():
        values = [i for i in rule.input if isinstance(i, str)]
        values += [v for v in rule.params if isinstance(v, str)]
        for path in values:
            path = strip_wildcard_constraints(path)
            if not path.startswith("results/"):
                continue
            seen += 1
            assert any(m.fullmatch(path) for m in matchers), (
                f"rule {name} reads {path}, not a path of layout.py"
            )
    assert seen > 40
