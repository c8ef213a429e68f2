"""The key finder and the walk's scale constraint (``generate.scale: key``) on real pieces."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tokentransfer.graph import context_successors, successors
from tokentransfer.midi import token_errors
from tokentransfer.tokenize import tokenize_file
from tokentransfer.tonality import KEY_NOTES, find_key, key_name, key_tables, scale_pcs
from tokentransfer.walk import WalkConfig, Walker
from tokentransfer.walkform import count_tables


@pytest.fixture(scope="module")
def corpora(tok, midi_corpora: Path) -> dict[str, list[np.ndarray]]:
    return {
        name: [tokenize_file(tok, p) for p in sorted((midi_corpora / name).glob("*.mid"))]
        for name in ("chorales", "tunes")
    }


def walker(tok, seqs, **cfg) -> Walker:
    return Walker(
        successors(seqs, len(tok)),
        tok,
        cfg=WalkConfig(**cfg),
        ctx_succ=context_successors(seqs, tok),
        tables=count_tables(seqs, tok),
    )


def pitch_classes(w: Walker, seq: np.ndarray) -> np.ndarray:
    pc = w._pc[seq]
    return pc[pc >= 0]


# ---------------------------------------------------------------------------- key finder
def test_key_tables_hold_24_keys_with_their_scales():
    profiles, masks = key_tables()
    assert profiles.shape == (24, 12) and np.allclose(profiles.sum(1), 0)
    assert scale_pcs(0) == [0, 2, 4, 5, 7, 9, 11]  # C major
    assert scale_pcs(7) == [0, 2, 4, 6, 7, 9, 11]  # G major: F sharp
    assert scale_pcs(12 + 9) == [0, 2, 4, 5, 6, 7, 8, 9, 11]  # A minor, raised 6th and 7th
    assert len(set(masks.tolist())) == 24


@pytest.mark.parametrize(
    ("degrees", "tonic", "minor"),
    [
        ((0, 2, 4, 5, 7, 9, 11), 0, False),
        ((0, 2, 4, 5, 7, 9, 11), 7, False),
        ((0, 2, 3, 5, 7, 8, 11), 9, True),  # harmonic minor
        ((0, 2, 3, 5, 7, 8, 10), 2, True),  # natural minor
    ],
)
def test_find_key_of_a_scale_weighted_to_its_tonic_triad(degrees, tonic, minor):
    hist = np.zeros(12)
    for d in degrees:
        hist[(tonic + d) % 12] += 1
    for d in (0, 0, 7, 3 if minor else 4):  # tonic, fifth and third heard more often
        hist[(tonic + d) % 12] += 2
    key = find_key(hist)
    assert key == tonic + 12 * minor, key_name(key)


def test_find_key_of_real_pieces_keeps_most_of_their_notes(tok, corpora):
    """On the real chorales and tunes, the key found from a whole piece's pitch classes holds
    most of its notes in its scale (a wrong key finder would hold far fewer)."""
    w = walker(tok, corpora["tunes"])
    inside = []
    for seq in corpora["chorales"] + corpora["tunes"]:
        pcs = pitch_classes(w, seq)
        key = find_key(np.bincount(pcs, minlength=12))
        inside.append(np.isin(pcs, scale_pcs(key)).mean())
    assert min(inside) > 0.8 and np.mean(inside) > 0.93, inside


# ---------------------------------------------------------------------------- the walk
@pytest.mark.parametrize("corpus", ["chorales", "tunes"])
def test_a_keyed_walk_keeps_to_the_key_it_found(tok, corpora, corpus):
    """After the bar line where a sample has 16 pitches, every pitch is in the scale of the key
    of those pitches, but at steps counted as off_key; the samples stay valid REMI."""
    w = walker(tok, corpora[corpus], length=768, samples=6, scale="key", chromatic=0.0)
    samples = w.generate(seed=5)
    bar = tok.vocab["Bar_None"]
    checked = 0
    for seq, st in zip(samples, w.last_stats, strict=True):
        assert token_errors(tok, seq) == 0
        pcs = w._pc[seq]
        seen = np.cumsum(pcs >= 0)
        fix = np.flatnonzero((seq == bar) & (seen >= KEY_NOTES))
        assert len(fix), "the sample never fixed its key"
        at = int(fix[0])
        key = find_key(np.bincount(pcs[: at + 1][pcs[: at + 1] >= 0], minlength=12))
        after = pcs[at + 1 :]
        after = after[after >= 0]
        out = int((~np.isin(after, scale_pcs(key))).sum())
        assert out <= st["off_key"], (key_name(key), out, st)
        checked += len(after)
    assert checked > 300


def test_without_the_scale_the_walk_leaves_the_key(tok, corpora):
    """The same walk with ``scale: none`` plays notes outside the key it started in: the
    constraint above is what keeps the keyed samples in key (the test can fail)."""
    w = walker(tok, corpora["chorales"], length=768, samples=6, scale="none")
    outside = 0
    for seq in w.generate(seed=5):
        pcs = pitch_classes(w, seq)
        key = find_key(np.bincount(pcs[:KEY_NOTES], minlength=12))
        outside += int((~np.isin(pcs[KEY_NOTES:], scale_pcs(key))).sum())
    assert outside > 20
    assert all(st["off_key"] == 0 for st in w.last_stats)


def test_chromatic_steps_leave_the_scale(tok, corpora):
    w0 = walker(tok, corpora["chorales"], length=768, samples=6, chromatic=0.0)
    w1 = walker(tok, corpora["chorales"], length=768, samples=6, chromatic=0.5)

    def off(w):
        n = 0
        for seq, st in zip(w.generate(seed=2), w.last_stats, strict=True):
            pcs = pitch_classes(w, seq)
            key = find_key(np.bincount(pcs[:KEY_NOTES], minlength=12))
            n += int((~np.isin(pcs[KEY_NOTES * 2 :], scale_pcs(key))).sum()) - st["off_key"]
        return n

    assert off(w1) > off(w0) + 5


@pytest.mark.parametrize("prompt", [False, True])
def test_compiled_and_python_keyed_walks_give_the_same_tokens(tok, corpora, prompt):
    """With the scale (the key found mid-walk or from the prompt) the compiled kernel and the
    same function run as Python agree token for token, and on the stats."""
    w = walker(tok, corpora["tunes"], length=150, samples=2, chromatic=0.1, melody="none")
    head = corpora["tunes"][0][:300] if prompt else None
    a = w.generate(prompt=head, seed=7, engine="numba")
    sa = w.last_stats
    b = w.generate(prompt=head, seed=7, engine="python")
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert sa == w.last_stats
    assert sum(s["rejected"] for s in sa) > 0


def test_scale_and_chromatic_are_checked():
    with pytest.raises(ValueError, match="generate.scale"):
        WalkConfig(scale="major")
    with pytest.raises(ValueError, match="generate.chromatic"):
        WalkConfig(chromatic=1.5)
