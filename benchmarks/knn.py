"""kNN-LM's datastore: build and search cost as the adaptation tokens grow.

For each size N (adaptation tokens; 0: every training piece of the target): the target's
training pieces in their split order, the last one cut so that the pieces hold N + 1 tokens
per piece start (one key per token but each piece's first), the datastore built by
:func:`tokentransfer.knn.build_datastore` (one forward pass of the pretrained transformer;
seconds and MB), then exact search (:meth:`tokentransfer.knn.Datastore.search`) timed two ways:
scoring (the final hidden states of ``--queries`` test tokens searched at once, as bits per token
and the choice of lambda search them: microseconds per query) and sampling (one query per sample
and step: ``--batch`` queries at once, the median of ``--steps`` searches, milliseconds per
step), for each key type of ``--dtype``, and the process's peak memory so far (the build
of the largest datastore sets it). ``--extra`` sizes beyond the target (e.g. 1000000)
time the search only, on the real keys tiled with noise to that size (their build seconds
would be the forward pass, linear in N: not measured). Reads a finished run's ``results/``
(tokens, splits, tokenizer, the pretrained model).

With ``--ivf`` each size also gets a row ``ivf`` per dtype: the approximate search of
:class:`tokentransfer.knnindex.IvfIndex` (``--lists``, 0: sqrt(N); ``--nprobe``), its build
seconds (k-means and adding the keys; the forward pass is the exact row's), the same two
search times, the recall (the share of exact search's ``--neighbours`` nearest keys that it
finds, by distance) and the test queries' bits per token under the kNN-LM at ``--lam`` and
``--knn-temperature`` against exact search's (``bits`` column: exact rows show theirs, ivf
rows the difference).

    python benchmarks/knn.py --root . --model small --target fiddle \\
        --tokens 1000 10000 100000 0 --extra 1000000 --ivf
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from pathlib import Path

if sys.path and Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
    del sys.path[0]
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from tokentransfer.knn import Datastore, build_datastore, knn_mixture, window_states  # noqa: E402
from tokentransfer.knnindex import IvfIndex  # noqa: E402
from tokentransfer.likelihood import _LN2, scored_pieces  # noqa: E402
from tokentransfer.model import load_model, set_threads, special_ids  # noqa: E402
from tokentransfer.tokenize import corpus_tokens  # noqa: E402


def first_tokens(pieces: list[np.ndarray], n: int) -> list[np.ndarray]:
    """The pieces in order, the last cut, so that they hold ``n`` keys (tokens but each piece's
    first); ``n = 0``: every piece."""
    if n == 0:
        return pieces
    out, left = [], n
    for p in pieces:
        if left < 1:
            break
        if len(p) < 2:
            continue
        out.append(p[: min(len(p), left + 1)])
        left -= len(out[-1]) - 1
    if left > 0:
        raise SystemExit(f"the target has fewer than {n} adaptation tokens")
    return out


def search_times(store: Datastore, queries: torch.Tensor, k: int, batch: int, steps: int):
    """(microseconds per query when ``queries`` are searched at once, median milliseconds of
    one search of ``batch`` queries)."""
    store.search(queries[:batch], k)  # warm
    t0 = time.perf_counter()
    store.search(queries, k)
    per_query = (time.perf_counter() - t0) / len(queries) * 1e6
    times = []
    for s in range(steps):
        q = queries[(s * batch) % (len(queries) - batch) :][:batch]
        t0 = time.perf_counter()
        store.search(q, k)
        times.append(time.perf_counter() - t0)
    return per_query, statistics.median(times) * 1e3


def bits(store, queries, logits, targets, k: int, lam: float, temp: float) -> float:
    """Bits per token of ``targets`` under the kNN-LM (no grammar mask) with ``store``."""
    d, v = store.search(queries, k)
    p = knn_mixture(logits, d, v, lam, temp)
    return float(-(torch.log(p.gather(1, targets[:, None])) / _LN2).mean())


def recall(d_approx: torch.Tensor, d_exact: torch.Tensor) -> float:
    """The share of the exact ``k`` nearest keys found: approximate distances at or below each
    query's exact ``k``-th distance (a found key is a real key at its true distance)."""
    kth = d_exact[:, -1:]
    return float((d_approx <= kth * (1 + 1e-5) + 1e-6).float().mean())


