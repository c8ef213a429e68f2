"""Melody and form of the walk against the test pieces, on a finished run's outputs.

For each target, over the first ``--bars`` bars (default 16) of every test piece and of
``--samples`` walks (no graph bias; each generated long enough and cut before its
``bars + 1``-th ``Bar`` token): the top line's step share (|interval| of 1-2 semitones) and
leap share (5 or more), the top line being the highest ``Pitch`` of each onset (every program,
drums left out) and its intervals those between consecutive onsets; and the bar-return share
(bars whose set of (position, pitch) has a Jaccard index >= 0.6 with an earlier bar,
:func:`tokentransfer.walkform.return_share`, over all bars). Mean ± std over pieces / samples,
for the walk with ``melody`` none / interval (plain product ``q`` or corrected ``q / r``) and
``form`` none / return. Reads ``results/`` of a run (tokens, splits, graphs, tokenizer); the
tables are counted from the training pieces as rule ``adjacency`` does.

    python benchmarks/melody.py --results results --targets bach fiddle
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

if sys.path and Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
    del sys.path[0]
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

from tokentransfer.grammar import BAR, POSITION, Grammar  # noqa: E402
from tokentransfer.graph import load_coo, load_matrix  # noqa: E402
from tokentransfer.rwr import WalkConfig, Walker, token_errors  # noqa: E402
from tokentransfer.tokenize import corpus_tokens, load_tokenizer  # noqa: E402
from tokentransfer.walkform import bar_sets, count_tables, return_share  # noqa: E402


def first_bars(seq: np.ndarray, g: Grammar, bars: int) -> np.ndarray:
    """``seq`` from its first ``Bar`` up to (not including) its ``bars + 1``-th."""
    at = np.flatnonzero(np.asarray(seq) == g.bar_id)
    if not len(at):
        return seq[:0]
    end = at[bars] if len(at) > bars else len(seq)
    return seq[at[0] : end]


def top_line(seq: np.ndarray, g: Grammar) -> np.ndarray:
    """The highest pitch of each onset, in order."""
    line: list[int] = []
    onset = -1
    cur = -1
    for t in np.asarray(seq).tolist():
        k = g.kind[t]
        if k in (BAR, POSITION):
            onset += 1
        elif g.ttype[t] == g.pitch_code:
            if onset != cur:
                line.append(int(g.tval[t]))
                cur = onset
            else:
                line[-1] = max(line[-1], int(g.tval[t]))
    return np.array(line)


def measures(seq: np.ndarray, g: Grammar, bars: int) -> tuple[float, float, float, int]:
    s = first_bars(seq, g, bars)
    d = np.abs(np.diff(top_line(s, g)))
    step = float(((d >= 1) & (d <= 2)).mean()) if len(d) else 0.0
    leap = float((d >= 5).mean()) if len(d) else 0.0
    sets = bar_sets(s, g)
    return step, leap, return_share(sets), len(sets)


def summary(rows) -> str:
    a = np.array([r[:3] for r in rows])
    m, sd = a.mean(0), a.std(0)
    nb = np.mean([r[3] for r in rows])
    return f"{m[0]:.3f} ± {sd[0]:.3f}\t{m[1]:.3f} ± {sd[1]:.3f}\t{m[2]:.3f} ± {sd[2]:.3f}\t{nb:.1f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--results", default="results")
    ap.add_argument("--targets", nargs="+", default=["bach", "fiddle"])
    ap.add_argument("--samples", type=int, default=32)
    ap.add_argument("--bars", type=int, default=16)
    ap.add_argument("--length", type=int, default=3000, help="tokens generated before the cut")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    d = Path(args.results)
    tok = load_tokenizer(d / "tokenizer" / "tokenizer.json")
    g = Grammar(tok)
    print("target\tset\tstep share\tleap share\tbar-return share\tbars\ttoken errors\treturns")
    for corpus in args.targets:
        shards = sorted((d / "tokens" / corpus).glob("*.h5"))
        split = d / "splits" / f"{corpus}.tsv"
        train = corpus_tokens(shards, [split], "train")
        test = corpus_tokens(shards, [split], "test")
        real = summary([measures(s, g, args.bars) for s in test])
        print(f"{corpus}\ttest pieces ({len(test)})\t{real}")
        tables = count_tables(train, tok)
        succ = load_matrix(d / "graphs" / corpus / "successors.npz")
        ctx = load_coo(d / "graphs" / corpus / "context_successors.npz")
        for melody, corrected, form in (
            ("none", True, "none"),
            ("interval", False, "none"),
            ("interval", True, "none"),
            ("none", True, "return"),
            ("interval", False, "return"),
            ("interval", True, "return"),
        ):
            cfg = WalkConfig(length=args.length, samples=args.samples, melody=melody, form=form,
                             seed=args.seed)  # fmt: skip
            w = Walker(succ, tok, cfg=cfg, ctx_succ=ctx, tables=tables)
            if not corrected:
                w._interval_factors = lambda t=tables: t.factors(corrected=False)
            samples = w.generate()
            errors = max(token_errors(tok, s) for s in samples)
            returns = np.mean([s["returns"] for s in w.last_stats])
            plain = "" if corrected or melody == "none" else " (plain q)"
            name = f"walk melody={melody}{plain} form={form}"
            rows = [measures(s, g, args.bars) for s in samples]
            print(f"{corpus}\t{name}\t{summary(rows)}\t{errors:.4f}\t{returns:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
