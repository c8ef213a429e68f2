"""The walk's loop: one function, compiled with numba where numba imports, else run as Python.

:meth:`tokentransfer.rwr.Walker.generate` runs :func:`walk`: engine ``"numba"`` (the default,
numba is a pinned dependency) runs the compiled kernel, engine ``"python"`` the very same
function un-jitted (slow, the same tokens; a test checks it on a tiny walk). The kernel reads
the walk's rows (:class:`tokentransfer.rwr._Table`), the grammar's arrays
(:class:`tokentransfer.grammar.Grammar`; the rules here are the scalar form of
``Grammar.allows`` / ``Grammar.advance``) and the walk's melody and form tables
(:mod:`tokentransfer.walkform`), and five pre-drawn uniforms per sample and step: restart,
draw, redraw, chromatic, return.

Melody: the voice state per program slot (program + 1) is the pitches of the program's previous
onset and of its current one (:func:`voice_refs`, :func:`voice_add`, the same as
:func:`tokentransfer.grammar.voice_refs`); a ``Pitch`` candidate's weight is multiplied by the
interval factors of :class:`tokentransfer.walkform.WalkTables` (:func:`_factor`). A row with a
``Pitch`` candidate is then drawn as a masked draw over its (top-k) candidates.

Form: at a bar line the walk may replay an earlier bar of its own sample (the form chain of the
tables), token for token, then a ``Bar``; each forced token is checked against the grammar and
a replay that would break it stops there (it cannot happen: a bar starts in the bar-start
state).
"""

from __future__ import annotations

import numpy as np

try:  # numba is a dependency; where it is missing the same functions run as Python
    import numba

    njit = numba.njit(cache=True, nogil=True)
    # the per-candidate helpers are inlined into their callers: a call with array arguments
    # otherwise costs a reference count update per array, which was most of a Pitch step
    inline = numba.njit(cache=True, nogil=True, inline="always")
except Exception:  # noqa: BLE001
    numba = None
    njit = inline = None

# Grammar.kind codes (tokentransfer.grammar)
_BAR, _TIMESIG, _POSITION, _PROGRAM, _NOTE = 1, 2, 3, 4, 5
#: interval bins of the melody tables: -TAIL .. TAIL, the outer two gathering the tails
TAIL = 25
#: stats columns of the kernel (Walker.last_stats)
STATS = (
    "restarts",
    "dead_end_restarts",
    "widened",
    "backoffs",
    "rejected",
    "off_key",
    "returns",
)


def available() -> bool:
    return numba is not None


def voice_refs(vprev, vpn, vcur, vcn, vlast, von, p, onset):
    """``(melodic, chord)`` reference pitches for program slot ``p``'s next pitch (-1: none)."""
    ranks = vprev.shape[1]
    if von[p] == onset:
        rank, n_ref = vcn[p], vpn[p]
        if n_ref > ranks:
            n_ref = ranks
        mel = vprev[p, min(rank, n_ref - 1)] if n_ref > 0 else -1
        return mel, vlast[p]
    mel = vcur[p, 0] if vcn[p] > 0 else -1  # rank 0 of the program's last onset
    return mel, -1


def voice_add(vprev, vpn, vcur, vcn, vlast, von, p, onset, pitch):
    """Program slot ``p`` plays ``pitch`` at onset ``onset``."""
    ranks = vprev.shape[1]
    if von[p] != onset:
        for r in range(ranks):
            vprev[p, r] = vcur[p, r]
        vpn[p] = vcn[p]
        vcn[p] = 0
        von[p] = onset
    if vcn[p] < ranks:
        vcur[p, vcn[p]] = pitch
    vcn[p] += 1
    vlast[p] = pitch


def _bin(d):
    if d < -TAIL:
        d = -TAIL
    elif d > TAIL:
        d = TAIL
    return d + TAIL


def _factor(t, ttype, tval, pitch_code, mel, chord, fm, fc):
    """Interval factor of candidate ``t`` (1 for a token that is not a ``Pitch``)."""
    f = 1.0
    if ttype[t] == pitch_code:
        if mel >= 0:
            f *= fm[_bin(tval[t] - mel)]
        if chord >= 0:
            f *= fc[_bin(tval[t] - chord)]
    return f


