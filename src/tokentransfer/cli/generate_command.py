"""``tokentransfer generate``: sample any method of a finished run to a new folder of MIDI files
(and FLAC), published whole."""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path

from .common import (
    UsageError,
    check_prompt,
    check_walk_flag,
    earlier_output,
    fail,
    given,
    method_settings,
    open_run,
    prompt_ids,
)


def _check_walk_flags(args: argparse.Namespace) -> None:
    """Refuse flag values the walk cannot use, naming the flag (not the config key)."""
    if args.n < 1:
        raise UsageError(f"--n: need at least one sample, got {args.n}")
    if args.length < 1:
        raise UsageError(f"--length: need at least one token per sample, got {args.length}")
    for key in ("top_k", "temperature", "restart"):
        check_walk_flag(args, key)


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
        and not earlier_output(out / "generation.json", "generate")
    ):
        raise UsageError(
            f"--out {out}: the folder holds other files (no generation.json of an earlier "
            "tokentransfer generate); give a new or empty folder"
        )


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
    from ..audio import render

    report = run.config["report"]
    for midi in midis:
        render(
            midi,
            midi.with_suffix(".flac"),
            soundfont,
            sample_rate=report["sample_rate"],
            max_seconds=report["max_seconds"],
        )


def generate(args: argparse.Namespace) -> int:
    from ..runs import RunError

    try:
        _check_walk_flags(args)
        if args.bars is not None and args.bars < 1:
            raise UsageError(f"--bars: need at least one bar, got {args.bars}")
        out = Path(args.out).resolve()
        _check_out(out)
        if args.prompt:
            check_prompt(Path(args.prompt))
        name = args.method or ("counts" if args.counts_only else args.variant)
        flag = "--method" if args.method else "--variant"
        if not args.method and args.counts_only:
            flag = "--counts-only: method"
        run, method = open_run(args, args.corpus, name, flag)
        soundfont = _check_audio(args, run)
        prompt = prompt_ids(run, args.prompt) if args.prompt else None
        settings = method_settings(args, run, method)
        bars = args.bars
        if bars is None and not given(args, "length"):
            bars = run.config["generate"].get("bars")
        info = _sample_to(run, method, args, out, prompt, settings, bars)
    except (UsageError, RunError) as exc:
        return fail("generate", exc)
    if soundfont:
        from ..audio import AudioError

        try:
            _render(run, sorted(out.glob("sample_*.mid")), soundfont)
        except AudioError as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            return fail("generate", f"--audio: {first} (the MIDI files are in {args.out})")
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
    """Fit ``method`` with ``settings`` (:func:`method_settings`), draw ``args.n`` samples
    (``bars`` bars, or ``args.length`` tokens) after the prompt and publish them as a sample set
    at ``out``; with a prompt, each MIDI holds the prompt file's notes as they are, then the
    generated ones."""
    import time

    import symusic

    from ..fileio import write_json
    from ..infill import continue_score
    from ..midi import write_midi
    from ..runs import check_memory, max_tokens, sample_length_or_bars
    from ..samples import write_samples

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
