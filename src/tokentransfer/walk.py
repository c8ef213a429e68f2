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

import logging
import os
import time

import numpy as np

from .grammar import GrammarState
from .walkconfig import CONTEXTS, ENGINES, FORMS, MELODIES, SCALES, SIMILARITIES, WalkConfig
from .walkrows import WalkRows

__all__ = ["CONTEXTS", "ENGINES", "FORMS", "MELODIES", "SCALES", "SIMILARITIES", "WalkConfig",
           "Walker", "load_node_embeddings"]  # fmt: skip

log = logging.getLogger(__name__)


class Walker(WalkRows):
    """Biased random walk with restart over a (state-expanded) token graph, under REMI's grammar.

    Built as :class:`~tokentransfer.walkrows.WalkRows` (the successor counts, the tokenizer,
    the node embeddings, the :class:`WalkConfig` and the target's walk tables). After
    :meth:`generate`, :attr:`last_stats` holds per sample
    ``restarts``, ``dead_end_restarts``, ``widened`` (steps that went beyond the context row's
    or the token's top-k), ``backoffs`` (dead ends where no bar could start), ``rejected``
    (first draws the grammar or the scale refused), ``off_key`` (steps where no candidate kept
    to the scale, and replayed pitches off it), ``returns`` (bars replayed) and ``tokens``;
    :attr:`restart_tokens` the tokens a restart appends.
    """

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

    def log_probs(self, seq: np.ndarray, floor: float = 1e-3) -> np.ndarray:
        """log2 P(token i | tokens before it) for i = 1..len(seq) - 1 under the walk without
        restarts (:meth:`next_distribution`), smoothed as ``(1 - floor) * p + floor / |allowed|``
        over the tokens the grammar allows, so that a transition the walk never makes costs a
        finite amount. A token the grammar forbids gets ``-inf``. The first token is given."""
        if not 0 < floor < 1:
            raise ValueError(f"floor must be in (0, 1), got {floor}")
        seq = np.asarray(seq, dtype=np.int64).ravel()
        p, allowed = self.distributions(seq)
        idx = np.arange(len(p))
        nxt = seq[1:]
        ok = allowed[idx, nxt]
        with np.errstate(divide="ignore"):
            out = np.log2((1 - floor) * p[idx, nxt] + floor / allowed.sum(axis=1))
        return np.where(ok, out, -np.inf)

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


def load_node_embeddings(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """``(embeddings [n, hidden], vocab_ids [n])`` from a graph model's ``nodes.h5``."""
    import h5py

    with h5py.File(path, "r") as h5:
        return h5["embeddings"][:], h5["vocab_ids"][:]
