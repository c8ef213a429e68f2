"""The walk's loop: one function, compiled with numba where numba imports, else run as Python.

:meth:`tokentransfer.walk.Walker.generate` runs :func:`walk`: engine ``"numba"`` (the default,
numba is a pinned dependency) runs the compiled kernel, engine ``"python"`` the very same
function un-jitted (slow, the same tokens; a test checks it on a tiny walk). The loop reads the
walk's rows (:class:`tokentransfer.walkrows.Table`), the grammar's arrays and rules
(:mod:`tokentransfer.grammar`: :func:`~tokentransfer.grammar.token_advance` and, through the
step, :func:`~tokentransfer.grammar.token_allowed`), the step (:mod:`tokentransfer.walkstep`:
each token is drawn from the distribution that the walk's likelihood reads), the walk's melody
and form tables (:mod:`tokentransfer.walkform`), and five pre-drawn uniforms per sample and
step: restart, draw, redraw, chromatic, return.

Melody: the voice state per program slot (program + 1) is the pitches of the program's previous
onset and of its current one (:func:`tokentransfer.grammar.voice_refs_at`); a ``Pitch``
candidate's weight is multiplied by the interval factors of
:class:`tokentransfer.walkform.WalkTables` (:func:`tokentransfer.walkstep.factor`). A row with
a ``Pitch`` candidate is then drawn as a masked draw over its (top-k) candidates.

Form: at a bar line the walk may replay an earlier bar of its own sample (the form chain of the
tables), token for token, then a ``Bar``; each forced token is checked against the grammar and
a replay that would break it stops there (it cannot happen: a bar starts in the bar-start
state).
"""

from __future__ import annotations

import numpy as np

from .grammar import token_advance, voice_refs_at
from .jit import available, compile
from .walkstep import (  # noqa: F401  (TAIL: the interval bins, re-exported)
    TAIL,
    allowed_all,
    allows,
    backoff_weights,
    draw,
    interval_bin,
    level,
    level_entries,
    row_of,
    weights,
)

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
__all__ = ["STATS", "TAIL", "available", "count_intervals", "walk"]


def _draw_level(ptr, cand, prob, fptr, fcand, fprob, row, base, node, top_k, g_allowed, ttype,
                tval, kind, remove_dup, prev, floor, limit, program, onset, played, pcs, act,
                pitch_code, mel, chord, fm, fc, w, uu, stats, b):  # fmt: skip
    """A token drawn from the step's first :func:`~tokentransfer.walkstep.level` with an
    allowed candidate (-1: none); a level past the context row counts as widened."""
    lev, total = level(ptr, cand, prob, fptr, fcand, fprob, row, base, node, top_k, g_allowed,
                       ttype, tval, kind, remove_dup, prev, floor, limit, program, onset, played,
                       pcs, act, pitch_code, mel, chord, fm, fc, w)  # fmt: skip
    if lev < 0:
        return -1
    if lev > 0:
        stats[b, 2] += 1  # widened
    a, m, full = level_entries(lev, ptr, fptr, row, base, node)
    return draw(w, m, total, uu, fcand if full else cand, a)


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
    wbuf = np.zeros(max(np.max(np.diff(ptr)), np.max(np.diff(fptr)), 1))  # a level's weights
    vbuf = np.zeros(v)  # the back-off's weights
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
            row = row_of(keys, n_ctx, n_notes, base, ts_index, max_pos, node, ts, pos, notes)
            # forced tokens: a restart's, then a replayed bar's, then the Bar closing it
            src = 0
            tok = -1
            if queue >= 0:
                src, tok = 1, rt[queue]
            elif rep_a < rep_e or close:
                tok = out[b, rep_a] if rep_a < rep_e else bar_id
                if allows(g_allowed, ttype, tval, kind, remove_dup, prev, floor, limit, program,
                          onset, played, tok, pcs, -1):  # fmt: skip
                    src = 2 if rep_a < rep_e else 3
                else:  # cannot happen (a bar starts in the bar-start state): stop the replay
                    rep_a, rep_e, close = 0, 0, False
            forced = src > 0
            dead = False
            if not forced:
                mel, chord = -1, -1
                if melody:
                    mel, chord = voice_refs_at(vprev, vpn, vcur, vcn, vlast, von, program + 1,
                                               onset)  # fmt: skip
                factored = (mel >= 0 or chord >= 0) and has_pitch[row]
                ok = False
                tok = -1
                uu = u2
                if factored:  # a masked draw over the row, weighted by the interval factor
                    uu = u1
                    total = weights(ptr, cand, prob, row, g_allowed, ttype, tval, kind,
                                    remove_dup, prev, floor, limit, program, onset, played, pcs,
                                    act, pitch_code, mel, chord, fm, fc, wbuf)  # fmt: skip
                    tok = draw(wbuf, ptr[row + 1] - ptr[row], total, u1, cand, ptr[row])
                    ok = tok >= 0
                elif deg[row] > 0:
                    j = np.searchsorted(key, row + u1, side="right")
                    if j > ptr[row + 1] - 1:
                        j = ptr[row + 1] - 1
                    tok = cand[j]
                    ok = allows(g_allowed, ttype, tval, kind, remove_dup, prev, floor, limit,
                                program, onset, played, tok, pcs, act)  # fmt: skip
                    if not ok:
                        stats[b, 4] += 1  # rejected
                else:
                    stats[b, 4] += 1
                if not ok:
                    tok = -1
                    if act >= 0:  # first within the scale, then (off_key) without it
                        tok = _draw_level(ptr, cand, prob, fptr, fcand, fprob, row, base, node,
                                          top_k, g_allowed, ttype, tval, kind, remove_dup, prev,
                                          floor, limit, program, onset, played, pcs, act,
                                          pitch_code, mel, chord, fm, fc, wbuf, uu, stats,
                                          b)  # fmt: skip
                        if tok < 0:
                            stats[b, 5] += 1  # off_key
                    if tok < 0:
                        tok = _draw_level(ptr, cand, prob, fptr, fcand, fprob, row, base, node,
                                          top_k, g_allowed, ttype, tval, kind, remove_dup, prev,
                                          floor, limit, program, onset, played, pcs, -1,
                                          pitch_code, mel, chord, fm, fc, wbuf, uu, stats,
                                          b)  # fmt: skip
                    if tok < 0:
                        allowed_all(g_allowed, ttype, tval, kind, remove_dup, prev, floor, limit,
                                    program, onset, played, allowed)  # fmt: skip
                        if allowed[bar_id]:
                            stats[b, 1] += 1  # dead-end restart
                            tok = bar_id
                            dead = True
                        else:
                            stats[b, 3] += 1  # back-off by corpus frequency
                            backoff_weights(allowed, freq, vbuf)
                            cs = np.cumsum(vbuf)
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
            prev, pos, floor, limit, ts, program, notes, onset = token_advance(
                ttype,
                tval,
                kind,
                ts_limit,
                pitch_code,
                tok,
                pos,
                floor,
                limit,
                ts,
                program,
                notes,
                onset,
                played,
                vprev,
                vpn,
                vcur,
                vcn,
                vlast,
                von,
            )
            node = tok
            if scaled and pcs[tok] >= 0:  # count the pitches (the key: at a bar line, above)
                hist[pcs[tok]] += 1.0


