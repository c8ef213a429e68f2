"""The REMI grammar as arrays: which token ids may come next, for many sequences at once.

Every sampler of the project (the graph walk, the n-gram chains, the transformer) draws its
next token under the same mask, so that every sample passes miditok's ``tokens_errors`` with
zero errors. The state of a sequence is a handful of integers (:class:`GrammarState` holds them
as arrays, one entry per sequence). Each rule is written once, as a scalar function over the
grammar's arrays compiled with numba (:mod:`tokentransfer.jit`): :func:`token_allowed` (may a
token come next), :func:`token_advance` (the state after a token), :func:`voice_refs_at` /
:func:`voice_add` (the voice state) and :func:`context_id` (the walk's contexts).
:meth:`Grammar.mask` / :meth:`Grammar.allows` / :meth:`Grammar.advance` run them over all
sequences in compiled loops, and the walk's kernel (:mod:`tokentransfer.walkstep`,
:mod:`tokentransfer.walkjit`) calls them directly.

The state of a REMI token stream and the rules it enforces (those miditok checks, plus what
makes a sample decode to what it says):

- ``prev``: the type of the previous token. Type successions come from the tokenizer's own
  ``tokens_types_graph``; before any token only ``Bar`` may come (a sample starts at a bar).
  Special tokens (PAD, BOS, EOS, MASK) are never allowed.
- ``pos``: the position in the bar (``-1`` at a bar start), ``floor``: the smallest
  ``Position`` allowed next (positions go strictly forward inside a bar; a note at the bar
  start takes position 0) and ``limit``: positions per bar of the current time signature
  (a ``Position`` must lie below it).
- ``ts``: the current time signature token (a ``TimeSig`` after a ``Bar`` may change it, as in
  real pieces; ``limit`` follows it).
- ``program``: the current program; with programs, ``PitchDrum`` only after ``Program_-1``,
  ``Pitch`` only after other programs.
- ``played``: the pitches already played at the current onset per program (no pitch twice at
  one onset for one program, where the tokenizer's ``remove_duplicated_notes`` says so, as
  miditok checks it); ``notes``: how many notes started at the current onset.
- ``voice_*``: per program, the pitches of its previous onset and of the current one (the
  walk's interval model reads them, :func:`voice_refs`; no rule depends on them). Within an
  onset miditok orders a program's notes by duration, then pitch (ascending), so the ``i``-th
  note of an onset is the ``i``-th in that order.

REMI options whose grammar is not modelled here (rests, pitch intervals, bar-end or numbered
bars, one sequence per track with programs, a trained vocabulary) and other tokenizer kinds are
refused: :func:`unsupported` says why (the config validation uses it too).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from .jit import compile, inline

SPECIAL_TYPES = ("PAD", "BOS", "EOS", "MASK")
BAR_TOKEN = "Bar_None"

# how a token changes the state (Grammar.kind)
OTHER, BAR, TIMESIG, POSITION, PROGRAM, NOTE = range(6)
#: pitch values per program slot in the ``played`` key (program + 1) * 128 + pitch
_PITCHES = 128
#: pitches of an onset kept per program by the voice state (later ones count, not kept)
VOICE_RANKS = 4


def unsupported(tokenizer: Any) -> str | None:
    """Why the grammar cannot model ``tokenizer``'s token stream, or None when it can."""
    name = type(tokenizer).__name__
    if name != "REMI":
        return f"only miditok REMI tokenizers are supported, not {name}"
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
    if BAR_TOKEN not in tokenizer.vocab:
        problems.append(f"no {BAR_TOKEN} token")
    if problems:
        return f"REMI with {', '.join(problems)} is not supported"
    return None


# --------------------------------------------------------------------------- the rules
# Scalar functions over the Grammar's arrays, compiled (inlined into compiled callers) where
# numba imports: the only statement of each rule. ``allowed``: Grammar.allowed; ``ttype``,
# ``tval``, ``kind``, ``ts_limit``: Grammar's per-token arrays; ``played``: one sequence's row
# of GrammarState.played; ``vprev`` .. ``von``: one sequence's voice arrays.


