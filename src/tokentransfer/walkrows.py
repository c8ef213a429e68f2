"""The walk's rows: candidates and probabilities of each token in each context, and its step.

:class:`WalkRows` builds, from the successor counts (and the node embeddings), the tables the
walk draws from (:class:`Table`: every row's candidates by descending weight, top-k cut, with
probabilities and a cumulative key) and reads the walk's step as a distribution
(:meth:`WalkRows.next_distribution`, the same compiled step the walk draws from,
:mod:`tokentransfer.walkstep`). :class:`tokentransfer.walk.Walker` walks over them; the method
and its formula: :mod:`tokentransfer.walk`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import scipy.sparse as sp

from .grammar import Grammar, GrammarState
from .walkconfig import CONTEXTS, WalkConfig
from .walkform import WalkTables


class Table:
    """Rows of candidates sorted by weight, with probabilities and a global cumulative key.

    Entry ``j`` of row ``r`` has ``key[j] = r + (cumulative probability in its row)``, so that
    ``searchsorted(key, r + u)`` draws from row ``r`` for a uniform ``u``, for all rows at once.
    """

    def __init__(
        self, rows: np.ndarray, cols: np.ndarray, logw: np.ndarray, n_rows: int, top_k: int
    ) -> None:
        order = np.lexsort((-logw, rows))  # by row, then by descending weight
        counts = np.bincount(rows, minlength=n_rows)
        start = np.zeros(n_rows + 1, dtype=np.int64)
        np.cumsum(counts, out=start[1:])
        if top_k:
            rank = np.arange(len(order)) - start[rows[order]]
            order = order[rank < top_k]
        r, lw = rows[order], logw[order]
        ptr = np.zeros(n_rows + 1, dtype=np.int64)
        np.cumsum(np.bincount(r, minlength=n_rows), out=ptr[1:])
        deg = np.diff(ptr)
        if len(r):
            rowmax = np.repeat(lw[ptr[:-1][deg > 0]], deg[deg > 0])  # first = row maximum
            w = np.exp(lw - rowmax)
            prob = w / np.bincount(r, weights=w, minlength=n_rows)[r]
            cum = np.cumsum(prob)
            before = np.repeat(np.concatenate([[0.0], cum])[ptr[:-1][deg > 0]], deg[deg > 0])
            within = np.minimum(cum - before, 1.0)
        else:
            prob = within = np.zeros(0)
        self.ptr, self.deg = ptr, deg
        self.cand = cols[order]
        self.prob = prob
        self.key = r + within
        self.key[np.r_[ptr[1:][deg > 0] - 1]] = r[ptr[1:][deg > 0] - 1] + 1.0  # rows end at 1

    def draw(self, rows: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Entry index drawn from each row (rows must not be empty)."""
        j = np.searchsorted(self.key, rows + u, side="right")
        return np.minimum(j, self.ptr[rows + 1] - 1)

    def row(self, r: int) -> tuple[np.ndarray, np.ndarray]:
        a, b = self.ptr[r], self.ptr[r + 1]
        return self.cand[a:b], self.prob[a:b]


def node_embeddings(
    h: np.ndarray | None, vocab_ids: np.ndarray | None, v: int, similarity: str
) -> np.ndarray | None:
    """[V, k] embeddings per token id (zeros for a token without one; unit rows for the cosine
    similarity) from ``h`` [n, k] of the ids ``vocab_ids``; None without ``h``."""
    if h is None:
        return None
    h = np.asarray(h, dtype=np.float64)
    if h.ndim != 2:
        raise ValueError(f"node embeddings must be [n, k], got shape {h.shape}")
    if vocab_ids is None:
        if h.shape[0] != v:
            raise ValueError(
                f"without vocab_ids, h needs one row per token ({v}), got {h.shape[0]}"
            )
        vocab_ids = np.arange(v)
    vocab_ids = np.asarray(vocab_ids, dtype=np.int64).ravel()
    if len(vocab_ids) != h.shape[0]:
        raise ValueError(f"{len(vocab_ids)} vocab_ids for {h.shape[0]} embedding rows")
    if len(vocab_ids) and (vocab_ids.min() < 0 or vocab_ids.max() >= v):
        raise ValueError(f"vocab_ids out of range for vocabulary size {v}")
    if len(np.unique(vocab_ids)) != len(vocab_ids):
        raise ValueError("vocab_ids are not unique")
    if similarity == "cosine":
        norm = np.linalg.norm(h, axis=1, keepdims=True)
        h = np.divide(h, norm, out=np.zeros_like(h), where=norm > 0)
    full = np.zeros((v, h.shape[1]), dtype=np.float64)  # no embedding: similarity 0
    full[vocab_ids] = h
    return full


