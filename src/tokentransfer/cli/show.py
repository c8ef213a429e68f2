"""The commands that look at files and results: ``validate``, ``inspect``, ``divergence`` and
``results``."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from ..config import ConfigError, check, load_yaml


def validate(args: argparse.Namespace) -> int:
    schema = load_yaml(args.schema)
    try:
        check(load_yaml(args.config), schema)
    except ConfigError as exc:
        print(f"{args.config}: {exc}", file=sys.stderr)
        return 1
    print(f"{args.config}: ok")
    return 0


def inspect_file(args: argparse.Namespace) -> int:
    path = Path(args.path)
    if path.suffix == ".tsv":
        from ..corpus import read_manifest, summarize

        rows = read_manifest(path)
        print(
            f"{path}: {len(rows)} files; "
            + ", ".join(f"{k} {v}" for k, v in summarize(rows).items())
        )
        groups = {r.group for r in rows if r.status == "ok"}
        print(f"groups (pieces): {len(groups)}")
        reasons = Counter(r.reason for r in rows if r.status == "rejected")
        for reason, n in reasons.most_common(args.top):
            print(f"  rejected {n:6d}  {reason}")
        return 0
    if path.suffix == ".h5":
        from ..tokenize import read_listing

        shard = read_listing(path)
        lengths = shard.lengths.tolist()
        print(
            f"{path}: {len(shard)} files, {int(shard.offsets[-1])} tokens, "
            f"{len(shard.failed)} failed, tokenizer {shard.tokenizer_hash[:12]}"
        )
        if lengths:
            print(f"tokens per file: min {min(lengths)}, max {max(lengths)}")
        for fid, reason in list(shard.failed.items())[: args.top]:
            print(f"  failed {fid[:12]}  {reason}")
        return 0
    print(f"{path}: expected a manifest (.tsv) or a token shard (.h5)", file=sys.stderr)
    return 2


def divergence(args: argparse.Namespace) -> int:
    from ..ngrams import corpus_sequences, js_divergence, ngram_counts, noise_floor

    base = corpus_sequences(args.base)
    floor, spread = noise_floor(base, n=args.n, seed=args.seed)
    base_counts = ngram_counts(base, args.n)
    print("corpus\tfiles\tjsd_to_base\tratio_to_floor")
    print(f"{Path(args.base).name} (halves)\t{len(base)}\t{floor:.4f}+-{spread:.4f}\t1.0")
    for target in args.targets:
        seqs = corpus_sequences(target)
        jsd = js_divergence(ngram_counts(seqs, args.n), base_counts)
        print(f"{Path(target).name}\t{len(seqs)}\t{jsd:.4f}\t{jsd / floor:.1f}")
    return 0


def results(args: argparse.Namespace) -> int:
    from ..tables import results_markdown

    if not Path(args.results).is_dir():
        print(f"{args.results}: no such folder (run the workflow first)", file=sys.stderr)
        return 2
    print(results_markdown(args.results, tuple(args.metric)), end="")
    return 0
