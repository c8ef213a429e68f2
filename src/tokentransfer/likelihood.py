"""Held-out likelihood: bits per token of every method that defines a next-token distribution.

Every method scores the same tokens of a piece: token ``i`` given tokens ``0 .. i-1`` for
``i = 1 .. len(piece) - 1`` (the first token, a ``Bar``, is given; a transformer also sees its
BOS before it). :func:`bits_per_token` turns the per-token ``log2`` probabilities of many
pieces into ``-sum / tokens``.

- n-gram chains (:func:`chain_log_probs`): :class:`tokentransfer.baselines.NgramModel`'s
  smoothed distribution, optionally renormalised over the tokens the REMI grammar allows, then
  mixed with a uniform floor: ``(1 - floor) * p + floor / |support|`` (support: the allowed
  tokens, or the whole vocabulary without a grammar). The chain gives a token it never saw
  probability 0 (a test piece of a new style has such tokens), so the floor is what makes
  every test token cost a finite amount; it is the same floor as the walk's.
- the walk (:func:`walk_log_probs`): :meth:`tokentransfer.walk.Walker.log_probs`, the walk's
  next-token distribution without restarts under the grammar (the compiled step the walk draws
  from, :mod:`tokentransfer.walkstep`), smoothed with the same floor.
- a HF causal LM (:func:`transformer_log_probs`): its softmax, optionally with the logits of
  the tokens the grammar forbids set to ``-inf`` (renormalised over the allowed ones). Past
  the model's context the piece is scored in windows of ``context`` tokens that overlap by
  ``context // 2``: every token after the first window is predicted from at least
  ``context // 2`` tokens before it (the sampler of :mod:`tokentransfer.baselines` slides the
  same way).
- fused models (:func:`fused_log_probs`, see :mod:`tokentransfer.fusion`): the transformer's
  logits plus ``lam * ln q`` of a cheap target model ``q`` (a :class:`ChainTarget` or a
  :class:`WalkTarget`), under the grammar.

:data:`FLOOR` (``1e-3``) is the default floor of the cheap models. A token the grammar forbids
scores ``-inf`` under a masked model (counted as ``forbidden``; real pieces tokenized by the
same tokenizer have none: the grammar replays them).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

#: uniform floor mixed into the cheap models' distributions (chain and walk)
FLOOR = 1e-3
_LN2 = float(np.log(2.0))


# --------------------------------------------------------------------------- helpers


def bits_per_token(log_probs: Iterable[np.ndarray]) -> dict[str, float]:
    """``{"bits_per_token", "tokens", "forbidden"}`` of per-token ``log2`` probabilities.

    ``forbidden``: tokens scored ``-inf`` (then ``bits_per_token`` is ``inf``); no token at all
    gives ``nan``.
    """
    total, tokens, forbidden = 0.0, 0, 0
    for lp in log_probs:
        lp = np.asarray(lp, dtype=np.float64).ravel()
        tokens += len(lp)
        bad = ~np.isfinite(lp)
        forbidden += int(bad.sum())
        total += float(lp[~bad].sum())
    if not tokens:
        bpt = float("nan")
    elif forbidden:
        bpt = float("inf")
    else:
        bpt = -total / tokens
    return {"bits_per_token": bpt, "tokens": tokens, "forbidden": forbidden}


def grammar_masks(grammar: Any, seq: np.ndarray) -> np.ndarray:
    """``[len(seq), V]`` bool: row ``i`` holds the tokens the grammar allows as token ``i``
    after ``seq[:i]`` (row 0: the start state, which allows only ``Bar``). Tokens are advanced
    without a check, so a row after a forbidden token still follows the piece."""
    seq = np.asarray(seq, dtype=np.int64).ravel()
    st = grammar.new_state(1)
    out = np.empty((len(seq), grammar.vocab_size), dtype=bool)
    for i in range(len(seq)):
        out[i] = grammar.mask(st)[0]
        grammar.advance(st, seq[i : i + 1])
    return out


def smooth(p: np.ndarray, allowed: np.ndarray | None, floor: float) -> np.ndarray:
    """``(1 - floor) * p + floor / |support|`` over ``allowed`` (``[..., V]`` bool; None: every
    token). ``p`` must sum to one over the support."""
    if not 0 <= floor < 1:
        raise ValueError(f"floor must be in [0, 1), got {floor}")
    if allowed is None:
        return (1 - floor) * p + floor / p.shape[-1]
    allowed = np.asarray(allowed, dtype=bool)
    n = allowed.sum(axis=-1, keepdims=True)
    return np.where(allowed, (1 - floor) * p + floor / np.maximum(n, 1), 0.0)


def _pick(rows: np.ndarray, seq: np.ndarray) -> np.ndarray:
    """``rows[i, seq[i + 1]]``: the probability each row gives the token it predicts."""
    return rows[np.arange(len(rows)), seq[1 : len(rows) + 1]]


def _log2(p: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log2(p)


# --------------------------------------------------------------------------- cheap models


class ChainTarget:
    """An n-gram chain as a target model: its next-token distributions, under the grammar's
    mask when ``grammar`` is given, smoothed with ``floor`` (see the module doc)."""

    name = "chain"

    def __init__(self, chain: Any, grammar: Any = None, floor: float = FLOOR) -> None:
        if not 0 <= floor < 1:
            raise ValueError(f"floor must be in [0, 1), got {floor}")
        self.chain, self.grammar, self.floor = chain, grammar, float(floor)

    def _one(self, context: Sequence[int], allowed: np.ndarray | None) -> np.ndarray:
        k = self.chain.order - 1
        ctx = tuple(context[max(len(context) - k, 0) :]) if k else ()
        return smooth(self.chain.distribution(ctx, allowed=allowed), allowed, self.floor)

    def dists(self, seq: np.ndarray, masks: np.ndarray | None = None) -> np.ndarray:
        """``[len(seq) - 1, V]``: row ``i - 1`` is the distribution of token ``i`` after
        ``seq[:i]``. ``masks``: :func:`grammar_masks` of ``seq`` (computed when the target has
        a grammar and none is given)."""
        seq = np.asarray(seq, dtype=np.int64).ravel()
        if self.grammar is not None and masks is None:
            masks = grammar_masks(self.grammar, seq)
        if self.grammar is None:
            masks = None
        out = np.empty((max(len(seq) - 1, 0), self.chain.vocab_size))
        ids = seq.tolist()
        k = self.chain.order - 1
        for i in range(1, len(seq)):
            out[i - 1] = self._one(ids[max(i - k, 0) : i], None if masks is None else masks[i])
        return out

    def next_dists(self, histories: Sequence[Sequence[int]], state: Any) -> np.ndarray:
        """``[n, V]``: the next-token distribution of ``n`` sequences (their tokens so far and
        their :class:`tokentransfer.grammar.GrammarState`; ``state`` is unused without a
        grammar)."""
        masks = self.grammar.mask(state) if self.grammar is not None else None
        return np.stack(
            [
                self._one(list(h), None if masks is None else masks[i])
                for i, h in enumerate(histories)
            ]
        )


class WalkTarget:
    """The walk (:class:`tokentransfer.walk.Walker`) as a target model: its distribution of the
    next token without restarts (:meth:`~tokentransfer.walkrows.WalkRows.next_distribution`),
    under its grammar, smoothed with ``floor`` as :meth:`~tokentransfer.walk.Walker.log_probs`
    does."""

    name = "walk"

    def __init__(self, walker: Any, floor: float = FLOOR) -> None:
        if not 0 < floor < 1:
            raise ValueError(f"floor must be in (0, 1), got {floor}")
        self.walker, self.floor = walker, float(floor)
        self.grammar = walker.g

    def dists(self, seq: np.ndarray, masks: np.ndarray | None = None) -> np.ndarray:
        """``[len(seq) - 1, V]`` as :meth:`ChainTarget.dists` (``masks`` is not needed): the
        walk's step read as distributions
        (:meth:`~tokentransfer.walkrows.WalkRows.distributions`)."""
        p, allowed = self.walker.distributions(np.asarray(seq, dtype=np.int64).ravel())
        return smooth(p, allowed, self.floor)

    def next_dists(self, histories: Sequence[Sequence[int]], state: Any) -> np.ndarray:
        masks = self.grammar.mask(state)
        out = np.empty((len(histories), self.walker.vocab_size))
        for i, h in enumerate(histories):
            if len(h) == 0:  # before the first token: the walk starts at a bar
                p = masks[i] / max(masks[i].sum(), 1)
            else:
                p = self.walker.next_distribution(int(h[-1]), state, i)
            out[i] = smooth(p, masks[i], self.floor)
        return out


def chain_log_probs(
    chain: Any, seq: np.ndarray, grammar: Any = None, floor: float = FLOOR
) -> np.ndarray:
    """``log2 P(token i | tokens before it)``, ``i = 1 .. len(seq) - 1``, under the n-gram
    ``chain`` (renormalised over the tokens ``grammar`` allows, when given), smoothed with
    ``floor``."""
    seq = np.asarray(seq, dtype=np.int64).ravel()
    return _log2(_pick(ChainTarget(chain, grammar, floor).dists(seq), seq))


def walk_log_probs(walker: Any, seq: np.ndarray, floor: float = FLOOR) -> np.ndarray:
    """``log2 P(token i | tokens before it)`` under the walk, smoothed with ``floor``
    (:meth:`tokentransfer.walk.Walker.log_probs`)."""
    return walker.log_probs(np.asarray(seq, dtype=np.int64).ravel(), floor)


# --------------------------------------------------------------------------- transformer


def windows(n: int, context: int, first: int) -> list[tuple[int, int, int]]:
    """Windows ``(a, b, t)`` over a sequence of ``n`` ids for a model of ``context`` positions:
    the window is ids ``a .. b-1`` and it scores targets ``t .. b-1`` (target ``j`` from the
    logits at ``j - 1``). Windows overlap by ``context // 2``; targets start at ``first``."""
    if context < 2:
        raise ValueError(f"context must be >= 2, got {context}")
    keep = max(1, context // 2)
    out: list[tuple[int, int, int]] = []
    if first >= n:
        return out
    a = 0
    while True:
        b = min(a + context, n)
        out.append((a, b, first))
        if b == n:
            return out
        first, a = b, b - keep


def _forward_name(model: Any) -> str:
    import inspect

    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def transformer_logits(
    model: Any, seq: np.ndarray, bos: int | None = None, device: Any = None, batch: int = 8
):
    """Yield ``(i0, logits)``: float64 logits ``[t, V]`` (a torch tensor) of the model's
    prediction of tokens ``i0 .. i0 + t - 1`` of ``seq`` (``i >= 1``), from ``[bos] + seq``
    (``bos=None``: ``seq`` alone), window by window (:func:`windows`). The model runs in eval
    mode under ``torch.no_grad`` (its training mode is restored)."""
    import torch

    from .model import context_length

    seq = np.asarray(seq, dtype=np.int64).ravel()
    off = 0 if bos is None else 1
    x = np.concatenate([[bos], seq]).astype(np.int64) if off else seq
    spans = windows(len(x), context_length(model), off + 1)
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for s0 in range(0, len(spans), batch):
                group = spans[s0 : s0 + batch]
                width = max(b - a for a, b, _ in group)
                ids = torch.zeros((len(group), width), dtype=torch.long)
                att = torch.zeros((len(group), width), dtype=torch.long)
                for r, (a, b, _) in enumerate(group):
                    ids[r, : b - a] = torch.from_numpy(x[a:b])
                    att[r, : b - a] = 1
                logits = model(input_ids=ids.to(device), attention_mask=att.to(device)).logits
                for r, (a, b, t) in enumerate(group):
                    yield t - off, logits[r, t - 1 - a : b - 1 - a].double().cpu()
    finally:
        model.train(was_training)


def transformer_log_probs(
    model: Any,
    seq: np.ndarray,
    bos: int | None = None,
    grammar: Any = None,
    device: Any = None,
    batch: int = 8,
    masks: np.ndarray | None = None,
) -> np.ndarray:
    """``log2 P(token i | BOS, tokens before it)``, ``i = 1 .. len(seq) - 1``, under a HF
    causal LM; with a ``grammar`` the logits of forbidden tokens are ``-inf`` first (the
    softmax is renormalised over the allowed tokens). ``masks``: :func:`grammar_masks` of
    ``seq``, if already computed."""
    return fused_log_probs(model, None, seq, [0.0], bos, grammar, device, batch, masks)[0]


def fused_log_probs(
    model: Any,
    target: Any,
    seq: np.ndarray,
    lams: Sequence[float],
    bos: int | None = None,
    grammar: Any = None,
    device: Any = None,
    batch: int = 8,
    masks: np.ndarray | None = None,
) -> np.ndarray:
    """``[len(lams), len(seq) - 1]``: ``log2`` probabilities of tokens ``1 ..`` under the
    fused model of each ``lam``: ``softmax(logits + lam * ln q)`` over the tokens ``grammar``
    allows, ``q`` the ``target``'s smoothed distribution (:class:`ChainTarget`,
    :class:`WalkTarget`). ``lam = 0`` is exactly the transformer under the mask (``target`` is
    then not evaluated; ``target=None`` allows only ``lam = 0``)."""
    import torch

    seq = np.asarray(seq, dtype=np.int64).ravel()
    lams = [float(lam) for lam in lams]
    if any(lam < 0 for lam in lams):
        raise ValueError(f"lambda must be >= 0, got {lams}")
    n = max(len(seq) - 1, 0)
    out = np.empty((len(lams), n))
    if not n:
        return out
    if grammar is not None and masks is None:
        masks = grammar_masks(grammar, seq)
    lnq = None
    if any(lams) and target is None:
        raise ValueError("a lambda > 0 needs a target model")
    if any(lams):
        with np.errstate(divide="ignore"):
            lnq = torch.from_numpy(np.log(target.dists(seq, masks)))
    for i0, logits in transformer_logits(model, seq, bos, device, batch):
        t = logits.shape[0]
        tgt = torch.from_numpy(seq[i0 : i0 + t])
        keep = None if masks is None else torch.from_numpy(masks[i0 : i0 + t])
        for j, lam in enumerate(lams):
            s = logits if lam == 0 else logits + lam * lnq[i0 - 1 : i0 - 1 + t]
            if keep is not None:
                s = s.masked_fill(~keep, -float("inf"))
            lp = torch.log_softmax(s, dim=1).gather(1, tgt[:, None]).squeeze(1)
            out[j, i0 - 1 : i0 - 1 + t] = lp.numpy() / _LN2
    return out


#: default of ``evaluate.bits_tokens``: most test tokens scored per method and target
BITS_TOKENS = 20_000
#: shortest cut of a piece that :func:`scored_pieces` makes
MIN_PIECE_TOKENS = 64


def scored_pieces(seqs: Sequence[np.ndarray], max_tokens: int | None) -> list[np.ndarray]:
    """The test tokens every method is scored on: each piece cut to its first
    ``max(64, max_tokens // len(seqs))`` tokens, pieces in their order until ``max_tokens``
    tokens are taken (the last one cut to what is left). Spread over the pieces rather than
    the first ones, and the same for every method; ``None`` keeps every token."""
    seqs = [np.asarray(s, dtype=np.int64) for s in seqs]
    if max_tokens is None or not seqs:
        return seqs
    per_piece = max(MIN_PIECE_TOKENS, int(max_tokens) // len(seqs))
    out, left = [], int(max_tokens)
    for s in seqs:
        if left < 2:
            break
        cut = s[: min(per_piece, left)]
        if len(cut) >= 2:
            out.append(cut)
            left -= len(cut)
    return out


def corpus_bits(
    log_probs_fn, seqs: Sequence[np.ndarray], max_tokens: int | None = None
) -> dict[str, float]:
    """:func:`bits_per_token` of ``log_probs_fn(piece)`` over the pieces ``seqs``, cut by
    :func:`scored_pieces` to at most ``max_tokens`` tokens (None: every token)."""
    return bits_per_token(log_probs_fn(s) for s in scored_pieces(seqs, max_tokens))
