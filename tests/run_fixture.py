"""A small finished run's ``results/`` folder, made by the workflow's own job functions.

For the command line's tests of a finished run (``tokentransfer generate --method``,
``tokentransfer infill``) without running Snakemake: the ``midi_corpora`` fixture's folders
become the corpora (``chorales`` the target ``bach``, ``tunes`` the target ``fiddle``, ``band``
the base), each tokenized into one shard and split (every fourth file of a target held out as a
test piece, every fifth of the base for validation); then the jobs of the workflow write the
targets' graphs (:func:`tokentransfer.jobs.graph.run_adjacency`), a transformer of a few
thousand parameters pretrained on the base (:func:`tokentransfer.jobs.model.run_pretrain`) and
fine-tuned on ``bach`` (:func:`tokentransfer.jobs.model.run_finetune`), at the paths the rules
give them.
"""

from __future__ import annotations

from pathlib import Path

from tokentransfer.split import SPLIT_COLUMNS
from tokentransfer.tokenize import build_tokenizer, read_listing, save_tokenizer, tokenize_shard

#: corpus name -> (folder of the midi_corpora fixture, held-out part, every how many files)
CORPORA = {
    "bach": ("chorales", "test", 4),
    "fiddle": ("tunes", "test", 4),
    "base": ("band", "val", 5),
}
MODEL = "small"
#: a transformer that trains in seconds on one core
TINY = {
    "arch": "gpt2",
    "layers": 1,
    "dim": 32,
    "heads": 2,
    "context": 128,
    "dropout": 0.0,
    "steps": 40,
    "batch": 4,
    "lr": 0.003,
    "warmup": 2,
    "weight_decay": 0.0,
    "checkpoint_every": 20,
    "eval_tokens": 500,
}


def build_run(midi_corpora: Path, root: Path) -> Path:
    """Write the run under ``root``; return its ``results`` folder."""
    from tokentransfer.jobs.graph import run_adjacency
    from tokentransfer.jobs.model import run_finetune, run_pretrain

    results = root / "results"
    tok_json = results / "tokenizer" / "tokenizer.json"
    tok_json.parent.mkdir(parents=True)
    save_tokenizer(build_tokenizer({"kind": "REMI", "use_programs": True}), tok_json)
    for corpus, (folder, held, every) in CORPORA.items():
        shard = results / "tokens" / corpus / "0000.h5"
        shard.parent.mkdir(parents=True)
        mids = sorted(str(p) for p in (midi_corpora / folder).glob("*.mid"))
        tokenize_shard(tok_json, mids, shard, corpus=corpus, shard="0000")
        ids = sorted(read_listing(shard).file_ids)
        lines = ["\t".join(SPLIT_COLUMNS)]
        lines += [f"{f}\t{f}\t{held if i % every == 0 else 'train'}" for i, f in enumerate(ids)]
        split = results / "splits" / f"{corpus}.tsv"
        split.parent.mkdir(exist_ok=True)
        split.write_text("\n".join(lines) + "\n")
    for corpus in ("bach", "fiddle"):
        graphs = results / "graphs" / corpus
        graphs.mkdir(parents=True)
        run_adjacency(
            tokenizer_json=str(tok_json),
            shards=[str(results / "tokens" / corpus / "0000.h5")],
            split=str(results / "splits" / f"{corpus}.tsv"),
            adjacency=str(graphs / "adjacency.npz"),
            successors_out=str(graphs / "successors.npz"),
            stats_out=str(graphs / "graph_stats.json"),
            offset_weights=[1.0, 0.5],
            self_loops=False,
            context_out=str(graphs / "context_successors.npz"),
        )
    models = results / "models" / MODEL
    run_pretrain(
        tokenizer_json=str(tok_json),
        shards=[str(results / "tokens" / "base" / "0000.h5")],
        splits=[str(results / "splits" / "base.tsv")],
        out_dir=str(models / "hf"),
        log_path=str(models / "training_log.tsv"),
        train_json=str(models / "train.json"),
        checkpoint_dir=str(results / "checkpoints"),
        cfg=TINY,
        seed=0,
        use_gpu=False,
    )
    tuned = results / "finetune" / MODEL / "bach"
    run_finetune(
        model_dir=str(models / "hf"),
        shards=[str(results / "tokens" / "bach" / "0000.h5")],
        split=str(results / "splits" / "bach.tsv"),
        out_dir=str(tuned / "hf"),
        log_path=str(tuned / "training_log.tsv"),
        metrics_json=str(tuned / "metrics.json"),
        checkpoint_dir=str(results / "checkpoints"),
        cfg={"steps": 10, "batch": 4, "lr": 0.001, "warmup": 1},
        eval_tokens=500,
        seed=0,
        use_gpu=False,
    )
    return results
