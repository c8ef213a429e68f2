"""Approximate nearest-neighbour search for the kNN-LM's datastore: an inverted-file index.

Exact search (:meth:`tokentransfer.knn.Datastore.search`) reads every key for every query:
past a few hundred thousand keys it is the cost of the method (the quick Tegridy model:
about 25 tokens/s of sampling at 300k-420k keys; scoring a Tegridy Bach datastore of 5.3 M keys
did not finish in hours on 2 cores). :class:`IvfIndex` is faiss's ``IndexIVFFlat`` (Jégou et
al., "Product quantization for nearest neighbor search", 2011; Johnson et al., "Billion-scale
similarity search with GPUs", 2017): the keys are clustered by k-means into ``lists`` cells, each
key is stored in the list of its nearest centroid, and a query scans only the ``nprobe`` lists
whose centroids are nearest to it. The distances returned are the same squared L2 distances
as the exact search's (float32 keys; a float16 store is held as float16 by a scalar
quantizer), but a true neighbour in an unscanned list is missed: ``benchmarks/knn.py``
prints the recall against exact search.

* ``lists``: 0 chooses ``round(sqrt(N))`` clamped to [16, 65536], and at most N / 39 (the
  fewest training keys per list faiss's k-means accepts). faiss's guideline for
  billion-scale stores is 4-16 times sqrt(N); fewer, larger lists train faster, which on 2
  cores is the larger cost here.
* k-means runs ``KMEANS_ITERATIONS`` iterations on at most ``TRAIN_PER_LIST`` keys per list
  (a sample faiss draws with the given seed), so the index of the same keys and seed is the
  same.
* A subset of the keys (the choice of lambda and T searches the keys of the fitted pieces
  only) is searched through the same index with a bitmap of the kept keys
  (:meth:`IvfIndex.search`'s ``keep``), no second index.

Where a query's scanned lists hold fewer than ``k`` (kept) keys, the missing neighbours come
back with distance ``inf`` and index -1; :func:`tokentransfer.knn.knn_distribution` gives them
weight 0.

faiss is imported on first use (``faiss-cpu`` in the dependencies).
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import torch

#: k-means iterations of the coarse quantizer
KMEANS_ITERATIONS = 10
#: most training keys per list (faiss samples them with the index's seed)
TRAIN_PER_LIST = 64
#: keys converted to float32 and added at a time (a float16 store is not copied whole)
ADD_CHUNK = 1 << 18
#: fewer queries than this are searched on one thread: faiss splits a search over queries, and
#: a sampling step's handful of queries spent more in OpenMP's start-up than in the scan
#: (measured: 100k keys, 4 queries, 2 threads 8.0 ms a step, 1 thread 0.9 ms, on a busy machine)
PARALLEL_QUERIES = 64


#: fewest training keys per list that faiss's k-means accepts without a warning
MIN_PER_LIST = 39


def auto_lists(n: int) -> int:
    """The default number of lists for ``n`` keys: ``round(sqrt(n))`` in [16, 65536], and at
    most ``n // MIN_PER_LIST`` (at least 1)."""
    return max(1, min(n // MIN_PER_LIST, max(16, min(65536, round(math.sqrt(n))))))


def _faiss():
    try:
        import faiss
    except ImportError as e:  # pragma: no cover - a dependency of the package
        raise ImportError(
            "approximate kNN search needs faiss (pip install faiss-cpu); "
            "or set evaluate.knn.search: exact"
        ) from e
    return faiss


class IvfIndex:
    """An inverted-file index over ``keys`` (``[N, H]`` float32 or float16 tensor on the
    CPU), ``lists`` cells (0: :func:`auto_lists`), ``nprobe`` scanned per query, k-means
    seeded by ``seed``; ``threads``: faiss's OpenMP threads (default: torch's).
    ``seconds``: the build time (training and adding)."""

    def __init__(
        self,
        keys: torch.Tensor,
        lists: int = 0,
        nprobe: int = 32,
        seed: int = 0,
        threads: int | None = None,
    ) -> None:
        faiss = _faiss()
        t0 = time.perf_counter()
        if keys.ndim != 2 or keys.shape[0] == 0:
            raise ValueError(f"an IVF index needs keys [N, H] with N >= 1, got {tuple(keys.shape)}")
        if nprobe < 1:
            raise ValueError(f"nprobe must be >= 1, got {nprobe}")
        self.threads = int(threads or torch.get_num_threads())
        faiss.omp_set_num_threads(self.threads)
        n, dim = (int(x) for x in keys.shape)
        self.n, self.dim = n, dim
        self.lists = int(lists) or auto_lists(n)
        if not 1 <= self.lists <= n:
            raise ValueError(f"lists must be in [1, {n}] for {n} keys, got {self.lists}")
        self.nprobe = min(int(nprobe), self.lists)
        self.dtype = keys.dtype
        self.quantizer = faiss.IndexFlatL2(dim)
        if keys.dtype == torch.float16:
            qtype = faiss.ScalarQuantizer.QT_fp16
            self.index = faiss.IndexIVFScalarQuantizer(
                self.quantizer, dim, self.lists, qtype, faiss.METRIC_L2
            )
        else:
            self.index = faiss.IndexIVFFlat(self.quantizer, dim, self.lists, faiss.METRIC_L2)
        self.index.cp.seed = int(seed) % (2**31)
        self.index.cp.niter = KMEANS_ITERATIONS
        self.index.cp.max_points_per_centroid = TRAIN_PER_LIST
        # the training sample: the seeded draw faiss itself would make, taken here so that
        # only the sample is converted to float32
        rng = np.random.default_rng(int(seed))
        m = min(n, self.lists * TRAIN_PER_LIST)
        sample = np.sort(rng.choice(n, size=m, replace=False)) if m < n else np.arange(n)
        self.index.train(_f32(keys[torch.from_numpy(sample)]))
        for a in range(0, n, ADD_CHUNK):
            self.index.add(_f32(keys[a : a + ADD_CHUNK]))
        self.index.nprobe = self.nprobe
        self.seconds = time.perf_counter() - t0

    @property
    def megabytes(self) -> float:
        """Memory of the lists' codes, their ids and the centroids, in MB (10^6 bytes)."""
        per_key = self.dim * (2 if self.dtype == torch.float16 else 4) + 8
        return (self.n * per_key + self.lists * self.dim * 4) / 1e6

    def search(
        self, queries: torch.Tensor, k: int, keep: np.ndarray | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(d, i)``: squared L2 distances ``[m, k]`` (ascending; ``inf`` where fewer than
        ``k`` keys were found) and key indices (-1 there) of each query's approximate ``k``
        nearest keys; ``keep``: a bool ``[N]`` of the keys that may be returned (None: all)."""
        faiss = _faiss()
        if k < 1:
            raise ValueError(f"neighbours must be >= 1, got {k}")
        q = _f32(queries)
        params = None
        if keep is not None:
            keep = np.asarray(keep, dtype=bool)
            if keep.shape != (self.n,):
                raise ValueError(f"keep must be a bool [{self.n}], got {keep.shape}")
            bitmap = np.packbits(keep, bitorder="little")
            selector = faiss.IDSelectorBitmap(self.n, faiss.swig_ptr(bitmap))
            params = faiss.SearchParametersIVF(nprobe=self.nprobe, sel=selector)
        faiss.omp_set_num_threads(self.threads if len(q) >= PARALLEL_QUERIES else 1)
        d, i = self.index.search(q, int(k), params=params)
        if keep is not None:
            del params, selector, bitmap  # kept alive until the search returned
        d = torch.from_numpy(d)
        i = torch.from_numpy(i)
        d[i < 0] = math.inf
        return d, i


def _f32(x: torch.Tensor) -> np.ndarray:
    """A C-contiguous float32 numpy array of ``x`` (no copy when it already is one)."""
    return np.ascontiguousarray(x.detach().to("cpu", torch.float32).numpy())


def describe(index: Any) -> dict[str, Any]:
    """The record of a datastore's search (for the method's record)."""
    if index is None:
        return {"search": "exact"}
    return {
        "search": "ivf",
        "ivf_lists": index.lists,
        "ivf_nprobe": index.nprobe,
        "ivf_seconds": round(index.seconds, 4),
        "ivf_mb": round(index.megabytes, 3),
    }
