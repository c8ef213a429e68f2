"""The ``tokentransfer`` command: check a config, inspect outputs, generate with any method of
a finished run, infill bars of a MIDI file, print results.

The workflow itself runs with ``snakemake``; this command is for looking at what it made.
"""

from __future__ import annotations

import argparse
import json
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


def _earlier_output(record: Path, command: str) -> bool:
    """Whether the JSON record ``record`` says that ``tokentransfer <command>`` wrote it."""
    try:
        return json.loads(record.read_text()).get("command") == command
    except (OSError, ValueError, AttributeError):
        return False


def _check_out(out: Path) -> None:
    """``--out`` must be a new folder, an empty one, or the output of an earlier generate (its
    generation.json says ``"command": "generate"``; a workflow's sample set does not)."""
    ancestor = out
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if ancestor.exists() and not ancestor.is_dir():
        what = "is a file" if ancestor == out else f"lies under {ancestor}, which is a file"
        raise UsageError(f"--out {out}: {what}; give a folder")
    if (
        out.is_dir()
        and any(out.iterdir())
        and not _earlier_output(out / "generation.json", "generate")
    ):
        raise UsageError(
            f"--out {out}: the folder holds other files (no generation.json of an earlier "
            "tokentransfer generate); give a new or empty folder"
        )


def _check_prompt(prompt: Path, flag: str = "--prompt") -> None:
    from .corpus import Limits, check_midi

    if not prompt.exists():
        raise UsageError(f"{flag} {prompt}: no such file")
    if not prompt.is_file():
        raise UsageError(f"{flag} {prompt}: not a file")
    reason = check_midi(prompt.read_bytes(), Limits(max_file_mb=1024, max_hours=1e9))
    if reason is not None:
        raise UsageError(f"{flag} {prompt}: {reason}")


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


class _Given(argparse.Action):
    """Store the value and remember that the flag was given (``args.given``)."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        namespace.given = set(getattr(namespace, "given", ())) | {self.dest}


def _given(args: argparse.Namespace, name: str) -> bool:
    return name in getattr(args, "given", ())


def _fail(command: str, exc: Exception) -> int:
    print(f"tokentransfer {command}: {exc}", file=sys.stderr)
    return 2


def _prompt_ids(run, prompt: str, flag: str = "--prompt"):
    """The prompt's token ids, or a UsageError naming the file."""
    from .tokenize import tokenize_file

    try:
        return tokenize_file(run.tokenizer, prompt)
    except Exception as exc:  # miditok and symusic raise many kinds on odd files
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UsageError(f"{flag} {prompt}: cannot be tokenized: {first}") from None


def _method_settings(args: argparse.Namespace, run, method) -> tuple[dict, dict, dict]:
    """The ``generate``, ``evaluate`` and ``sampling`` settings ``method`` is fitted and
    sampled with (:meth:`tokentransfer.runs.Run.fit`'s): the run's config, with the flags given
    on the command line (temperature and top-k go to the section the method samples with,
    ``generate`` for the walks and ``sampling`` for the rest; refused for a method that has
    neither)."""
    from .runs import sampling_keys, walk_section

    section = sampling_keys(method)
    for flag in ("temperature", "top_k"):
        if _given(args, flag) and section is None:
            raise UsageError(
                f"--{flag.replace('_', '-')}: {method.name} has no sampling "
                f"{flag.replace('_', '-')}"
            )
    if _given(args, "temperature") and not args.temperature > 0:
        raise UsageError(f"--temperature: must be > 0, got {args.temperature}")
    if _given(args, "top_k") and args.top_k < 0:
        raise UsageError(f"--top-k: must be >= 0 (0: all), got {args.top_k}")
    walk_flags = ("beta", "restart", "similarity", "context")
    overrides = {k: getattr(args, k, None) for k in walk_flags if _given(args, k)}
    sampling = {k: getattr(args, k) for k in ("temperature", "top_k") if _given(args, k)}
    if section == "generate":
        overrides.update(sampling)
    gen = walk_section(run.config, overrides)
    sampling_cfg = dict(run.config["sampling"])
    if section == "sampling":
        sampling_cfg.update(sampling)
    return gen, dict(run.config["evaluate"]), sampling_cfg