def peak_rss_mb() -> float:
    """The process's peak resident memory so far, in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6


def tiled(store: Datastore, n: int, seed: int = 0) -> Datastore:
    """The store's keys repeated (with small noise) to ``n`` keys: a larger datastore of the
    same key distribution, for the search's cost only."""
    rng = np.random.default_rng(seed)
    idx = torch.from_numpy(rng.integers(0, len(store), n))
    keys = store.keys[idx].float()
    keys = keys + 0.01 * torch.from_numpy(rng.standard_normal(keys.shape)).float()
    pos = torch.arange(n, dtype=torch.int32)
    return Datastore(keys, store.values[idx], pos, pos)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--root", default=".", help="the run's working directory")
    ap.add_argument("--model", default="small", help="model.name of the run")
    ap.add_argument("--target", default="fiddle")
    ap.add_argument("--tokens", nargs="+", type=int, default=[1000, 10000, 100000, 0])
    ap.add_argument("--extra", nargs="*", type=int, default=[])
    ap.add_argument("--dtype", nargs="+", default=["float32", "float16"])
    ap.add_argument("--neighbours", type=int, default=128)
    ap.add_argument("--queries", type=int, default=2048, help="test tokens searched at once")
    ap.add_argument("--batch", type=int, default=4, help="queries per sampling step")
    ap.add_argument("--steps", type=int, default=50, help="sampling steps timed")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ivf", action="store_true", help="also time the IVF index (faiss)")
    ap.add_argument("--lists", type=int, default=0, help="IVF lists (0: sqrt of the keys)")
    ap.add_argument("--nprobe", type=int, default=32)
    ap.add_argument("--lam", type=float, default=0.5, help="lambda of the bits column")
    ap.add_argument("--knn-temperature", type=float, default=1.0, help="T of the bits column")
    ap.add_argument("--seed", type=int, default=0, help="the IVF index's k-means seed")
    args = ap.parse_args()

    set_threads(args.threads)
    res = Path(args.root) / "results"
    model, tok = load_model(res / "models" / args.model / "hf", res / "tokenizer/tokenizer.json")
    bos = special_ids(tok)["bos"]
    shards = sorted(str(p) for p in (res / "tokens" / args.target).glob("*.h5"))
    split = str(res / "splits" / f"{args.target}.tsv")
    train = corpus_tokens(shards, [split], "train")
    test = scored_pieces(corpus_tokens(shards, [split], "test"), args.queries + 64)
    states = list(window_states(model, test, bos))
    queries = torch.cat([h for *_, h in states])[: args.queries]
    logits = torch.cat([lg for _, _, lg, _ in states])[: args.queries]
    targets = torch.cat([torch.from_numpy(test[p][i0 : i0 + len(h)]) for p, i0, _, h in states])
    targets = targets[: args.queries]
    print(
        f"{args.target}: {len(train)} training pieces, {sum(len(p) - 1 for p in train)} keys in "
        f"all; {len(queries)} test queries, {args.neighbours} neighbours, "
        f"{torch.get_num_threads()} threads, load {os.getloadavg()[0]:.1f}"
    )
    head = (
        f"{'keys':>9} {'dtype':>8} {'build s':>8} {'keys/s':>8} {'MB':>8} "
        f"{'us/query':>9} {'ms/step':>8} {'recall':>7} {'bits':>8} {'peak RSS MB':>12}"
    )
    print(head)
    print("-" * len(head))
    for n in [*args.tokens, *args.extra]:
        extra = n in args.extra and n not in args.tokens
        if extra:
            full = build_datastore(model, train, bos)
            store, build_s = tiled(full, n), float("nan")
        else:
            pieces = first_tokens(train, n)
            store = build_datastore(model, pieces, bos)
            build_s = store.seconds
        for dtype in args.dtype:
            s = store.to(dtype)
            per_q, per_step = search_times(s, queries, args.neighbours, args.batch, args.steps)
            rate = len(s) / build_s if build_s == build_s else float("nan")
            kw = {"k": args.neighbours, "lam": args.lam, "temp": args.knn_temperature}
            b_exact = bits(s, queries, logits, targets, **kw)
            print(
                f"{len(s):>9} {dtype:>8} {build_s:>8.2f} {rate:>8.0f} {s.megabytes:>8.1f} "
                f"{per_q:>9.1f} {per_step:>8.2f} {1.0:>7.3f} {b_exact:>8.4f} {peak_rss_mb():>12.0f}"
                + ("  (tiled: search only)" if extra else "")
            )
            if not args.ivf:
                continue
            ivf = Datastore(s.keys, s.values, s.piece, s.position)
            ivf.index = IvfIndex(s.keys, args.lists, args.nprobe, args.seed, args.threads)
            per_q, per_step = search_times(ivf, queries, args.neighbours, args.batch, args.steps)
            rec = recall(
                ivf.search(queries, args.neighbours)[0], s.search(queries, args.neighbours)[0]
            )
            db = bits(ivf, queries, logits, targets, **kw) - b_exact
            print(
                f"{len(s):>9} {'ivf':>8} {ivf.index.seconds:>8.2f} "
                f"{len(s) / ivf.index.seconds:>8.0f} "
                f"{ivf.index.megabytes:>8.1f} {per_q:>9.1f} {per_step:>8.2f} {rec:>7.3f} "
                f"{db:>+8.4f} {peak_rss_mb():>12.0f}  ({ivf.index.lists} lists, nprobe "
                f"{ivf.index.nprobe})"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
