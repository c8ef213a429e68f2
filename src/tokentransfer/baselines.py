"""The sample generators the graph walk (:mod:`tokentransfer.walk`) is compared against.

- :class:`NgramModel`: an n-gram Markov chain over token ids (order 1, 2, 3, ...) with
  interpolated absolute discounting, fitted on the target corpus;
- :func:`transformer_samples`: ancestral sampling from a HF causal LM (the pretrained or the
  fine-tuned transformer), batched, with a KV cache and a sliding window past its context;
- :func:`real_excerpts`: excerpts of real pieces (the reference sets: a held-out target set is
  the ceiling, another corpus the floor).

Every generator returns a list of ``n`` int64 arrays of token ids, each of exactly ``length``
generated tokens (a prompt, if any, is prepended and not counted), and is deterministic for a
seed: sample ``i`` draws from ``np.random.default_rng(np.random.SeedSequence(seed).spawn(n)[i])``,
as :meth:`tokentransfer.walk.Walker.generate` does, so sample ``i`` does not depend on ``n``'s
other samples nor on how they are batched.

Grammar. Given a :class:`tokentransfer.grammar.Grammar`, the n-gram chain and the transformer
sample under its mask: at each step the distribution is renormalised over the tokens the REMI
grammar allows in the sample's state (for the transformer, the disallowed logits are set to
-inf by :class:`tokentransfer.logits.GrammarLogitsProcessor`), so that every sample decodes
with zero token errors. Without one the chain samples its raw distribution and may break the
grammar; the evaluation measures that (:func:`tokentransfer.midi.token_errors`).

Pitch memory. Over REMI tokens two pitches lie 3-4 tokens apart, so a chain of order 2-3 draws
each pitch with no memory of the last. :class:`IntervalChain` (``markov2ci``, ``markov3ci``)
gives the masked chain the walk's melodic state: each ``Pitch`` token's probability is
multiplied by the interval factors of :class:`PitchMemory` (the walk's ``q_mel`` / ``q_chord``
of :mod:`tokentransfer.walkform`, counted on the chain's training pieces) and the distribution
renormalised, in sampling and in scoring alike.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import numpy as np

from .grammar import BAR_TOKEN

BOS_TOKEN = "BOS_None"

#: distributions kept per context while sampling (cleared when full)
_CACHE_SIZE = 4096


def _rngs(seed: int, n: int) -> list[np.random.Generator]:
    return [np.random.default_rng(ss) for ss in np.random.SeedSequence(int(seed)).spawn(n)]


def _check_counts(n: int, length: int) -> None:
    if n < 0 or length < 0:
        raise ValueError(f"n and length must be >= 0, got {n} and {length}")


# --------------------------------------------------------------------------- tokenizer ids


def _vocab_id(tokenizer: Any, token: str) -> int:
    vocab = tokenizer.vocab
    if token not in vocab:
        raise ValueError(f"tokenizer has no {token} token")
    return int(vocab[token])


def bar_id(tokenizer: Any) -> int:
    """Id of the ``Bar_None`` token."""
    return _vocab_id(tokenizer, BAR_TOKEN)


def start_tokens(tokenizer: Any) -> list[int]:
    """Ids a transformer sample without a prompt starts from: ``[BOS, Bar]``."""
    return [_vocab_id(tokenizer, BOS_TOKEN), bar_id(tokenizer)]


# --------------------------------------------------------------------------- n-gram chain


class NgramModel:
    """An n-gram Markov chain over token ids with interpolated absolute discounting.

    ``order``: 1 unigram, 2 bigram, 3 trigram, ...; ids must lie in ``[0, vocab_size)``.
    For a context ``h`` (the last ``order - 1`` tokens, fewer at the start of a sample) and
    ``h'`` (``h`` without its first token)::

        P(w | h) = max(c(h w) - D, 0) / c(h) + D * N1+(h .) / c(h) * P(w | h')

    where ``c(h w)`` counts the n-gram, ``c(h) = sum_w c(h w)`` and ``N1+(h .)`` is the number
    of distinct tokens seen after ``h``; a context never seen (``c(h) = 0``) backs off fully:
    ``P(w | h) = P(w | h')``. The lower orders are the same model one order down (plain
    absolute discounting, not Kneser–Ney continuation counts), so an order-3 model's
    distribution for an unseen pair context is the order-2 model's for its last token. At the
    bottom the unigram is mixed with a uniform floor over the tokens seen in training::

        P(w) = (1 - floor) * c(w) / N + floor / |seen|      (w seen), 0 otherwise

    so a transition unseen in the fitting data but between seen tokens has a non-zero
    probability (for ``discount > 0``), and a token never seen in training (a special token,
    say) has probability 0 and is never sampled. With ``discount = 0`` a seen context gets the
    maximum-likelihood estimate ``c(h w) / c(h)``.

    Counts are stored sparsely per order as sorted packed keys (``h * V + w``) and fitted with
    ``np.unique``; n-grams never cross sequence boundaries.
    """

    def __init__(
        self, order: int, vocab_size: int, discount: float = 0.75, *, floor: float = 0.01
    ) -> None:
        if order < 1:
            raise ValueError(f"order must be >= 1, got {order}")
        if vocab_size < 1:
            raise ValueError(f"vocab_size must be >= 1, got {vocab_size}")
        if float(vocab_size) ** order >= 2.0**62:
            raise ValueError(f"vocab_size ** order ({vocab_size} ** {order}) overflows int64 keys")
        if not 0.0 <= discount <= 1.0:
            raise ValueError(f"discount must be in [0, 1], got {discount}")
        if not 0.0 <= floor <= 1.0:
            raise ValueError(f"floor must be in [0, 1], got {floor}")
        self.order = int(order)
        self.vocab_size = int(vocab_size)
        self.discount = float(discount)
        self.floor = float(floor)
        self.unigram: np.ndarray | None = None  # [V] P(w)
        self.unigram_counts = np.zeros(self.vocab_size, dtype=np.int64)
        self.first_token: int | None = None
        # per order k >= 2 (index k - 2): n-gram keys, counts, and per context: keys, c(h),
        # N1+(h .), and the slice [lo, hi) of its n-grams
        self._grams: list[tuple[np.ndarray, ...]] = []
        self._cache: dict[tuple[int, ...], np.ndarray] = {}

    # ------------------------------------------------------------------ fitting
    def fit(self, seqs: Sequence[np.ndarray]) -> NgramModel:
        """Count the n-grams of ``seqs`` (each a piece; nothing counted across pieces)."""
        v = self.vocab_size
        arrays = [np.asarray(s, dtype=np.int64).ravel() for s in seqs]
        arrays = [a for a in arrays if len(a)]
        if not arrays:
            raise ValueError("no tokens to fit the n-gram model on")
        for a in arrays:
            if a.min() < 0 or a.max() >= v:
                raise ValueError(f"token ids must be in [0, {v}), got {a.min()}..{a.max()}")
        flat = np.concatenate(arrays)
        self.unigram_counts = np.bincount(flat, minlength=v).astype(np.int64)
        seen = self.unigram_counts > 0
        uni = (1.0 - self.floor) * self.unigram_counts / len(flat)
        uni[seen] += self.floor / seen.sum()
        self.unigram = uni / uni.sum()
        firsts = np.bincount([a[0] for a in arrays], minlength=v)
        self.first_token = int(np.argmax(firsts))  # ties: the smallest id

        self._grams = []
        for k in range(2, self.order + 1):
            powers = v ** np.arange(k - 1, -1, -1, dtype=np.int64)
            keys = [
                np.lib.stride_tricks.sliding_window_view(a, k) @ powers
                for a in arrays
                if len(a) >= k
            ]
            if keys:
                gk, gc = np.unique(np.concatenate(keys), return_counts=True)
            else:
                gk, gc = np.zeros(0, np.int64), np.zeros(0, np.int64)
            gc = gc.astype(np.int64)
            # keys are sorted by (context, token): each context's n-grams are one slice
            ctx, lo, n_next = np.unique(gk // v, return_index=True, return_counts=True)
            hi = lo + n_next
            c_ctx = np.add.reduceat(gc, lo) if len(gk) else np.zeros(0, np.int64)
            self._grams.append((gk % v, gc, ctx, c_ctx, n_next, lo, hi))
        self._cache = {}
        return self

    def _fitted(self) -> np.ndarray:
        if self.unigram is None:
            raise RuntimeError("NgramModel is not fitted: call fit() first")
        return self.unigram

    # ------------------------------------------------------------------ probabilities
    def _context(self, context: Sequence[int]) -> tuple[int, ...]:
        ctx = tuple(int(t) for t in context)
        return ctx[-(self.order - 1) :] if self.order > 1 else ()

    def _dist(self, ctx: tuple[int, ...]) -> np.ndarray:
        p = self._fitted()
        v = self.vocab_size
        # from the unigram up, one order at a time over the context's suffixes
        for j in range(1, len(ctx) + 1):
            h = ctx[len(ctx) - j :]
            if any(t < 0 or t >= v for t in h):
                break  # an id out of range: no longer context can have been seen either
            tokens, counts, ctx_keys, c_ctx, n_next, lo, hi = self._grams[j - 1]
            key = 0
            for t in h:
                key = key * v + t
            i = int(np.searchsorted(ctx_keys, key))
            if i == len(ctx_keys) or ctx_keys[i] != key:
                continue  # unseen context: P(w | h) = P(w | h')
            c = float(c_ctx[i])
            s = slice(int(lo[i]), int(hi[i]))
            q = p * (self.discount * float(n_next[i]) / c)
            q[tokens[s]] += np.maximum(counts[s] - self.discount, 0.0) / c
            p = q
        return p

    def distribution(
        self, context: Sequence[int] = (), allowed: np.ndarray | None = None
    ) -> np.ndarray:
        """``P(. | context)`` over the vocabulary (length ``vocab_size``, sums to 1).

        Only the last ``order - 1`` tokens of ``context`` are used; a shorter context uses the
        orders it can fill (an empty one: the unigram). With ``allowed`` (a [V] bool mask, e.g.
        a row of :meth:`tokentransfer.grammar.Grammar.mask`) the distribution is renormalised
        over the allowed tokens (uniform over them where the chain gives them no mass).
        """
        p = self._dist(self._context(context))
        return p.copy() if allowed is None else _renormalise(p, allowed)

    def prob(self, context: Sequence[int], token: int) -> float:
        """``P(token | context)``."""
        token = int(token)
        if not 0 <= token < self.vocab_size:
            return 0.0
        return float(self._dist(self._context(context))[token])

    # ------------------------------------------------------------------ sampling
    def _cdf(self, ctx: tuple[int, ...]) -> np.ndarray:
        cdf = self._cache.get(ctx)
        if cdf is None:
            if len(self._cache) >= _CACHE_SIZE:
                self._cache.clear()
            cdf = np.cumsum(self._dist(ctx))
            self._cache[ctx] = cdf
        return cdf

    def sample(
        self,
        n: int,
        length: int,
        seed: int,
        start: Sequence[int] | None = None,
        grammar: Any = None,
        memory: PitchMemory | None = None,
    ) -> list[np.ndarray]:
        """``n`` samples of ``length`` tokens, int64.

        With ``start`` (a prompt), each sample is the prompt followed by ``length`` new tokens
        (an empty ``start`` counts as none).
        Without it, each sample's first token is the most frequent first token of the fitting
        sequences (for REMI pieces the ``Bar`` token) and counts in ``length``; the rest follow
        from the chain. Sample ``i`` draws from ``SeedSequence(seed).spawn(n)[i]``. With a
        ``grammar`` each step draws from :meth:`distribution` under the grammar's mask; with a
        ``memory`` too (the pitch-memory chains), from that times its interval factors on the
        ``Pitch`` tokens, renormalised (:func:`masked_distribution`).
        """
        self._fitted()
        _check_counts(n, length)
        if memory is not None and grammar is None:
            raise ValueError("a chain with pitch memory samples under a grammar: none given")
        if start is not None and len(start) == 0:
            start = None
        prompt = [] if start is None else [int(t) for t in start]
        out = []
        for rng in _rngs(seed, n):
            seq = list(prompt)
            state = None
            if grammar is not None:
                state = grammar.replay(np.asarray(prompt, dtype=np.int64))
            if start is None and length:
                first = int(self.first_token)  # type: ignore[arg-type]
                if grammar is not None:
                    first = grammar.bar_id  # a sample starts at a bar
                    grammar.advance(state, np.array([first]))
                seq.append(first)
            total = len(prompt) + length
            k = self.order - 1
            while len(seq) < total:
                ctx = tuple(seq[-k:]) if k else ()
                if grammar is None:
                    cdf = self._cdf(ctx)
                else:
                    cdf = np.cumsum(masked_distribution(self._dist(ctx), grammar, state, memory))
                i = int(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"))
                if i >= self.vocab_size or (i and cdf[i] == cdf[i - 1]):  # rounding at the top
                    i = int(np.flatnonzero(np.diff(cdf, prepend=0.0) > 0)[-1])
                seq.append(i)
                if grammar is not None:
                    grammar.advance(state, np.array([i]))
            out.append(np.asarray(seq, dtype=np.int64))
        return out


def masked_distribution(
    p: np.ndarray, grammar: Any, state: Any, memory: PitchMemory | None = None
) -> np.ndarray:
    """The chain's distribution ``p`` [V] renormalised over the tokens ``grammar`` allows in
    the one-sequence ``state``; with ``memory``, times its interval factors for ``state`` and
    renormalised again (the factors are positive, so the support stays the allowed tokens the
    chain gives mass to). What the masked chains sample from and are scored by."""
    q = _renormalise(p, grammar.mask(state)[0])
    if memory is None or not q[memory.pitch].any():  # no Pitch can come: the factors are moot
        return q
    q = q * memory.factors(state)
    return q / q.sum()


class PitchMemory:
    """The walk's interval model (:mod:`tokentransfer.walkform`) as a factor on a grammar's
    ``Pitch`` tokens, for the masked chains' pitch-memory variants (``markov2ci``,
    ``markov3ci``).

    For a grammar state, :func:`tokentransfer.grammar.voice_refs` gives the next pitch's
    melodic reference (the note of the same rank at its program's previous onset) and chord
    reference (the pitch just played at this onset); a ``Pitch_x`` token's factor is
    ``q_mel(x - melodic) * q_chord(x - chord)`` (a missing reference: factor 1), ``q_mel``,
    ``q_chord`` the walk's interval factors :meth:`tokentransfer.walkform.WalkTables.factors`
    counted on the chain's own training pieces, the intervals clipped to
    +-:data:`tokentransfer.walkjit.TAIL` as the walk clips them. Every other token's factor is 1.
    """

    def __init__(self, grammar: Any, tables: Any) -> None:
        from .walkjit import TAIL

        self.grammar = grammar
        self.tail = TAIL
        self.mel, self.chord = tables.factors()
        self.pitch = np.flatnonzero(grammar.ttype == grammar.pitch_code)
        self.value = grammar.tval[self.pitch].astype(np.int64)

    def factors(self, state: Any) -> np.ndarray:
        """``[V]`` factors of every token in the one-sequence grammar ``state``."""
        from .grammar import voice_refs

        f = np.ones(self.grammar.vocab_size)
        for ref, q in zip(voice_refs(state), (self.mel, self.chord), strict=True):
            if ref >= 0:
                f[self.pitch] *= q[np.clip(self.value - ref, -self.tail, self.tail) + self.tail]
        return f


class IntervalChain:
    """A masked n-gram chain with pitch memory: at each step the chain's distribution under the
    grammar's mask times the :class:`PitchMemory` factors, renormalised
    (:func:`masked_distribution`); :meth:`sample` draws from it and :meth:`log_probs` scores
    by it, so its bits per token are those of the distribution it samples."""

    def __init__(self, chain: NgramModel, grammar: Any, tables: Any) -> None:
        self.chain, self.grammar = chain, grammar
        self.memory = PitchMemory(grammar, tables)

    def sample(
        self, n: int, length: int, seed: int, start: Sequence[int] | None = None
    ) -> list[np.ndarray]:
        """:meth:`NgramModel.sample` under the grammar with the pitch memory."""
        return self.chain.sample(n, length, seed, start=start, grammar=self.grammar,
                                 memory=self.memory)  # fmt: skip

    def distribution(self, context: Sequence[int], state: Any) -> np.ndarray:
        """The distribution ([V], sums to 1) the sampler draws the next token from after
        ``context`` (the tokens so far) in the one-sequence grammar ``state`` they reach."""
        ctx = self.chain._context(context)
        return masked_distribution(self.chain._dist(ctx), self.grammar, state, self.memory)

    def log_probs(self, seq: np.ndarray, floor: float | None = None) -> np.ndarray:
        """``log2 P(token i | tokens before it)``, ``i = 1 .. len(seq) - 1``, under
        :meth:`distribution`, smoothed as the masked chains are
        (:func:`tokentransfer.likelihood.smooth` with its ``FLOOR`` by default, over the
        allowed tokens); a token the grammar forbids scores ``-inf``."""
        from .likelihood import FLOOR, smooth

        floor = FLOOR if floor is None else floor
        seq = np.asarray(seq, dtype=np.int64).ravel()
        g, k = self.grammar, self.chain.order - 1
        st = g.new_state(1)
        out = np.empty(max(len(seq) - 1, 0))
        ids = seq.tolist()
        for i in range(len(seq) - 1):
            g.advance(st, seq[i : i + 1])
            p = self.distribution(ids[max(i + 1 - k, 0) : i + 1], st)
            q = smooth(p, g.mask(st)[0], floor)[ids[i + 1]]
            out[i] = np.log2(q) if q > 0 else -np.inf
        return out


def _renormalise(p: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """``p`` restricted to ``allowed`` and summing to one (uniform if ``p`` gives it no mass)."""
    q = np.where(allowed, p, 0.0)
    total = q.sum()
    if total <= 0:
        if not allowed.any():
            raise ValueError("the grammar allows no token here")
        q, total = allowed.astype(np.float64), float(allowed.sum())
    return q / total


# --------------------------------------------------------------------------- transformer


def transformer_samples(
    model: Any,
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
    grammar: Any = None,
    logits_hook: Any = None,
) -> list[np.ndarray]:
    """``n`` samples of ``length`` tokens from a HF causal LM by ancestral sampling.

    Each sample is conditioned on ``start`` (e.g. :func:`start_tokens`: ``[BOS, Bar]``, or a
    user prompt). The returned arrays hold the ``length`` generated tokens only, or
    ``start + generated`` with ``keep_start=True`` (use it for a prompt). Logits are divided by
    ``temperature``, the ``banned`` ids (pass the tokenizer's PAD/BOS/EOS, see
    :func:`tokentransfer.model.special_ids`) are masked out, then only the ``top_k`` most likely
    are kept (``0``: the full softmax). With a ``grammar``, tokens it does not allow in a
    sample's state are masked first (:class:`tokentransfer.logits.GrammarLogitsProcessor`; the
    special tokens of ``start``, like BOS, are not part of the token stream it follows).
    ``logits_hook``: instead, a function of no argument that makes the logits processor of one
    batch (``processor(input_ids, scores) -> scores``, applied after the temperature, before
    the ban and top-k; e.g. :class:`tokentransfer.fusion.FusedLogitsProcessor`).

    Samples run in batches of ``batch`` with a KV cache. Past the model's context length the
    cache is recomputed on the last ``context // 2`` tokens (a sliding window). Draws are
    inverse-CDF with one uniform per token from sample ``i``'s own
    ``default_rng(SeedSequence(seed).spawn(n)[i])``, so a sample is reproducible and does not
    depend on ``batch``. ``device``: where to run (the model is moved there; default: where the
    model is). The model is run in eval mode under ``torch.no_grad`` (its training
    mode is restored afterwards).
    """
    import torch

    from .model import context_length

    _check_counts(n, length)
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if top_k < 0:
        raise ValueError(f"top_k must be >= 0 (0: all), got {top_k}")
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    start = [int(t) for t in start]
    if not start:
        raise ValueError("start must hold at least one token (e.g. [BOS, Bar])")
    if device is None:
        device = next(model.parameters()).device
    else:
        model.to(device)
    context = context_length(model)
    window = max(1, context // 2)
    rngs = _rngs(seed, n)
    head = np.asarray(start if keep_start else [], dtype=np.int64)
    if length == 0:
        return [head.copy() for _ in range(n)]

    was_training = model.training
    model.eval()
    out: list[np.ndarray] = []
    try:
        with torch.no_grad():
            for b0 in range(0, n, batch):
                group = rngs[b0 : b0 + batch]
                seqs = torch.tensor([start] * len(group), dtype=torch.long, device=device)
                mask = None
                if logits_hook is not None:
                    mask = logits_hook()
                elif grammar is not None:
                    from .logits import GrammarLogitsProcessor

                    mask = GrammarLogitsProcessor(grammar, skip=banned)
                gen = _generate(
                    model, seqs, group, length, context, window, temperature, top_k, banned, mask
                )
                out.extend(np.concatenate([head, g]) for g in gen)
    finally:
        model.train(was_training)
    return out


def _generate(model, seqs, rngs, length, context, window, temperature, top_k, banned, mask=None):
    """Generated tokens [len(rngs), length] (int64 numpy) for one batch starting at ``seqs``."""
    import torch

    # transformers 5 renamed ``past_key_values`` to ``cache`` (argument and output)
    name = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"

    def forward(ids, past=None):
        res = model(input_ids=ids, use_cache=True, **({name: past} if past is not None else {}))
        return res.logits[:, -1, :].float(), res[name]

    ids = seqs if seqs.shape[1] < context else seqs[:, -window:]
    logits, past = forward(ids)
    cache_len = ids.shape[1]
    ban = torch.as_tensor(list(banned), dtype=torch.long, device=seqs.device)
    generated = np.zeros((len(rngs), length), dtype=np.int64)
    for step in range(length):
        logits = logits / temperature
        if mask is not None:
            logits = mask(seqs, logits)
        if len(ban):
            logits[:, ban] = -float("inf")
        if top_k and top_k < logits.shape[1]:
            kth = torch.topk(logits, top_k, dim=1).values[:, -1:]
            logits = logits.masked_fill(logits < kth, -float("inf"))
        probs = torch.softmax(logits.double(), dim=1)
        cdf = torch.cumsum(probs, dim=1)
        u = torch.tensor([r.random() for r in rngs], dtype=torch.float64, device=cdf.device)
        target = (u * cdf[:, -1]).unsqueeze(1)
        nxt = torch.searchsorted(cdf, target, right=True).squeeze(1)
        # u * total can round up to the total: fall back to the last token with probability
        last = probs.shape[1] - 1 - torch.argmax(torch.flip(probs > 0, dims=[1]).int(), dim=1)
        nxt = torch.minimum(nxt, last)
        generated[:, step] = nxt.cpu().numpy()
        if step == length - 1:
            break
        seqs = torch.cat([seqs, nxt.unsqueeze(1)], dim=1)
        if cache_len >= context:  # no room for one more position: slide the window
            logits, past = forward(seqs[:, -window:])
            cache_len = window
        else:
            logits, past = forward(nxt.unsqueeze(1), past)
            cache_len += 1
    return generated


# --------------------------------------------------------------------------- real pieces


def real_excerpts(
    seqs: Sequence[np.ndarray],
    n: int,
    length: int,
    seed: int,
    bar_id: int | None = None,
    bars: int = 0,
) -> list[np.ndarray]:
    """``n`` excerpts of ``length`` consecutive tokens of real pieces, int64; with ``bars >
    0`` (and ``bar_id``), excerpts of ``bars`` bars instead (``length`` unused).

    Pieces are chosen with ``default_rng(SeedSequence(seed))``: a random order without
    replacement while there are pieces left, then with replacement. In a piece, an excerpt
    starts at a random position among those holding ``bar_id`` that leave ``length`` tokens (a
    random position when there is none, or ``bar_id`` is None). A piece not longer than
    ``length`` is taken whole (its excerpt is then shorter). Excerpt ``i``'s position draws from
    ``SeedSequence(seed).spawn(n)[i]``. In bars: an excerpt starts at a random bar line among
    those followed by ``bars`` bars (the piece's first bar line when it has fewer bars, then
    taken to its end) and ends before the bar line that would begin bar ``bars + 1``.
    """
    _check_counts(n, length)
    if bars:
        if bar_id is None:
            raise ValueError("excerpts in bars need the Bar token's id")
        return _bar_excerpts(seqs, n, bars, seed, bar_id)
    out = []
    for piece, ss in _chosen_pieces(seqs, n, seed):
        if len(piece) <= length:
            out.append(piece.copy())
            continue
        rng = np.random.default_rng(ss)
        last = len(piece) - length
        cands = np.flatnonzero(piece[: last + 1] == bar_id) if bar_id is not None else []
        pos = int(rng.choice(cands)) if len(cands) else int(rng.integers(0, last + 1))
        out.append(piece[pos : pos + length].copy())
    return out


def _bar_excerpts(seqs, n: int, bars: int, seed: int, bar_id: int) -> list[np.ndarray]:
    """:func:`real_excerpts` in bars (same choice of pieces and per-excerpt streams)."""
    from .bars import bar_starts, cut_bars

    out = []
    for piece, ss in _chosen_pieces(seqs, n, seed):
        starts = bar_starts(piece, bar_id)
        if not len(starts):
            out.append(piece.copy())
            continue
        cands = starts[: max(len(starts) - bars + 1, 1)]
        pos = int(np.random.default_rng(ss).choice(cands))
        out.append(cut_bars(piece[pos:], bars, bar_id))
    return out


def _chosen_pieces(seqs, n: int, seed: int):
    """The pieces of :func:`real_excerpts` (a random order without replacement while there are
    pieces left, then with replacement) and each excerpt's seed sequence."""
    pieces = [np.asarray(s, dtype=np.int64).ravel() for s in seqs]
    if n and not pieces:
        raise ValueError("no pieces to take excerpts from")
    root = np.random.SeedSequence(int(seed))
    pick = np.random.default_rng(root)
    first = pick.permutation(len(pieces))[: min(n, len(pieces))]
    rest = pick.integers(0, len(pieces), size=n - len(first))
    chosen = np.concatenate([first, rest]).astype(np.int64)
    return [(pieces[int(i)], ss) for i, ss in zip(chosen, root.spawn(n), strict=True)]
