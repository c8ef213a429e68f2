"""The ``tokentransfer`` command: check a config, inspect outputs, generate with any method of
a finished run, infill bars of a MIDI file, print results.

The workflow itself runs with ``snakemake``; this command is for looking at what it made.
"""

from __future__ import annotations

import argparse

from ..config import SCHEMA_PATH
from ..layout import RESULTS
from .common import Given
from .generate_command import generate
from .infill_command import infill
from .show import divergence, inspect_file, results, validate


def _methods_help() -> str:
    """How a run gives each registered method, from the registry (for --help)."""
    from ..methods import REGISTRY
    from ..runs import loads

    groups: dict[str, list[str]] = {}
    for name, m in REGISTRY.items():
        groups.setdefault(loads(m), []).append(name)
    what = {
        "graph": "load the run's graphs (and graph networks)",
        "model": "load the run's transformer (pretrained, or fine-tuned on the target)",
        "fits": "are fitted on the fly from the run's token shards and split (and its "
        "transformer, where they use one; seconds)",
        "trains": "are trained on the fly on the target's training pieces for the config's "
        "fewshot.finetune_steps steps (minutes)",
    }
    return (
        "Methods: "
        + "; ".join(f"{', '.join(names)} {what[kind]}" for kind, names in groups.items())
        + ". A method the run lacks is refused, naming those it has."
    )


