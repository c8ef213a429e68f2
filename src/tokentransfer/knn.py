"""kNN-LM: the pretrained transformer with a memory of the adaptation pieces.

Khandelwal et al. (ICLR 2020), "Generalization through memorization". No gradient step: the
adaptation is one forward pass of the frozen transformer over the adaptation pieces.

**Datastore** (:func:`build_datastore`). For every token ``i >= 1`` of every adaptation piece,
the key is the transformer's final hidden state at the position that predicts token ``i`` from
``[BOS] + piece[:i]``: the input of its output layer (``model.get_output_embeddings()``, the
``lm_head``), which for GPT-2 and Llama is the last entry of ``output_hidden_states`` (after
the final layer norm). The value is token ``i``. Pieces longer than the model's context run in
the windows of :func:`tokentransfer.likelihood.windows` (overlapping by ``context // 2``), the
windows the pieces are scored in, so that every key has at least ``context // 2`` tokens of
context (or the whole prefix), as every query does. Keys are float32 (or float16 to halve the
memory; the distances are computed in float32 either way).

**Search** (:meth:`Datastore.search`): exact; squared L2 distances
``|q|^2 - 2 q.k + |k|^2`` by matrix products over chunks of keys (at most ``KEY_CHUNK``) and
queries (at most ``CHUNK_ELEMENTS`` distances at a time), the ``k`` smallest kept. Or, once
:func:`index_store` gave the store an inverted-file index (``evaluate.knn.search``: ``ivf``,
or ``auto`` above ``exact_max_keys`` keys), approximate: :class:`tokentransfer.knnindex.IvfIndex`
(faiss), the same squared distances over the keys of the ``nprobe`` nearest of its lists.

**Distribution** (:func:`knn_mixture`): ``p_knn(v)`` is ``softmax(-d / T)`` over the ``k``
nearest keys, summed over the keys whose value is ``v``;
``p = (1 - lam) * p_T + lam * p_knn`` with ``p_T`` the transformer's softmax; then the REMI
grammar's mask, renormalised over the allowed tokens (as every sampler of the project does).
``lam = 0`` is the transformer under the mask exactly (:func:`knn_log_probs` then computes
the masked log-softmax of the logits, as :func:`tokentransfer.likelihood.transformer_log_probs`
does; :func:`knn_samples` the grammar processor's scores, token for token).

**Sampling** (:func:`knn_samples`): :func:`tokentransfer.baselines.transformer_samples` (the
KV-cached loop with a sliding window) with a :class:`KnnLogitsProcessor` as its logits hook; a
forward hook on the output layer (:class:`OutputTap`) hands the processor the step's hidden
states, one query per sample and step. At sampling temperature ``t`` the draw is from
``p ** (1 / t)`` renormalised (``p`` the masked mixture), after the sampler's ban of the
special tokens and its top-k.

**Choice of lam and T** (:func:`choose_knn`): as the fused sampler chooses its ``lam``
(:func:`tokentransfer.fusion.choose_lambda`): the adaptation pieces are split by
:func:`tokentransfer.fusion.holdout` (whole held-out groups, or with one group the tail of each
piece), every ``(lam, T)`` of the grid is scored on the held-out tokens (at most
``max_tokens``, :func:`tokentransfer.fusion.cap_held`; the method passes
``evaluate.knn.choice_tokens``, 5000, where the fused sampler passes ``evaluate.bits_tokens``:
the search costs held-out tokens x keys; on the default run's Bach and fiddle tunes, at
k = 5 and every piece, 5000 held-out tokens chose a ``(lam, T)`` whose test bits per token
were within 0.001 of the choice on up to 20000) against the datastore of the rest, and
the one of fewest bits is chosen (ties: the smaller ``lam``, then the smaller ``T``); with
fewer than ``min_groups`` groups the grid is reported but ``lam = 0`` (the tail of a piece
whose head is in the datastore rewards remembering that piece, not the style). One forward
pass serves the choice and the method: the datastore of every piece is built once, the
held-out split's datastore is its keys of the fitted pieces (or heads) and the held-out
tokens' queries are their own keys (the model is causal, so these are the keys a separate
pass would give).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .fusion import LambdaChoice, MixLogitsProcessor
from .likelihood import _LN2, grammar_masks, windows

log = logging.getLogger(__name__)

#: default neighbours per query (``evaluate.knn.neighbours``)
NEIGHBOURS = 128
#: default grid of the interpolation weight (``evaluate.knn.lambdas``; 0: the transformer)
LAMBDAS = (0.0, 0.25, 0.5, 0.75, 0.9)
#: default grid of the distance temperature (``evaluate.knn.temperatures``)
TEMPERATURES = (0.1, 0.3, 1.0, 3.0, 10.0)
#: default cap on the held-out tokens the choice of lam and T scores
#: (``evaluate.knn.choice_tokens``): its search costs held-out tokens x keys
CHOICE_TOKENS = 5000
#: default search (``evaluate.knn.search``): exact up to ``EXACT_MAX_KEYS`` keys, IVF above
SEARCH = "auto"
SEARCHES = ("auto", "exact", "ivf")
#: the largest datastore that ``search: auto`` searches exactly (``evaluate.knn.exact_max_keys``);
#: the default run's largest (fiddle, every tune) has about 130k keys
EXACT_MAX_KEYS = 1 << 18
#: default lists of the IVF index (``evaluate.knn.lists``; 0: ``round(sqrt(keys))``)
LISTS = 0
#: default lists scanned per query (``evaluate.knn.nprobe``)
NPROBE = 32
#: default storage type of the keys (``evaluate.knn.dtype``)
DTYPE = "float32"
DTYPES = {"float32": torch.float32, "float16": torch.float16}
#: most distances computed at once by :meth:`Datastore.search` (float32: 64 MB)
CHUNK_ELEMENTS = 1 << 24
#: most keys in one chunk: a larger store is searched in chunks of this many keys, so that a
#: chunk of queries stays at ``CHUNK_ELEMENTS // KEY_CHUNK`` (64) or more. Without it a
#: store of millions of keys was read once per 3 queries (a Tegridy Bach datastore of ~5 M
#: keys: more than half an hour to score 5,000 tokens on 2 cores)
KEY_CHUNK = 1 << 18


def settings(section: dict | None) -> dict:
    """``evaluate.knn`` with its defaults filled in (the schema's), checked."""
    defaults = {
        "neighbours": NEIGHBOURS,
        "lambdas": list(LAMBDAS),
        "temperatures": list(TEMPERATURES),
        "choice_tokens": CHOICE_TOKENS,
        "dtype": DTYPE,
        "search": SEARCH,
        "exact_max_keys": EXACT_MAX_KEYS,
        "lists": LISTS,
        "nprobe": NPROBE,
    }
    s = {**defaults, **(section or {})}
    unknown = set(s) - set(defaults)
    if unknown:
        raise ValueError(f"evaluate.knn: unknown key(s) {sorted(unknown)}")
    if int(s["neighbours"]) < 1:
        raise ValueError(f"evaluate.knn.neighbours must be >= 1, got {s['neighbours']}")
    check_grid(s["lambdas"], s["temperatures"])
    if int(s["choice_tokens"]) < 1:
        raise ValueError(f"evaluate.knn.choice_tokens must be >= 1, got {s['choice_tokens']}")
    if s["dtype"] not in DTYPES:
        raise ValueError(f"evaluate.knn.dtype must be one of {list(DTYPES)}, got {s['dtype']!r}")
    if s["search"] not in SEARCHES:
        raise ValueError(
            f"evaluate.knn.search must be one of {list(SEARCHES)}, got {s['search']!r}"
        )
    for key, low in (("exact_max_keys", 0), ("lists", 0), ("nprobe", 1)):
        if isinstance(s[key], bool) or not isinstance(s[key], int) or s[key] < low:
            raise ValueError(f"evaluate.knn.{key} must be an integer >= {low}, got {s[key]!r}")
    return s


def check_grid(lambdas: Sequence[float], temperatures: Sequence[float]) -> None:
    if not lambdas or not temperatures:
        raise ValueError("the kNN grid needs at least one lambda and one temperature")
    for lam in lambdas:
        if not 0 <= float(lam) < 1:
            raise ValueError(f"kNN lambda must be in [0, 1), got {lam}")
    for t in temperatures:
        if not (float(t) > 0 and math.isfinite(float(t))):
            raise ValueError(f"kNN temperature must be finite and > 0, got {t}")


# --------------------------------------------------------------------------- hidden states


class OutputTap:
    """A forward hook on the model's output layer: ``hidden`` and ``logits`` hold its input
    (the final hidden states, ``[batch, positions, H]``) and output at its last call. A context
    manager: the hook is removed on exit."""

    def __init__(self, model: Any) -> None:
        layer = model.get_output_embeddings()
        if layer is None:
            raise ValueError("kNN-LM needs a model with an output layer (get_output_embeddings)")
        self.layer = layer
        self.hidden: torch.Tensor | None = None
        self.logits: torch.Tensor | None = None
        self._handle = None

    def _hook(self, module, args, output) -> None:
        self.hidden = args[0].detach()
        self.logits = output.detach()

    def __enter__(self) -> OutputTap:
        self._handle = self.layer.register_forward_hook(self._hook)
        return self

    def __exit__(self, *exc) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None


def window_states(
    model: Any,
    seqs: Sequence[np.ndarray],
    bos: int | None = None,
    device: Any = None,
    batch: int = 8,
    logits: bool = True,
) -> Iterator[tuple[int, int, torch.Tensor | None, torch.Tensor]]:
    """Yield ``(piece, i0, logits, hidden)`` for every window of every piece of ``seqs``:
    the float64 logits ``[t, V]`` (on the CPU; None without ``logits``) and the final hidden
    states ``[t, H]`` (float32, on ``device``) of the model's prediction of tokens
    ``i0 .. i0 + t - 1`` of the piece (``i >= 1``), from ``[bos] + piece``, windows as
    :func:`tokentransfer.likelihood.transformer_logits` makes them, batched across pieces. The
    model runs in eval mode under ``torch.no_grad`` (its training mode is restored)."""
    from .model import context_length

    off = 0 if bos is None else 1
    xs = []
    spans = []
    for p, s in enumerate(seqs):
        s = np.asarray(s, dtype=np.int64).ravel()
        x = np.concatenate([[bos], s]).astype(np.int64) if off else s
        xs.append(x)
        spans += [(p, a, b, t) for a, b, t in windows(len(x), context_length(model), off + 1)]
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), OutputTap(model) as tap:
            for s0 in range(0, len(spans), batch):
                group = spans[s0 : s0 + batch]
                width = max(b - a for _, a, b, _ in group)
                ids = torch.zeros((len(group), width), dtype=torch.long)
                att = torch.zeros((len(group), width), dtype=torch.long)
                for r, (p, a, b, _) in enumerate(group):
                    ids[r, : b - a] = torch.from_numpy(xs[p][a:b])
                    att[r, : b - a] = 1
                out = model(input_ids=ids.to(device), attention_mask=att.to(device)).logits
                for r, (p, a, b, t) in enumerate(group):
                    lg = out[r, t - 1 - a : b - 1 - a].double().cpu() if logits else None
                    yield p, t - off, lg, tap.hidden[r, t - 1 - a : b - 1 - a].float()
    finally:
        model.train(was_training)


