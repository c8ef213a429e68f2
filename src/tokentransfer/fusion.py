"""Fused sampling: the pretrained transformer steered by a cheap model of the target style.

At each step the next token is drawn from

    P(w)  proportional to  (p_T(w) * q(w) ** lam) ** (1 / temperature)    over the allowed w

where ``p_T`` is the transformer's softmax, ``q`` the target model's next-token distribution
(:class:`tokentransfer.likelihood.ChainTarget`: the smoothed n-gram chain of the target;
:class:`tokentransfer.likelihood.WalkTarget`: the walk's transition distribution), both smoothed
by a uniform floor so that ``q > 0`` on every allowed token, and "allowed" is the REMI grammar's
mask in the sample's state. In logits: ``logits + lam * ln q``, forbidden tokens ``-inf``.
``lam = 0`` is the transformer under the mask, token for token
(:func:`tokentransfer.baselines.transformer_samples` with the same grammar and seed); a large
``lam`` concentrates the draw on the target model's most likely tokens. No gradient step: the
adaptation is counting (fitting ``q``) and :func:`choose_lambda`.

:func:`choose_lambda` scores every ``lam`` of a small grid on held-out tokens of the adaptation
pieces (:func:`holdout`: whole held-out groups when there are two or more, else the last part of
the one piece, scored in its real context), with ``q`` refitted on the rest; all the grid's
bits/token are reported, the best is chosen (ties: the smaller ``lam``). With one group (k = 1)
the grid is reported but ``lam = 0`` is chosen: the tail of the piece the chain was fitted on
rewards the chain for knowing that piece, not the style. On Tegridy
(docs/results-tegridy.md) the tail chose ``lam`` 0.25-1 where the test pieces wanted 0 or 0.25
(up to 2.9 bits/token worse than the transformer alone), while held-out groups chose the test
pieces' best ``lam`` in 10 of 12 cases at k = 5 and 20.

:func:`fused_samples` is :func:`tokentransfer.baselines.transformer_samples` (the same
KV-cached loop with a sliding window) with a :class:`FusedLogitsProcessor` as its logits hook in
place of the grammar processor; sample ``i`` draws from
``default_rng(SeedSequence(seed).spawn(n)[i])``.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .likelihood import FLOOR, ChainTarget, WalkTarget, bits_per_token, fused_log_probs
from .logits import GrammarLogitsProcessor

log = logging.getLogger(__name__)

#: the default grid of lambda (0: the transformer alone)
LAMBDAS = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)


def fused_distribution(
    logits: np.ndarray, q: np.ndarray, lam: float, allowed: np.ndarray
) -> np.ndarray:
    """The fused next-token distribution ``softmax(logits + lam * ln q)`` over ``allowed``
    (``[V]`` or ``[n, V]`` arrays; ``lam = 0``: the transformer's softmax under the mask)."""
    logits = np.asarray(logits, dtype=np.float64)
    s = logits
    if lam:
        with np.errstate(divide="ignore"):
            s = logits + lam * np.log(np.asarray(q, dtype=np.float64))
    s = np.where(allowed, s, -np.inf)
    s = s - s.max(axis=-1, keepdims=True)
    e = np.exp(s)
    return e / e.sum(axis=-1, keepdims=True)


class MixLogitsProcessor(GrammarLogitsProcessor):
    """The grammar mask, then with ``lam > 0`` the subclass's :meth:`mix` of the masked scores
    (``lam = 0``: the grammar processor's scores, token for token). ``temperature``: the one
    the sampler divided the logits by before this processor. Follows one batch."""

    def __init__(
        self, grammar: Any, lam: float, skip: Sequence[int] = (), temperature: float = 1.0
    ) -> None:
        super().__init__(grammar, skip)
        self.lam, self.temperature = float(lam), float(temperature)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        scores = super().__call__(input_ids, scores)
        return scores if self.lam == 0 else self.mix(scores)

    def mix(self, scores: torch.FloatTensor) -> torch.FloatTensor:
        """The scores of the step (masked, ``[n, V]``) with the other model mixed in."""
        raise NotImplementedError


class FusedLogitsProcessor(MixLogitsProcessor):
    """The grammar mask plus ``(lam / temperature) * ln q`` of a target model.

    Applied after the sampler divided the logits by ``temperature`` (as
    :func:`tokentransfer.baselines.transformer_samples` does), so the draw is from
    ``((p_T * q ** lam) ** (1 / temperature))`` renormalised. ``skip``: ids that are not part of
    the music stream (BOS, PAD): neither the grammar nor the target model sees them. Follows one
    batch (a new processor per batch).
    """

    def __init__(
        self,
        grammar: Any,
        target: Any,
        lam: float,
        skip: Sequence[int] = (),
        temperature: float = 1.0,
    ) -> None:
        super().__init__(grammar, lam, skip, temperature)
        if lam < 0 or not math.isfinite(lam):
            raise ValueError(f"lambda must be finite and >= 0, got {lam}")
        self.target = target
        self.histories: list[list[int]] | None = None

    def _advance(self, input_ids: torch.Tensor) -> None:
        ids = input_ids.detach().cpu().numpy().astype(np.int64)
        if self.histories is None:
            self.histories = [[] for _ in range(ids.shape[0])]
        skip = set(self.skip.tolist())
        for col in range(self.seen, ids.shape[1]):
            for i, t in enumerate(ids[:, col].tolist()):
                if t not in skip:
                    self.histories[i].append(t)
        super()._advance(input_ids)

    def mix(self, scores: torch.FloatTensor) -> torch.FloatTensor:
        q = self.target.next_dists(self.histories, self.state)  # [n, V], > 0 where allowed
        v = min(scores.shape[1], q.shape[1])
        with np.errstate(divide="ignore"):
            add = np.where(q[:, :v] > 0, (self.lam / self.temperature) * np.log(q[:, :v]), 0.0)
        out = scores.clone()
        out[:, :v] = out[:, :v] + torch.from_numpy(add).to(out.dtype).to(out.device)
        return out


def fused_samples(
    model: Any,
    target: Any,
    lam: float,
    n: int,
    length: int,
    seed: int,
    start: Sequence[int],
    temperature: float = 1.0,
    top_k: int = 0,
    device: Any = None,
    batch: int = 8,
    banned: Sequence[int] = (),
    keep_start: bool = False,
) -> list[np.ndarray]:
    """``n`` samples of ``length`` tokens from the fused model (see the module doc), under the
    grammar of ``target`` (required). Arguments as
    :func:`tokentransfer.baselines.transformer_samples`: ``start`` (e.g. ``[BOS, Bar]``),
    ``banned`` (the special ids), ``top_k`` (after fusion; 0: all). Returns the generated
    tokens (``start + generated`` with ``keep_start``)."""
    from .baselines import transformer_samples

    grammar = getattr(target, "grammar", None)
    if grammar is None:
        raise ValueError("fused sampling needs a target model with a grammar (the REMI mask)")
    return transformer_samples(
        model,
        n,
        length,
        seed,
        start,
        temperature=temperature,
        top_k=top_k,
        device=device,
        batch=batch,
        banned=banned,
        keep_start=keep_start,
        logits_hook=lambda: FusedLogitsProcessor(grammar, target, lam, banned, temperature),
    )


# --------------------------------------------------------------------------- lambda


def holdout(
    seqs: Sequence[np.ndarray],
    fraction: float = 0.2,
    seed: int = 0,
    groups: Sequence[str] | None = None,
) -> tuple[list[np.ndarray], list[tuple[np.ndarray, int]]]:
    """``(fit, held)``: the adaptation pieces split to choose lambda on.

    With two or more groups (``groups``: one label per piece, e.g. the split's groups, so that
    versions of one piece stay together; default: each piece its own group), a seeded
    ``max(1, round(fraction * groups))`` of them (never all) are held out whole: ``held`` holds
    ``(piece, 1)``. With one group, each of its pieces is cut at ``(1 - fraction)`` of its
    length: the head is fitted, and ``(piece, cut)`` scores the tail's tokens in their real
    context. Pieces too short to cut (under 2 tokens) are fitted only.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    seqs = [np.asarray(s, dtype=np.int64).ravel() for s in seqs]
    labels = list(groups) if groups is not None else [str(i) for i in range(len(seqs))]
    if len(labels) != len(seqs):
        raise ValueError(f"{len(labels)} group labels for {len(seqs)} pieces")
    names = sorted(set(labels))
    if len(names) >= 2:
        rng = np.random.default_rng(np.random.SeedSequence(int(seed)))
        n_held = min(max(1, round(fraction * len(names))), len(names) - 1)
        held_names = {names[i] for i in rng.permutation(len(names))[:n_held]}
        fit = [s for s, g in zip(seqs, labels, strict=True) if g not in held_names]
        held = [(s, 1) for s, g in zip(seqs, labels, strict=True) if g in held_names]
        return fit, held
    fit, held = [], []
    for s in seqs:
        cut = int(round(len(s) * (1 - fraction)))
        if len(s) < 2 or not 1 <= cut < len(s):
            fit.append(s)
            continue
        fit.append(s[:cut])
        held.append((s, cut))
    return fit, held


def cap_held(held: list[tuple[np.ndarray, int]], max_tokens: int) -> list[tuple[np.ndarray, int]]:
    """Held-out ``(piece, cut)`` pairs cut so that at most ``max_tokens`` tokens are scored:
    each pair scores its first ``max(64, max_tokens // pairs)`` tokens from ``cut`` on, pairs
    in order until the budget is spent (the last one cut to what is left)."""
    from .likelihood import MIN_PIECE_TOKENS

    per_pair = max(MIN_PIECE_TOKENS, max_tokens // len(held))
    out, left = [], max_tokens
    for s, cut in held:
        if left < 1:
            break
        n = min(per_pair, left, len(s) - cut)
        if n >= 1:
            out.append((s[: cut + n], cut))
            left -= n
    return out


@dataclass
class LambdaChoice:
    """The chosen ``lam`` and the bits/token of every grid value on the held-out tokens."""

    lam: float
    bits: dict[float, float] = field(default_factory=dict)
    tokens: int = 0
    fit_pieces: int = 0
    held_pieces: int = 0
    seconds: float = 0.0

    def rows(self) -> list[dict[str, float]]:
        """One row per grid value: lam, bits_per_token, chosen (1/0)."""
        return [
            {"lam": lam, "bits_per_token": b, "chosen": int(lam == self.lam)}
            for lam, b in sorted(self.bits.items())
        ]


def grid_choice(
    grid: Sequence[Any],
    per: Sequence[Sequence[np.ndarray]],
    groups: Sequence[str] | None,
    n_pieces: int,
    min_groups: int,
    zero: Any,
    why: str,
) -> tuple[dict[Any, float], int, Any]:
    """``(bits, tokens, best)`` from the held-out log2 probabilities ``per[j]`` (arrays, one
    per held-out piece) of each value ``grid[j]``: the bits/token of each value, the tokens
    scored, and the value of fewest bits (ties: the smaller); with fewer than ``min_groups``
    groups of the ``n_pieces`` pieces (``groups``: their labels; None: a group a piece),
    ``zero`` (the transformer alone) instead, and a warning that ends in ``why``."""
    bits = {g: bits_per_token(per[j])["bits_per_token"] for j, g in enumerate(grid)}
    tokens = int(sum(len(x) for x in per[0]))
    best = min(grid, key=lambda g: (bits[g], g))
    n_groups = len(set(groups)) if groups is not None else n_pieces
    if n_groups < min_groups:
        log.warning("%d group(s) of pieces, fewer than %d: %s", n_groups, min_groups, why)
        best = zero
    return bits, tokens, best


def choose_lambda(
    model: Any,
    make_target: Callable[[list[np.ndarray]], Any],
    seqs: Sequence[np.ndarray],
    grid: Sequence[float] = LAMBDAS,
    bos: int | None = None,
    fraction: float = 0.2,
    seed: int = 0,
    groups: Sequence[str] | None = None,
    device: Any = None,
    max_tokens: int | None = None,
    min_groups: int = 2,
) -> LambdaChoice:
    """Score each ``lam`` of ``grid`` on held-out tokens of ``seqs`` (:func:`holdout`) with the
    target model ``make_target(fit pieces)`` and pick the one of fewest bits/token (ties: the
    smaller). Without held-out tokens, the choice is ``0`` and every bits value is ``nan``.
    With fewer than ``min_groups`` groups (the held-out tokens are then tails of the fitted
    pieces themselves) every bits value is reported and the choice is ``0``.
    ``max_tokens``: score at most that many held-out tokens, spread over the held-out pieces
    as :func:`tokentransfer.likelihood.scored_pieces` spreads test tokens (None: all)."""
    t0 = time.perf_counter()
    grid = sorted({float(x) for x in grid})
    if not grid:
        raise ValueError("the lambda grid is empty")
    fit, held = holdout(seqs, fraction, seed, groups)
    if max_tokens is not None and held:
        held = cap_held(held, int(max_tokens))
    if not held or not fit:
        log.warning("no held-out tokens to choose lambda on: lambda = 0")
        return LambdaChoice(0.0, {lam: math.nan for lam in grid}, 0, len(fit), 0)
    target = make_target(fit)
    per_lam: list[list[np.ndarray]] = [[] for _ in grid]
    for s, cut in held:
        lp = fused_log_probs(model, target, s, grid, bos, target.grammar, device)
        for j in range(len(grid)):
            per_lam[j].append(lp[j, cut - 1 :])
    why = "lambda = 0 (the grid below scores the tails of the fitted pieces, which reward knowing"
    why += " those pieces)"
    bits, tokens, best = grid_choice(grid, per_lam, groups, len(seqs), min_groups, 0.0, why)
    out = LambdaChoice(best, bits, tokens, len(fit), len(held), time.perf_counter() - t0)
    log.info(
        "lambda %.3g chosen on %d held-out tokens: %s",
        best,
        tokens,
        ", ".join(f"{lam:g}: {b:.4f}" for lam, b in bits.items()),
    )
    return out


# --------------------------------------------------------------------------- target models


def chain_target(
    seqs: Sequence[np.ndarray],
    order: int,
    grammar: Any,
    discount: float = 0.75,
    floor: float = FLOOR,
) -> ChainTarget:
    """The smoothed n-gram chain of ``order`` fitted on ``seqs``, under ``grammar``."""
    from .baselines import NgramModel

    chain = NgramModel(order, grammar.vocab_size, discount=discount).fit(list(seqs))
    return ChainTarget(chain, grammar, floor)


def walk_target(
    seqs: Sequence[np.ndarray],
    tokenizer: Any,
    cfg: Any = None,
    h: np.ndarray | None = None,
    vocab_ids: np.ndarray | None = None,
    floor: float = FLOOR,
) -> WalkTarget:
    """The walk on the successor counts of ``seqs`` (and their grammar contexts unless
    ``cfg.context == "none"``; ``cfg``: a :class:`tokentransfer.walk.WalkConfig`; its interval
    and form tables counted on ``seqs`` unless its melody and form are none), biased by node
    embeddings ``h`` of ``vocab_ids`` when given."""
    from .graph import context_successors, successors
    from .walk import WalkConfig, Walker
    from .walkform import count_tables

    cfg = cfg or WalkConfig()
    seqs = list(seqs)
    succ = successors(seqs, len(tokenizer.vocab))
    ctx = context_successors(seqs, tokenizer) if cfg.context != "none" else None
    tables = None
    if cfg.melody != "none" or cfg.form != "none":
        tables = count_tables(seqs, tokenizer)
    return WalkTarget(Walker(succ, tokenizer, h, vocab_ids, cfg, ctx, tables), floor)