def _open_run(args: argparse.Namespace, corpus: str, name: str, flag: str = "--method"):
    """The run of ``--results`` and the method ``name`` (given by ``flag``) it has for
    ``corpus``."""
    from .runs import Run

    run = Run.open(args.results, args.config, args.model)
    context = args.context if _given(args, "context") else None
    return run, run.method(name, corpus, context, flag)


def _check_audio(args: argparse.Namespace, run) -> str | None:
    """The soundfont ``--audio`` renders with, or a UsageError saying what is missing."""
    if not args.audio:
        return None
    soundfont = args.soundfont or run.config["report"]["soundfont"]
    if shutil.which("fluidsynth") is None:
        raise UsageError(
            "--audio: the fluidsynth program is not installed (Debian/Ubuntu: apt-get install "
            "fluidsynth fluid-soundfont-gm); leave out --audio for MIDI alone"
        )
    if not Path(soundfont).is_file():
        raise UsageError(
            f"--audio: soundfont {soundfont} not found (apt-get install fluid-soundfont-gm, or "
            "give --soundfont)"
        )
    return soundfont


def _render(run, midis: list[Path], soundfont: str) -> None:
    from .audio import render

    report = run.config["report"]
    for midi in midis:
        render(
            midi,
            midi.with_suffix(".flac"),
            soundfont,
            sample_rate=report["sample_rate"],
            max_seconds=report["max_seconds"],
        )


def _generate(args: argparse.Namespace) -> int:
    from .runs import RunError

    try:
        _check_walk_flags(args)
        if args.bars is not None and args.bars < 1:
            raise UsageError(f"--bars: need at least one bar, got {args.bars}")
        out = Path(args.out).resolve()
        _check_out(out)
        if args.prompt:
            _check_prompt(Path(args.prompt))
        name = args.method or ("counts" if args.counts_only else args.variant)
        flag = "--method" if args.method else "--variant"
        if not args.method and args.counts_only:
            flag = "--counts-only: method"
        run, method = _open_run(args, args.corpus, name, flag)
        soundfont = _check_audio(args, run)
        prompt = _prompt_ids(run, args.prompt) if args.prompt else None
        settings = _method_settings(args, run, method)
        bars = args.bars
        if bars is None and not _given(args, "length"):
            bars = run.config["generate"].get("bars")
        info = _sample_to(run, method, args, out, prompt, settings, bars)
    except (UsageError, RunError) as exc:
        return _fail("generate", exc)
    if soundfont:
        from .audio import AudioError

        try:
            _render(run, sorted(out.glob("sample_*.mid")), soundfont)
        except AudioError as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            return _fail("generate", f"--audio: {first} (the MIDI files are in {args.out})")
    size = f"{bars} bars" if bars else f"{args.length} tokens"
    print(
        f"{name}: {info['samples']} samples of {size}{' after the prompt' if args.prompt else ''}, "
        f"{info['tokens_generated']} tokens in {info['seconds']:.3f} s "
        f"({info['tokens_per_second']:.0f} tokens/s); notes per sample {info['notes']}; "
        f"written to {args.out}" + (" (with FLAC)" if soundfont else "")
    )
    if info.get("short"):
        print(
            f"{info['short']} of {info['samples']} samples did not complete {bars} bars within "
            f"{info['token_budget']} tokens and hold the bars they reached (generation.json: "
            "short)"
        )
    return 0