def _allows(g_allowed, ttype, tval, kind, remove_dup, prev, pos, floor, limit, program, onset,
            played, tok, pcs, smask):  # fmt: skip
    if smask >= 0 and pcs[tok] >= 0 and not (smask >> pcs[tok]) & 1:
        return False  # off the sample's scale
    drum = 1 if program == -1 else 0
    if not g_allowed[drum, prev, ttype[tok]]:
        return False
    k = kind[tok]
    if k == _POSITION:
        v = tval[tok]
        if v < floor or v >= limit:
            return False
    return not (
        remove_dup and k == _NOTE and played[(program + 1) * 128 + tval[tok] % 128] == onset
    )


def _draw(w, m, total, uu, cand, a):
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


def _masked(ptr, cand, prob, row, gr, st, played, uu, fac):
    """A candidate of ``row`` that the grammar allows, by its probability times its interval
    factor (``fac``: pitch code, melodic and chord reference, the two factor tables, a scratch
    buffer), renormalised; -1: none."""
    a, e = ptr[row], ptr[row + 1]
    if e == a:
        return -1
    w = fac[5]
    total = 0.0
    for i in range(e - a):
        t = cand[a + i]
        x = 0.0
        if _allows(gr[0], gr[1], gr[2], gr[3], gr[4], st[0], st[1], st[2], st[3], st[4], st[5],
                   played, t, gr[5], st[6]):  # fmt: skip
            x = prob[a + i]
            if fac[1] >= 0 or fac[2] >= 0:
                x *= _factor(t, gr[1], gr[2], fac[0], fac[1], fac[2], fac[3], fac[4])
        w[i] = x
        total += x
    return _draw(w, e - a, total, uu, cand, a)


def _factored(ptr, cand, prob, row, g_allowed, ttype, tval, kind, remove_dup, prev, pos, floor,
              limit, program, onset, played, pcs, act, pitch_code, mel, chord, fm, fc, w,
              uu):  # fmt: skip
    """:func:`_masked` on the context row within the scale ``act``, without tuples (the walk's
    common case for a ``Pitch``); -1: no candidate (the levels then decide)."""
    a, e = ptr[row], ptr[row + 1]
    total = 0.0
    for i in range(e - a):
        t = cand[a + i]
        x = 0.0
        if _allows(g_allowed, ttype, tval, kind, remove_dup, prev, pos, floor, limit, program,
                   onset, played, t, pcs, act):  # fmt: skip
            x = prob[a + i] * _factor(t, ttype, tval, pitch_code, mel, chord, fm, fc)
        w[i] = x
        total += x
    return _draw(w, e - a, total, uu, cand, a)


def _levels(ptr, cand, prob, fptr, fcand, fprob, row, base, node, top_k, gr, st, played, uu,
            stats, b, fac):  # fmt: skip
    """The context row, the token's top-k row, all its successors: the first with an allowed
    candidate gives the token (-1: none); a step past the context row counts as widened."""
    tok = _masked(ptr, cand, prob, row, gr, st, played, uu, fac)
    if tok < 0 and row != base + node:
        tok = _masked(ptr, cand, prob, base + node, gr, st, played, uu, fac)
        if tok >= 0:
            stats[b, 2] += 1  # widened
    if tok < 0 and top_k > 0:
        tok = _masked(fptr, fcand, fprob, node, gr, st, played, uu, fac)
        if tok >= 0:
            stats[b, 2] += 1
    return tok


def _return_lag(ret, lags, last, j, uu):
    """The form chain's choice at bar ``j`` after the label ``last`` (0: new, k: lag
    ``lags[k - 1]``): 0 or the index k of a lag with ``lags[k - 1] <= j``."""
    n_lab = ret.shape[2]
    w = np.zeros(n_lab)
    for k in range(n_lab):
        if k == 0 or lags[k - 1] <= j:
            w[k] = ret[last, j % ret.shape[1], k]
    cs = np.cumsum(w)
    if cs[-1] <= 0:
        return 0
    k = np.searchsorted(cs, uu * cs[-1], side="right")
    return k if k < n_lab else n_lab - 1


