"""Generation speed of every generator of the evaluation, each at its best batch, in one run.

On the successor graph of the bach fixture corpus (or of the MIDI files in ``--midi DIR``; V = the
tokenizer's vocabulary), for
``--samples`` x ``--length`` tokens:

- ``walk`` (:class:`tokentransfer.walk.Walker`, biased by random 128-d node embeddings: the
  speed does not depend on their values; the compiled kernel) with the defaults (``context:
  onset``, ``melody: interval``, ``form: return``), with ``context: none``, and with ``melody:
  none`` and ``form: none`` (the walk without pitch memory and returns), on the melody and
  form tables of the same pieces;
- ``numpy_first_order``: a plain vectorised first-order sampler on the same counts (all samples
  advanced together, one draw per sample and step, no grammar): the floor of what numpy does;
- ``dgl_random_walk``: DGL's ``random_walk`` with ``prob=`` (the counts) and
  ``restart_prob=0``, the same number of traces and steps (no grammar either);
- ``markov2`` / ``markov2c``: the bigram chain without / under the grammar mask;
- ``transformer``: the config's model (default GPT-2 2x128, untrained weights: speed only)
  with its KV cache, under the grammar mask, at batch sizes 1, 8, 32, 128, 256
  (``--batches``), each on ``batch`` x ``--lm-length`` tokens.

Prints tokens/s per generator and the ratio of the walk to each, all from one run of the script.
Each generator is timed ``--repeat`` times (default 3) after a warm-up, and the fastest time is
kept: a walk of 16 x 1024 tokens takes a few milliseconds, so one timing varies by 2x with
whatever else the machine does in that moment.

    python benchmarks/generate.py [--samples 16] [--length 1024] [--repeat 3]
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

import numpy as np  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402

from tokentransfer.baselines import NgramModel, start_tokens, transformer_samples  # noqa: E402
from tokentransfer.grammar import Grammar  # noqa: E402
from tokentransfer.graph import context_successors, successors  # noqa: E402
from tokentransfer.model import build_model, model_spec, special_ids  # noqa: E402
from tokentransfer.tokenize import build_tokenizer, tokenize_file  # noqa: E402
from tokentransfer.walk import WalkConfig, Walker  # noqa: E402
from tokentransfer.walkform import count_tables  # noqa: E402

SHARED = Path(os.environ.get("TOKENTRANSFER_SHARED", REPO.parent / "shared"))


def timed(fn, repeat: int):
    """``fn()``'s result and its fastest time of ``repeat`` calls."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return out, best


def numpy_first_order(succ, n: int, length: int, seed: int) -> np.ndarray:
    """All samples together, one inverse-CDF draw per sample and step."""
    succ = succ.tocsr()
    v = succ.shape[0]
    deg = np.diff(succ.indptr)
    rows = np.repeat(np.arange(v), deg)
    cum = np.cumsum(succ.data)
    totals = np.bincount(rows, weights=succ.data, minlength=v)
    start_cum = np.concatenate([[0.0], cum])[succ.indptr[:-1]]
    key = rows + (cum - start_cum[rows]) / totals[rows]
    cols = succ.indices
    rng = np.random.default_rng(seed)
    node = np.full(n, int(np.argmax(deg)))
    out = np.empty((n, length), dtype=np.int64)
    for t in range(length):
        j = np.searchsorted(key, node + rng.random(n), side="right")
        j = np.minimum(j, succ.indptr[node + 1] - 1)
        node = cols[j]
        dead = deg[node] == 0
        node[dead] = int(np.argmax(deg))
        out[:, t] = node
    return out


