"""The walk's inner loop compiled with numba: the same steps as the vectorised numpy walk.

:meth:`tokentransfer.rwr.Walker.generate` runs this kernel when numba imports (``engine
"numba"``) and the numpy loop otherwise (``engine "numpy"``); both read the same tables (the
walk's rows, the grammar's arrays of :class:`tokentransfer.grammar.Grammar`) and the same
pre-drawn uniforms, and give the same tokens (a test checks it token for token). The numpy
loop advances all samples together with one array operation per rule; at 16 samples its cost
is numpy's per-call overhead, which the compiled loop does not have. The grammar rules here are
the scalar form of ``Grammar.allows`` / ``Grammar.advance`` (kept in step by that test).
"""

from __future__ import annotations

import numpy as np

try:  # numba is a dependency; a missing or broken install falls back to the numpy loop
    import numba

    njit = numba.njit(cache=True, nogil=True)
except Exception:  # noqa: BLE001
    numba = None
    njit = None

# Grammar.kind codes (tokentransfer.grammar)
_BAR, _TIMESIG, _POSITION, _PROGRAM, _NOTE = 1, 2, 3, 4, 5


def available() -> bool:
    return numba is not None


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


def _walk(u, alpha, rt, start_queue, start_node, s0, played0,
          key, ptr, deg, cand, prob, fptr, fcand, fprob, base, top_k,
          keys, n_ctx, n_notes, ts_index, max_pos,
          g_allowed, ttype, tval, kind, ts_limit, remove_dup, bar_id, freq,
          scaled, chromatic, pcs, hist0, smask0, key_profiles, key_masks, key_notes,
          out, stats):  # fmt: skip
    length, n = u.shape[0], u.shape[1]
    v = ttype.shape[0]
    n_rt = rt.shape[0]
    allowed = np.zeros(v, dtype=np.bool_)
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
        hist = hist0.copy()
        smask = smask0
        queue = start_queue
        node = start_node
        pending = False
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
            forced = queue >= 0
            dead = False
            if forced:
                tok = rt[queue]
            else:
                ok = False
                tok = -1
                if deg[row] > 0:
                    j = np.searchsorted(key, row + u1, side="right")
                    if j > ptr[row + 1] - 1:
                        j = ptr[row + 1] - 1
                    tok = cand[j]
                    ok = _allows(g_allowed, ttype, tval, kind, remove_dup, prev, pos, floor,
                                 limit, program, onset, played, tok, pcs, act)  # fmt: skip
                if not ok:
                    stats[b, 4] += 1  # rejected
                    gr = (g_allowed, ttype, tval, kind, remove_dup, pcs)
                    tok = -1
                    if act >= 0:  # first within the scale, then (off_key) without it
                        st = (prev, pos, floor, limit, program, onset, act)
                        tok = _levels(ptr, cand, prob, fptr, fcand, fprob, row, base, node,
                                      top_k, gr, st, played, u2, stats, b)  # fmt: skip
                        if tok < 0:
                            stats[b, 5] += 1  # off_key
                    if tok < 0:
                        st = (prev, pos, floor, limit, program, onset, -1)
                        tok = _levels(ptr, cand, prob, fptr, fcand, fprob, row, base, node,
                                      top_k, gr, st, played, u2, stats, b)  # fmt: skip
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
            restart_now = dead
            if not forced and tok == bar_id and pending:
                stats[b, 0] += 1  # a pending restart at the walk's own bar line
                restart_now = True
            if restart_now:
                pending = False
            if forced:
                queue += 1
            if restart_now:
                queue = 1
            if queue >= n_rt:
                queue = -1
            out[b, step] = tok
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
            prev = ttype[tok]
            node = tok
            if scaled:  # count the pitches; at a bar line with enough of them, fix the key
                if pcs[tok] >= 0:
                    hist[pcs[tok]] += 1.0
                if smask < 0 and tok == bar_id and hist.sum() >= key_notes:
                    smask = key_masks[np.argmax(key_profiles @ hist)]


def _levels(ptr, cand, prob, fptr, fcand, fprob, row, base, node, top_k, gr, st, played, uu,
            stats, b):  # fmt: skip
    """The context row, the token's top-k row, all its successors: the first with an allowed
    candidate gives the token (-1: none); a step past the context row counts as widened."""
    tok = _masked(ptr, cand, prob, row, gr, st, played, uu)
    if tok < 0 and row != base + node:
        tok = _masked(ptr, cand, prob, base + node, gr, st, played, uu)
        if tok >= 0:
            stats[b, 2] += 1  # widened
    if tok < 0 and top_k > 0:
        tok = _masked(fptr, fcand, fprob, node, gr, st, played, uu)
        if tok >= 0:
            stats[b, 2] += 1
    return tok


def _masked(ptr, cand, prob, row, gr, st, played, uu):
    """A candidate of ``row`` that the grammar allows, by renormalised probability; -1: none."""
    a, e = ptr[row], ptr[row + 1]
    if e == a:
        return -1
    w = np.zeros(e - a)
    for i in range(e - a):
        if _allows(gr[0], gr[1], gr[2], gr[3], gr[4], st[0], st[1], st[2], st[3], st[4], st[5],
                   played, cand[a + i], gr[5], st[6]):  # fmt: skip
            w[i] = prob[a + i]
    cs = np.cumsum(w)
    if cs[-1] <= 0:
        return -1
    i = np.searchsorted(cs, uu * cs[-1], side="right")
    if i >= e - a or w[i] <= 0:
        i = e - a - 1
        while w[i] <= 0:
            i -= 1
    return cand[a + i]


if numba is not None:
    _allows = njit(_allows)
    _masked = njit(_masked)
    _levels = njit(_levels)
    _walk = njit(_walk)


def walk(walker, n: int, length: int, head: np.ndarray, start, restart_tokens, seed: int):
    """The compiled walk: ``(tokens [n, length], per-sample stats)`` like ``Walker._walk``."""
    g, top, full = walker.g, walker._topk, walker._full
    from .tonality import KEY_NOTES

    scaled = walker.cfg.scale != "none"
    u = np.ascontiguousarray(walker._uniforms(n, length, seed, 4 if scaled else 3))
    out = np.zeros((n, length), dtype=np.int64)
    stats = np.zeros((n, 6), dtype=np.int64)
    if n and length:
        s0 = np.array(
            [start.prev[0], start.pos[0], start.floor[0], start.limit[0], start.ts[0],
             start.program[0], start.notes[0], start.onset[0]],
            dtype=np.int64,
        )  # fmt: skip
        start_node = int(head[-1]) if len(head) else g.bar_id
        hist, smask = walker._key_start(head, 1)
        _walk(
            u,
            float(walker.cfg.restart),
            np.asarray(restart_tokens, dtype=np.int64),
            -1 if len(head) else 0,
            start_node,
            s0,
            start.played[0].copy(),
            top.key,
            top.ptr,
            top.deg,
            top.cand,
            top.prob,
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
            scaled,
            float(walker.cfg.chromatic),
            walker._pc,
            hist[0],
            int(smask[0]),
            walker._key_profiles,
            walker._key_masks,
            KEY_NOTES,
            out,
            stats,
        )
    names = ("restarts", "dead_end_restarts", "widened", "backoffs", "rejected", "off_key")
    st = [{k: int(x) for k, x in zip(names, row, strict=True)} for row in stats]
    for s in st:
        s["tokens"] = len(head) + length
    return out, st