@inline
def token_allowed(allowed, ttype, tval, kind, remove_dup, prev, floor, limit, program, onset,
                  played, tok):  # fmt: skip
    """Whether token ``tok`` may follow a sequence in the state (``prev``, ``floor``,
    ``limit``, ``program``, ``onset``, ``played``): its type may follow the previous one (in
    the drum row when the program is -1), a ``Position`` lies in ``floor .. limit - 1``, and
    (``remove_dup``) a note does not repeat a pitch of the program at this onset."""
    drum = 1 if program == -1 else 0
    if not allowed[drum, prev, ttype[tok]]:
        return False
    k = kind[tok]
    if k == POSITION:
        v = tval[tok]
        if v < floor or v >= limit:
            return False
    return not (remove_dup and repeats_pitch(tval, kind, program, onset, played, tok))


@inline
def repeats_pitch(tval, kind, program, onset, played, tok):
    """Whether note ``tok`` repeats a pitch the program already played at this onset."""
    return kind[tok] == NOTE and played[(program + 1) * _PITCHES + tval[tok] % _PITCHES] == onset


@inline
def voice_refs_at(vprev, vpn, vcur, vcn, vlast, von, p, onset):
    """``(melodic, chord)`` reference pitches for program slot ``p``'s next ``Pitch`` at onset
    ``onset`` (-1: none): the note of the same rank (or the last, if fewer) at the program's
    previous onset, and the pitch just played at this onset (-1 for the onset's first note)."""
    ranks = vprev.shape[1]
    if von[p] == onset:
        rank, n_ref = vcn[p], vpn[p]
        if n_ref > ranks:
            n_ref = ranks
        mel = vprev[p, min(rank, n_ref - 1)] if n_ref > 0 else -1
        return mel, vlast[p]
    mel = vcur[p, 0] if vcn[p] > 0 else -1  # rank 0 of the program's last onset
    return mel, -1


@inline
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


@inline
def token_advance(ttype, tval, kind, ts_limit, pitch_code, tok, pos, floor, limit, ts, program,
                  notes, onset, played, vprev, vpn, vcur, vcn, vlast, von):  # fmt: skip
    """The state after token ``tok``: returns ``(prev, pos, floor, limit, ts, program, notes,
    onset)`` and updates ``played`` and the voice arrays in place (no check: see
    :func:`token_allowed`)."""
    k = kind[tok]
    val = tval[tok]
    if k == BAR:
        pos, floor = -1, 0
    elif k == POSITION:
        pos, floor = val, val + 1
    elif k == NOTE and pos < 0 and floor < 1:
        floor = 1  # a note at the bar start takes position 0
    if k == TIMESIG:
        ts, limit = tok, ts_limit[tok]
    if k == PROGRAM:
        program = val
    if k in (BAR, POSITION):
        onset += 1
        notes = 0
    elif k == NOTE:
        notes += 1
        played[(program + 1) * _PITCHES + val % _PITCHES] = onset
        if ttype[tok] == pitch_code:
            voice_add(vprev, vpn, vcur, vcn, vlast, von, program + 1, onset, val)
    return ttype[tok], pos, floor, limit, ts, program, notes, onset


@inline
def context_id(ts_index, max_position, ts, pos, notes, n_notes):
    """Context id of a state with time signature token ``ts`` (-1: none), position ``pos`` in
    the bar (-1: bar start) and ``notes`` at the onset (capped at ``n_notes - 1``)."""
    tsi = ts_index[ts] if ts >= 0 else 0
    nb = notes if notes < n_notes - 1 else n_notes - 1
    return (tsi * (max_position + 2) + pos + 1) * n_notes + nb


# the rules over many sequences (Grammar.mask / allows / advance / context_ids)