def count_intervals(seq, starts, ttype, tval, kind, pitch_code, ranks, mel, chord, marg):
    """Add to ``mel`` / ``chord`` (bins of :func:`~tokentransfer.walkstep.interval_bin`) the
    melodic and chord intervals of every ``Pitch`` of the sequences
    ``seq[starts[i]:starts[i + 1]]`` under the walk's voice state (the grammar's
    :func:`~tokentransfer.grammar.token_advance`), and to ``marg`` [128] their pitches."""
    v = ttype.shape[0]
    no_limits = np.zeros(v, dtype=np.int64)  # positions per bar do not matter here
    for s in range(starts.shape[0] - 1):
        vprev = np.zeros((129, ranks), dtype=np.int64)
        vcur = np.zeros((129, ranks), dtype=np.int64)
        vpn = np.zeros(129, dtype=np.int64)
        vcn = np.zeros(129, dtype=np.int64)
        vlast = np.full(129, -1, dtype=np.int64)
        von = np.full(129, -1, dtype=np.int64)
        played = np.full(129 * 128, -1, dtype=np.int64)
        pos, floor, limit, ts, program, notes, onset = -1, 0, 0, -1, 0, 0, 0
        for i in range(starts[s], starts[s + 1]):
            t = seq[i]
            if ttype[t] == pitch_code:
                x = tval[t]
                m, c = voice_refs_at(vprev, vpn, vcur, vcn, vlast, von, program + 1, onset)
                if m >= 0:
                    mel[interval_bin(x - m)] += 1.0
                if c >= 0:
                    chord[interval_bin(x - c)] += 1.0
                marg[x % 128] += 1.0
            _, pos, floor, limit, ts, program, notes, onset = token_advance(
                ttype,
                tval,
                kind,
                no_limits,
                pitch_code,
                t,
                pos,
                floor,
                limit,
                ts,
                program,
                notes,
                onset,
                played,
                vprev,
                vpn,
                vcur,
                vcn,
                vlast,
                von,
            )


_py_walk = _walk
_return_lag, _draw_level, _walk, count_intervals = map(
    compile, (_return_lag, _draw_level, _walk, count_intervals)
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