# --------------------------------------------------------------------------- datastore


@dataclass
class Datastore:
    """Keys ``[N, H]`` (the final hidden states), values ``[N]`` (the next tokens), the keys'
    squared norms, and where each key comes from: ``piece`` (index into the pieces it was
    built from) and ``position`` (the index ``i`` of the token it predicts). ``seconds``: the
    time the build took."""

    keys: torch.Tensor
    values: torch.Tensor
    piece: torch.Tensor
    position: torch.Tensor
    seconds: float = 0.0
    norms: torch.Tensor = field(init=False)
    #: an approximate index (:func:`index_store`); None: exact search
    index: Any = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        n = self.keys.shape[0]
        if self.keys.ndim != 2 or any(
            t.shape != (n,) for t in (self.values, self.piece, self.position)
        ):
            raise ValueError(f"keys {tuple(self.keys.shape)} and values/pieces/positions differ")
        self.values = self.values.to(torch.long)
        self.norms = (self.keys.float() ** 2).sum(1)

    def __len__(self) -> int:
        return int(self.keys.shape[0])

    @property
    def megabytes(self) -> float:
        """Memory of what the search reads (keys, values, norms), in MB (10^6 bytes)."""
        n = sum(t.element_size() * t.numel() for t in (self.keys, self.values, self.norms))
        return n / 1e6

    def subset(self, keep: torch.Tensor) -> Datastore:
        """The keys where ``keep`` (bool ``[N]``) holds."""
        keep = keep.to(self.keys.device)
        return Datastore(self.keys[keep], self.values[keep], self.piece[keep], self.position[keep])

    def to(self, dtype: str | torch.dtype) -> Datastore:
        """The same datastore with its keys stored as ``dtype`` (float32 or float16); itself
        (with its index) when they already are."""
        dtype = DTYPES[dtype] if isinstance(dtype, str) else dtype
        if self.keys.dtype == dtype:
            return self
        if self.index is not None:
            raise ValueError("convert the keys before indexing them (the index holds its own)")
        out = Datastore(self.keys.to(dtype), self.values, self.piece, self.position)
        out.seconds = self.seconds
        return out

    def search(self, queries: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(d, v)``: the squared L2 distances ``[m, k']`` (ascending) of each query's
        ``k' = min(k, N)`` nearest keys and their values; exact, by matrix products over
        chunks (see the module doc), or through :attr:`index` when it is set (approximate:
        distances ``inf`` where it found fewer than ``k'``)."""
        n = len(self)
        if n == 0:
            raise ValueError("the datastore is empty (no adaptation tokens)")
        if k < 1:
            raise ValueError(f"neighbours must be >= 1, got {k}")
        k = min(int(k), n)
        if self.index is not None:
            return self.indexed_search(queries, k)
        q = queries.to(self.keys.device, torch.float32)
        qn = (q**2).sum(1)
        key_chunk = min(n, CHUNK_ELEMENTS, KEY_CHUNK)
        q_chunk = max(1, CHUNK_ELEMENTS // key_chunk)
        dist, idx = [], []
        for q0 in range(0, q.shape[0], q_chunk):
            qc, qnc = q[q0 : q0 + q_chunk], qn[q0 : q0 + q_chunk, None]
            best_d = best_i = None
            for k0 in range(0, n, key_chunk):
                keys = self.keys[k0 : k0 + key_chunk].float()
                d = qnc - 2.0 * (qc @ keys.T) + self.norms[None, k0 : k0 + key_chunk]
                d, i = torch.topk(d, min(k, d.shape[1]), dim=1, largest=False)
                i = i + k0
                if best_d is not None:
                    d, j = torch.topk(torch.cat([best_d, d], 1), k, dim=1, largest=False)
                    i = torch.cat([best_i, i], 1).gather(1, j)
                best_d, best_i = d, i
            dist.append(best_d.clamp_min_(0.0))
            idx.append(best_i)
        d, i = torch.cat(dist), torch.cat(idx)
        return d, self.values[i]

    def indexed_search(
        self, queries: torch.Tensor, k: int, keep: np.ndarray | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(d, v)`` through :attr:`index` (approximate; ``inf`` where fewer than ``k`` keys
        were found), over the keys where ``keep`` holds (None: all)."""
        d, i = self.index.search(queries, k, keep)
        return d.to(self.values.device), self.values[i.clamp_min(0).to(self.values.device)]


class Restricted:
    """A datastore searched through its index over the keys where ``keep`` (bool ``[N]``)
    holds: :func:`restricted` of an indexed store (no copy of the keys)."""

    def __init__(self, store: Datastore, keep: torch.Tensor) -> None:
        self.store = store
        self.keep = keep.cpu().numpy().astype(bool)
        self.count = int(self.keep.sum())

    def __len__(self) -> int:
        return self.count

    def search(self, queries: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self.count == 0:
            raise ValueError("the datastore is empty (no adaptation tokens)")
        return self.store.indexed_search(queries, min(int(k), self.count), self.keep)


def restricted(store: Datastore, keep: torch.Tensor) -> Datastore | Restricted:
    """The keys of ``store`` where ``keep`` holds, to search: a copy (:meth:`Datastore.subset`)
    when the search is exact, a :class:`Restricted` view of its index otherwise."""
    if store.index is None:
        return store.subset(keep)
    return Restricted(store, keep)


def index_store(store: Datastore, s: dict, seed: int = 0) -> Datastore:
    """``store`` with the approximate index that ``s`` (:func:`settings`) asks for: ``search:
    ivf``, or ``auto`` with more than ``exact_max_keys`` keys; its keys first converted to
    ``s["dtype"]`` (the index holds them as that type). Otherwise ``store`` unchanged (exact)."""
    from .knnindex import IvfIndex

    if not (s["search"] == "ivf" or (s["search"] == "auto" and len(store) > s["exact_max_keys"])):
        return store
    store = store.to(s["dtype"])
    store.index = IvfIndex(store.keys, s["lists"], s["nprobe"], seed)
    log.info(
        "knn: IVF index of %d keys, %d lists, nprobe %d, built in %.1f s",
        len(store),
        store.index.lists,
        store.index.nprobe,
        store.index.seconds,
    )
    return store


def build_datastore(
    model: Any,
    seqs: Sequence[np.ndarray],
    bos: int | None = None,
    device: Any = None,
    batch: int = 8,
    dtype: str | torch.dtype = torch.float32,
) -> Datastore:
    """The datastore of ``seqs`` (see the module doc): one key per token ``i >= 1`` of each
    piece, keys stored as ``dtype`` on ``device`` (default: the model's)."""
    if isinstance(dtype, str):
        dtype = DTYPES[dtype]
    t0 = time.perf_counter()
    seqs = [np.asarray(s, dtype=np.int64).ravel() for s in seqs]
    # one buffer per field, filled window by window: appending each window's keys to a list
    # fragments the heap between the forward passes' large temporaries (measured: the process
    # grew by 15x the keys' memory, 20 GB for 3 M keys of 128 floats)
    cap = sum(len(s) for s in seqs)
    keys = values = piece = position = None
    n = 0
    for p, i0, _, hidden in window_states(model, seqs, bos, device, batch, logits=False):
        t = hidden.shape[0]
        if keys is None:
            dev = hidden.device
            keys = torch.empty((cap, hidden.shape[1]), dtype=dtype, device=dev)
            values = torch.empty(cap, dtype=torch.long, device=dev)
            piece = torch.empty(cap, dtype=torch.int32, device=dev)
            position = torch.empty(cap, dtype=torch.int32, device=dev)
        keys[n : n + t] = hidden
        values[n : n + t] = torch.from_numpy(seqs[p][i0 : i0 + t])
        piece[n : n + t] = p
        position[n : n + t] = torch.arange(i0, i0 + t, dtype=torch.int32)
        n += t
    if keys is None:
        raise ValueError("no adaptation tokens for the datastore (every piece under 2 tokens)")
    store = Datastore(keys[:n], values[:n], piece[:n], position[:n])
    store.seconds = time.perf_counter() - t0
    return store


# --------------------------------------------------------------------------- distribution


def knn_distribution(d: torch.Tensor, v: torch.Tensor, temperature: float, vocab: int):
    """``[m, vocab]`` float64: ``softmax(-d / temperature)`` of the neighbours' distances
    ``d`` ``[m, k]``, summed per value ``v`` ``[m, k]``."""
    w = torch.softmax(-d.double() / float(temperature), dim=1)
    if not torch.isfinite(d).all():  # an approximate search found fewer than k: weight 0
        w = torch.nan_to_num(w.masked_fill(~torch.isfinite(d), 0.0), nan=0.0)
    out = torch.zeros((d.shape[0], vocab), dtype=torch.float64, device=d.device)
    return out.scatter_add_(1, v.to(d.device), w)


def knn_mixture(
    logits: torch.Tensor,
    d: torch.Tensor,
    v: torch.Tensor,
    lam: float,
    temperature: float,
    allowed: torch.Tensor | None = None,
) -> torch.Tensor:
    """``[m, V]`` float64: ``(1 - lam) softmax(logits) + lam p_knn`` (:func:`knn_distribution`),
    zero outside ``allowed`` (bool ``[m, V]``) and renormalised over it."""
    p_t = torch.softmax(logits.double(), dim=1)
    p = (1 - lam) * p_t + lam * knn_distribution(d, v, temperature, logits.shape[1]).to(p_t)
    if allowed is not None:
        p = p.masked_fill(~allowed.to(p.device), 0.0)
    return p / p.sum(1, keepdim=True)


def _score(
    logits: torch.Tensor,
    hidden: torch.Tensor,
    targets: torch.Tensor,
    keep: torch.Tensor | None,
    params: Sequence[tuple[float, float]],
    store: Datastore | None,
    neighbours: int,
) -> np.ndarray:
    """``[len(params), t]`` log2 probabilities of ``targets`` ``[t]`` under each ``(lam, T)``,
    from float64 ``logits`` ``[t, V]`` and ``hidden`` ``[t, H]`` (the queries); ``keep``:
    the grammar's mask ``[t, V]`` (None: no mask)."""
    tgt = targets[:, None]
    base = logits if keep is None else logits.masked_fill(~keep, -float("inf"))
    lp0 = torch.log_softmax(base, dim=1).gather(1, tgt).squeeze(1).numpy() / _LN2
    out = np.empty((len(params), len(targets)))
    temps = sorted({t for lam, t in params if lam})
    by_t = {}
    if temps:
        if store is None:
            raise ValueError("a kNN lambda > 0 needs a datastore")
        d, v = store.search(hidden, neighbours)
        d, v = d.cpu(), v.cpu()
        p_t = torch.softmax(logits, dim=1)
        by_t = {temp: knn_distribution(d, v, temp, logits.shape[1]) for temp in temps}
    for j, (lam, temp) in enumerate(params):
        if lam == 0:
            out[j] = lp0
            continue
        p = (1 - lam) * p_t + lam * by_t[temp]
        if keep is not None:
            p = p.masked_fill(~keep, 0.0)
        lp = torch.log(p.gather(1, tgt).squeeze(1)) - torch.log(p.sum(1))
        out[j] = lp.numpy() / _LN2
    return out


def knn_log_probs(
    model: Any,
    store: Datastore | None,
    seq: np.ndarray,
    params: Sequence[tuple[float, float]],
    neighbours: int,
    bos: int | None = None,
    grammar: Any = None,
    device: Any = None,
    batch: int = 8,
) -> np.ndarray:
    """``[len(params), len(seq) - 1]``: ``log2`` probabilities of tokens ``1 ..`` of ``seq``
    under the kNN-LM of each ``(lam, T)`` of ``params`` (``neighbours`` nearest keys of
    ``store``), under ``grammar``'s mask. ``lam = 0`` is the masked log-softmax of the
    logits, exactly as :func:`tokentransfer.likelihood.transformer_log_probs` computes it
    (``store`` may then be None)."""
    seq = np.asarray(seq, dtype=np.int64).ravel()
    params = [(float(lam), float(t)) for lam, t in params]
    check_grid([lam for lam, _ in params] or [0.0], [t for _, t in params] or [1.0])
    n = max(len(seq) - 1, 0)
    out = np.empty((len(params), n))
    if not n:
        return out
    masks = grammar_masks(grammar, seq) if grammar is not None else None
    for _, i0, logits, hidden in window_states(model, [seq], bos, device, batch):
        t = logits.shape[0]
        keep = None if masks is None else torch.from_numpy(masks[i0 : i0 + t])
        tgt = torch.from_numpy(seq[i0 : i0 + t])
        out[:, i0 - 1 : i0 - 1 + t] = _score(logits, hidden, tgt, keep, params, store, neighbours)
    return out


# --------------------------------------------------------------------------- sampling


class KnnLogitsProcessor(MixLogitsProcessor):
    """The grammar mask, and with ``lam > 0`` the kNN-LM's masked mixture in place of the
    transformer's softmax: scores ``ln p / temperature`` (``-inf`` where forbidden), ``p`` from
    the logits and hidden state of the last position that ``tap`` saw. Applied after the
    sampler divided the logits by ``temperature``; follows one batch."""

    def __init__(
        self,
        grammar: Any,
        store: Datastore,
        tap: OutputTap,
        lam: float,
        knn_temperature: float,
        neighbours: int,
        skip: Sequence[int] = (),
        temperature: float = 1.0,
    ) -> None:
        super().__init__(grammar, lam, skip, temperature)
        check_grid([lam], [knn_temperature])
        self.store, self.tap = store, tap
        self.knn_temperature, self.neighbours = float(knn_temperature), int(neighbours)

    def mix(self, scores: torch.FloatTensor) -> torch.FloatTensor:
        allowed = torch.from_numpy(self.grammar.mask(self.state))
        v = min(scores.shape[1], allowed.shape[1])
        keep = torch.zeros(scores.shape, dtype=torch.bool)
        keep[:, :v] = allowed[:, :v]
        hidden = self.tap.hidden[:, -1, :]
        logits = self.tap.logits[:, -1, :].double().cpu()
        d, vals = self.store.search(hidden, self.neighbours)
        p = knn_mixture(logits, d.cpu(), vals.cpu(), self.lam, self.knn_temperature, keep)
        with np.errstate(divide="ignore"):
            out = torch.log(p) / self.temperature
        return out.masked_fill(~keep, -float("inf")).to(scores.dtype).to(scores.device)


def knn_samples(
    model: Any,
    store: Datastore,
    lam: float,
    knn_temperature: float,
    neighbours: int,
    n: int,
    length: int,
    seed: int,
    start: Sequence[int],
    grammar: Any,
    temperature: float = 1.0,
    banned: Sequence[int] = (),
    **sampling: Any,
) -> list[np.ndarray]:
    """``n`` samples of ``length`` tokens from the kNN-LM under ``grammar`` (required):
    :func:`tokentransfer.baselines.transformer_samples` with a :class:`KnnLogitsProcessor` as
    its logits hook. ``start``, ``temperature``, ``banned`` and ``sampling`` (``top_k``,
    ``device``, ``batch``, ``keep_start``) are that function's arguments; sample ``i`` draws
    from ``default_rng(SeedSequence(seed).spawn(n)[i])``, so ``lam = 0`` gives that function's
    samples with the same grammar and seed, token for token."""
    from .baselines import transformer_samples

    if grammar is None:
        raise ValueError("kNN sampling needs the grammar (the REMI mask)")
    with OutputTap(model) as tap:

        def hook() -> KnnLogitsProcessor:
            return KnnLogitsProcessor(
                grammar, store, tap, lam, knn_temperature, neighbours, banned, temperature
            )

        return transformer_samples(
            model, n, length, seed, start, temperature, banned=banned, logits_hook=hook, **sampling
        )


# --------------------------------------------------------------------------- lam and T


@dataclass(kw_only=True)
class KnnChoice(LambdaChoice):
    """A :class:`tokentransfer.fusion.LambdaChoice` with the chosen ``temperature`` too: its
    ``bits`` are keyed by ``(lam, T)``; ``keys``: the size of the datastore they were scored
    with."""

    temperature: float
    keys: int = 0

    def rows(self) -> list[dict[str, float]]:
        """One row per grid value: lam, temperature, bits_per_token, chosen (1/0)."""
        return [
            {
                "lam": lam,
                "temperature": t,
                "bits_per_token": b,
                "chosen": int((lam, t) == (self.lam, self.temperature)),
            }
            for (lam, t), b in sorted(self.bits.items())
        ]


def choose_knn(
    model: Any,
    seqs: Sequence[np.ndarray],
    lambdas: Sequence[float] = LAMBDAS,
    temperatures: Sequence[float] = TEMPERATURES,
    neighbours: int = NEIGHBOURS,
    bos: int | None = None,
    grammar: Any = None,
    fraction: float = 0.2,
    seed: int = 0,
    groups: Sequence[str] | None = None,
    device: Any = None,
    max_tokens: int | None = None,
    min_groups: int = 2,
    store: Datastore | None = None,
) -> KnnChoice:
    """Choose ``(lam, T)`` on held-out tokens of ``seqs`` (see the module doc). Without
    held-out tokens the choice is ``lam = 0`` and every bits value is ``nan``.

    ``store``: the datastore of all of ``seqs`` (:func:`build_datastore`, float32; or as
    :func:`index_store` returns it, its keys then searched through the index with a bitmap of
    the fitted ones, :func:`restricted`), built here if not given. No second forward pass: the
    held-out split's datastore is the keys of the fitted pieces (or heads) and the held-out
    tokens' queries are their own keys, with logits from the output layer. The model is causal
    and the windows of a head are those of its piece up to the cut, so these are the keys and
    queries that the fitted pieces and the held-out pieces would give on their own."""
    from .fusion import cap_held, grid_choice, holdout

    t0 = time.perf_counter()
    lambdas = sorted({float(x) for x in lambdas})
    temperatures = sorted({float(x) for x in temperatures})
    check_grid(lambdas, temperatures)
    grid = [(lam, t) for lam in lambdas for t in temperatures]
    seqs = [np.asarray(s, dtype=np.int64).ravel() for s in seqs]
    # the split of pieces tagged with their index: holdout's own choice of pieces and cuts
    tagged = [np.full(len(s), i, dtype=np.int64) for i, s in enumerate(seqs)]
    fit, held = holdout(tagged, fraction, seed, groups)
    if max_tokens is not None and held:
        held = cap_held(held, int(max_tokens))
    fit_len = {int(f[0]): len(f) for f in fit if len(f) >= 2}
    held = [(int(h[0]), cut, len(h)) for h, cut in held if len(h) > cut]
    if not held or not fit_len:
        log.warning("no held-out tokens to choose the kNN lambda on: lambda = 0")
        bits = {g: math.nan for g in grid}
        return KnnChoice(0.0, bits, 0, len(fit_len), 0, temperature=temperatures[0])
    if store is None:
        store = build_datastore(model, seqs, bos, device)
    limit = torch.zeros(len(seqs), dtype=torch.int64)  # keys of piece p: positions < limit[p]
    for p, n in fit_len.items():
        limit[p] = n
    limit = limit.to(store.piece.device)
    fitted = restricted(store, store.position.long() < limit[store.piece.long()])
    out_layer = model.get_output_embeddings()
    per: list[list[np.ndarray]] = [[] for _ in grid]
    for p, cut, n in held:
        rows = (store.piece == p) & (store.position >= cut) & (store.position < n)
        hidden = store.keys[rows].float()
        with torch.no_grad():
            logits = out_layer(hidden.to(out_layer.weight.dtype)).double().cpu()
        keep = None
        if grammar is not None:
            keep = torch.from_numpy(grammar_masks(grammar, seqs[p][:n])[cut:n])
        tgt = torch.from_numpy(seqs[p][cut:n])
        lp = _score(logits, hidden, tgt, keep, grid, fitted, neighbours)
        for j in range(len(grid)):
            per[j].append(lp[j])
    why = "kNN lambda = 0 (the grid scores the tails of pieces whose heads are in the datastore)"
    zero = (0.0, temperatures[0])
    bits, tokens, best = grid_choice(grid, per, groups, len(seqs), min_groups, zero, why)
    seconds = time.perf_counter() - t0
    out = KnnChoice(best[0], bits, tokens, len(fit_len), len(held), seconds, temperature=best[1])
    out.keys = len(fitted)
    log.info(
        "kNN lambda %.3g, T %.3g chosen on %d held-out tokens (%d keys): %s",
        best[0],
        best[1],
        tokens,
        len(fitted),
        ", ".join(f"{lam:g}/{t:g}: {b:.4f}" for (lam, t), b in bits.items()),
    )
    return out
