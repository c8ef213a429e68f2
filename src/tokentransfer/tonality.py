"""Keys for the walk's scale constraint: the Krumhansl-Schmuckler key finder and key scales.

A first-order walk has no memory of the key: it wanders from one key to the next through
shared notes, and a tune in D major drifts into E flat (MusPy's scale consistency of the
walks' samples was 0.87-0.91 against 0.94-0.99 in the real pieces). With ``generate.scale:
key`` the walk finds the key of what it has played so far, once it has played
:data:`KEY_NOTES` pitches and reaches a bar line, and from then on draws pitches from that
key's scale (see :mod:`tokentransfer.walk`).

The key finder is Krumhansl and Schmuckler's: the correlation of the pitch-class histogram
with the 24 rotated Krumhansl-Kessler profiles (Krumhansl 1990, *Cognitive Foundations of
Musical Pitch*, table 4.1), the best one wins (ties: the first, major keys first, by tonic).
A key's scale: the 7 notes of a major key; for a minor key the natural minor with the raised
6th and 7th degrees (melodic and harmonic minor: 9 notes), as minor-key music uses both.
"""

from __future__ import annotations

import numpy as np

#: Krumhansl-Kessler probe-tone profiles, tonic first
MAJOR_PROFILE = (6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88)
MINOR_PROFILE = (6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17)
#: scale degrees (semitones above the tonic) allowed in a major and in a minor key
MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
MINOR_SCALE = (0, 2, 3, 5, 7, 8, 9, 10, 11)
#: pitches a walk plays before it fixes its key (at its next bar line)
KEY_NOTES = 16
NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")


def key_tables() -> tuple[np.ndarray, np.ndarray]:
    """``(profiles [24, 12], masks [24])``: the zero-mean profile of each key (0-11 major on
    C..B, 12-23 minor), so that ``argmax(profiles @ hist)`` is the key of highest correlation
    with the histogram ``hist``; and each key's scale as a 12-bit mask (bit ``pc``)."""
    profiles = np.zeros((24, 12))
    masks = np.zeros(24, dtype=np.int64)
    for mode, (prof, scale) in enumerate(
        ((MAJOR_PROFILE, MAJOR_SCALE), (MINOR_PROFILE, MINOR_SCALE))
    ):
        p = np.asarray(prof) - np.mean(prof)
        for tonic in range(12):
            k = 12 * mode + tonic
            profiles[k] = np.roll(p, tonic)
            masks[k] = sum(1 << ((tonic + d) % 12) for d in scale)
    return profiles, masks


def find_key(hist: np.ndarray) -> int:
    """The key (0-11 major, 12-23 minor, by tonic) of a pitch-class histogram [12]."""
    profiles, _ = key_tables()
    return int(np.argmax(profiles @ np.asarray(hist, dtype=np.float64)))


def key_name(key: int) -> str:
    return f"{NAMES[key % 12]} {'major' if key < 12 else 'minor'}"


def scale_pcs(key: int) -> list[int]:
    """The pitch classes of ``key``'s scale, ascending."""
    _, masks = key_tables()
    return [pc for pc in range(12) if masks[key] >> pc & 1]
