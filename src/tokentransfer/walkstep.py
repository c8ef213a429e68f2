"""One step of the walk, written once: what the walk may draw next and with which weights.

The compiled walk (:func:`tokentransfer.walkjit.walk`) draws its tokens from these functions,
and the walk's likelihood (:meth:`tokentransfer.walk.Walker.log_probs`,
:meth:`~tokentransfer.walk.Walker.next_distribution`, the fused models'
:class:`tokentransfer.likelihood.WalkTarget`) reads the same step as a distribution
(:func:`distribution`, :func:`distributions`). The grammar's rules come from
:mod:`tokentransfer.grammar` (:func:`~tokentransfer.grammar.token_allowed`,
:func:`~tokentransfer.grammar.token_advance`, :func:`~tokentransfer.grammar.context_id`,
:func:`~tokentransfer.grammar.voice_refs_at`); all are compiled with numba where it imports
(:mod:`tokentransfer.jit`), else run as the same Python.

A step after token ``node`` in a grammar state: the node's row in its context
(:func:`row_of`); the first *level* with a candidate the grammar (and the scale ``act``)
allows, of the context row, the token's top-k row and all its successors (:func:`level`),
each candidate weighted by its row probability times the interval factor of a ``Pitch``
(:func:`weights`, :func:`factor`); where no level has one, a ``Bar`` (a dead-end restart) if
the grammar allows it, else the allowed tokens by corpus frequency (:func:`backoff_weights`).
The walk draws from that distribution; its common case first draws one candidate of the
context row by the row's cumulative table and keeps it if allowed (a rejected first draw
followed by the level's draw gives exactly the level's distribution).
"""

from __future__ import annotations

import numpy as np

from .grammar import context_id, token_advance, token_allowed, voice_refs_at
from .jit import compile, inline

#: interval bins of the melody tables: -TAIL .. TAIL, the outer two gathering the tails
TAIL = 25


@inline
def interval_bin(d):
    """The bin of interval ``d`` (semitones), the tails gathered in the outer bins."""
    if d < -TAIL:
        d = -TAIL
    elif d > TAIL:
        d = TAIL
    return d + TAIL


@inline
def factor(t, ttype, tval, pitch_code, mel, chord, fm, fc):
    """Interval factor of candidate ``t`` (1 for a token that is not a ``Pitch``): ``fm`` of
    its interval to the melodic reference ``mel``, ``fc`` to the chord reference ``chord``
    (-1: none)."""
    f = 1.0
    if ttype[t] == pitch_code:
        if mel >= 0:
            f *= fm[interval_bin(tval[t] - mel)]
        if chord >= 0:
            f *= fc[interval_bin(tval[t] - chord)]
    return f


@inline
def allows(g_allowed, ttype, tval, kind, remove_dup, prev, floor, limit, program, onset, played,
           tok, pcs, act):  # fmt: skip
    """:func:`~tokentransfer.grammar.token_allowed`, and ``tok`` keeps to the scale ``act``
    (a bit mask of pitch classes; -1: no scale; ``pcs``: each token's pitch class, -1: none)."""
    if act >= 0 and pcs[tok] >= 0 and not (act >> pcs[tok]) & 1:
        return False  # off the sample's scale
    return token_allowed(g_allowed, ttype, tval, kind, remove_dup, prev, floor, limit, program,
                         onset, played, tok)  # fmt: skip


@inline
def row_of(keys, n_ctx, n_notes, base, ts_index, max_pos, node, ts, pos, notes):
    """The table row of ``node`` in its context (its context-free row ``base + node`` where
    the walk has no context or the context was never seen after ``node``)."""
    row = base + node
    if n_notes > 0 and keys.shape[0] > 0:
        q = node * n_ctx + context_id(ts_index, max_pos, ts, pos, notes, n_notes)
        i = np.searchsorted(keys, q)
        if i > keys.shape[0] - 1:
            i = keys.shape[0] - 1
        if keys[i] == q:
            row = i
    return row


@inline
def weights(ptr, cand, prob, row, g_allowed, ttype, tval, kind, remove_dup, prev, floor, limit,
            program, onset, played, pcs, act, pitch_code, mel, chord, fm, fc, w):  # fmt: skip
    """``w[i]``: candidate ``i`` of ``row``'s probability times its interval factor where it
    is allowed, else 0; returns their sum (added in order)."""
    a, e = ptr[row], ptr[row + 1]
    total = 0.0
    for i in range(e - a):
        t = cand[a + i]
        x = 0.0
        if allows(g_allowed, ttype, tval, kind, remove_dup, prev, floor, limit, program, onset,
                  played, t, pcs, act):  # fmt: skip
            x = prob[a + i] * factor(t, ttype, tval, pitch_code, mel, chord, fm, fc)
        w[i] = x
        total += x
    return total