class WalkRows:
    """The walk's tables over a (state-expanded) token graph, under REMI's grammar.

    ``succ``: scipy sparse [V, V] successor counts over vocabulary ids (V = the tokenizer's
    vocabulary size); ``ctx_succ``: the same per grammar context, [V * C, V] (needed unless
    ``cfg.context == "none"``). ``h``: node embeddings [n, k] of the vocabulary ids
    ``vocab_ids`` [n] (``vocab_ids=None``: row i is token i, n = V); ``h=None``: counts only.
    ``cfg``: a :class:`~tokentransfer.walkconfig.WalkConfig` (default settings when None).
    ``tables``: the target's :class:`~tokentransfer.walkform.WalkTables` (needed unless
    ``cfg.melody`` and ``cfg.form`` are ``"none"``).
    """

    def __init__(
        self,
        succ: sp.spmatrix | sp.sparray,
        tokenizer: Any,
        h: np.ndarray | None = None,
        vocab_ids: np.ndarray | None = None,
        cfg: WalkConfig | None = None,
        ctx_succ: sp.spmatrix | sp.sparray | None = None,
        tables: WalkTables | None = None,
    ) -> None:
        # a copy: beta, temperature, top_k, similarity and context are baked in here (a new
        # Walker for new values); length, samples, restart and seed are read by each generate()
        self.cfg = dataclasses.replace(cfg) if cfg is not None else WalkConfig()
        self.tokenizer = tokenizer
        succ = self._counts(succ)
        if succ.shape[0] != succ.shape[1]:
            raise ValueError(f"successor matrix must be square, got {succ.shape}")
        self.vocab_size = v = int(succ.shape[0])
        if v != len(tokenizer.vocab):
            raise ValueError(
                f"successor matrix is [{v}, {v}] but the tokenizer has {len(tokenizer.vocab)} "
                "tokens: were they made with the same tokenizer?"
            )
        self.g = Grammar(tokenizer, v)
        if tables is None and (self.cfg.melody != "none" or self.cfg.form != "none"):
            raise ValueError(
                f"generate.melody {self.cfg.melody!r} / generate.form {self.cfg.form!r} need the "
                "target's walk tables (tokentransfer.walkform.count_tables, walk_tables.npz); "
                "melody: none and form: none walk without them"
            )
        self.tables = tables
        self._factors: tuple[np.ndarray, np.ndarray] | None = None
        self._step_args: tuple | None = None
        from .tonality import key_tables

        # pitch class of each Pitch token (-1: any other token, PitchDrum included)
        pitch = self.g.ttype == self.g.types.index("Pitch") if "Pitch" in self.g.types else 0
        self._pc = np.where(pitch, self.g.tval % 12, -1).astype(np.int64)
        self._key_profiles, self._key_masks = key_tables()
        self._emb = node_embeddings(h, vocab_ids, v, self.cfg.similarity)
        self._n_notes = CONTEXTS[self.cfg.context]
        self._precompute(succ, ctx_succ)
        # unigram frequencies (back-off when a dead end cannot restart)
        self._freq = np.asarray(succ.sum(0)).ravel() + np.asarray(succ.sum(1)).ravel()
        self.last_stats: list[dict[str, int]] = []
        self.restart_tokens: list[int] = [self.g.bar_id]

    # ------------------------------------------------------------------ set-up
    @staticmethod
    def _counts(m) -> sp.csr_matrix:
        m = sp.csr_matrix(m, dtype=np.float64)
        m.sum_duplicates()
        m.eliminate_zeros()
        if m.nnz and m.data.min() < 0:
            raise ValueError("successor counts must be non-negative")
        return m

    def _logw(self, src: np.ndarray, dst: np.ndarray, counts: np.ndarray) -> np.ndarray:
        logw = self.cfg.beta * np.log(counts)
        if self._emb is not None:
            sim = np.empty(len(src))
            step = 1 << 16
            for a in range(0, len(src), step):
                b = a + step
                sim[a:b] = np.einsum("ij,ij->i", self._emb[src[a:b]], self._emb[dst[a:b]])
            logw = logw + sim / self.cfg.temperature
        return logw

    def _precompute(self, succ: sp.csr_matrix, ctx_succ) -> None:
        """The tables: context rows first (if any), then one context-free row per token."""
        v, cfg = self.vocab_size, self.cfg
        rows = np.repeat(np.arange(v, dtype=np.int64), np.diff(succ.indptr))
        cols = succ.indices.astype(np.int64)
        counts = succ.data
        n_ctx_rows = 0
        self._n_ctx = 1
        self._keys = np.zeros(0, dtype=np.int64)  # sorted (token, context) keys of the rows
        if self._n_notes is not None:
            if ctx_succ is None:
                raise ValueError(
                    f"generate.context {cfg.context!r} needs the context successor counts "
                    "(ctx_succ); context 'none' walks without them"
                )
            from .graph import CONTEXT_NOTES

            cs = sp.coo_matrix(ctx_succ)
            c4 = self.g.n_contexts(CONTEXT_NOTES)
            if cs.shape != (v * c4, v):
                raise ValueError(f"context successor matrix is {cs.shape}, expected {(v * c4, v)}")
            keep = cs.data > 0
            if (cs.data < 0).any():
                raise ValueError("successor counts must be non-negative")
            row, col, data = (cs.row[keep].astype(np.int64), cs.col[keep], cs.data[keep])
            cs = sp.coo_matrix((data, (row, col)), shape=cs.shape)
            u, c = row // c4, row % c4
            tsi, pos1, notes = self.g.split_context(c, CONTEXT_NOTES)
            self._n_ctx = n_c = self.g.n_contexts(self._n_notes)
            ctx = self.g.context_ids(self.g.ts_tokens[tsi], pos1 - 1, notes, self._n_notes)
            keys, inv = np.unique(u * n_c + ctx, return_inverse=True)
            self._keys = keys
            n_ctx_rows = len(keys)
            # sum the merged contexts' counts per (row, col)
            pair = inv.astype(np.int64) * v + col
            pairs, pinv = np.unique(pair, return_inverse=True)
            pc = np.bincount(pinv, weights=data)
            crow, ccol = pairs // v, pairs % v
            rows = np.concatenate([crow, rows + n_ctx_rows])
            cols = np.concatenate([ccol, cols])
            counts = np.concatenate([pc, counts])
            src = np.concatenate([keys[crow] // n_c, np.repeat(np.arange(v), np.diff(succ.indptr))])
        else:
            src = rows
        self._base = n_ctx_rows  # row of token u without context: base + u
        n_rows = n_ctx_rows + v
        logw = self._logw(src, cols, counts)
        self._topk = Table(rows, cols, logw, n_rows, cfg.top_k)
        base = rows >= n_ctx_rows
        self._full = Table(rows[base] - n_ctx_rows, cols[base], logw[base], v, 0)
        is_pitch = self.g.ttype == self.g.pitch_code
        for t in (self._topk, self._full):
            entry_row = np.repeat(np.arange(len(t.deg)), t.deg)
            t.has_pitch = np.bincount(entry_row, weights=is_pitch[t.cand], minlength=len(t.deg)) > 0

    def _interval_factors(self) -> tuple[np.ndarray, np.ndarray]:
        """The (melodic, chord) interval factors the walk multiplies a Pitch's weight by
        (all ones with ``melody: none``), computed once."""
        from .walkstep import TAIL

        if self._factors is None:
            if self.cfg.melody == "none" or self.tables is None:
                self._factors = np.ones(2 * TAIL + 1), np.ones(2 * TAIL + 1)
            else:
                self._factors = self.tables.factors()
        return self._factors

    # ------------------------------------------------------------------ queries
    def transition_probabilities(
        self, u: int, state: GrammarState | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Candidates of token ``u`` and their probabilities (top-k, before the grammar mask),
        in the context of the one-sequence grammar ``state`` reached after ``u``, or the
        context-free row (``state=None``, or a context never seen after ``u``).

        Sorted by descending probability; empty arrays for a token without successors.
        """
        cand, prob = self._topk.row(int(self._row(np.array([u]), state)[0]))
        return cand.copy(), prob.copy()

    def _row(self, nodes: np.ndarray, st: GrammarState | None) -> np.ndarray:
        """The table row of each node in its state's context (its plain row if unseen)."""
        if self._n_notes is None or st is None or not len(self._keys):
            return self._base + nodes
        q = nodes * self._n_ctx + self.g.context_ids(st.ts, st.pos, st.notes, self._n_notes)
        i = np.minimum(np.searchsorted(self._keys, q), len(self._keys) - 1)
        return np.where(self._keys[i] == q, i, self._base + nodes)

    # ------------------------------------------------------------------ walking
    def step_args(self) -> tuple:
        """``(tables, grammar)``: the tuples of arrays the step
        (:func:`tokentransfer.walkstep.distribution`) reads."""
        if self._step_args is None:
            g, top, full = self.g, self._topk, self._full
            tables = (top.ptr, top.cand, top.prob, full.ptr, full.cand, full.prob, self._base,
                      int(self.cfg.top_k), self._keys, self._n_ctx, self._n_notes or 0,
                      self._freq.astype(np.float64), self._pc)  # fmt: skip
            grammar = (g.allowed, g.ttype, g.tval, g.kind, g.ts_limit,
                       g.remove_duplicated_notes, g.bar_id, g.pitch_code, g.ts_index,
                       g.max_position)  # fmt: skip
            self._step_args = tables, grammar
        return self._step_args

    def _step(self) -> tuple:
        """The step's arguments after the state: tables, grammar, melody, factors, scratch."""
        tables, grammar = self.step_args()
        fm, fc = self._interval_factors()
        w = np.zeros(max(int(self._topk.deg.max(initial=0)), int(self._full.deg.max(initial=0)), 1))
        return tables, grammar, self.cfg.melody != "none", fm, fc, w

    def next_distribution(self, node: int, state: GrammarState, i: int = 0) -> np.ndarray:
        """The walk's distribution of the next token ([V], sums to 1) after token ``node`` in
        sequence ``i`` of the grammar ``state``, without restarts, returns and the scale: the
        walk's own step (:func:`tokentransfer.walkstep.distribution`). The first of the context
        row's top-k, the token's top-k, all its successors that has an allowed candidate,
        weighted by the interval factors (``Pitch`` candidates, ``melody: interval``, from the
        voice state in ``state``) and renormalised over the allowed ones; else a ``Bar`` (a
        dead-end restart) where allowed; else the allowed tokens by corpus frequency (the walk's
        back-off)."""
        from .walkstep import distribution_at

        p = np.empty(self.vocab_size)
        allowed = np.empty(self.vocab_size, dtype=bool)
        st = state
        distribution_at(int(node), int(i), st.prev, st.pos, st.floor, st.limit, st.ts,
                        st.program, st.notes, st.onset, st.played, st.voice_prev,
                        st.voice_prev_n, st.voice_cur, st.voice_cur_n, st.voice_last,
                        st.voice_onset, *self._step(), allowed, p)  # fmt: skip
        return p

    def distributions(self, seq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(p, allowed)``, each ``[len(seq) - 1, V]``: row ``i`` is :meth:`next_distribution`
        of token ``i + 1`` after ``seq[:i + 1]`` and the grammar's mask there, in one compiled
        pass over ``seq`` (:func:`tokentransfer.walkstep.distributions`)."""
        from .walkstep import distributions

        seq = np.ascontiguousarray(np.asarray(seq, dtype=np.int64).ravel())
        n = max(len(seq) - 1, 0)
        p = np.empty((n, self.vocab_size))
        allowed = np.empty((n, self.vocab_size), dtype=bool)
        st = self.g.new_state(1)
        distributions(seq, st.prev, st.pos, st.floor, st.limit, st.ts, st.program, st.notes,
                      st.onset, st.played, st.voice_prev, st.voice_prev_n, st.voice_cur,
                      st.voice_cur_n, st.voice_last, st.voice_onset, *self._step(), allowed,
                      p)  # fmt: skip
        return p, allowed