def _sample_to(run, method, args, out: Path, prompt, settings, bars) -> dict:
    """Fit ``method`` with ``settings`` (:func:`_method_settings`), draw ``args.n`` samples
    (``bars`` bars, or ``args.length`` tokens) after the prompt and publish them as a sample set
    at ``out``; with a prompt, each MIDI holds the prompt file's notes as they are, then the
    generated ones."""
    import time

    import symusic

    from .fileio import write_json
    from .infill import continue_score
    from .runs import check_memory, max_tokens, sample_length_or_bars
    from .rwr import write_midi
    from .samples import write_samples

    start = 0 if prompt is None else len(prompt)
    if bars is None:
        check_memory(args.n, start + args.length, f"--length {args.length}")
    else:
        per_bar = run.tokens_per_bar(args.corpus)
        check_memory(args.n, start + int(bars * per_bar), f"--bars {bars}")
    if prompt is not None and method.kind == "reference":
        raise UsageError(f"--prompt: {method.name} takes no prompt (it samples real excerpts)")
    t_setup = time.perf_counter()
    fitted = run.fit(method, args.corpus, *settings)
    setup_seconds = time.perf_counter() - t_setup
    if prompt is not None and not fitted.takes_prompt:
        raise UsageError(f"--prompt: {method.name} takes no prompt (it samples real excerpts)")
    t0 = time.perf_counter()
    samples, drawn = sample_length_or_bars(
        fitted,
        args.n,
        args.seed,
        prompt,
        length=args.length,
        bars=bars,
        per_bar=lambda: run.tokens_per_bar(args.corpus),
        bar_id=run.bar_id,
        limit_tokens=max_tokens(args.n),
    )
    seconds = time.perf_counter() - t0
    extra = {
        "command": "generate",
        "method": method.name,
        "corpus": args.corpus,
        "results": str(run.results),
        "samples_seed": args.seed,
        "prompt": args.prompt,
        **fitted.record,
        **drawn,
        "adapt_seconds": round(fitted.adapt_seconds, 4),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{out.name}.", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp's 0700 would otherwise become --out's mode
    try:
        info = write_samples(
            run.tokenizer,
            str(run.tokenizer_json),
            samples,
            tmp,
            prompt,
            seconds,
            extra,
            setup_seconds,
        )
        if prompt is not None:
            score = symusic.Score(str(args.prompt))
            for i, ids in enumerate(samples):
                merged = continue_score(score, run.tokenizer, prompt, ids)
                write_midi(merged, tmp / f"sample_{i:03d}.mid")
                info["notes"][i] = int(merged.note_num())
            info["prompt_notes_kept"] = True
            write_json(info, tmp / "generation.json")
        _publish(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return info


def _check_infill_out(out: Path) -> None:
    """``--out`` of infill: a new MIDI file, or one an earlier infill wrote (its record
    ``<out>.json`` beside it says so)."""
    if out.suffix.lower() not in (".mid", ".midi"):
        raise UsageError(f"--out {out}: give a .mid file")
    if out.is_dir():
        raise UsageError(f"--out {out}: is a folder; give a .mid file")
    if out.exists():
        record = out.with_suffix(".json")
        if not _earlier_output(record, "infill"):
            raise UsageError(
                f"--out {out}: exists and is not an earlier output of infill (no {record.name} "
                "beside it); give a new file"
            )


def _parse_bars(text: str) -> tuple[int, int]:
    try:
        a, b = (int(x) for x in text.split(":"))
    except ValueError:
        raise UsageError(f"--bars {text}: give the first and last bar as A:B, e.g. 5:8") from None
    return a, b


def _infill(args: argparse.Namespace) -> int:
    import symusic

    from .fileio import write_json
    from .infill import bar_quarters, check_bars, infill_score, infill_tokens
    from .runs import RunError, max_tokens
    from .rwr import token_errors, write_midi

    try:
        first, last = _parse_bars(args.bars)
        if args.candidates < 1:
            raise UsageError(f"--candidates: need at least one, got {args.candidates}")
        out = Path(args.out).resolve()
        _check_infill_out(out)
        midi = Path(args.midi)
        _check_prompt(midi, "--midi")
        run, method = _open_run(args, args.corpus, args.method)
        ids = _prompt_ids(run, args.midi, "--midi")
        from .bars import count_bars

        try:
            check_bars(first, last, count_bars(ids, run.bar_id))
        except ValueError as exc:
            raise UsageError(f"--bars {args.bars}: {exc}") from None
        settings = _method_settings(args, run, method)
        if method.kind == "reference":
            raise UsageError(f"--method {method.name}: takes no prompt, so it cannot infill")
        fitted = run.fit(method, args.corpus, *settings)
        if not fitted.takes_prompt:
            raise UsageError(f"--method {method.name}: takes no prompt, so it cannot infill")
        result = infill_tokens(
            fitted,
            run.tokenizer,
            ids,
            first,
            last,
            args.seed,
            bar_id=run.bar_id,
            per_bar=run.tokens_per_bar(args.corpus),
            candidates=args.candidates,
            max_tokens=max_tokens(args.candidates),
        )
    except (UsageError, RunError) as exc:
        return _fail("infill", exc)
    original = symusic.Score(str(midi))
    score = infill_score(original, run.tokenizer, result.ids, result.window)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_midi(score, out)
    record = {
        "command": "infill",
        "method": method.name,
        "corpus": args.corpus,
        "midi": str(midi),
        "bars": [first, last],
        "window_quarters": list(result.window),
        "seed": args.seed,
        "selection": result.selection,
        "candidate_scores_bits": result.scores,
        "candidate_bar_lengths_match": result.fits,
        "chosen": result.chosen,
        "token_errors": token_errors(run.tokenizer, result.ids),
        "bars_in_file": len(bar_quarters(run.tokenizer, ids, run.bar_id)) - 1,
        **result.record,
    }
    write_json(record, out.with_suffix(".json"))
    print(
        f"{method.name}: bars {first}-{last} of {midi.name} drawn anew (candidate {result.chosen} "
        f"of {len(result.scores)}, by {result.selection}); written to {args.out}"
    )
    return 0


def _results(args: argparse.Namespace) -> int:
    from .tables import results_markdown

    if not Path(args.results).is_dir():
        print(f"{args.results}: no such folder (run the workflow first)", file=sys.stderr)
        return 2
    print(results_markdown(args.results, tuple(args.metric)), end="")
    return 0


def _methods_help() -> str:
    """How a run gives each registered method, from the registry (for --help)."""
    from .methods import REGISTRY
    from .runs import loads

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
    p.add_argument("--results", default="results", help="the workflow's results folder")
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
    from .rwr import WalkConfig

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
        "--length", type=int, default=walk.length, action=_Given, help="tokens per sample"
    )
    p.add_argument(
        "--beta", type=float, default=walk.beta, action=_Given, help="walks: exponent of counts"
    )
    p.add_argument(
        "--temperature",
        type=float,
        default=walk.temperature,
        action=_Given,
        help="sampling temperature (walks: of the similarity bias, default the run config's "
        "generate.temperature; transformers and fused: of the logits, sampling.temperature)",
    )
    p.add_argument(
        "--top-k",
        type=int,
        default=walk.top_k,
        action=_Given,
        help="candidates per step (0 = all; default: the run config's generate.top_k for the "
        "walks, sampling.top_k for the rest)",
    )
    p.add_argument(
        "--restart", type=float, default=walk.restart, action=_Given, help="walks: restart"
    )
    p.add_argument(
        "--similarity", choices=["cosine", "dot"], default=walk.similarity, action=_Given
    )
    p.add_argument(
        "--context",
        choices=["onset", "position", "none"],
        default=walk.context,
        action=_Given,
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
    p.set_defaults(func=_generate, given=frozenset())
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
    p.add_argument("--temperature", type=float, action=_Given, help="sampling temperature")
    p.add_argument("--top-k", type=int, action=_Given, help="candidates per step (0 = all)")
    p.add_argument("--seed", type=int, default=0, help="same seed, same file")
    p.add_argument("--out", required=True, help="the output MIDI file (and <out>.json)")
    p.set_defaults(func=_infill, given=frozenset())
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