@inline
def level(ptr, cand, prob, fptr, fcand, fprob, row, base, node, top_k, g_allowed, ttype, tval,
          kind, remove_dup, prev, floor, limit, program, onset, played, pcs, act, pitch_code,
          mel, chord, fm, fc, w):  # fmt: skip
    """``(level, total)``: the first of the context row (0), the token's top-k row (1, where
    the context row is another) and all its successors (2, where top-k cuts) with an allowed
    candidate, its :func:`weights` in ``w`` and their sum; ``(-1, 0.0)``: none."""
    total = weights(ptr, cand, prob, row, g_allowed, ttype, tval, kind, remove_dup, prev, floor,
                    limit, program, onset, played, pcs, act, pitch_code, mel, chord, fm, fc,
                    w)  # fmt: skip
    if total > 0:
        return 0, total
    if row != base + node:
        total = weights(ptr, cand, prob, base + node, g_allowed, ttype, tval, kind, remove_dup,
                        prev, floor, limit, program, onset, played, pcs, act, pitch_code, mel,
                        chord, fm, fc, w)  # fmt: skip
        if total > 0:
            return 1, total
    if top_k > 0:
        total = weights(fptr, fcand, fprob, node, g_allowed, ttype, tval, kind, remove_dup, prev,
                        floor, limit, program, onset, played, pcs, act, pitch_code, mel, chord,
                        fm, fc, w)  # fmt: skip
        if total > 0:
            return 2, total
    return -1, 0.0


@inline
def level_entries(lev, ptr, fptr, row, base, node):
    """``(first entry, count, full)`` of level ``lev``'s row (``full``: the all-successors
    table)."""
    if lev == 2:
        return fptr[node], fptr[node + 1] - fptr[node], True
    r = row if lev == 0 else base + node
    return ptr[r], ptr[r + 1] - ptr[r], False


@inline
def draw(w, m, total, uu, cand, a):
    """``cand[a + i]`` drawn by the weights ``w[:m]`` (summing to ``total``) at the uniform
    ``uu``, by inverse CDF; -1 when ``total <= 0``."""
    if total <= 0:
        return -1
    target = uu * total
    acc = 0.0
    last = -1
    for i in range(m):
        if w[i] > 0:
            acc += w[i]
            last = i
            if acc > target:
                return cand[a + i]
    return cand[a + last]  # rounding at the top end


@inline
def allowed_all(g_allowed, ttype, tval, kind, remove_dup, prev, floor, limit, program, onset,
                played, out):  # fmt: skip
    """``out[t]``: whether the grammar allows token ``t`` next (no scale)."""
    for t in range(out.shape[0]):
        out[t] = token_allowed(g_allowed, ttype, tval, kind, remove_dup, prev, floor, limit,
                               program, onset, played, t)  # fmt: skip


