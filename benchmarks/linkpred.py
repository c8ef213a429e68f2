"""Time one graph-network training (one variant, one seed) on a target of a finished run.

    python benchmarks/linkpred.py --results /path/to/run/results --model small \\
        --corpus bach karaoke jazzlead --variant emb_neighbours

Prints, per corpus: nodes, training pairs, epochs run (early stopping), seconds for the split,
for training (GraphConv, the config defaults: hidden 128, 2 layers, up to 200 epochs, patience
20) and for the heuristics, on this machine's CPU with one thread (what the rule uses).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

# this folder holds tokenize.py, which would hide the standard library's tokenize module
if sys.path and Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
    del sys.path[0]
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from tokentransfer.embed import read_embeddings  # noqa: E402
from tokentransfer.graph import load_matrix  # noqa: E402
from tokentransfer.linkpred import (  # noqa: E402
    heuristic_scores,
    message_graph,
    raw_features,
    split_pairs,
    standardise,
    train_link_predictor,
    used_nodes,
    variant_pairs,
)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--results", default="results")
    ap.add_argument("--model", default="small")
    ap.add_argument("--corpus", nargs="+", required=True)
    ap.add_argument("--variant", default="emb_neighbours")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    res = Path(args.results)
    print("corpus\tnodes\ttrain_pairs\tepochs\tsplit_s\ttrain_s\theuristics_s\ttest_auc")
    for corpus in args.corpus:
        a = load_matrix(res / "graphs" / corpus / "adjacency.npz")
        emb = read_embeddings(res / "embeddings" / args.model / f"{corpus}.h5")
        nodes = used_nodes(a)
        raw = raw_features(args.variant, nodes, emb, 0)
        feats = standardise(raw)
        t0 = time.perf_counter()
        pairs = variant_pairs(args.variant, a, nodes, raw)
        split = split_pairs(pairs, len(nodes), 0.1, 0.1, 0)
        graph = message_graph(split, len(nodes))
        t1 = time.perf_counter()
        model, history, best = train_link_predictor(graph, feats, split, seed=0)
        t2 = time.perf_counter()
        heuristic_scores(split, len(nodes))
        t3 = time.perf_counter()
        from tokentransfer.linkpred import evaluate

        auc = evaluate(model, graph, feats, split)["test"]["auc"]
        print(
            f"{corpus}\t{len(nodes)}\t{len(split.train_pos)}\t{len(history)}\t{t1 - t0:.2f}\t"
            f"{t2 - t1:.2f}\t{t3 - t2:.2f}\t{auc:.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
