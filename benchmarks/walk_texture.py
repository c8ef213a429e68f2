"""Texture of the walk by context against real excerpts, on a finished run's outputs.

For each target: notes per beat, empty-beat rate and polyphony (mean ± std over samples) of
real excerpts of the target's test and training pieces, of the walk (no graph bias) with each
``generate.context``, and of the bigram/trigram chains under the grammar mask; all samples of
the same token length. Reads ``results/`` of a run (tokens, splits, graphs).

    python benchmarks/walk_texture.py --results results --targets bach fiddle
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

from tokentransfer import metrics as M  # noqa: E402
from tokentransfer.baselines import NgramModel, bar_id, real_excerpts  # noqa: E402
from tokentransfer.grammar import Grammar  # noqa: E402
from tokentransfer.graph import load_coo, load_matrix  # noqa: E402
from tokentransfer.midi import decode, token_errors  # noqa: E402
from tokentransfer.tokenize import corpus_tokens, load_tokenizer  # noqa: E402
from tokentransfer.walk import CONTEXTS, WalkConfig, Walker  # noqa: E402
from tokentransfer.walkform import count_tables  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--results", default="results")
    ap.add_argument("--targets", nargs="+", default=["bach", "fiddle"])
    ap.add_argument("--samples", type=int, default=16)
    ap.add_argument("--length", type=int, default=512)
    args = ap.parse_args()
    d = Path(args.results)
    tok = load_tokenizer(d / "tokenizer" / "tokenizer.json")
    n, length = args.samples, args.length

    def show(corpus: str, name: str, samples) -> None:
        rows = []
        for s in samples:
            sc = decode(tok, s)
            rows.append(
                (M.note_density(sc), M.empty_beat_rate(sc), M.polyphony(sc), token_errors(tok, s))
            )
        a = np.array(rows)
        m, sd = a.mean(0), a.std(0)
        print(
            f"{corpus}\t{name}\t{m[0]:.2f} ± {sd[0]:.2f}\t{m[1]:.3f} ± {sd[1]:.3f}\t"
            f"{m[2]:.2f} ± {sd[2]:.2f}\t{m[3]:.4f}"
        )

    print("target\tset\tnotes per beat\tempty-beat rate\tpolyphony\ttoken errors")
    for corpus in args.targets:
        shards = sorted(str(p) for p in (d / "tokens" / corpus).glob("*.h5"))
        split = str(d / "splits" / f"{corpus}.tsv")
        train = corpus_tokens(shards, [split], "train")
        test = corpus_tokens(shards, [split], "test")
        show(corpus, "test excerpts", real_excerpts(test, n, length, 1, bar_id=bar_id(tok)))
        show(corpus, "real_target", real_excerpts(train, n, length, 0, bar_id=bar_id(tok)))
        succ = load_matrix(d / "graphs" / corpus / "successors.npz")
        ctx = load_coo(d / "graphs" / corpus / "context_successors.npz")
        tables = count_tables(train, tok)
        for context in CONTEXTS:
            cfg = WalkConfig(length=length, samples=n, context=context)
            show(
                corpus,
                f"walk, context {context}",
                Walker(succ, tok, cfg=cfg, ctx_succ=ctx, tables=tables).generate(),
            )
        g = Grammar(tok)
        for order in (2, 3):
            chain = NgramModel(order, len(tok)).fit(train)
            show(corpus, f"markov{order}c", chain.sample(n, length, 0, grammar=g))
    return 0


if __name__ == "__main__":
    sys.exit(main())
