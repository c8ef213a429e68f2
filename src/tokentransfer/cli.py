"""The ``tokentransfer`` command: check a config, inspect manifests, token shards, divergences.

The workflow itself runs with ``snakemake``; this command is for looking at what it made.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from .config import SCHEMA_PATH, ConfigError, check, load_yaml


def _validate(args: argparse.Namespace) -> int:
    schema = load_yaml(args.schema)
    try:
        check(load_yaml(args.config), schema)
    except ConfigError as exc:
        print(f"{args.config}: {exc}", file=sys.stderr)
        return 1
    print(f"{args.config}: ok")
    return 0


def _inspect(args: argparse.Namespace) -> int:
    path = Path(args.path)
    if path.suffix == ".tsv":
        from .corpus import read_manifest, summarize

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
        from .tokenize import read_shard

        shard = read_shard(path)
        lengths = [len(shard.sequence(i)) for i in range(len(shard))]
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


def _divergence(args: argparse.Namespace) -> int:
    from .ngrams import corpus_sequences, js_divergence, ngram_counts, noise_floor

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tokentransfer", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("validate", help="check a config file against the schema")
    p.add_argument("config", help="a YAML config, e.g. config/tegridy.yaml")
    p.add_argument("--schema", default=str(SCHEMA_PATH), help="the JSON schema (YAML)")
    p.set_defaults(func=_validate)
    p = sub.add_parser("inspect", help="summarise a manifest.tsv or a token shard .h5")
    p.add_argument("path")
    p.add_argument("--top", type=int, default=10, help="how many reasons to list")
    p.set_defaults(func=_inspect)
    p = sub.add_parser(
        "divergence",
        help="token n-gram Jensen-Shannon divergence of target corpora to the base corpus, "
        "against the noise floor of two random halves of the base",
    )
    p.add_argument("base", help="the base corpus's token folder, e.g. results/tokens/base")
    p.add_argument("targets", nargs="+", help="target token folders, e.g. results/tokens/bach")
    p.add_argument("-n", type=int, default=2, help="n-gram order (default 2: bigrams)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random halves")
    p.set_defaults(func=_divergence)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
