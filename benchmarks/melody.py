"""Melody and form of the walk against the test pieces, on a finished run's outputs.

For each target, over the first ``--bars`` bars (default 16) of every test piece and of
``--samples`` walks (no graph bias; each generated long enough and cut before its
``bars + 1``-th ``Bar`` token), decoded, as the evaluation measures them
(:mod:`tokentransfer.melody`): the top line's step share (|interval| of 1-2 semitones) and
leap share (5 or more), the top line being each track's highest pitch per onset; and the
bar-return share (bars after the first whose set of (onset, pitch) has a Jaccard index >= 0.6
with an earlier bar). Mean ± std over pieces / samples,
for the walk with ``melody`` none / interval (the plain product ``q``, the walk's, or the
corrected ``q / r``) and
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

from tokentransfer.grammar import Grammar  # noqa: E402
from tokentransfer.graph import (  # noqa: E402
    context_successors,
    load_coo,
    load_matrix,
    successors,
)
from tokentransfer.melody import form_features, melody_features  # noqa: E402
from tokentransfer.midi import decode, token_errors  # noqa: E402
from tokentransfer.tokenize import corpus_tokens, load_tokenizer, tokenize_file  # noqa: E402
from tokentransfer.walk import WalkConfig, Walker  # noqa: E402
from tokentransfer.walkform import bar_sets, count_tables  # noqa: E402


def first_bars(seq: np.ndarray, g: Grammar, bars: int) -> np.ndarray:
    """``seq`` from its first ``Bar`` up to (not including) its ``bars + 1``-th."""
    at = np.flatnonzero(np.asarray(seq) == g.bar_id)
    if not len(at):
        return seq[:0]
    end = at[bars] if len(at) > bars else len(seq)
    return seq[at[0] : end]


def measures(seq: np.ndarray, g: Grammar, bars: int, tok) -> tuple[float, float, float, int]:
    """Step share, leap share and bar-return share of ``seq``'s first ``bars`` bars as the
    evaluation measures them (:mod:`tokentransfer.melody`, on the decoded score), and the
    number of bars (of tokens)."""
    s = first_bars(seq, g, bars)
    score = decode(tok, s)
    mel = melody_features(score)
    form = form_features(score, bars)
    return mel["step_share"], mel["leap_share"], form["bar_return_share"], len(bar_sets(s, g))


def summary(rows) -> str:
    a = np.array([r[:3] for r in rows], dtype=np.float64)
    m, sd = np.nanmean(a, 0), np.nanstd(a, 0)
    nb = np.mean([r[3] for r in rows])
    return f"{m[0]:.3f} ± {sd[0]:.3f}\t{m[1]:.3f} ± {sd[1]:.3f}\t{m[2]:.3f} ± {sd[2]:.3f}\t{nb:.1f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--results", default="results")
    ap.add_argument("--targets", nargs="*", default=["bach", "fiddle"])
    ap.add_argument("--samples", type=int, default=32)
    ap.add_argument("--bars", type=int, default=16)
    ap.add_argument("--length", type=int, default=3000, help="tokens generated before the cut")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--folder",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="also a folder of MIDI files (every 4th file, sorted by name, held out as a test "
        "piece; graphs and tables from the others), e.g. jazzlead=../shared/data/fixtures/jazzlead",
    )
    args = ap.parse_args()
    d = Path(args.results)
    tok = load_tokenizer(d / "tokenizer" / "tokenizer.json")
    g = Grammar(tok)
    print("target\tset\tstep share\tleap share\tbar-return share\tbars\ttoken errors\treturns")
    targets = [(c, None) for c in args.targets]
    targets += [tuple(f.split("=", 1)) for f in args.folder]
    for corpus, folder in targets:
        if folder is None:
            shards = sorted((d / "tokens" / corpus).glob("*.h5"))
            split = d / "splits" / f"{corpus}.tsv"
            train = corpus_tokens(shards, [split], "train")
            test = corpus_tokens(shards, [split], "test")
            succ = load_matrix(d / "graphs" / corpus / "successors.npz")
            ctx = load_coo(d / "graphs" / corpus / "context_successors.npz")
        else:
            files = sorted(Path(folder).glob("*.mid"))
            seqs = [tokenize_file(tok, f) for f in files]
            test = [s for i, s in enumerate(seqs) if i % 4 == 3]
            train = [s for i, s in enumerate(seqs) if i % 4 != 3]
            succ, ctx = successors(train, len(tok)), context_successors(train, tok)
        real = summary([measures(s, g, args.bars, tok) for s in test])
        print(f"{corpus}\ttest pieces ({len(test)})\t{real}")
        tables = count_tables(train, tok)
        for melody, corrected, form in (
            ("none", False, "none"),
            ("interval", False, "none"),
            ("interval", True, "none"),
            ("none", False, "return"),
            ("interval", False, "return"),
            ("interval", True, "return"),
        ):
            cfg = WalkConfig(length=args.length, samples=args.samples, melody=melody, form=form,
                             seed=args.seed)  # fmt: skip
            w = Walker(succ, tok, cfg=cfg, ctx_succ=ctx, tables=tables)
            if corrected:
                w._interval_factors = lambda t=tables: t.factors(corrected=True)
            samples = w.generate()
            errors = max(token_errors(tok, s) for s in samples)
            returns = np.mean([s["returns"] for s in w.last_stats])
            alt = " (corrected q / r)" if corrected and melody != "none" else ""
            name = f"walk melody={melody}{alt} form={form}"
            rows = [measures(s, g, args.bars, tok) for s in samples]
            print(f"{corpus}\t{name}\t{summary(rows)}\t{errors:.4f}\t{returns:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
