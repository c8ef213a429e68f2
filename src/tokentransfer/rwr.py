"""Generation by a biased random walk with restart (RWR) over the target's successor graph.

The walker moves over the first-order successor graph of the target corpus (``succ``: a
scipy CSR [V, V] of counts ``count(u -> v)`` over vocabulary ids, diagonal kept; see
:func:`tokentransfer.graph.successors`). From token ``u`` it moves to ``v`` with probability

    P(v | u)  proportional to  count(u -> v) ** beta * exp(sim(h_u, h_v) / temperature)

restricted to the ``top_k`` candidates of ``u`` by that weight (``top_k = 0``: all of them), and
then to the candidates the tokenizer's grammar allows in the current state (below). ``sim`` is
the cosine (or the dot product) of the graph model's node embeddings ``h``; a token without an
embedding has a similarity term of 0 (a factor ``exp(0) = 1``). With ``h = None`` the walk is the
plain first-order Markov chain of the counts (the baseline without the graph model's bias).

Restart. At every step, with probability ``restart`` (alpha), the walker jumps back to its start
state and the sample GOES ON from there: nothing already generated is discarded and the length
is exact. The start state is a bar start (``Bar_None``) without a prompt, or the state the prompt
left. Because time cannot go backwards inside a bar, a restart appends *restart tokens*
(:attr:`Walker.restart_tokens`):

- no prompt: ``[Bar_None]`` (a new bar; the walk then continues from the ``Bar_None`` node);
- with a prompt: ``[Bar_None, TimeSig_<current>]`` followed by the prompt's tokens from its
  last ``Position`` on (its final onset), so that the walker stands, one bar later, in the
  grammar state and on the node where the prompt ended, and continues from there.

A restart can only be appended where the grammar lets a ``Bar`` follow (after a ``Duration``, a
``TimeSig``, ...); one drawn elsewhere (mid-note) is kept pending and happens at the first step
where it can. ``restart = 1`` therefore means "restart at every step the grammar allows": the
sample is the restart tokens repeated, separated only by the tokens the grammar forces in
between (with time signatures ``Bar_None`` must be followed by a ``TimeSig``, so a sample without
prompt is ``Bar_None TimeSig_x Bar_None TimeSig_x ...``). A dead end (no allowed successor) also
restarts (counted apart). In order, a step tries: the top-k candidates the grammar allows; if
none, all of the token's successors the grammar allows (``widened``: top-k is a bias, the
grammar comes first); if none, a dead-end restart; where a ``Bar`` cannot follow either (a dead
end mid-note), a token the grammar allows drawn by corpus frequency (``backoffs``).

Grammar. The walker keeps a small state machine over the REMI token stream (previous token
type, position in the bar, positions in the bar for the current time signature, current
program, pitches already played at the current onset) and masks the candidates with it, so
that every sample passes miditok's ``tokens_errors`` with zero errors: token-type successions
from the tokenizer's own ``tokens_types_graph``; ``Position`` strictly increasing within a bar
(and below the bar's length for its time signature); no pitch twice at the same onset for the
same program; ``PitchDrum`` only after ``Program_-1`` and ``Pitch`` only after other programs;
one time signature per sample (a ``TimeSig`` repeats the current one); special tokens (PAD, BOS,
EOS, MASK) are never generated. Other token types a REMI config may add (Tempo, KeySig, Chord,
Pedal, PitchBend, ControlChange) are constrained by type only, which is all miditok checks for
them. REMI options whose grammar the machine does not model (rests, pitch intervals, bar-end or
numbered bars, one sequence per track with programs, a trained vocabulary) and other tokenizer
kinds raise NotImplementedError. A prompt is replayed through the same machine (with miditok's
own checks, so a prompt with grammar errors is refused). As the length is exact, a sample may
end inside a note (say on a ``Pitch``); miditok counts no error and the decoder drops that note.

Why not DGL. DGL's weighted ``random_walk`` (with ``restart_prob``) walks node to node with fixed
edge weights; it cannot carry the grammar state above, cannot continue after a restart instead
of ending the trace, and cannot append restart tokens. So the walk is a numpy walker: the
candidate arrays and their probabilities are computed once, vectorised (CSR-like, per row
sorted by weight), and each step is a slice lookup, a grammar mask over at most ``top_k``
candidates and one draw.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from .fileio import atomic_path

log = logging.getLogger(__name__)

SIMILARITIES = ("cosine", "dot")
BAR_TOKEN = "Bar_None"
SPECIAL_TYPES = ("PAD", "BOS", "EOS", "MASK")


@dataclass
class WalkConfig:
    """Settings of the walk (config section ``generate``).

    ``length``: tokens generated per sample (a prompt not counted); ``samples``: samples per
    call; ``beta``: exponent of the counts; ``temperature``: tau of ``exp(sim / tau)``;
    ``top_k``: candidates kept per token (0: all); ``restart``: alpha, the restart probability
    per step; ``similarity``: ``"cosine"`` or ``"dot"``; ``seed``: RNG seed.
    """

    length: int = 1024
    samples: int = 4
    beta: float = 1.0
    temperature: float = 0.5
    top_k: int = 16
    restart: float = 0.05
    similarity: str = "cosine"
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


class _State:
    """Grammar state of a REMI token stream (see the module doc)."""

    __slots__ = ("prev", "pos", "floor", "limit", "ts", "program", "onset")

    def __init__(self, limit: int) -> None:
        self.prev = -1  # type code of the previous token; -1: nothing yet
        self.pos = -1  # miditok's current position in the bar (-1: bar start)
        self.floor = 0  # smallest Position value allowed next
        self.limit = limit  # positions in the bar for the current time signature
        self.ts = -1  # token id of the current TimeSig, -1: none yet
        self.program = 0
        self.onset: dict[int, list[int]] = {}  # program -> pitch token ids at current onset

    def copy(self) -> _State:
        s = _State(self.limit)
        s.prev, s.pos, s.floor, s.ts, s.program = (
            self.prev,
            self.pos,
            self.floor,
            self.ts,
            self.program,
        )
        s.onset = {p: list(v) for p, v in self.onset.items()}
        return s


@dataclass
class _Grammar:
    """Per-token type codes and values, and the allowed type successions, from the tokenizer."""

    types: list[str]  # type code -> type name
    ttype: np.ndarray  # [V] type code of each token
    tval: np.ndarray  # [V] integer value (Position, Pitch, PitchDrum, Program), else 0
    ts_limit: np.ndarray  # [V] positions per bar for a TimeSig token, else 0
    allowed: np.ndarray  # [2, T, T] allowed[drum, prev, next] (drum: current program is -1)
    bar_id: int
    default_limit: int
    default_ts: int  # TimeSig token id used when a prompt has none (-1: no time signatures)
    use_ts: bool
    remove_duplicated_notes: bool
    code: dict[str, int] = field(default_factory=dict)


def _check_supported(tokenizer: Any) -> None:
    name = type(tokenizer).__name__
    if name != "REMI":
        raise NotImplementedError(
            f"rwr.Walker supports miditok REMI tokenizers only, not {name}: its grammar state "
            "machine is written for REMI's token stream"
        )
    cfg = tokenizer.config
    problems = []
    if getattr(tokenizer, "is_trained", False):
        problems.append("a trained (BPE/Unigram/WordPiece) vocabulary")
    if cfg.use_programs and not cfg.one_token_stream_for_programs:
        problems.append("one_token_stream_for_programs=False (one sequence per track)")
    if cfg.use_rests:
        problems.append("use_rests=True")
    if cfg.use_pitch_intervals:
        problems.append("use_pitch_intervals=True")
    if cfg.additional_params.get("use_bar_end_tokens"):
        problems.append("use_bar_end_tokens=True")
    if cfg.additional_params.get("max_bar_embedding") is not None:
        problems.append("max_bar_embedding (numbered Bar tokens)")
    dur = set(cfg.use_note_duration_programs)
    if dur and dur != set(cfg.programs):
        problems.append("use_note_duration_programs that leaves out some programs")
    if problems:
        raise NotImplementedError(f"rwr.Walker does not support REMI with {', '.join(problems)}")


def _build_grammar(tokenizer: Any, vocab_size: int) -> _Grammar:
    _check_supported(tokenizer)
    cfg = tokenizer.config
    graph: dict[str, set[str]] = tokenizer.tokens_types_graph
    names: list[str] = [""] * vocab_size
    for tok, i in tokenizer.vocab.items():
        if i < vocab_size:
            names[i] = tok
    if any(not n for n in names):
        raise ValueError(f"successor graph has {vocab_size} rows, tokenizer vocabulary differs")
    types = sorted({n.split("_")[0] for n in names} | set(graph))
    types.append("<other>")
    code = {t: i for i, t in enumerate(types)}
    ttype = np.array([code[n.split("_")[0]] for n in names], dtype=np.int64)
    tval = np.zeros(vocab_size, dtype=np.int64)
    ts_limit = np.zeros(vocab_size, dtype=np.int64)
    ppb = int(cfg.max_num_pos_per_beat)
    for i, n in enumerate(names):
        typ, _, val = n.partition("_")
        if typ in ("Position", "Pitch", "PitchDrum", "Program"):
            tval[i] = int(val)
        elif typ == "TimeSig":
            num, _den = tokenizer._parse_token_time_signature(val)
            ts_limit[i] = num * ppb
    n_types = len(types)
    allowed = np.zeros((2, n_types, n_types), dtype=bool)
    generable = {t for t in types if t in graph and t not in SPECIAL_TYPES}
    for prev, nexts in graph.items():
        for nxt in nexts:
            t = nxt.split("_")[0]
            if t in generable:
                allowed[:, code[prev], code[t]] = True
    if "Pitch" in code:
        allowed[1, :, code["Pitch"]] = False  # program -1 (drums) plays PitchDrum
    if "PitchDrum" in code:
        allowed[0, :, code["PitchDrum"]] = False  # other programs play Pitch
    if BAR_TOKEN not in tokenizer.vocab:
        raise NotImplementedError(f"rwr.Walker needs a {BAR_TOKEN} token in the vocabulary")
    bar_id = int(tokenizer.vocab[BAR_TOKEN])
    use_ts = bool(cfg.use_time_signatures)
    default_ts = -1
    if use_ts:
        ts_ids = [i for i, n in enumerate(names) if n.startswith("TimeSig_")]
        default_ts = int(tokenizer.vocab.get("TimeSig_4/4", ts_ids[0]))
    return _Grammar(
        types=types,
        ttype=ttype,
        tval=tval,
        ts_limit=ts_limit,
        allowed=allowed,
        bar_id=bar_id,
        default_limit=4 * ppb,
        default_ts=default_ts,
        use_ts=use_ts,
        remove_duplicated_notes=bool(cfg.remove_duplicated_notes),
        code=code,
    )


class Walker:
    """Biased random walk with restart over a successor graph, constrained by REMI's grammar.

    ``succ``: scipy sparse [V, V] successor counts over vocabulary ids (V = the tokenizer's
    vocabulary size). ``h``: node embeddings [n, k] of the vocabulary ids ``vocab_ids`` [n]
    (``vocab_ids=None``: row i is token i, n = V); ``h=None``: counts only. ``cfg``: a
    :class:`WalkConfig` (default settings when None). After :meth:`generate`,
    :attr:`last_stats` holds per sample ``restarts`` (random), ``dead_end_restarts``,
    ``widened`` (steps that went beyond the top-k), ``backoffs`` (dead ends where no bar could
    start) and ``tokens``; :attr:`restart_tokens` the tokens a restart appends.
    """

    def __init__(
        self,
        succ: sp.spmatrix | sp.sparray,
        tokenizer: Any,
        h: np.ndarray | None = None,
        vocab_ids: np.ndarray | None = None,
        cfg: WalkConfig | None = None,
    ) -> None:
        # a copy: beta, temperature, top_k and similarity are baked in here (a new Walker for
        # new values); length, samples, restart and seed are read by each generate()
        self.cfg = dataclasses.replace(cfg) if cfg is not None else WalkConfig()
        self.tokenizer = tokenizer
        succ = sp.csr_matrix(succ, dtype=np.float64)
        if succ.shape[0] != succ.shape[1]:
            raise ValueError(f"successor matrix must be square, got {succ.shape}")
        self.vocab_size = v = int(succ.shape[0])
        if v != len(tokenizer.vocab):
            raise ValueError(
                f"successor matrix is [{v}, {v}] but the tokenizer has {len(tokenizer.vocab)} "
                "tokens: were they made with the same tokenizer?"
            )
        succ.sum_duplicates()
        succ.eliminate_zeros()
        if succ.nnz and succ.data.min() < 0:
            raise ValueError("successor counts must be non-negative")
        self.g = _build_grammar(tokenizer, v)
        self._emb = self._embeddings(h, vocab_ids, v)
        self._precompute(succ)
        # unigram frequencies (back-off when a dead end cannot restart)
        self._freq = np.asarray(succ.sum(0)).ravel() + np.asarray(succ.sum(1)).ravel()
        self.last_stats: list[dict[str, int]] = []
        self.restart_tokens: list[int] = [self.g.bar_id]

    # ------------------------------------------------------------------ set-up
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

    def _precompute(self, succ: sp.csr_matrix) -> None:
        """Per row: top-k candidates by weight, their probabilities, types and values."""
        cfg, v = self.cfg, self.vocab_size
        indptr = succ.indptr.astype(np.int64)
        rows = np.repeat(np.arange(v, dtype=np.int64), np.diff(indptr))
        cols = succ.indices.astype(np.int64)
        logw = cfg.beta * np.log(succ.data)
        if self._emb is not None:
            sim = np.empty(len(rows))
            step = 1 << 16
            for a in range(0, len(rows), step):
                b = a + step
                sim[a:b] = np.einsum("ij,ij->i", self._emb[rows[a:b]], self._emb[cols[a:b]])
            logw = logw + sim / cfg.temperature
        order = np.lexsort((-logw, rows))  # by row, then by descending weight
        self._full = self._pack(order, rows, cols, logw)
        if cfg.top_k:
            rank = np.arange(len(order)) - indptr[rows[order]]
            self._topk = self._pack(order[rank < cfg.top_k], rows, cols, logw)
        else:
            self._topk = self._full

    def _pack(
        self, order: np.ndarray, rows: np.ndarray, cols: np.ndarray, logw: np.ndarray
    ) -> tuple[np.ndarray, ...]:
        """CSR-like (indptr, candidates, probabilities, types, values) of the kept entries."""
        v = self.vocab_size
        r, lw = rows[order], logw[order]
        ptr = np.zeros(v + 1, dtype=np.int64)
        np.cumsum(np.bincount(r, minlength=v), out=ptr[1:])
        deg = np.diff(ptr)
        if len(r):
            rowmax = np.repeat(lw[ptr[:-1][deg > 0]], deg[deg > 0])  # first = row maximum
            w = np.exp(lw - rowmax)
            prob = w / np.bincount(r, weights=w, minlength=v)[r]
        else:
            prob = np.zeros(0)
        cand = cols[order]
        return ptr, cand, prob, self.g.ttype[cand], self.g.tval[cand]

    # ------------------------------------------------------------------ queries
    def transition_probabilities(self, u: int) -> tuple[np.ndarray, np.ndarray]:
        """Candidates of token ``u`` and their probabilities (top-k, before the grammar mask).

        Sorted by descending probability; empty arrays for a token without successors.
        """
        ptr, cand, prob = self._topk[:3]
        a, b = ptr[u], ptr[u + 1]
        return cand[a:b].copy(), prob[a:b].copy()

    # ------------------------------------------------------------------ grammar
    def _new_state(self) -> _State:
        return _State(self.g.default_limit)

    def _update(self, s: _State, tok: int) -> None:
        g, t = self.g, int(self.g.ttype[tok])
        c = g.code
        if t == c["Bar"]:
            s.pos, s.floor = -1, 0
            s.onset.clear()
        elif t == c.get("TimeSig", -2):
            s.ts = tok
            s.limit = int(g.ts_limit[tok])
        elif t == c.get("Position", -2):
            s.pos = int(g.tval[tok])
            s.floor = s.pos + 1
            s.onset.clear()
        elif t == c.get("Program", -2):
            s.program = int(g.tval[tok])
        elif t == c.get("Pitch", -2) or t == c.get("PitchDrum", -2):
            s.onset.setdefault(s.program, []).append(tok)
            if s.pos < 0:  # a note at the bar start: Position_0 is taken
                s.floor = max(s.floor, 1)
        s.prev = t

    def _miditok_errors(self, s: _State, tok: int) -> str | None:
        """miditok's own checks on appending ``tok`` (used to validate a prompt)."""
        g, t = self.g, int(self.g.ttype[tok])
        c = g.code
        if s.prev < 0:
            return None  # miditok does not check the first token
        if not g.allowed[0, s.prev, t] and not g.allowed[1, s.prev, t]:
            return f"{g.types[t]} cannot follow {g.types[s.prev]}"
        if t == c.get("Position", -2) and g.tval[tok] <= s.pos:
            return f"Position {g.tval[tok]} does not go forward from {s.pos}"
        if (
            g.remove_duplicated_notes
            and t in (c.get("Pitch", -2), c.get("PitchDrum", -2))
            and any(g.tval[p] == g.tval[tok] for p in s.onset.get(s.program, []))
        ):
            return "the same pitch twice at one onset"
        return None

    def _mask(self, s: _State, cand: np.ndarray, ctype: np.ndarray, cval: np.ndarray) -> np.ndarray:
        """Which candidates the grammar allows after state ``s`` (vectorised)."""
        g, c = self.g, self.g.code
        row = g.allowed[1 if s.program == -1 else 0, s.prev]
        m = row[ctype]
        p = c.get("Position")
        if p is not None and row[p]:
            m &= (ctype != p) | ((cval >= s.floor) & (cval < s.limit))
        ts = c.get("TimeSig")
        if ts is not None and s.ts >= 0 and row[ts]:
            m &= (ctype != ts) | (cand == s.ts)
        played = s.onset.get(s.program)
        if played:
            m &= ~np.isin(cand, played)
        return m

    def _can_restart(self, s: _State) -> bool:
        return bool(self.g.allowed[0, s.prev, self.g.code["Bar"]]) if s.prev >= 0 else True

    def replay(self, tokens: np.ndarray) -> _State:
        """The grammar state after ``tokens``; ValueError if they break miditok's grammar."""
        s = self._new_state()
        for i, tok in enumerate(np.asarray(tokens, dtype=np.int64).tolist()):
            if not 0 <= tok < self.vocab_size:
                raise ValueError(f"prompt token {i} (id {tok}) is outside the vocabulary")
            if self.g.types[self.g.ttype[tok]] in SPECIAL_TYPES:
                raise ValueError(f"prompt token {i} is a special token ({self.tokenizer[tok]})")
            err = self._miditok_errors(s, tok)
            if err:
                raise ValueError(
                    f"prompt breaks the tokenizer's grammar at token {i} "
                    f"({self.tokenizer[tok]}): {err}"
                )
            self._update(s, tok)
        return s

    def _prompt_restart_tokens(self, prompt: np.ndarray, end: _State) -> list[int]:
        """``Bar_None [TimeSig] <prompt's final onset>``: the prompt's last state, a bar later."""
        g = self.g
        p = [int(x) for x in prompt]
        bars = [i for i, t in enumerate(p) if t == g.bar_id]
        seg = p[bars[-1] + 1 :] if bars else p
        if not seg:
            return [g.bar_id]
        pos_code = g.code.get("Position", -2)
        ts_code = g.code.get("TimeSig", -2)
        starts = [i for i, t in enumerate(seg) if g.ttype[t] == pos_code]
        # the final onset (from the last Position), or the bar's tokens after its TimeSig
        tail = seg[starts[-1] :] if starts else [t for t in seg if g.ttype[t] != ts_code]
        head = [g.bar_id]
        if g.use_ts:
            head.append(end.ts if end.ts >= 0 else g.default_ts)
        return head + tail

    # ------------------------------------------------------------------ walking
    def _backoff(self, s: _State, rng: np.random.Generator) -> int:
        """A token the grammar allows, drawn by corpus frequency (uniform if none occurs)."""
        allv = np.arange(self.vocab_size)
        m = self._mask(s, allv, self.g.ttype, self.g.tval)
        if not m.any():
            raise RuntimeError(f"no token can follow grammar state {self.g.types[s.prev]}")
        w = np.where(m, self._freq, 0.0)
        if w.sum() <= 0:
            w = m.astype(np.float64)
        cs = np.cumsum(w)
        return int(min(np.searchsorted(cs, rng.random() * cs[-1], side="right"), len(cs) - 1))

    def _draw(
        self, s: _State, node: int, table: tuple[np.ndarray, ...], rng: np.random.Generator
    ) -> int:
        """A successor of ``node`` from ``table`` that the grammar allows; -1 if none."""
        ptr, cand_all, prob_all, ctype_all, cval_all = table
        a, b = ptr[node], ptr[node + 1]
        if b == a:
            return -1
        cand = cand_all[a:b]
        m = self._mask(s, cand, ctype_all[a:b], cval_all[a:b])
        if not m.any():
            return -1
        cs = np.cumsum(np.where(m, prob_all[a:b], 0.0))
        i = int(np.searchsorted(cs, rng.random() * cs[-1], side="right"))
        if i >= len(cs) or not m[i]:  # rounding at the top end
            i = int(np.flatnonzero(m)[-1])
        return int(cand[i])

    def _walk_one(
        self,
        rng: np.random.Generator,
        length: int,
        prompt: np.ndarray | None,
        start_state: _State,
        restart_tokens: list[int],
    ) -> tuple[np.ndarray, dict[str, int]]:
        alpha = self.cfg.restart
        out: list[int] = [] if prompt is None else [int(x) for x in prompt]
        total = len(out) + length
        s = start_state.copy()
        stats = {"restarts": 0, "dead_end_restarts": 0, "widened": 0, "backoffs": 0}
        update = self._update

        def emit_restart() -> int:
            for tok in restart_tokens[: total - len(out)]:
                out.append(tok)
                update(s, tok)
            return restart_tokens[-1]

        # without a prompt the sample starts at a bar (its first token is the start state)
        node = out[-1] if prompt is not None else emit_restart() if total else self.g.bar_id
        pending = False
        while len(out) < total:
            if alpha > 0 and not pending and (alpha >= 1 or rng.random() < alpha):
                pending = True
            if pending and self._can_restart(s):
                node = emit_restart()
                stats["restarts"] += 1
                pending = False
                continue
            nxt = self._draw(s, node, self._topk, rng)
            if nxt < 0 and self._topk is not self._full:
                # the grammar rules out every top-k candidate: widen to all successors
                nxt = self._draw(s, node, self._full, rng)
                stats["widened"] += int(nxt >= 0)
            if nxt < 0:  # dead end
                if self._can_restart(s):
                    node = emit_restart()
                    stats["dead_end_restarts"] += 1
                    pending = False
                    continue
                nxt = self._backoff(s, rng)
                stats["backoffs"] += 1
            out.append(nxt)
            update(s, nxt)
            node = nxt
        stats["tokens"] = len(out)
        return np.asarray(out, dtype=np.int64), stats

    def generate(
        self,
        n: int | None = None,
        length: int | None = None,
        prompt: np.ndarray | None = None,
        seed: int | None = None,
    ) -> list[np.ndarray]:
        """``n`` samples (default ``cfg.samples``) of ``length`` new tokens each (default
        ``cfg.length``), as int64 arrays of vocabulary ids.

        With a ``prompt`` (token ids), each sample starts with the prompt's tokens exactly and
        continues from its last token in the grammar state it left; a sample is then
        ``len(prompt) + length`` long. Sample i draws from ``SeedSequence(seed).spawn(n)[i]``
        (default ``cfg.seed``): the same seed gives the same tokens. Per-sample counts of
        restarts, dead-end restarts, widened steps and back-offs go to :attr:`last_stats`.
        """
        n = self.cfg.samples if n is None else int(n)
        length = self.cfg.length if length is None else int(length)
        seed = self.cfg.seed if seed is None else int(seed)
        if n < 0 or length < 0:
            raise ValueError(f"n and length must be >= 0, got {n} and {length}")
        if prompt is not None and len(prompt) == 0:
            prompt = None
        if prompt is None:
            start = self._new_state()
            restart_tokens = [self.g.bar_id]
        else:
            prompt = np.asarray(prompt, dtype=np.int64).ravel()
            start = self.replay(prompt)
            restart_tokens = self._prompt_restart_tokens(prompt, start)
        self.restart_tokens = restart_tokens
        rngs = [np.random.default_rng(ss) for ss in np.random.SeedSequence(seed).spawn(n)]
        t0 = time.perf_counter()
        samples, stats = [], []
        for rng in rngs:
            seq, st = self._walk_one(rng, length, prompt, start, restart_tokens)
            samples.append(seq)
            stats.append(st)
        self.last_stats = stats
        dt = time.perf_counter() - t0
        log.info(
            "generated %d samples x %d tokens in %.2fs (%.0f tokens/s); restarts %s",
            n,
            length,
            dt,
            n * length / dt if dt > 0 else float("inf"),
            [st["restarts"] + st["dead_end_restarts"] for st in stats],
        )
        return samples


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
