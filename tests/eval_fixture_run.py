"""The evaluation's jobs run on four corpora, outside Snakemake.

The caller lays the four corpora out as folders of one folder, named by their roles (the
names of the fixture corpora once cut from the Tegridy data): ``base_edge`` the base, ``bach``,
``karaoke`` and ``jazzlead`` the targets. tests/test_style.py fills them with MIDI exported
from music21's corpus (tests/music21_corpora.py: the base folder, chorales, chorales played by
a band, fiddle tunes), so no ../shared is read. Each corpus is tokenized into one shard (files
that are not MIDI or that miditok cannot read left out, an exact duplicate kept once) and split
by group as the workflow splits it (the base's validation pieces held out, the targets' test
pieces). Then the real job functions run: the style classifier on every corpus, and for each
target the real-piece baselines and the evaluation against the target's test pieces.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from tests import music21_corpora as m21
from tokentransfer.corpus import Row
from tokentransfer.split import SPLIT_COLUMNS, assign
from tokentransfer.tokenize import (
    ShardResult,
    build_tokenizer,
    save_tokenizer,
    tokenize_file,
    write_shard,
)

BASE = "base_edge"
TARGETS = ("bach", "karaoke", "jazzlead")
#: group regexes as the workflow tests' config gives them (versions of a piece, a tune's keys)
GROUPS = {BASE: m21.BASE_GROUP, "jazzlead": m21.FIDDLE_GROUP}
GEN = {"samples": 16, "length": 256, "seed": 0}
EVAL = {"copy_n": 8, "reference_excerpts": 32, "seed": 0}
STYLE = {"windows": 64, "heldout_windows": 32, "l2": 0.01}


@dataclass
class FixtureRun:
    root: Path
    tokenizer_json: str
    shards: dict[str, list[str]] = field(default_factory=dict)
    splits: dict[str, str] = field(default_factory=dict)
    classifier: str = ""
    heldout_tsv: str = ""
    style_result: dict = field(default_factory=dict)
    metrics: dict[str, str] = field(default_factory=dict)  # target -> metrics.tsv


def _group(name: str, stem: str) -> str:
    pattern = GROUPS.get(name)
    m = re.search(pattern, stem) if pattern else None
    return m.group(1) if m else stem


def prepare(fixtures: Path, root: Path) -> FixtureRun:
    """Tokenizer, one shard and a grouped split per corpus (``fixtures/<name>``) under
    ``root``."""
    tokenizer = build_tokenizer({"kind": "REMI", "use_programs": True})
    tokenizer_json = str(root / "tokenizer.json")
    tok_hash = save_tokenizer(tokenizer, tokenizer_json)
    run = FixtureRun(root, tokenizer_json)
    for name in (BASE, *TARGETS):
        items = []
        for path in sorted((fixtures / name).iterdir()):
            if not path.suffix.lower().startswith(".mid"):
                continue
            fid = hashlib.sha256(path.read_bytes()).hexdigest()
            try:
                items.append((fid, tokenize_file(tokenizer, path), _group(name, path.stem)))
            except Exception:  # a file miditok cannot read is left out, as the workflow does
                continue
        items.sort(key=lambda x: x[0])
        unique = {fid: (seq, group) for fid, seq, group in items}  # a duplicate once
        shard = root / "tokens" / name / "0000.h5"
        shard.parent.mkdir(parents=True)
        result = ShardResult(list(unique), [seq for seq, _ in unique.values()], [], seconds=0.0)
        write_shard(result, shard, tokenizer_hash=tok_hash, corpus=name, shard="0000")
        rows = [Row(fid, "dir", fid, 0, "ok", group=g) for fid, (_, g) in unique.items()]
        held = "val" if name == BASE else "test"
        split = assign(rows, 0.1 if name == BASE else 0.25, seed=0, held=held)
        split_tsv = root / "splits" / f"{name}.tsv"
        split_tsv.parent.mkdir(exist_ok=True)
        lines = ["\t".join(SPLIT_COLUMNS)]
        lines += [f"{r.file_id}\t{r.group}\t{split[r.file_id]}" for r in rows]
        split_tsv.write_text("\n".join(lines) + "\n")
        run.shards[name] = [str(shard)]
        run.splits[name] = str(split_tsv)
    return run


def train_style(run: FixtureRun, out: Path, seed: int = 0) -> dict:
    from tokentransfer.jobs.evaluate import run_style_classifier

    out.mkdir(parents=True, exist_ok=True)
    return run_style_classifier(
        tokenizer_json=run.tokenizer_json,
        corpora={n: (run.shards[n], run.splits[n]) for n in run.shards},
        out_model=str(out / "classifier.json"),
        out_tsv=str(out / "heldout.tsv"),
        length=GEN["length"],
        seed=seed,
        **STYLE,
    )


def evaluate_target(run: FixtureRun, target: str) -> str:
    """real_target and real_base sample sets of ``target``, evaluated; its metrics.tsv."""
    from tokentransfer.jobs.evaluate import run_baseline, run_evaluate

    sets = {}
    for method in ("real_target", "real_base"):
        out = run.root / "baselines" / target / method
        run_baseline(
            method,
            tokenizer_json=run.tokenizer_json,
            target_shards=run.shards[target],
            target_split=run.splits[target],
            base_shards=run.shards[BASE],
            model_dir=None,
            out_dir=str(out),
            gen_cfg=GEN,
            eval_cfg=EVAL,
        )
        sets[method] = str(out / "tokens.h5")
    folder = run.root / "eval" / target
    metrics = folder / "metrics.tsv"
    run_evaluate(
        tokenizer_json=run.tokenizer_json,
        target_shards=run.shards[target],
        target_split=run.splits[target],
        sets=sets,
        out_tsv=str(metrics),
        samples_tsv=str(folder / "samples.tsv"),
        features_tsv=str(folder / "features.tsv"),
        eval_cfg=EVAL,
        gen_cfg=GEN,
        corpus=target,
        classifier=run.classifier,
    )
    return str(metrics)


def full_run(fixtures: Path, root: Path) -> FixtureRun:
    run = prepare(fixtures, root)
    run.style_result = train_style(run, root / "style")
    run.classifier = str(root / "style" / "classifier.json")
    run.heldout_tsv = str(root / "style" / "heldout.tsv")
    for target in TARGETS:
        run.metrics[target] = evaluate_target(run, target)
    return run