def _walk(u, alpha, rt, start_queue, start_node, s0, played0, voice0,
          key, ptr, deg, cand, prob, has_pitch, fptr, fcand, fprob, base, top_k,
          keys, n_ctx, n_notes, ts_index, max_pos,
          g_allowed, ttype, tval, kind, ts_limit, remove_dup, bar_id, freq, pitch_code,
          scaled, chromatic, pcs, hist0, smask0, key_profiles, key_masks, key_notes,
          melody, fm, fc, form, ret, lags,
          out, stats):  # fmt: skip
    length, n = u.shape[0], u.shape[1]
    v = ttype.shape[0]
    n_rt = rt.shape[0]
    allowed = np.zeros(v, dtype=np.bool_)
    bar_start = np.zeros(length + 1, dtype=np.int64)
    wbuf = np.zeros(max(np.max(np.diff(ptr)), np.max(np.diff(fptr)), 1))  # _masked's weights
    for b in range(n):
        prev, pos, floor, limit, ts, program, notes, onset = (
            s0[0],
            s0[1],
            s0[2],
            s0[3],
            s0[4],
            s0[5],
            s0[6],
            s0[7],
        )
        played = played0.copy()
        vprev, vcur = voice0[0].copy(), voice0[1].copy()
        vpn, vcn, vlast, von = (
            voice0[2, :, 0].copy(),
            voice0[3, :, 0].copy(),
            voice0[4, :, 0].copy(),
            voice0[5, :, 0].copy(),
        )
        hist = hist0.copy()
        smask = smask0
        queue = start_queue
        node = start_node
        pending = False
        n_bars = 0
        last = 0  # the form chain's label of the previous bar (0: new)
        rep_a, rep_e, close = 0, 0, False  # replay out[b, rep_a:rep_e], then a Bar
        for step in range(length):
            u0, u1, u2 = u[step, b, 0], u[step, b, 1], u[step, b, 2]
            if alpha > 0 and u0 < alpha:
                pending = True
            act = smask  # the scale this step keeps to (-1: none; a chromatic step leaves it)
            if scaled and u[step, b, 3] < chromatic:
                act = -1
            # the row of the node in its context
            row = base + node
            if n_notes > 0 and keys.shape[0] > 0:
                tsi = ts_index[ts] if ts >= 0 else 0
                nb = notes if notes < n_notes - 1 else n_notes - 1
                q = node * n_ctx + (tsi * (max_pos + 2) + pos + 1) * n_notes + nb
                i = np.searchsorted(keys, q)
                if i > keys.shape[0] - 1:
                    i = keys.shape[0] - 1
                if keys[i] == q:
                    row = i
            # forced tokens: a restart's, then a replayed bar's, then the Bar closing it
            src = 0
            tok = -1
            if queue >= 0:
                src, tok = 1, rt[queue]
            elif rep_a < rep_e or close:
                tok = out[b, rep_a] if rep_a < rep_e else bar_id
                if _allows(g_allowed, ttype, tval, kind, remove_dup, prev, pos, floor, limit,
                           program, onset, played, tok, pcs, -1):  # fmt: skip
                    src = 2 if rep_a < rep_e else 3
                else:  # cannot happen (a bar starts in the bar-start state): stop the replay
                    rep_a, rep_e, close = 0, 0, False
            forced = src > 0
            dead = False
            if not forced:
                mel, chord = -1, -1
                if melody:
                    mel, chord = voice_refs(vprev, vpn, vcur, vcn, vlast, von, program + 1,
                                            onset)  # fmt: skip
                fac = (pitch_code, mel, chord, fm, fc, wbuf)
                factored = (mel >= 0 or chord >= 0) and has_pitch[row]
                ok = False
                tok = -1
                uu = u2
                if factored:  # a masked draw over the row, weighted by the interval factor
                    uu = u1
                    tok = _factored(ptr, cand, prob, row, g_allowed, ttype, tval, kind,
                                    remove_dup, prev, pos, floor, limit, program, onset, played,
                                    pcs, act, pitch_code, mel, chord, fm, fc, wbuf, u1)  # fmt: skip
                    ok = tok >= 0
                elif deg[row] > 0:
                    j = np.searchsorted(key, row + u1, side="right")
                    if j > ptr[row + 1] - 1:
                        j = ptr[row + 1] - 1
                    tok = cand[j]
                    ok = _allows(g_allowed, ttype, tval, kind, remove_dup, prev, pos, floor,
                                 limit, program, onset, played, tok, pcs, act)  # fmt: skip
                    if not ok:
                        stats[b, 4] += 1  # rejected
                else:
                    stats[b, 4] += 1
                if not ok:
                    gr = (g_allowed, ttype, tval, kind, remove_dup, pcs)
                    tok = -1
                    if act >= 0:  # first within the scale, then (off_key) without it
                        st = (prev, pos, floor, limit, program, onset, act)
                        tok = _levels(ptr, cand, prob, fptr, fcand, fprob, row, base, node,
                                      top_k, gr, st, played, uu, stats, b, fac)  # fmt: skip
                        if tok < 0:
                            stats[b, 5] += 1  # off_key
                    if tok < 0:
                        st = (prev, pos, floor, limit, program, onset, -1)
                        tok = _levels(ptr, cand, prob, fptr, fcand, fprob, row, base, node,
                                      top_k, gr, st, played, uu, stats, b, fac)  # fmt: skip
                    if tok < 0:
                        for t in range(v):
                            allowed[t] = _allows(g_allowed, ttype, tval, kind, remove_dup,
                                                 prev, pos, floor, limit, program, onset,
                                                 played, t, pcs, -1)  # fmt: skip
                        if allowed[bar_id]:
                            stats[b, 1] += 1  # dead-end restart
                            tok = bar_id
                            dead = True
                        else:
                            stats[b, 3] += 1  # back-off by corpus frequency
                            w = np.where(allowed, freq, 0.0)
                            if w.sum() <= 0:
                                w = allowed.astype(np.float64)
                            cs = np.cumsum(w)
                            i = np.searchsorted(cs, u2 * cs[-1], side="right")
                            tok = i if i < v - 1 else v - 1
            # a pending restart happens at a bar line the walk reaches by itself (or that
            # closes a replayed bar)
            restart_now = dead
            if (src == 0 or src == 3) and tok == bar_id and pending:
                stats[b, 0] += 1
                restart_now = True
            if restart_now:
                pending = False
            if src == 1:
                queue += 1
            elif src == 2:
                rep_a += 1
                if smask >= 0 and pcs[tok] >= 0 and not (smask >> pcs[tok]) & 1:
                    stats[b, 5] += 1  # off_key: a bar from before the key, replayed
            elif src == 3:
                close = False
            if restart_now:
                queue = 1
            if queue >= n_rt:
                queue = -1
            out[b, step] = tok
            if tok == bar_id:  # a new bar: record it; where no restart replays a prompt,
                bar_start[n_bars] = step  # the form chain may return to an earlier bar
                if scaled and smask < 0 and hist.sum() >= key_notes:  # enough pitches: the key
                    smask = key_masks[np.argmax(key_profiles @ hist)]
                j = n_bars
                n_bars += 1
                lab = 0
                if form and queue < 0 and src != 1:
                    lab = _return_lag(ret, lags, last, j, u[step, b, 4])
                    if lab > 0:
                        lag = lags[lab - 1]
                        rep_a, rep_e = bar_start[j - lag] + 1, bar_start[j - lag + 1]
                        if rep_e > rep_a:
                            close = True
                            stats[b, 6] += 1  # returns
                        else:
                            lab = 0
                last = lab
            # advance the grammar state
            k = kind[tok]
            val = tval[tok]
            if k == _BAR:
                pos, floor = -1, 0
            elif k == _POSITION:
                pos, floor = val, val + 1
            elif k == _NOTE and pos < 0 and floor < 1:
                floor = 1
            if k == _TIMESIG:
                ts, limit = tok, ts_limit[tok]
            if k == _PROGRAM:
                program = val
            if k in (_BAR, _POSITION):
                onset += 1
                notes = 0
            elif k == _NOTE:
                notes += 1
                played[(program + 1) * 128 + val % 128] = onset
                if ttype[tok] == pitch_code:
                    voice_add(vprev, vpn, vcur, vcn, vlast, von, program + 1, onset, val)
            prev = ttype[tok]
            node = tok
            if scaled and pcs[tok] >= 0:  # count the pitches (the key: at a bar line, above)
                hist[pcs[tok]] += 1.0