def _run_flags(p: argparse.ArgumentParser, method_required: bool = False) -> None:
    """The flags naming a finished run, its method and its target corpus."""
    p.add_argument("--corpus", required=True, help="target corpus name, e.g. bach")
    p.add_argument("--results", default=RESULTS.root, help="the workflow's results folder")
    p.add_argument(
        "--config",
        help="the run's config file (default: the schema's defaults), for the methods' settings",
    )
    p.add_argument("--model", help="model name (default: the run's only model folder)")
    p.add_argument(
        "--method", required=method_required, help="a method of the registry the run has (above)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tokentransfer", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("validate", help="check a config file against the schema")
    p.add_argument("config", help="a YAML config, e.g. config/tegridy.yaml")
    p.add_argument("--schema", default=str(SCHEMA_PATH), help="the JSON schema (YAML)")
    p.set_defaults(func=validate)
    p = sub.add_parser("inspect", help="summarise a manifest.tsv or a token shard .h5")
    p.add_argument("path")
    p.add_argument("--top", type=int, default=10, help="how many reasons to list")
    p.set_defaults(func=inspect_file)
    p = sub.add_parser(
        "divergence",
        help="token n-gram Jensen-Shannon divergence of target corpora to the base corpus, "
        "against the noise floor of two random halves of the base",
    )
    p.add_argument("base", help="the base corpus's token folder, e.g. results/tokens/base")
    p.add_argument("targets", nargs="+", help="target token folders, e.g. results/tokens/bach")
    p.add_argument("-n", type=int, default=2, help="n-gram order (default 2: bigrams)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random halves")
    p.set_defaults(func=divergence)
    p = sub.add_parser(
        "generate",
        help="sample any method of a finished run (walks, chains, transformers, fused) to MIDI",
        description="Sample a method of a finished workflow run (--results) for a target corpus: "
        "N samples of --bars bars (or --length tokens), each after the --prompt's notes, which "
        "are kept as they are. " + _methods_help(),
    )
    _run_flags(p)
    p.add_argument(
        "--variant",
        default="emb_neighbours",
        help="without --method: the walk variant (graph network) whose node embeddings bias "
        "the walk",
    )
    p.add_argument(
        "--counts-only",
        action="store_true",
        help="without --method: the walk on counts alone (same as --method counts)",
    )
    p.add_argument("--prompt", help="a MIDI file: its notes start every sample, as they are")
    from ..walk import WalkConfig

    # the walk's defaults are WalkConfig's (the schema's generate defaults, a test checks)
    walk = WalkConfig()
    p.add_argument("--n", type=int, default=walk.samples, help="number of samples")
    p.add_argument(
        "--bars",
        type=int,
        default=None,
        help="bars per sample after the prompt (default: the config's generate.bars where it "
        "has one, else --length tokens)",
    )
    p.add_argument(
        "--length", type=int, default=walk.length, action=Given, help="tokens per sample"
    )
    p.add_argument(
        "--beta", type=float, default=walk.beta, action=Given, help="walks: exponent of counts"
    )
    p.add_argument(
        "--temperature",
        type=float,
        default=walk.temperature,
        action=Given,
        help="sampling temperature (walks: of the similarity bias, default the run config's "
        "generate.temperature; transformers and fused: of the logits, sampling.temperature)",
    )
    p.add_argument(
        "--top-k",
        type=int,
        default=walk.top_k,
        action=Given,
        help="candidates per step (0 = all; default: the run config's generate.top_k for the "
        "walks, sampling.top_k for the rest)",
    )
    p.add_argument(
        "--restart", type=float, default=walk.restart, action=Given, help="walks: restart"
    )
    p.add_argument("--similarity", choices=["cosine", "dot"], default=walk.similarity, action=Given)
    p.add_argument(
        "--context",
        choices=["onset", "position", "none"],
        default=walk.context,
        action=Given,
        help="walks: what transitions are conditioned on besides the token (generate.context)",
    )
    p.add_argument("--seed", type=int, default=walk.seed, help="same seed, same files")
    p.add_argument("--out", required=True, help="output folder for sample_NNN.mid and records")
    p.add_argument(
        "--audio",
        action="store_true",
        help="also render sample_NNN.flac beside each MIDI (needs fluidsynth and a soundfont)",
    )
    p.add_argument(
        "--soundfont", help="the .sf2 soundfont (default: the config's report.soundfont)"
    )
    p.set_defaults(func=generate, given=frozenset())
    p = sub.add_parser(
        "infill",
        help="draw bars A..B of a MIDI file anew with a method of a finished run",
        description="Bars A..B (counted from 1 at the file's start, as the tokenizer's bars) "
        "are drawn anew; every note outside them is kept as it is. The method draws "
        "--candidates continuations of bars 1..A-1 holding B-A+1 bars and keeps the one under "
        "which it gives the following bars' tokens the highest log-probability (the walks, "
        "chains, transformers and fused methods have one; a method without one keeps the "
        "first candidate). The record <out>.json beside the MIDI holds every candidate's "
        "score. " + _methods_help(),
    )
    _run_flags(p, method_required=True)
    p.add_argument("--midi", required=True, help="the MIDI file to infill")
    p.add_argument("--bars", required=True, help="first and last bar to draw anew, A:B")
    p.add_argument("--candidates", type=int, default=8, help="candidates drawn (default 8)")
    p.add_argument("--temperature", type=float, action=Given, help="sampling temperature")
    p.add_argument("--top-k", type=int, action=Given, help="candidates per step (0 = all)")
    p.add_argument("--seed", type=int, default=0, help="same seed, same file")
    p.add_argument("--out", required=True, help="the output MIDI file (and <out>.json)")
    p.set_defaults(func=infill, given=frozenset())
    p = sub.add_parser(
        "results",
        help="print a run's evaluation summary and few-shot numbers as markdown tables",
    )
    p.add_argument("--results", default=RESULTS.root, help="the workflow's results folder")
    p.add_argument(
        "--metric",
        action="append",
        default=None,
        help=(
            "few-shot metric to tabulate (repeatable; default feature_fidelity, "
            "bits_per_token and js_trigram)"
        ),
    )
    p.set_defaults(func=results)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "command", None) == "results" and not args.metric:
        args.metric = ["feature_fidelity", "bits_per_token", "js_trigram"]
    return args.func(args)


__all__ = ["build_parser", "main"]
