"""``tokentransfer infill``: draw bars A..B of a MIDI file anew with a method of a finished run."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import (
    UsageError,
    check_prompt,
    earlier_output,
    fail,
    method_settings,
    open_run,
    prompt_ids,
)


def _check_infill_out(out: Path) -> None:
    """``--out`` of infill: a new MIDI file, or one an earlier infill wrote (its record
    ``<out>.json`` beside it says so)."""
    if out.suffix.lower() not in (".mid", ".midi"):
        raise UsageError(f"--out {out}: give a .mid file")
    if out.is_dir():
        raise UsageError(f"--out {out}: is a folder; give a .mid file")
    if out.exists():
        record = out.with_suffix(".json")
        if not earlier_output(record, "infill"):
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


def infill(args: argparse.Namespace) -> int:
    import symusic

    from ..fileio import write_json
    from ..infill import bar_quarters, check_bars, infill_score, infill_tokens
    from ..midi import token_errors, write_midi
    from ..runs import RunError, max_tokens

    try:
        first, last = _parse_bars(args.bars)
        if args.candidates < 1:
            raise UsageError(f"--candidates: need at least one, got {args.candidates}")
        out = Path(args.out).resolve()
        _check_infill_out(out)
        midi = Path(args.midi)
        check_prompt(midi, "--midi")
        run, method = open_run(args, args.corpus, args.method)
        ids = prompt_ids(run, args.midi, "--midi")
        from ..bars import count_bars

        try:
            check_bars(first, last, count_bars(ids, run.bar_id))
        except ValueError as exc:
            raise UsageError(f"--bars {args.bars}: {exc}") from None
        settings = method_settings(args, run, method)
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
        return fail("infill", exc)
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
