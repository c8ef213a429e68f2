"""Small MIDI corpora made from the corpus that the ``music21`` package ships (offline).

The end-to-end tests run the real Snakemake DAG on these, so that a fresh clone without
``../shared`` runs them. :func:`build` exports a pinned list of works (music21 is pinned in
pyproject.toml, so the list exists) to MIDI with the workflow's own exporter
(``tokentransfer.corpus.export_music21``) and lays them out as ``dir`` sources, with the
awkward cases a user's folder has, each made here rather than found:

``base/`` (Renaissance polyphony, the corpus the transformer is pretrained on)
    plain works; one piece in two versions (``*_score_A`` / ``*_score_B``: the second
    transposed) that the group regex :data:`BASE_GROUP` puts in one group; a name with
    unicode, quotes, ``#`` and spaces; an exact duplicate under another name; a work in a
    subfolder with the ``.midi`` suffix; a text file and a truncated MIDI file (both rejected).

``fiddle/`` (fiddle tunes from Ryan's Mammoth Collection, a target style)
    plain tunes, and one tune in :data:`FIDDLE_KEYS` keys (``{tune}_{key}.mid``) that
    :data:`FIDDLE_GROUP` puts in one group, so a split that does not group would leak it.

The Bach chorales target is not a folder: the tests use :data:`BACH_SOURCE`, a ``music21``
source in the config, so the DAG also runs that source kind.

The unit tests read plain MIDI from :func:`build_plain` (every file a readable piece with
notes, no edge case), three corpora of different styles:

``chorales/`` (:data:`CHORALES`)
    Bach chorales: four voices, in 4/4, 3/4 and 12/8.
``tunes/`` (:data:`TUNES`)
    one-line fiddle tunes (reels and hornpipes in 2/4 and 4/4, jigs in 6/8), none of them
    in ``fiddle/``.
``band/`` (:data:`BAND`)
    other chorales played by a band: each voice its own instrument (:data:`BAND_PROGRAMS`)
    and a drum kit on every beat (a drum track, MIDI channel 10); plus an exact copy of one
    piece under another name (:data:`BAND_DUPLICATE`), as a user's folder has.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import symusic

#: base corpus: music21 corpus paths (single-score works, a few KB of MIDI each)
BASE_WORKS = (
    "palestrina/Agnus_00.krn",
    "palestrina/Agnus_01.krn",
    "palestrina/Agnus_03.krn",
    "palestrina/Agnus_05.krn",
    "palestrina/Agnus_06.krn",
    "palestrina/Agnus_07.krn",
    "palestrina/Agnus_08.krn",
    "palestrina/Agnus_10.krn",
    "monteverdi/madrigal.3.10.mxl",
    "monteverdi/madrigal.3.14.mxl",
)
#: the base work written twice, as two versions of one piece
BASE_VERSIONED = "palestrina/Agnus_09.krn"
#: the base work written under an odd name, and the one written twice byte for byte
BASE_ODD = "palestrina/Agnus_04.krn"
ODD_NAME = 'Missa «Pathétique» #4, "quoted".mid'
BASE_DUPLICATE = "palestrina/Agnus_00.krn"
DUPLICATE_NAME = "Agnus_00 (copy).mid"
#: the base work in a subfolder, with the .midi suffix
BASE_NESTED = ("palestrina/Agnus_02.krn", "more/Agnus_02.midi")
BASE_GROUP = "^(.+?)_score_"
#: the rejected files of base/, with how the reason the manifest gives begins
BASE_REJECTED = {"notes.txt": "not a MIDI file", "truncated.mid": "unreadable MIDI"}

FIDDLE_WORKS = (
    "ryansMammoth/42dHighlandRegimentStrathspey.abc",
    "ryansMammoth/7thRegimentReel.abc",
    "ryansMammoth/AWillieWeHaveMissdYouStrathspey.abc",
    "ryansMammoth/AcaciaReel.abc",
    "ryansMammoth/AcrobatsHornpipe.abc",
    "ryansMammoth/AdmiralsHornpipe.abc",
    "ryansMammoth/AfterTheHareReel.abc",
    "ryansMammoth/AlbemarleHornpipe.abc",
    "ryansMammoth/AldridgesHornpipe.abc",
    "ryansMammoth/AlhambraReel.abc",
)
#: one tune in several keys: name suffix -> semitones up
FIDDLE_VERSIONED = ("ryansMammoth/AlistairMaclalastairStrathspey.abc", "alistair")
FIDDLE_KEYS = {"a": 0, "b": 2, "c": 3, "d": 5, "e": 7}
FIDDLE_GROUP = "^(.+)_[a-g]s?$"
#: a fiddle tune to prompt the walk with (tests/test_workflow.py)
FIDDLE_PROMPT = "AcaciaReel.mid"

#: the Bach chorales target: a music21 source in the config (the workflow exports them)
BACH_SOURCE = {"music21": {"path": "bach/bwv2*.mxl", "limit": 10}}


def _corpus_path(rel: str) -> str:
    from music21 import common

    return str(Path(common.getCorpusFilePath()) / rel)


def _export(job: tuple[str, int]) -> bytes:
    """One music21 corpus work as MIDI bytes, transposed by ``semitones`` (its first score)."""
    rel, semitones = job
    if semitones == 0:
        from tokentransfer.corpus import export_music21

        name, data, reason = export_music21((_corpus_path(rel), rel, "test"))[0]
        if data is None:
            raise RuntimeError(f"music21 could not export {name}: {reason}")
        return data
    from music21 import converter
    from music21.midi import translate

    score = converter.parse(_corpus_path(rel)).transpose(semitones)
    return translate.music21ObjectToMidiFile(score).writestr()


def build(root: Path, workers: int = 2) -> Path:
    """Write ``root/base`` and ``root/fiddle`` (see the module's doc); returns ``root``."""
    files: dict[Path, tuple[str, int]] = {}
    base, fiddle = root / "base", root / "fiddle"
    for rel in BASE_WORKS:
        files[base / f"{Path(rel).stem}.mid"] = (rel, 0)
    stem = Path(BASE_VERSIONED).stem
    files[base / f"{stem}_score_A.mid"] = (BASE_VERSIONED, 0)
    files[base / f"{stem}_score_B.mid"] = (BASE_VERSIONED, 2)
    files[base / ODD_NAME] = (BASE_ODD, 0)
    files[base / DUPLICATE_NAME] = (BASE_DUPLICATE, 0)
    files[base / BASE_NESTED[1]] = (BASE_NESTED[0], 0)
    for rel in FIDDLE_WORKS:
        files[fiddle / f"{Path(rel).stem}.mid"] = (rel, 0)
    rel, tune = FIDDLE_VERSIONED
    for key, semitones in FIDDLE_KEYS.items():
        files[fiddle / f"{tune}_{key}.mid"] = (rel, semitones)

    jobs = sorted(set(files.values()))
    with ProcessPoolExecutor(max(1, min(workers, os.cpu_count() or 1))) as pool:
        exported = dict(zip(jobs, pool.map(_export, jobs), strict=True))
    for path, job in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(exported[job])
    (base / "notes.txt").write_text("not music\n")
    (base / "truncated.mid").write_bytes(exported[BASE_WORKS[1], 0][:40])
    return root


#: plain corpora for the unit tests (see the module's doc): Bach chorales, four voices
CHORALES = (
    "bach/bwv1.6.mxl",
    "bach/bwv11.6.mxl",  # 3/4
    "bach/bwv30.6.mxl",
    "bach/bwv36.4-2.mxl",
    "bach/bwv40.8.mxl",
    "bach/bwv144.6.mxl",
    "bach/bwv177.5.mxl",
    "bach/bwv185.6.mxl",
    "bach/bwv195.6.mxl",
    "bach/bwv248.23-2.mxl",  # 12/8
    "bach/bwv321.mxl",  # 3/4
    "bach/bwv344.mxl",  # 3/4
    "bach/bwv366.mxl",  # 3/4
    "bach/bwv407.mxl",
)
#: one-line fiddle tunes: reels and hornpipes (2/4, 4/4), jigs (6/8)
TUNES = (
    "ryansMammoth/BannocksOBarleyMealJig.abc",
    "ryansMammoth/BloomingMeadowsJig.abc",
    "ryansMammoth/BunchOfRosesReel.abc",
    "ryansMammoth/ChorusJig.abc",
    "ryansMammoth/CupOfTeaReel.abc",
    "ryansMammoth/FireHimOutReel.abc",
    "ryansMammoth/GoAsYouPleaseHornpipe.abc",
    "ryansMammoth/HereAndThereHornpipe.abc",
    "ryansMammoth/LadyForbesReel.abc",
    "ryansMammoth/LiverpoolHornpipe.abc",
    "ryansMammoth/MasonsCapReel.abc",
    "ryansMammoth/RollingOffALogJig.abc",
    "ryansMammoth/SilverStarHornpipe.abc",
    "ryansMammoth/SwimmingInTheGutterJig.abc",
    "ryansMammoth/TurnpikeReel.abc",
    "ryansMammoth/WindThatShakesTheBarleyReel.abc",
)
#: chorales (none of :data:`CHORALES`) that :func:`orchestrate` gives to a band
BAND = (
    "bach/bwv25.6.mxl",
    "bach/bwv48.7.mxl",
    "bach/bwv123.6.mxl",
    "bach/bwv159.5.mxl",
    "bach/bwv257.mxl",
    "bach/bwv352.mxl",
    "bach/bwv388.mxl",
    "bach/bwv429.mxl",
)
#: General MIDI programs of the band's voices, top down: flute, oboe, viola, bassoon
BAND_PROGRAMS = (73, 68, 41, 70)
#: the band piece written twice byte for byte, and the copy's name
BAND_DUPLICATE = ("bwv257.mid", "bwv257 (copy).mid")
#: General MIDI drum notes of the kit
KICK, SNARE, HIHAT = 36, 38, 42


def orchestrate(data: bytes) -> bytes:
    """A chorale's MIDI bytes as a band plays it: each voice (track with notes) its own
    instrument from :data:`BAND_PROGRAMS`, and a drum track: kick on the first beat of the
    bar (and the third in 4/4), snare on the others, closed hi-hat on every eighth."""
    score = symusic.Score.from_midi(data)
    voices = [t for t in score.tracks if len(t.notes)]
    for track, program in zip(voices, BAND_PROGRAMS * len(voices), strict=False):
        track.program = program
    score.tracks = voices
    tpq, end = score.ticks_per_quarter, score.end()
    sigs = sorted(score.time_signatures, key=lambda ts: ts.time)
    beats = sigs[0].numerator if sigs else 4  # quarter beats per bar (chorales: 3 or 4)
    drums = symusic.Track("drums", 0, True)
    for i, tick in enumerate(range(0, end, tpq // 2)):
        drums.notes.append(symusic.Note(tick, tpq // 4, HIHAT, 50))
        if i % 2:
            continue
        beat = (i // 2) % beats
        hit = KICK if beat == 0 or (beats == 4 and beat == 2) else SNARE
        drums.notes.append(symusic.Note(tick, tpq // 4, hit, 90 if hit == KICK else 75))
    score.tracks.append(drums)
    return score.dumps_midi()


def build_plain(root: Path, workers: int = 2) -> Path:
    """Write ``root/chorales``, ``root/tunes`` and ``root/band`` (see the module's doc)."""
    jobs = sorted({(rel, 0) for rel in (*CHORALES, *TUNES, *BAND)})
    with ProcessPoolExecutor(max(1, min(workers, os.cpu_count() or 1))) as pool:
        exported = dict(zip(jobs, pool.map(_export, jobs), strict=True))
    for folder, works in (("chorales", CHORALES), ("tunes", TUNES), ("band", BAND)):
        (root / folder).mkdir(parents=True)
        for rel in works:
            data = exported[rel, 0]
            if folder == "band":
                data = orchestrate(data)
            (root / folder / f"{Path(rel).stem}.mid").write_bytes(data)
    kept, copy = BAND_DUPLICATE
    (root / "band" / copy).write_bytes((root / "band" / kept).read_bytes())
    return root