@compile
def _mask_all(allowed, ttype, tval, kind, remove_dup, prev, floor, limit, program, onset,
              played, out):  # fmt: skip
    for i in range(out.shape[0]):
        for t in range(out.shape[1]):
            out[i, t] = token_allowed(allowed, ttype, tval, kind, remove_dup, prev[i], floor[i],
                                      limit[i], program[i], onset[i], played[i], t)  # fmt: skip


@compile
def _allows_all(allowed, ttype, tval, kind, remove_dup, prev, floor, limit, program, onset,
                played, tokens, out):  # fmt: skip
    for i in range(out.shape[0]):
        out[i] = token_allowed(allowed, ttype, tval, kind, remove_dup, prev[i], floor[i],
                               limit[i], program[i], onset[i], played[i], tokens[i])  # fmt: skip


@compile
def _advance_all(ttype, tval, kind, ts_limit, pitch_code, tokens, prev, pos, floor, limit, ts,
                 program, notes, onset, played, vprev, vpn, vcur, vcn, vlast,
                 von):  # fmt: skip
    for i in range(tokens.shape[0]):
        (prev[i], pos[i], floor[i], limit[i], ts[i], program[i], notes[i], onset[i]) = (
            token_advance(ttype, tval, kind, ts_limit, pitch_code, tokens[i], pos[i], floor[i],
                          limit[i], ts[i], program[i], notes[i], onset[i], played[i], vprev[i],
                          vpn[i], vcur[i], vcn[i], vlast[i], von[i])
        )  # fmt: skip


@compile
def _context_ids(ts_index, max_position, ts, pos, notes, n_notes, out):
    for i in range(out.shape[0]):
        out[i] = context_id(ts_index, max_position, ts[i], pos[i], notes[i], n_notes)


@dataclass
class GrammarState:
    """The grammar state of ``n`` sequences, one array entry per sequence (see module doc)."""

    prev: np.ndarray  # type code of the previous token (Grammar.start_code before any)
    pos: np.ndarray  # position in the bar, -1 at a bar start
    floor: np.ndarray  # smallest Position value allowed next
    limit: np.ndarray  # positions in the bar for the current time signature
    ts: np.ndarray  # token id of the current TimeSig, -1: none yet
    program: np.ndarray
    notes: np.ndarray  # notes started at the current onset
    onset: np.ndarray  # serial number of the current onset (played[i, key] == onset[i]: played)
    played: np.ndarray  # [n, 129 * 128] onset serial at which (program, pitch) was last played
    # per program slot (program + 1): the pitches of its previous onset and of its current one
    voice_prev: np.ndarray  # [n, 129, VOICE_RANKS] pitches of the program's previous onset
    voice_prev_n: np.ndarray  # [n, 129] how many (uncapped)
    voice_cur: np.ndarray  # [n, 129, VOICE_RANKS] pitches at the program's latest onset
    voice_cur_n: np.ndarray  # [n, 129] how many (uncapped)
    voice_last: np.ndarray  # [n, 129] the pitch the program played last
    voice_onset: np.ndarray  # [n, 129] onset serial of voice_cur (-1: never played)

    def __len__(self) -> int:
        return len(self.prev)

    def take(self, idx: Any) -> GrammarState:
        """A copy of the states of the sequences ``idx`` (an index array or a slice)."""
        return GrammarState(**{f.name: getattr(self, f.name)[idx].copy() for f in fields(self)})

    def copy(self) -> GrammarState:
        return self.take(slice(None))

    def put(self, idx: Any, other: GrammarState) -> None:
        """Set the states of the sequences ``idx`` to ``other``'s."""
        for f in fields(self):
            getattr(self, f.name)[idx] = getattr(other, f.name)

    def repeat(self, n: int) -> GrammarState:
        """``n`` copies of a one-sequence state."""
        return GrammarState(
            **{f.name: np.repeat(getattr(self, f.name)[:1], n, axis=0) for f in fields(self)}
        )