def count_intervals(seq, starts, ttype, tval, kind, pitch_code, ranks, mel, chord, marg):
    """Add to ``mel`` / ``chord`` (bins of :func:`_bin`) the melodic and chord intervals of
    every ``Pitch`` of the sequences ``seq[starts[i]:starts[i + 1]]`` under the voice state of
    the walk, and to ``marg`` [128] their pitches."""
    for s in range(starts.shape[0] - 1):
        vprev = np.zeros((129, ranks), dtype=np.int64)
        vcur = np.zeros((129, ranks), dtype=np.int64)
        vpn = np.zeros(129, dtype=np.int64)
        vcn = np.zeros(129, dtype=np.int64)
        vlast = np.full(129, -1, dtype=np.int64)
        von = np.full(129, -1, dtype=np.int64)
        program, onset = 0, 0
        for i in range(starts[s], starts[s + 1]):
            t = seq[i]
            k = kind[t]
            if k == _PROGRAM:
                program = tval[t]
            elif k in (_BAR, _POSITION):
                onset += 1
            elif ttype[t] == pitch_code:
                x = tval[t]
                m, c = voice_refs(vprev, vpn, vcur, vcn, vlast, von, program + 1, onset)
                if m >= 0:
                    mel[_bin(x - m)] += 1.0
                if c >= 0:
                    chord[_bin(x - c)] += 1.0
                marg[x % 128] += 1.0
                voice_add(vprev, vpn, vcur, vcn, vlast, von, program + 1, onset, x)


