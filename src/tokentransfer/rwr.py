"""Generation by a biased random walk with restart (RWR) over the target's token graph.

The walker moves over the target corpus's successor graph: first-order counts
``count(u -> v)`` over vocabulary ids (``succ``, a scipy CSR [V, V], see
:func:`tokentransfer.graph.successors`), and, unless ``context: none``, the same counts split
by the grammar context after ``u`` (``ctx_succ``, [V * C, V], see
:func:`tokentransfer.graph.context_successors`): the position in the bar, and with
``context: onset`` also how many notes already started at that onset (0, 1, 2, 3+). A node of
the walk is thus a token in its context (a state-expanded token graph): from token ``u`` in
context ``c`` it moves to ``v`` with probability

    P(v | u, c)  proportional to  count_c(u -> v) ** beta * exp(sim(h_u, h_v) / temperature)

restricted to the ``top_k`` candidates by that weight (``top_k = 0``: all of them), then to the
candidates the REMI grammar allows in the current state (:mod:`tokentransfer.grammar`).
``sim`` is the cosine (or the dot product) of the graph model's node embeddings ``h``; a token
without an embedding has a similarity term of 0. With ``h = None`` the walk is the Markov chain
of the counts (the baseline without the graph model's bias). A context never seen after ``u``
in the corpus backs off to ``u``'s context-free row; ``context: none`` always uses those rows
(the plain first-order walk). Why the context: a first-order walk picks a ``Position`` from the
last ``Duration`` alone, not knowing where in the bar it stands, and under the grammar's
forward-only mask drifts to late positions and empty bars; conditioned on the position (and on
the notes at the onset) the walk reproduces the style's onset density and chord sizes.

Key. A first-order walk has no memory of the key and drifts from one key to the next through
shared notes. With ``scale: key`` (the default) a sample counts the pitch classes it plays;
once it has played :data:`~tokentransfer.tonality.KEY_NOTES` pitches (a prompt's count) and
reaches a bar line, it finds its key (Krumhansl-Schmuckler, :mod:`tokentransfer.tonality`)
and from then on keeps its ``Pitch`` tokens to that key's scale: the scale is one more mask
on top of the grammar's, with the same fall-backs, and where no candidate of any level keeps
to it the step goes without it (counted as ``off_key``). With probability ``chromatic`` per
step the scale is lifted for that step. The scale depends on the sample's history, so
:meth:`Walker.next_distribution` and :meth:`Walker.log_probs` describe the walk without it.

Restart. At every step, with probability ``restart`` (alpha), a restart becomes pending; it
happens at the next bar line the walk reaches by itself (when it draws ``Bar``), so a restart
never cuts a bar short. The walker then returns to its start state: ``Bar_None`` without a
prompt (the walk goes on from a bar start, where it already is: without a prompt a restart
changes no token, it is counted), and with a prompt ``Bar_None [TimeSig_<current>]`` followed
by the prompt's tokens from its last ``Position`` on (its final onset), so that the walker
stands, one bar later, in the grammar state and on the node where the prompt ended. These
*restart tokens* (:attr:`Walker.restart_tokens`) are emitted one per step. A dead end (no
allowed successor even after widening, below) restarts at once if a ``Bar`` may follow
(counted apart). In order, a step tries: the candidates of the token in its context; the
token's top-k context-free candidates; all of its successors (``widened``: top-k is a bias,
the grammar comes first); a dead-end restart; where a ``Bar`` cannot follow either (a dead end
mid-note), a token the grammar allows drawn by corpus frequency (``backoffs``).

Melody. With ``melody: interval`` (the default) the walk keeps a line: over REMI tokens two
pitches are 3-4 tokens apart, so a row alone draws each pitch with no memory of the last. The
grammar state carries, per program, the pitches of its previous onset and of its current one
(:func:`tokentransfer.grammar.voice_refs`), and the weight of each ``Pitch`` candidate of a row
is multiplied by interval factors counted on the target's training pieces
(:class:`tokentransfer.walkform.WalkTables`): one for the interval to the note of the same rank
at the program's previous onset, one (2nd and later notes of an onset) for the interval to the
pitch just played. The grammar mask and the scale still come first: the factor only reweights
the allowed candidates, and :meth:`Walker.next_distribution` includes it.

Form. With ``form: return`` (the default), at each bar line the walk draws from the target's
form chain (:mod:`tokentransfer.walkform`: measured on its training pieces, whether a bar
returns to the bar 1, 2, 4 or 8 bars back, given what the previous bar did and the bar's index)
and on a return replays that earlier bar of its own sample token for token, then a ``Bar``
(counted as ``returns``); a replayed bar from before the sample found its key may leave the
scale: each such pitch counts as ``off_key``. Order at a bar line: a pending
restart goes first; where it replays a prompt's tokens, that bar does not return; a restart
without a prompt changes no token and the form chain draws as usual.
:meth:`Walker.next_distribution` describes the walk without returns.

Speed. The walk is one loop (:mod:`tokentransfer.walkjit`), compiled with numba (engine
``numba``, the default) or, where numba is missing, run as the same Python function (engine
``python``: slow, the same tokens). Sample ``i`` draws its uniforms from its own
``default_rng(SeedSequence(seed).spawn(n)[i])``, five per step (restart, draw, redraw,
chromatic, return), so it does not depend on the other samples. A step draws one candidate of
its row by the row's cumulative table and checks it against the grammar; a draw the grammar
forbids is replaced by an exact draw from the row renormalised over the allowed candidates (a
rejected first draw followed by a masked draw gives exactly the masked distribution); a row
with ``Pitch`` candidates under the interval model is drawn as a masked draw weighted by the
factors. As the length is exact, a sample may end inside a note (say on a ``Pitch``); miditok
counts no error and the decoder drops it.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from .fileio import atomic_path
from .grammar import BAR_TOKEN, SPECIAL_TYPES, Grammar, GrammarState, voice_refs  # noqa: F401
from .walkform import WalkTables

log = logging.getLogger(__name__)

SIMILARITIES = ("cosine", "dot")
#: scale constraints of the walk (see the module doc and :mod:`tokentransfer.tonality`)
SCALES = ("none", "key")
#: walk contexts and the notes-per-onset classes each tells apart (None: no context)
CONTEXTS = {"none": None, "position": 1, "onset": 4}
#: pitch memory of the walk (see the module doc and :mod:`tokentransfer.walkform`)
MELODIES = ("none", "interval")
#: form device of the walk
FORMS = ("none", "return")
#: walk engines: the compiled kernel, the same function run as Python
ENGINES = ("numba", "python")


@dataclass
class WalkConfig:
    """Settings of the walk (config section ``generate``).

    ``length``: tokens generated per sample (a prompt not counted); ``samples``: samples per
    call; ``beta``: exponent of the counts; ``temperature``: tau of ``exp(sim / tau)``;
    ``top_k``: candidates kept per row (0: all); ``restart``: alpha, the restart probability
    per step; ``similarity``: ``"cosine"`` or ``"dot"``; ``context``: ``"none"``,
    ``"position"`` or ``"onset"`` (see the module doc); ``scale``: ``"key"`` (pitches from
    the scale of the key the sample has found, see the module doc) or ``"none"``;
    ``chromatic``: with ``scale: key``, the probability per step that the pitch drawn may
    leave the scale; ``melody``: ``"interval"`` (pitches weighted by the target's interval
    model) or ``"none"``; ``form``: ``"return"`` (bars return as the target's do) or
    ``"none"``; ``seed``: RNG seed. ``beta`` 0.75 (the default) flattens the walk so that it
    copies no more 8-grams of the target's pieces than held-out pieces share with them
    (docs/method.md); 1.0 walks the counts as they are.
    """

    length: int = 1024
    samples: int = 4
    beta: float = 0.75
    temperature: float = 0.5
    top_k: int = 16
    restart: float = 0.05
    similarity: str = "cosine"
    context: str = "onset"
    scale: str = "key"
    chromatic: float = 0.0
    melody: str = "interval"
    form: str = "return"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.length < 0:
            raise ValueError(f"generate.length must be >= 0, got {self.length}")
        if self.samples < 0:
            raise ValueError(f"generate.samples must be >= 0, got {self.samples}")
        if not self.temperature > 0:
            raise ValueError(f"generate.temperature must be > 0, got {self.temperature}")
        if self.top_k < 0:
            raise ValueError(f"generate.top_k must be >= 0 (0: all), got {self.top_k}")
        if not 0.0 <= self.restart <= 1.0:
            raise ValueError(f"generate.restart must be in [0, 1], got {self.restart}")
        if self.similarity not in SIMILARITIES:
            raise ValueError(
                f"generate.similarity must be one of {SIMILARITIES}, got {self.similarity!r}"
            )
        if self.scale not in SCALES:
            raise ValueError(f"generate.scale must be one of {SCALES}, got {self.scale!r}")
        if not 0.0 <= self.chromatic <= 1.0:
            raise ValueError(f"generate.chromatic must be in [0, 1], got {self.chromatic}")
        if self.melody not in MELODIES:
            raise ValueError(f"generate.melody must be one of {MELODIES}, got {self.melody!r}")
        if self.form not in FORMS:
            raise ValueError(f"generate.form must be one of {FORMS}, got {self.form!r}")
        if self.context not in CONTEXTS:
            raise ValueError(
                f"generate.context must be one of {tuple(CONTEXTS)}, got {self.context!r}"
            )

    @classmethod
    def from_section(cls, section: dict) -> WalkConfig:
        """The walk's settings from a ``generate`` config section: the keys that are fields
        of WalkConfig (the defaults for those it lacks), the others ignored. Rule ``generate``
        and every method that walks (:mod:`tokentransfer.methods`) build it so."""
        return cls(**{k: section[k] for k in cls.__dataclass_fields__ if k in section})


class _Table:
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


class Walker:
    """Biased random walk with restart over a (state-expanded) token graph, under REMI's grammar.

    ``succ``: scipy sparse [V, V] successor counts over vocabulary ids (V = the tokenizer's
    vocabulary size); ``ctx_succ``: the same per grammar context, [V * C, V] (needed unless
    ``cfg.context == "none"``). ``h``: node embeddings [n, k] of the vocabulary ids
    ``vocab_ids`` [n] (``vocab_ids=None``: row i is token i, n = V); ``h=None``: counts only.
    ``cfg``: a :class:`WalkConfig` (default settings when None). ``tables``: the target's
    :class:`~tokentransfer.walkform.WalkTables` (needed unless ``cfg.melody`` and ``cfg.form``
    are ``"none"``). After :meth:`generate`, :attr:`last_stats` holds per sample
    ``restarts``, ``dead_end_restarts``, ``widened`` (steps that went beyond the context row's
    or the token's top-k), ``backoffs`` (dead ends where no bar could start), ``rejected``
    (first draws the grammar or the scale refused), ``off_key`` (steps where no candidate kept
    to the scale, and replayed pitches off it), ``returns`` (bars replayed) and ``tokens``;
    :attr:`restart_tokens` the tokens a restart appends.
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
        from .tonality import key_tables

        # pitch class of each Pitch token (-1: any other token, PitchDrum included)
        pitch = self.g.ttype == self.g.types.index("Pitch") if "Pitch" in self.g.types else 0
        self._pc = np.where(pitch, self.g.tval % 12, -1).astype(np.int64)
        self._key_profiles, self._key_masks = key_tables()
        self._emb = self._embeddings(h, vocab_ids, v)
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

    def _embeddings(
        self, h: np.ndarray | None, vocab_ids: np.ndarray | None, v: int
    ) -> np.ndarray | None:
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
        if self.cfg.similarity == "cosine":
            norm = np.linalg.norm(h, axis=1, keepdims=True)
            h = np.divide(h, norm, out=np.zeros_like(h), where=norm > 0)
        full = np.zeros((v, h.shape[1]), dtype=np.float64)  # no embedding: similarity 0
        full[vocab_ids] = h
        return full

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
            ctx = (tsi * (self.g.max_position + 2) + pos1) * self._n_notes + np.minimum(
                notes, self._n_notes - 1
            )
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
        self._topk = _Table(rows, cols, logw, n_rows, cfg.top_k)
        base = rows >= n_ctx_rows
        self._full = _Table(rows[base] - n_ctx_rows, cols[base], logw[base], v, 0)
        is_pitch = self.g.ttype == self.g.pitch_code
        for t in (self._topk, self._full):
            entry_row = np.repeat(np.arange(len(t.deg)), t.deg)
            t.has_pitch = np.bincount(entry_row, weights=is_pitch[t.cand], minlength=len(t.deg)) > 0

    def _interval_factors(self) -> tuple[np.ndarray, np.ndarray]:
        """The (melodic, chord) interval factors the walk multiplies a Pitch's weight by
        (all ones with ``melody: none``), computed once."""
        from .walkjit import TAIL

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

    def replay(self, tokens: np.ndarray) -> GrammarState:
        """The grammar state after ``tokens``; ValueError if they break miditok's grammar."""
        try:
            return self.g.replay(tokens)
        except ValueError as e:
            raise ValueError(f"prompt: {e}") from None

    def _prompt_restart_tokens(self, prompt: np.ndarray, end: GrammarState) -> list[int]:
        """``Bar_None [TimeSig] <prompt's final onset>``: the prompt's last state, a bar later."""
        g = self.g
        p = [int(x) for x in prompt]
        bars = [i for i, t in enumerate(p) if t == g.bar_id]
        seg = p[bars[-1] + 1 :] if bars else p
        if not seg:
            return [g.bar_id]
        starts = [i for i, t in enumerate(seg) if g.ttype[t] == g.position_code]
        # the final onset (from the last Position), or the bar's tokens after its TimeSig
        tail = seg[starts[-1] :] if starts else [t for t in seg if g.ttype[t] != g.timesig_code]
        head = [g.bar_id]
        if g.use_ts:
            head.append(int(end.ts[0]) if end.ts[0] >= 0 else g.default_ts)
        return head + tail

    # ------------------------------------------------------------------ walking
    def next_distribution(self, node: int, state: GrammarState) -> np.ndarray:
        """The walk's distribution of the next token ([V], sums to 1) after token ``node`` in
        the one-sequence grammar ``state``, without restarts and returns: the first of the
        context row's top-k, the token's top-k, all its successors that has an allowed
        candidate, weighted by the interval factors (``Pitch`` candidates, ``melody:
        interval``, from the voice state in ``state``) and renormalised over the allowed ones;
        else a ``Bar`` (a dead-end restart) where allowed; else the allowed tokens by corpus
        frequency (the walk's back-off)."""
        from .walkjit import TAIL

        g = self.g
        allowed = g.mask(state)[0]
        row = int(self._row(np.array([node]), state)[0])
        levels = [(self._topk, row)]
        if row != self._base + node:
            levels.append((self._topk, self._base + node))
        levels.append((self._full, node))
        mel, chord = voice_refs(state) if self.cfg.melody != "none" else (-1, -1)
        fm, fc = self._interval_factors()
        p = np.zeros(self.vocab_size)
        for table, r in levels:
            cand, prob = table.row(r)
            w = np.where(allowed[cand], prob, 0.0)
            if mel >= 0 or chord >= 0:
                pitch = g.ttype[cand] == g.pitch_code
                f = np.ones(len(cand))
                if mel >= 0:
                    f *= fm[np.clip(g.tval[cand] - mel, -TAIL, TAIL) + TAIL]
                if chord >= 0:
                    f *= fc[np.clip(g.tval[cand] - chord, -TAIL, TAIL) + TAIL]
                w = w * np.where(pitch, f, 1.0)
            if w.sum() > 0:
                p[cand] = w / w.sum()
                return p
        if allowed[g.bar_id]:
            p[g.bar_id] = 1.0
            return p
        w = np.where(allowed, self._freq, 0.0)
        if w.sum() <= 0:
            w = allowed.astype(np.float64)
        return w / w.sum()

    def log_probs(self, seq: np.ndarray, floor: float = 1e-3) -> np.ndarray:
        """log2 P(token i | tokens before it) for i = 1..len(seq) - 1 under the walk without
        restarts (:meth:`next_distribution`), smoothed as ``(1 - floor) * p + floor / |allowed|``
        over the tokens the grammar allows, so that a transition the walk never makes costs a
        finite amount. A token the grammar forbids gets ``-inf``. The first token is given."""
        if not 0 < floor < 1:
            raise ValueError(f"floor must be in (0, 1), got {floor}")
        seq = np.asarray(seq, dtype=np.int64).ravel()
        g = self.g
        st = g.new_state(1)
        out = np.empty(max(len(seq) - 1, 0))
        for i in range(len(seq)):
            g.advance(st, seq[i : i + 1])
            if i + 1 == len(seq):
                break
            allowed = g.mask(st)[0]
            nxt = int(seq[i + 1])
            if not allowed[nxt]:
                out[i] = -np.inf
                continue
            p = self.next_distribution(int(seq[i]), st)[nxt]
            out[i] = np.log2((1 - floor) * p + floor / allowed.sum())
        return out

    def generate(
        self,
        n: int | None = None,
        length: int | None = None,
        prompt: np.ndarray | None = None,
        seed: int | None = None,
        engine: str | None = None,
    ) -> list[np.ndarray]:
        """``n`` samples (default ``cfg.samples``) of ``length`` new tokens each (default
        ``cfg.length``), as int64 arrays of vocabulary ids.

        ``engine``: ``"numba"`` (the compiled loop of :mod:`tokentransfer.walkjit`, the default
        where numba imports) or ``"python"`` (the same function run as Python: slow, the same
        tokens).

        With a ``prompt`` (token ids), each sample starts with the prompt's tokens exactly and
        continues from its last token in the grammar state it left; a sample is then
        ``len(prompt) + length`` long. Sample i draws from ``SeedSequence(seed).spawn(n)[i]``
        (default ``cfg.seed``): the same seed gives the same tokens. Per-sample counts go to
        :attr:`last_stats`.
        """
        n = self.cfg.samples if n is None else int(n)
        length = self.cfg.length if length is None else int(length)
        seed = self.cfg.seed if seed is None else int(seed)
        if n < 0 or length < 0:
            raise ValueError(f"n and length must be >= 0, got {n} and {length}")
        g = self.g
        if prompt is not None and len(prompt) == 0:
            prompt = None
        if prompt is None:
            start = g.new_state(1)
            restart_tokens = [g.bar_id]
            head = np.zeros(0, dtype=np.int64)
        else:
            head = np.asarray(prompt, dtype=np.int64).ravel()
            start = self.replay(head)
            restart_tokens = self._prompt_restart_tokens(head, start)
        self.restart_tokens = restart_tokens
        from . import walkjit

        engine = engine or ("numba" if walkjit.available() else "python")
        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
        if engine == "numba" and not walkjit.available():
            raise RuntimeError("engine 'numba': numba does not import here")
        if engine == "python" and walkjit.available() and n * length > 100_000:
            log.warning("engine 'python' walks %d tokens: slow", n * length)
        self.last_engine = engine
        t0 = time.perf_counter()
        out, stats = walkjit.walk(self, n, length, head, start, restart_tokens, seed, engine)
        self.last_stats = stats
        dt = time.perf_counter() - t0
        log.info(
            "generated %d samples x %d tokens in %.3fs (%.0f tokens/s); restarts %s",
            n,
            length,
            dt,
            n * length / dt if dt > 0 else float("inf"),
            [st["restarts"] + st["dead_end_restarts"] for st in stats],
        )
        return [np.concatenate([head, row]) for row in out]

    @staticmethod
    def _uniforms(n: int, length: int, seed: int, k: int = 5) -> np.ndarray:
        """[length, n, k]: ``k`` uniforms per sample and step (restart, draw, redraw, whether
        the pitch may leave the scale, the form chain's draw), sample i's from its own
        ``default_rng(SeedSequence(seed).spawn(n)[i])``."""
        if n == 0:
            return np.zeros((length, 0, k))
        return np.stack(
            [
                np.random.default_rng(ss).random((length, k))
                for ss in np.random.SeedSequence(seed).spawn(n)
            ],
            axis=1,
        )

    def _key_start(self, head: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Each sample's pitch-class histogram after ``head`` and its scale mask: the prompt's
        key when the prompt has :data:`~tokentransfer.tonality.KEY_NOTES` pitches, else -1
        (found later). Without a scale constraint every mask stays -1."""
        from .tonality import KEY_NOTES

        hist = np.zeros((n, 12))
        smask = np.full(n, -1, dtype=np.int64)
        if self.cfg.scale == "none":
            return hist, smask
        pc = self._pc[head]
        hist += np.bincount(pc[pc >= 0], minlength=12)[None, :]
        if hist[0].sum() >= KEY_NOTES:
            smask[:] = self._key_masks[int(np.argmax(self._key_profiles @ hist[0]))]
        return hist, smask


def _as_input(tokenizer: Any, ids: np.ndarray) -> list:
    seq = [int(i) for i in np.asarray(ids).ravel()]
    # a tokenizer with one sequence per track (REMI without programs) takes a list of tracks
    return seq if tokenizer.one_token_stream else [seq]


def decode(tokenizer: Any, ids: np.ndarray) -> Any:
    """The ``symusic.Score`` of one sample's token ids (one track without programs)."""
    return tokenizer.decode(_as_input(tokenizer, ids))


def token_errors(tokenizer: Any, ids: np.ndarray) -> float:
    """miditok's ``tokens_errors`` ratio of one sample (0: a valid token sequence)."""
    err = tokenizer.tokens_errors(_as_input(tokenizer, ids))
    return float(err[0] if isinstance(err, list) else err)


def write_midi(score: Any, path: str | os.PathLike) -> None:
    """Write a ``symusic.Score`` as a MIDI file atomically."""
    with atomic_path(path, suffix=".mid") as tmp:
        score.dump_midi(str(tmp))


def load_node_embeddings(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """``(embeddings [n, hidden], vocab_ids [n])`` from a graph model's ``nodes.h5``."""
    import h5py

    with h5py.File(path, "r") as h5:
        return h5["embeddings"][:], h5["vocab_ids"][:]
