"""Melody, bits and speed of the masked n-gram chains with and without pitch memory.

For each target of a finished run (its ``results/``: tokenizer, tokens, splits), the chains
``markov2c`` / ``markov3c`` (masked) and ``markov2ci`` / ``markov3ci`` (masked, times the
walk's interval model: :class:`tokentransfer.baselines.IntervalChain`) are fitted on the
training pieces (discount ``--discount``, the config's default 0.75; the interval tables
counted on the same pieces), and measured:

- ``--samples`` samples of ``--bars`` bars (default 16), drawn as the evaluation draws them
  (:func:`tokentransfer.bars.sample_bars`, token budget from the training pieces' tokens per
  bar), decoded; step share, leap share and bar-return share of each as ``benchmarks/melody.py``
  measures them (:mod:`tokentransfer.melody`, the top line = each track's highest pitch per
  onset), mean ± std over samples; beside the first ``--bars`` bars of every test piece;
- bits per token on the test pieces (the evaluation's cut: at most ``--bits-tokens`` tokens,
  :func:`tokentransfer.likelihood.scored_pieces`), under the grammar, floored as the
  evaluation floors them;
- tokens/s of sampling (tokens drawn / wall seconds, one process) and the fit's seconds;
- token errors (largest miditok error ratio of a sample).

    python benchmarks/chain_melody.py --results /tmp/base/results --targets fiddle bach
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from pathlib import Path

if sys.path and Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
    del sys.path[0]  # benchmarks/tokenize.py would shadow the standard library's
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


from tokentransfer.bars import sample_bars, tokens_per_bar  # noqa: E402
from tokentransfer.baselines import IntervalChain, NgramModel  # noqa: E402
from tokentransfer.grammar import Grammar  # noqa: E402
from tokentransfer.likelihood import chain_log_probs, corpus_bits  # noqa: E402
from tokentransfer.midi import token_errors  # noqa: E402
from tokentransfer.tokenize import corpus_tokens, load_tokenizer  # noqa: E402
from tokentransfer.walkform import count_tables  # noqa: E402

_spec = importlib.util.spec_from_file_location("melody_bench", Path(__file__).parent / "melody.py")
melody_bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(melody_bench)  # measures() and summary(), as the walk's table uses


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--results", default="results")
    ap.add_argument("--targets", nargs="*", default=["fiddle", "bach"])
    ap.add_argument("--orders", nargs="*", type=int, default=[3, 2])
    ap.add_argument("--samples", type=int, default=32)
    ap.add_argument("--bars", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--discount", type=float, default=0.75)
    ap.add_argument("--bits-tokens", type=int, default=20_000)
    args = ap.parse_args()
    d = Path(args.results)
    tok = load_tokenizer(d / "tokenizer" / "tokenizer.json")
    g = Grammar(tok)
    print(
        "target\tset\tstep share\tleap share\tbar-return share\tbars\t"
        "bits/token\ttokens/s\tfit s\ttoken errors"
    )
    for corpus in args.targets:
        shards = sorted((d / "tokens" / corpus).glob("*.h5"))
        split = d / "splits" / f"{corpus}.tsv"
        train = corpus_tokens(shards, [split], "train")
        test = corpus_tokens(shards, [split], "test")
        real = [melody_bench.measures(s, g, args.bars, tok) for s in test]
        print(f"{corpus}\ttest pieces ({len(test)})\t{melody_bench.summary(real)}", flush=True)
        per_bar = tokens_per_bar(train, g.bar_id)
        for order in args.orders:
            for memory in (False, True):
                t0 = time.perf_counter()
                chain = NgramModel(order, len(tok), discount=args.discount).fit(train)
                if memory:
                    model = IntervalChain(chain, g, count_tables(train, tok))
                    sample, log_probs = model.sample, model.log_probs
                else:

                    def sample(n, length, seed, start=None, chain=chain):
                        return chain.sample(n, length, seed, start=start, grammar=g)

                    def log_probs(s, chain=chain):
                        return chain_log_probs(chain, s, g)

                fit_s = time.perf_counter() - t0
                drawn = [0]

                def fn(n, length, seed, prompt=None, sample=sample, drawn=drawn):
                    drawn[0] += n * length
                    return sample(n, length, seed, start=prompt)

                t0 = time.perf_counter()
                samples, rec = sample_bars(
                    fn, args.samples, args.bars, args.seed, per_bar, bar_id=g.bar_id
                )
                rate = drawn[0] / (time.perf_counter() - t0)
                errors = max(token_errors(tok, s) for s in samples)
                rows = [melody_bench.measures(s, g, args.bars, tok) for s in samples]
                bits = corpus_bits(log_probs, test, args.bits_tokens)
                name = f"markov{order}c{'i' if memory else ''}"
                print(
                    f"{corpus}\t{name}\t{melody_bench.summary(rows)}\t"
                    f"{bits['bits_per_token']:.3f} ({bits['tokens']} tokens)\t{rate:,.0f}\t"
                    f"{fit_s:.2f}\t{errors:.4f}",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