def dgl_walk(succ, n: int, length: int, seed: int):
    from tokentransfer.dglcompat import dgl

    coo = succ.tocoo()
    src, dst = (torch.from_numpy(x.astype(np.int64)) for x in (coo.row, coo.col))
    g = dgl.graph((src, dst), num_nodes=succ.shape[0])
    g.edata["p"] = torch.from_numpy(coo.data.astype(np.float32))
    dgl.seed(seed)
    start = torch.full((n,), int(np.argmax(np.diff(succ.indptr))), dtype=torch.int64)
    return dgl.sampling.random_walk(g, start, length=length, prob="p")[0]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--config", default=str(REPO / "config" / "config.yaml"))
    ap.add_argument("--samples", type=int, default=16)
    ap.add_argument("--length", type=int, default=1024)
    ap.add_argument("--lm-length", type=int, default=255, help="tokens per transformer sample")
    ap.add_argument("--batches", default="1,8,32,128,256")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--repeat", type=int, default=3, help="timings per generator (fastest)")
    ap.add_argument(
        "--midi",
        default=str(SHARED / "data" / "fixtures" / "bach"),
        help="folder of the MIDI files the graph is counted on (default: the bach fixture)",
    )
    args = ap.parse_args()
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")
    rep = args.repeat
    torch.set_num_threads(args.threads)
    cfg = yaml.safe_load(Path(args.config).read_text())
    tokenizer = build_tokenizer(cfg.get("tokenizer", {"kind": "REMI", "use_programs": True}))
    files = sorted(Path(args.midi).glob("*.mid"))
    if not files:
        ap.error(
            f"no *.mid files in {args.midi}: pass --midi DIR (any folder of MIDI files) or set "
            "TOKENTRANSFER_SHARED to the folder holding data/fixtures/bach"
        )
    seqs = [tokenize_file(tokenizer, p) for p in files]
    succ = successors(seqs, len(tokenizer))
    ctx = context_successors(seqs, tokenizer)
    h = np.random.default_rng(0).normal(size=(len(tokenizer), 128))
    n, length = args.samples, args.length
    rows: list[tuple[str, float, str]] = []

    tables = count_tables(seqs, tokenizer)
    for name, kw in (
        ("defaults", {}),
        ("context none", {"context": "none"}),
        ("melody none, form none", {"melody": "none", "form": "none"}),
    ):
        wcfg = WalkConfig(length=length, samples=n, **kw)
        walker = Walker(succ, tokenizer, h, None, wcfg, ctx, tables)
        walker.generate(n=2, length=16)  # warm-up (numba: compile or load)
        _, s = timed(lambda walker=walker: walker.generate(), rep)
        rows.append((f"walk ({name})", n * length / s, f"batch {n}"))
    numpy_first_order(succ, n, 8, 0)
    _, s = timed(lambda: numpy_first_order(succ, n, length, 0), rep)
    rows.append(("numpy_first_order (no grammar)", n * length / s, f"batch {n}"))
    dgl_walk(succ, n, 8, 0)
    _, s = timed(lambda: dgl_walk(succ, n, length, 0), rep)
    rows.append(("dgl_random_walk (no grammar)", n * length / s, f"{n} traces"))
    g = Grammar(tokenizer)
    chain = NgramModel(2, len(tokenizer)).fit(seqs)
    for name, gram in (("markov2", None), ("markov2c", g)):
        _, s = timed(lambda gram=gram: chain.sample(n, length, 0, grammar=gram), rep)
        rows.append((name, n * length / s, "one sample at a time"))

    model_cfg = {"arch": "gpt2", "layers": 2, "dim": 128, "heads": 4, "context": 256}
    model_cfg.update({"dropout": 0.0, **cfg.get("model", {})})
    spec = model_spec(model_cfg)
    special = special_ids(tokenizer)
    model = build_model(spec, len(tokenizer), special, 0).to(args.device).eval()
    lm_len = min(args.lm_length, spec.context - 2)
    kw = dict(start=start_tokens(tokenizer), banned=sorted(special.values()), device=args.device)
    transformer_samples(model, 2, 8, 0, grammar=g, batch=2, **kw)  # warm-up
    for b in (int(x) for x in args.batches.split(",")):
        _, s = timed(
            lambda b=b: transformer_samples(model, b, lm_len, 0, grammar=g, batch=b, **kw), rep
        )
        rows.append((f"transformer {spec.layers}x{spec.dim}", b * lm_len / s, f"batch {b}"))

    walk = rows[0][1]
    by_name = {name: tps for name, tps, _ in rows}
    print(
        f"{n} samples x {length} tokens (walks, chains); transformer {lm_len} tokens per sample "
        f"on {args.device}, {args.threads} threads; fastest of {args.repeat} timings each"
    )
    print(f"{'generator':40s} {'batch':>22s} {'tokens/s':>12s} {'walk / it':>10s}")
    for name, tps, batch in rows:
        print(f"{name:40s} {batch:>22s} {tps:12,.0f} {walk / tps:10.2f}")
    best_lm = max((r for r in rows if r[0].startswith("transformer")), key=lambda r: r[1])
    print(
        f"walk / numpy sampler: {walk / by_name['numpy_first_order (no grammar)']:.3f}; "
        f"walk / DGL: {walk / by_name['dgl_random_walk (no grammar)']:.3f}; "
        f"walk / transformer at its best ({best_lm[2]}): {walk / best_lm[1]:.1f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