_py_walk = _walk
if numba is not None:
    voice_refs, voice_add, _bin, _factor, _allows, _draw, _factored = map(
        inline, (voice_refs, voice_add, _bin, _factor, _allows, _draw, _factored)
    )
    _masked, _levels, _return_lag, _walk, count_intervals = map(
        njit, (_masked, _levels, _return_lag, _walk, count_intervals)
    )


def walk(walker, n: int, length: int, head: np.ndarray, start, restart_tokens, seed: int,
         engine: str = "numba"):  # fmt: skip
    """The walk: ``(tokens [n, length], per-sample stats)``; ``engine`` ``"numba"`` (the
    compiled kernel) or ``"python"`` (the same function un-jitted)."""
    g, top, full = walker.g, walker._topk, walker._full
    from .tonality import KEY_NOTES

    scaled = walker.cfg.scale != "none"
    u = np.ascontiguousarray(walker._uniforms(n, length, seed))
    out = np.zeros((n, length), dtype=np.int64)
    stats = np.zeros((n, len(STATS)), dtype=np.int64)
    t = walker.tables
    if n and length:
        s0 = np.array(
            [start.prev[0], start.pos[0], start.floor[0], start.limit[0], start.ts[0],
             start.program[0], start.notes[0], start.onset[0]],
            dtype=np.int64,
        )  # fmt: skip
        ranks = start.voice_prev.shape[2]
        voice0 = np.zeros((6, 129, ranks), dtype=np.int64)
        voice0[0], voice0[1] = start.voice_prev[0], start.voice_cur[0]
        voice0[2, :, 0], voice0[3, :, 0] = start.voice_prev_n[0], start.voice_cur_n[0]
        voice0[4, :, 0], voice0[5, :, 0] = start.voice_last[0], start.voice_onset[0]
        start_node = int(head[-1]) if len(head) else g.bar_id
        hist, smask = walker._key_start(head, 1)
        fm, fc = walker._interval_factors()
        fn = _walk if engine == "numba" else _py_walk
        fn(
            u,
            float(walker.cfg.restart),
            np.asarray(restart_tokens, dtype=np.int64),
            -1 if len(head) else 0,
            start_node,
            s0,
            start.played[0].copy(),
            voice0,
            top.key,
            top.ptr,
            top.deg,
            top.cand,
            top.prob,
            top.has_pitch,
            full.ptr,
            full.cand,
            full.prob,
            walker._base,
            int(walker.cfg.top_k),
            walker._keys,
            walker._n_ctx,
            walker._n_notes or 0,
            g.ts_index,
            g.max_position,
            g.allowed,
            g.ttype,
            g.tval,
            g.kind,
            g.ts_limit,
            g.remove_duplicated_notes,
            g.bar_id,
            walker._freq.astype(np.float64),
            g.pitch_code,
            scaled,
            float(walker.cfg.chromatic),
            walker._pc,
            hist[0],
            int(smask[0]),
            walker._key_profiles,
            walker._key_masks,
            KEY_NOTES,
            walker.cfg.melody != "none",
            fm,
            fc,
            walker.cfg.form != "none",
            t.return_probabilities() if t is not None else np.ones((1, 1, 1)),
            t.lags if t is not None else np.zeros(0, dtype=np.int64),
            out,
            stats,
        )
    st = [{k: int(x) for k, x in zip(STATS, row, strict=True)} for row in stats]
    for s in st:
        s["tokens"] = len(head) + length
    return out, st
