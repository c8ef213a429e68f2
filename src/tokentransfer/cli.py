"""The ``tokentransfer`` command: check a config, inspect outputs, generate, print results.

The workflow itself runs with ``snakemake``; this command is for looking at what it made.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
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
        from .tokenize import read_listing

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


class UsageError(Exception):
    """A flag or file of the command line is refused; the message names it, on one line."""


def _check_walk_flags(args: argparse.Namespace) -> None:
    """Refuse flag values the walk cannot use, naming the flag (not the config key)."""
    if args.n < 1:
        raise UsageError(f"--n: need at least one sample, got {args.n}")
    if args.length < 1:
        raise UsageError(f"--length: need at least one token per sample, got {args.length}")
    if args.top_k < 0:
        raise UsageError(f"--top-k: must be >= 0 (0: all successors), got {args.top_k}")
    if not args.temperature > 0:
        raise UsageError(f"--temperature: must be > 0, got {args.temperature}")
    if not 0.0 <= args.restart <= 1.0:
        raise UsageError(f"--restart: a probability, in [0, 1], got {args.restart}")


def _check_out(out: Path) -> None:
    """``--out`` must be a new folder, an empty one, or the output of an earlier generate."""
    ancestor = out
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if ancestor.exists() and not ancestor.is_dir():
        what = "is a file" if ancestor == out else f"lies under {ancestor}, which is a file"
        raise UsageError(f"--out {out}: {what}; give a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / "generation.json").is_file():
        raise UsageError(
            f"--out {out}: the folder holds other files (no generation.json of an earlier "
            "generate); give a new or empty folder"
        )


def _check_prompt(prompt: Path) -> None:
    from .corpus import Limits, check_midi

    if not prompt.exists():
        raise UsageError(f"--prompt {prompt}: no such file")
    if not prompt.is_file():
        raise UsageError(f"--prompt {prompt}: not a file")
    reason = check_midi(prompt.read_bytes(), Limits(max_file_mb=1024, max_hours=1e9))
    if reason is not None:
        raise UsageError(f"--prompt {prompt}: {reason}")


def _publish(tmp: Path, out: Path) -> None:
    """Put the finished folder ``tmp`` at ``out``, replacing an earlier output (or an empty
    folder) only once the new one is complete."""
    if not out.exists():
        os.replace(tmp, out)
        return
    old = Path(tempfile.mkdtemp(prefix=f".old-{out.name}.", dir=out.parent))
    os.replace(out, old / "out")
    os.replace(tmp, out)
    shutil.rmtree(old)


def _generate(args: argparse.Namespace) -> int:
    try:
        _check_walk_flags(args)
        out = Path(args.out).resolve()
        _check_out(out)
        if args.prompt:
            _check_prompt(Path(args.prompt))
    except UsageError as exc:
        print(f"tokentransfer generate: {exc}", file=sys.stderr)
        return 2
    from .jobs.generate import run_generate

    results = Path(args.results)
    nodes = None
    if not args.counts_only:
        nodes = results / "linkpred" / args.model / args.corpus / args.variant / "nodes.h5"
    paths = [
        results / "tokenizer" / "tokenizer.json",
        results / "graphs" / args.corpus / "successors.npz",
        *([nodes] if nodes else []),
    ]
    if args.context != "none":
        paths.append(results / "graphs" / args.corpus / "context_successors.npz")
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        print(
            f"tokentransfer generate: missing {', '.join(missing)} (run the workflow first, "
            "or point --results at its results folder)",
            file=sys.stderr,
        )
        return 2
    if args.prompt:
        from .tokenize import load_tokenizer, tokenize_file

        try:
            tokenize_file(load_tokenizer(paths[0]), args.prompt)
        except Exception as exc:  # miditok and symusic raise many kinds on odd files
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            print(
                f"tokentransfer generate: --prompt {args.prompt}: cannot be tokenized: {first}",
                file=sys.stderr,
            )
            return 2
    cfg = {
        "samples": args.n,
        "length": args.length,
        "beta": args.beta,
        "temperature": args.temperature,
        "top_k": args.top_k,
        "restart": args.restart,
        "similarity": args.similarity,
        "context": args.context,
        "seed": args.seed,
    }
    # written into a temporary folder beside --out, which takes its place only when complete
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{out.name}.", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp's 0700 would otherwise become --out's mode
    try:
        info = run_generate(
            tokenizer_json=str(paths[0]),
            successors_npz=str(paths[1]),
            nodes_h5=str(nodes) if nodes else None,
            out_dir=str(tmp),
            cfg=cfg,
            prompt_midi=args.prompt,
        )
        _publish(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(
        f"{info['samples']} samples, {info['tokens_generated']} tokens in {info['seconds']:.3f} s "
        f"({info['tokens_per_second']:.0f} tokens/s); notes per sample {info['notes']}; "
        f"written to {args.out}"
    )
    return 0


def _results(args: argparse.Namespace) -> int:
    from .tables import results_markdown

    if not Path(args.results).is_dir():
        print(f"{args.results}: no such folder (run the workflow first)", file=sys.stderr)
        return 2
    print(results_markdown(args.results, tuple(args.metric)), end="")
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
    p = sub.add_parser(
        "generate",
        help="generate MIDI by a biased random walk with restart over a target's token graph",
        description="Walk the target corpus's successor graph: from token u to v with "
        "probability proportional to count(u->v)^beta * exp(sim(h_u, h_v) / temperature) among "
        "the top-k successors the REMI grammar allows; restart to the start state with "
        "probability --restart. Needs the outputs of a workflow run under --results.",
    )
    p.add_argument("--corpus", required=True, help="target corpus name, e.g. bach")
    p.add_argument("--results", default="results", help="the workflow's results folder")
    p.add_argument("--model", default="small", help="model name (config model.name)")
    p.add_argument(
        "--variant",
        default="emb_neighbours",
        help="graph-model variant whose node embeddings bias the walk",
    )
    p.add_argument(
        "--counts-only", action="store_true", help="no bias: a first-order Markov walk on counts"
    )
    p.add_argument("--prompt", help="a seed MIDI file: its tokens start every sample")
    from .rwr import WalkConfig

    # the walk's defaults are WalkConfig's (the schema's generate defaults, a test checks)
    walk = WalkConfig()
    p.add_argument("--n", type=int, default=walk.samples, help="number of samples")
    p.add_argument("--length", type=int, default=walk.length, help="tokens per sample")
    p.add_argument("--beta", type=float, default=walk.beta, help="exponent of transition counts")
    p.add_argument(
        "--temperature",
        type=float,
        default=walk.temperature,
        help="similarity temperature: lower = more bias",
    )
    p.add_argument("--top-k", type=int, default=walk.top_k, help="candidates per step (0 = all)")
    p.add_argument("--restart", type=float, default=walk.restart, help="restart probability")
    p.add_argument("--similarity", choices=["cosine", "dot"], default=walk.similarity)
    p.add_argument(
        "--context",
        choices=["onset", "position", "none"],
        default=walk.context,
        help="what transitions are conditioned on besides the token (config generate.context)",
    )
    p.add_argument("--seed", type=int, default=walk.seed, help="same seed, same files")
    p.add_argument("--out", required=True, help="output folder for sample_NNN.mid and records")
    p.set_defaults(func=_generate)
    p = sub.add_parser(
        "results",
        help="print a run's evaluation summary and few-shot numbers as markdown tables",
    )
    p.add_argument("--results", default="results", help="the workflow's results folder")
    p.add_argument(
        "--metric",
        action="append",
        default=None,
        help=(
            "few-shot metric to tabulate (repeatable; default feature_fidelity, "
            "bits_per_token and js_trigram)"
        ),
    )
    p.set_defaults(func=_results)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "command", None) == "results" and not args.metric:
        args.metric = ["feature_fidelity", "bits_per_token", "js_trigram"]
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
