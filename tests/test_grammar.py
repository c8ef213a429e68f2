"""The REMI grammar mask on real pieces and on random sequences drawn under it.

The real pieces are exported from music21's corpus (tests/music21_corpora.py): Bach chorales,
fiddle tunes, chorales played by a band with drums, and the workflow tests' base folder with its
awkward files (a text file and a truncated MIDI file, which are not music and are left out).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tokentransfer.grammar import Grammar, unsupported
from tokentransfer.midi import token_errors
from tokentransfer.tokenize import build_tokenizer, tokenize_file


@pytest.fixture(scope="module", params=[{"kind": "REMI", "use_programs": True}, {"kind": "REMI"}])
def remi_tok(request):
    return build_tokenizer(request.param)


@pytest.fixture(scope="module")
def pieces(remi_tok, midi_corpora: Path, music21_corpora: Path) -> list[np.ndarray]:
    folders = [midi_corpora / n for n in ("chorales", "tunes", "band")]
    folders.append(music21_corpora / "base")
    out = []
    for folder in folders:
        for p in sorted(folder.rglob("*")):
            if not p.is_file():
                continue
            try:
                out.append(tokenize_file(remi_tok, p))
            except Exception:  # noqa: BLE001 - base's awkward files: not music
                continue
    return [s for s in out if len(s)]


def test_the_mask_never_forbids_real_music(remi_tok, pieces):
    """Every token of every real piece is allowed in the state the piece reached, where
    miditok finds the piece valid (the mask may be stricter only where miditok counts an
    error or where a position lies beyond the bar)."""
    g = Grammar(remi_tok)
    checked = 0
    for seq in pieces:
        if token_errors(remi_tok, seq) > 0:
            continue
        st = g.new_state(1)
        masks = []
        for t in seq.tolist():
            masks.append(bool(g.mask(st)[0, t]))
            assert masks[-1] == bool(g.allows(st, np.array([t]))[0])
            g.advance(st, np.array([t]))
        assert all(masks), [remi_tok[int(seq[i])] for i in np.flatnonzero(~np.array(masks))[:5]]
        checked += len(seq)
    assert checked > 10_000


def test_random_sequences_under_the_mask_have_no_errors(remi_tok):
    g = Grammar(remi_tok)
    rng = np.random.default_rng(0)
    n, length = 8, 400
    st = g.new_state(n)
    out = np.zeros((n, length), dtype=np.int64)
    for i in range(length):
        m = g.mask(st)
        assert m.any(axis=1).all()  # never a dead state
        # uniform over the allowed tokens: the mask alone must keep the stream valid
        tok_i = np.array([rng.choice(np.flatnonzero(row)) for row in m])
        assert g.allows(st, tok_i).all()
        out[:, i] = tok_i
        g.advance(st, tok_i)
    for seq in out:
        assert token_errors(remi_tok, seq) == 0
    assert len(np.unique(out)) > 50


def test_replay_names_the_breaking_token(remi_tok):
    g = Grammar(remi_tok)
    names = ["Bar_None", "Position_8", "Pitch_60", "Velocity_63", "Duration_1.0.8", "Position_4"]
    if remi_tok.config.use_programs:
        names.insert(2, "Program_0")
    if remi_tok.config.use_time_signatures:
        names.insert(1, "TimeSig_4/4")
    ids = [remi_tok.vocab[n] for n in names]
    with pytest.raises(ValueError, match=r"token \d+ \(Position_4\).*does not go forward"):
        g.replay(np.array(ids))
    with pytest.raises(ValueError, match="special token"):
        g.replay(np.array([remi_tok.vocab["BOS_None"]]))


def test_contexts_follow_the_state(remi_tok, pieces):
    """The vectorised per-token contexts equal those of the state machine, token by token."""
    g = Grammar(remi_tok)
    seq = pieces[0][:600]
    ctx = g.contexts(seq, 4)
    st = g.new_state(1)
    for i, t in enumerate(seq.tolist()):
        g.advance(st, np.array([t]))
        assert ctx[i] == g.context_ids(st.ts, st.pos, st.notes, 4)[0]


def test_unsupported_tokenizers_are_named():
    import miditok

    tsd = miditok.TSD(miditok.TokenizerConfig())  # not a kind the config takes
    assert "TSD" in unsupported(tsd)
    assert "use_rests" in unsupported(build_tokenizer({"kind": "REMI", "use_rests": True}))
    assert unsupported(build_tokenizer({"kind": "REMI"})) is None
    with pytest.raises(NotImplementedError, match="TSD"):
        Grammar(tsd)