class Grammar:
    """The REMI grammar of ``tokenizer`` as per-token arrays and a type-succession table.

    ``vocab_size``: the number of token ids (default: the tokenizer's vocabulary).
    """

    def __init__(self, tokenizer: Any, vocab_size: int | None = None) -> None:
        why = unsupported(tokenizer)
        if why:
            raise NotImplementedError(f"the REMI grammar mask: {why}")
        cfg = tokenizer.config
        v = len(tokenizer.vocab) if vocab_size is None else int(vocab_size)
        names = [""] * v
        for tok, i in tokenizer.vocab.items():
            if i < v:
                names[i] = tok
        if any(not n for n in names):
            raise ValueError(f"{v} token ids, but the tokenizer's vocabulary differs")
        graph: dict[str, set[str]] = tokenizer.tokens_types_graph
        types = sorted({n.split("_")[0] for n in names} | set(graph))
        code = {t: i for i, t in enumerate(types)}
        n_types = len(types)
        self.vocab_size = v
        self.types = types
        self.code = code
        self.start_code = n_types  # the type "row" before the first token
        self.ttype = np.array([code[n.split("_")[0]] for n in names], dtype=np.int64)
        self.tval = np.zeros(v, dtype=np.int64)
        self.ts_limit = np.zeros(v, dtype=np.int64)
        self.kind = np.full(v, OTHER, dtype=np.int64)
        ppb = int(cfg.max_num_pos_per_beat)
        for i, n in enumerate(names):
            typ, _, val = n.partition("_")
            if typ in ("Position", "Pitch", "PitchDrum", "Program"):
                self.tval[i] = int(val)
            if typ == "TimeSig":
                num, _den = tokenizer._parse_token_time_signature(val)
                self.ts_limit[i] = num * ppb
                self.kind[i] = TIMESIG
            elif typ == "Bar":
                self.kind[i] = BAR
            elif typ == "Position":
                self.kind[i] = POSITION
            elif typ == "Program":
                self.kind[i] = PROGRAM
            elif typ in ("Pitch", "PitchDrum"):
                self.kind[i] = NOTE
        # allowed[drum, prev, next]: drum = the current program is -1; row n_types: the start
        allowed = np.zeros((2, n_types + 1, n_types), dtype=bool)
        generable = {t for t in types if t in graph and t not in SPECIAL_TYPES}
        for prev, nexts in graph.items():
            for nxt in nexts:
                t = nxt.split("_")[0]
                if t in generable:
                    allowed[:, code[prev], code[t]] = True
        if cfg.use_programs:  # without programs the stream does not say which track is drums
            if "Pitch" in code:
                allowed[1, :, code["Pitch"]] = False  # program -1 (drums) plays PitchDrum
            if "PitchDrum" in code:
                allowed[0, :, code["PitchDrum"]] = False  # other programs play Pitch
        allowed[:, n_types, code["Bar"]] = True  # a sample starts at a bar
        self.allowed = allowed
        self.bar_id = int(tokenizer.vocab[BAR_TOKEN])
        self.position_code = code.get("Position", -2)
        self.timesig_code = code.get("TimeSig", -2)
        self.use_ts = bool(cfg.use_time_signatures)
        self.default_limit = 4 * ppb
        self.default_ts = -1
        if self.use_ts:
            ts_ids = [i for i, n in enumerate(names) if n.startswith("TimeSig_")]
            self.default_ts = int(tokenizer.vocab.get("TimeSig_4/4", ts_ids[0]))
        self.remove_duplicated_notes = bool(cfg.remove_duplicated_notes)
        self.max_position = int(self.tval[self.kind == POSITION].max(initial=0))
        # time signatures numbered from 1 (0: none yet), for the walk's contexts
        self.ts_index = np.zeros(v, dtype=np.int64)
        ts_tokens = np.flatnonzero(self.kind == TIMESIG)
        self.ts_index[ts_tokens] = np.arange(1, len(ts_tokens) + 1)
        self.ts_tokens = np.concatenate([[-1], ts_tokens]).astype(np.int64)  # by index
        self.n_ts = len(ts_tokens) + 1
        self._names = names
        self.pitch_code = code.get("Pitch", -2)  # Pitch (not PitchDrum): the voice state

    # ------------------------------------------------------------------ states
    def new_state(self, n: int = 1) -> GrammarState:
        """``n`` sequences before their first token."""
        return GrammarState(
            prev=np.full(n, self.start_code, dtype=np.int64),
            pos=np.full(n, -1, dtype=np.int64),
            floor=np.zeros(n, dtype=np.int64),
            limit=np.full(n, self.default_limit, dtype=np.int64),
            ts=np.full(n, -1, dtype=np.int64),
            program=np.zeros(n, dtype=np.int64),
            notes=np.zeros(n, dtype=np.int64),
            onset=np.zeros(n, dtype=np.int64),
            played=np.full((n, 129 * _PITCHES), -1, dtype=np.int64),
            voice_prev=np.zeros((n, 129, VOICE_RANKS), dtype=np.int64),
            voice_prev_n=np.zeros((n, 129), dtype=np.int64),
            voice_cur=np.zeros((n, 129, VOICE_RANKS), dtype=np.int64),
            voice_cur_n=np.zeros((n, 129), dtype=np.int64),
            voice_last=np.full((n, 129), -1, dtype=np.int64),
            voice_onset=np.full((n, 129), -1, dtype=np.int64),
        )

    def _rule_args(self, st: GrammarState) -> tuple:
        return (self.allowed, self.ttype, self.tval, self.kind, self.remove_duplicated_notes,
                st.prev, st.floor, st.limit, st.program, st.onset, st.played)  # fmt: skip

    def mask(self, st: GrammarState) -> np.ndarray:
        """``[n, V]`` bool: the token ids each sequence may take next (:func:`token_allowed`)."""
        out = np.empty((len(st), self.vocab_size), dtype=bool)
        _mask_all(*self._rule_args(st), out)
        return out

    def allows(self, st: GrammarState, tokens: np.ndarray) -> np.ndarray:
        """``[n]`` bool: whether sequence ``i`` may take ``tokens[i]`` next."""
        tokens = np.ascontiguousarray(np.broadcast_to(np.asarray(tokens, dtype=np.int64), len(st)))
        out = np.empty(len(st), dtype=bool)
        _allows_all(*self._rule_args(st), tokens, out)
        return out

    def advance(self, st: GrammarState, tokens: np.ndarray) -> None:
        """Append ``tokens[i]`` to sequence ``i`` (no check: see :meth:`allows`), in place
        (:func:`token_advance`)."""
        tokens = np.ascontiguousarray(np.broadcast_to(np.asarray(tokens, dtype=np.int64), len(st)))
        _advance_all(self.ttype, self.tval, self.kind, self.ts_limit, self.pitch_code, tokens,
                     st.prev, st.pos, st.floor, st.limit, st.ts, st.program, st.notes, st.onset,
                     st.played, st.voice_prev, st.voice_prev_n, st.voice_cur, st.voice_cur_n,
                     st.voice_last, st.voice_onset)  # fmt: skip

    # ------------------------------------------------------------------ sequences
    def replay(self, tokens: np.ndarray) -> GrammarState:
        """The one-sequence state after ``tokens``; ValueError naming the first token that
        breaks miditok's grammar (a prompt must be valid music)."""
        st = self.new_state(1)
        for i, tok in enumerate(np.asarray(tokens, dtype=np.int64).ravel().tolist()):
            if not 0 <= tok < self.vocab_size:
                raise ValueError(f"token {i} (id {tok}) is outside the vocabulary")
            name = self._names[tok]
            if name.split("_")[0] in SPECIAL_TYPES:
                raise ValueError(f"token {i} is a special token ({name})")
            err = self._miditok_error(st, tok) if i else None
            if err:
                raise ValueError(f"the tokens break the grammar at token {i} ({name}): {err}")
            self.advance(st, np.array([tok]))
        return st

    def _miditok_error(self, st: GrammarState, tok: int) -> str | None:
        t, prev = int(self.ttype[tok]), int(st.prev[0])
        if prev < self.start_code and not self.allowed[:, prev, t].any():
            return f"{self.types[t]} cannot follow {self.types[prev]}"
        if self.kind[tok] == POSITION and self.tval[tok] <= st.pos[0]:
            return f"Position {self.tval[tok]} does not go forward from {st.pos[0]}"
        if self.remove_duplicated_notes and repeats_pitch(
            self.tval, self.kind, int(st.program[0]), int(st.onset[0]), st.played[0], tok
        ):
            return "the same pitch twice at one onset"
        return None

    def contexts(self, seq: np.ndarray, n_notes: int) -> np.ndarray:
        """Per token of ``seq``, the context id of the state after it (:meth:`context_ids`).

        Vectorised over the sequence: the time signature and the position are carried forward
        from the last ``TimeSig`` and the last ``Bar`` or ``Position`` token, the notes are
        counted since the latter.
        """
        seq = np.asarray(seq, dtype=np.int64)
        kind = self.kind[seq]
        idx = np.arange(len(seq))
        mark = (kind == BAR) | (kind == POSITION)
        last = np.maximum.accumulate(np.where(mark, idx, -1))
        at = np.maximum(last, 0)
        pos = np.where((last >= 0) & (kind[at] == POSITION), self.tval[seq[at]], -1)
        notes_cum = np.cumsum(kind == NOTE)
        notes = notes_cum - np.where(last >= 0, notes_cum[at], 0)
        last_ts = np.maximum.accumulate(np.where(kind == TIMESIG, idx, -1))
        ts = np.where(last_ts >= 0, seq[np.maximum(last_ts, 0)], -1)
        return self.context_ids(ts, pos, notes, n_notes)

    def context_ids(
        self, ts: np.ndarray, pos: np.ndarray, notes: np.ndarray, n_notes: int
    ) -> np.ndarray:
        """Context id (:func:`context_id`) of states with time signature token ``ts`` (-1:
        none), position ``pos`` in the bar (-1: bar start) and ``notes`` at the onset (capped
        at ``n_notes - 1``; ``n_notes = 1``: not told apart)."""
        ts, pos, notes = np.broadcast_arrays(
            *(np.asarray(x, dtype=np.int64) for x in (ts, pos, notes))
        )
        out = np.empty(ts.shape, dtype=np.int64)
        _context_ids(self.ts_index, self.max_position, ts.ravel(), pos.ravel(), notes.ravel(),
                     int(n_notes), out.reshape(-1))  # fmt: skip
        return out

    def split_context(self, ctx: np.ndarray, n_notes: int) -> tuple[np.ndarray, ...]:
        """``(time signature index, position + 1, notes)`` of context ids."""
        ctx = np.asarray(ctx)
        notes = ctx % n_notes
        rest = ctx // n_notes
        return rest // (self.max_position + 2), rest % (self.max_position + 2), notes

    def n_contexts(self, n_notes: int) -> int:
        return self.n_ts * (self.max_position + 2) * n_notes


def voice_refs(st: GrammarState, i: int = 0) -> tuple[int, int]:
    """``(melodic, chord)`` reference pitches of the next ``Pitch`` of sequence ``i`` in its
    current program (-1: none), :func:`voice_refs_at` of its state."""
    mel, chord = voice_refs_at(st.voice_prev[i], st.voice_prev_n[i], st.voice_cur[i],
                               st.voice_cur_n[i], st.voice_last[i], st.voice_onset[i],
                               int(st.program[i]) + 1, int(st.onset[i]))  # fmt: skip
    return int(mel), int(chord)