@inline
def _block_sum(a, lo, n):
    """numpy's sum of at most 128 float64s: in order below 8, else in 8 running sums."""
    if n < 8:
        res = 0.0
        for i in range(lo, lo + n):
            res += a[i]
        return res
    r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
    r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
    i = 8
    while i < n - n % 8:
        j = lo + i
        r0, r1, r2, r3 = r0 + a[j], r1 + a[j + 1], r2 + a[j + 2], r3 + a[j + 3]
        r4, r5, r6, r7 = r4 + a[j + 4], r5 + a[j + 5], r6 + a[j + 6], r7 + a[j + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[lo + i]
        i += 1
    return res


@compile
def pairwise_sum(a, lo, n):
    """The sum of ``a[lo:lo + n]`` added as numpy's ``sum`` adds a float64 array (blocks of at
    most 128 halved pairwise, see :func:`_block_sum`), so that a distribution normalised here
    equals numpy's bit for bit. Without recursion (numba's cache cannot load recursive
    functions): an explicit stack of halves, each summed left, then right, then added."""
    if n <= 128:
        return _block_sum(a, lo, n)
    los = np.empty(64, dtype=np.int64)
    ns = np.empty(64, dtype=np.int64)
    stage = np.zeros(64, dtype=np.int64)  # 0: not started, 1: left half summed, 2: both
    left = np.zeros(64)
    top = 0
    los[0], ns[0] = lo, n
    ret = 0.0
    while True:
        m = ns[top]
        half = m // 2 - (m // 2) % 8
        if stage[top] == 0 and m <= 128:
            ret = _block_sum(a, los[top], m)
            top -= 1
            if top < 0:
                return ret
        elif stage[top] == 0:
            stage[top] = 1
            los[top + 1], ns[top + 1], stage[top + 1] = los[top], half, 0
            top += 1
        elif stage[top] == 1:
            left[top] = ret
            stage[top] = 2
            los[top + 1], ns[top + 1], stage[top + 1] = los[top] + half, m - half, 0
            top += 1
        else:
            ret = left[top] + ret
            top -= 1
            if top < 0:
                return ret


@inline
def backoff_weights(allowed, freq, w):
    """``w``: the corpus frequency of each allowed token (all allowed tokens alike where
    those sum to 0), the back-off of a dead end where no ``Bar`` may follow."""
    for t in range(w.shape[0]):
        w[t] = freq[t] if allowed[t] else 0.0
    if pairwise_sum(w, 0, w.shape[0]) <= 0:
        for t in range(w.shape[0]):
            w[t] = 1.0 if allowed[t] else 0.0


@inline
def distribution(node, prev, pos, floor, limit, ts, program, notes, onset, played, vprev, vpn,
                 vcur, vcn, vlast, von, tables, grammar, melody, fm, fc, w, allowed,
                 p):  # fmt: skip
    """``p`` [V]: the walk's distribution of the token after ``node`` in the grammar state
    given (without restarts, returns and the scale), and ``allowed`` [V] the grammar's mask
    there. ``tables``, ``grammar``: the tuples of :meth:`tokentransfer.walk.Walker.step_args`;
    ``w``: scratch of a row's length."""
    ptr, cand, prob, fptr, fcand, fprob, base, top_k, keys, n_ctx, n_notes, freq, pcs = tables
    g_allowed, ttype, tval, kind, ts_limit, remove_dup, bar_id, pitch_code, ts_index, max_pos = (
        grammar
    )
    allowed_all(g_allowed, ttype, tval, kind, remove_dup, prev, floor, limit, program, onset,
                played, allowed)  # fmt: skip
    p[:] = 0.0
    mel, chord = -1, -1
    if melody:
        mel, chord = voice_refs_at(vprev, vpn, vcur, vcn, vlast, von, program + 1, onset)
    row = row_of(keys, n_ctx, n_notes, base, ts_index, max_pos, node, ts, pos, notes)
    lev, total = level(ptr, cand, prob, fptr, fcand, fprob, row, base, node, top_k, g_allowed,
                       ttype, tval, kind, remove_dup, prev, floor, limit, program, onset, played,
                       pcs, -1, pitch_code, mel, chord, fm, fc, w)  # fmt: skip
    if lev >= 0:
        a, m, full = level_entries(lev, ptr, fptr, row, base, node)
        c = fcand if full else cand
        s = pairwise_sum(w, 0, m)
        for i in range(m):
            p[c[a + i]] = w[i] / s
    elif allowed[bar_id]:
        p[bar_id] = 1.0  # a dead end restarts at a bar line
    else:
        backoff_weights(allowed, freq, p)
        s = pairwise_sum(p, 0, p.shape[0])
        for t in range(p.shape[0]):
            p[t] = p[t] / s


@compile
def distribution_at(node, i, prev, pos, floor, limit, ts, program, notes, onset, played, vprev,
                    vpn, vcur, vcn, vlast, von, tables, grammar, melody, fm, fc, w, allowed,
                    p):  # fmt: skip
    """:func:`distribution` after ``node`` in sequence ``i`` of a
    :class:`~tokentransfer.grammar.GrammarState` (its arrays)."""
    distribution(node, prev[i], pos[i], floor[i], limit[i], ts[i], program[i], notes[i],
                 onset[i], played[i], vprev[i], vpn[i], vcur[i], vcn[i], vlast[i], von[i], tables,
                 grammar, melody, fm, fc, w, allowed, p)  # fmt: skip


@compile
def distributions(seq, prev, pos, floor, limit, ts, program, notes, onset, played, vprev, vpn,
                  vcur, vcn, vlast, von, tables, grammar, melody, fm, fc, w, allowed,
                  p):  # fmt: skip
    """``p[i]``, ``allowed[i]``: :func:`distribution` of token ``i + 1`` of ``seq`` after its
    tokens ``0 .. i``, from the one-sequence state given (advanced in place)."""
    g_allowed, ttype, tval, kind, ts_limit, remove_dup, bar_id, pitch_code, ts_index, max_pos = (
        grammar
    )
    for i in range(seq.shape[0] - 1):
        tok = seq[i]
        prev[0], pos[0], floor[0], limit[0], ts[0], program[0], notes[0], onset[0] = (
            token_advance(ttype, tval, kind, ts_limit, pitch_code, tok, pos[0], floor[0],
                          limit[0], ts[0], program[0], notes[0], onset[0], played[0], vprev[0],
                          vpn[0], vcur[0], vcn[0], vlast[0], von[0])
        )  # fmt: skip
        distribution(tok, prev[0], pos[0], floor[0], limit[0], ts[0], program[0], notes[0],
                     onset[0], played[0], vprev[0], vpn[0], vcur[0], vcn[0], vlast[0], von[0],
                     tables, grammar, melody, fm, fc, w, allowed[i], p[i])  # fmt: skip
