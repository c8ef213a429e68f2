"""Corpus sources from config: ``music21``, ``tegridy`` and ``dir``; one corpus's ingestion."""

from __future__ import annotations

import bisect
import contextlib
import fnmatch
import logging
import os
import random
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from ..tegridy import verify
from .errors import CorpusError
from .folders import iter_dir
from .found import Found, iter_filtered, select
from .manifest import ManifestWriter, Row, read_manifest
from .rows import iter_rows
from .safety import Limits
from .zips import ZipReader, iter_zip

log = logging.getLogger(__name__)

SOURCE_KINDS = ("music21", "tegridy", "dir")
#: music21 corpus file types that hold notated music (``.rntxt`` is harmonic analysis).
MUSIC21_SUFFIXES = frozenset({".krn", ".mxl", ".xml", ".musicxml", ".abc", ".mid", ".md", ".mei"})


def source_kind(source: dict) -> tuple[str, dict]:
    """The (kind, settings) of a source written as ``{kind: {settings}}``."""
    if len(source) != 1:
        raise CorpusError(f"a source has exactly one kind of {SOURCE_KINDS}, got {list(source)}")
    kind, spec = next(iter(source.items()))
    if kind not in SOURCE_KINDS:
        raise CorpusError(f"unknown source kind {kind!r}; use one of {SOURCE_KINDS}")
    return kind, spec or {}


def source_label(source: dict) -> str:
    """A short, stable label for a source, written in the manifest's ``source`` column."""
    kind, spec = source_kind(source)
    if kind == "music21":
        what = spec.get("composer") or spec.get("path")
        what = ",".join(what) if isinstance(what, list) else what
        return f"music21:{what}"
    if kind == "tegridy":
        return f"tegridy:{spec['zip']}"
    return f"dir:{spec['path']}"


# --------------------------------------------------------------------------- music21


def music21_paths(spec: dict) -> list[tuple[str, str]]:
    """(absolute path, path relative to the music21 corpus) of the works a query selects."""
    from music21 import common as m21common
    from music21 import corpus as m21corpus

    root = Path(m21common.getCorpusFilePath())
    composers = spec.get("composer")
    if isinstance(composers, str):
        composers = [composers]
    paths: list[Path] = []
    if composers:
        for c in composers:
            found = m21corpus.getComposer(c)
            if not found:
                raise CorpusError(f"music21 corpus has no works of composer {c!r}")
            paths.extend(Path(p) for p in found)
    else:
        paths = [Path(p) for p in m21corpus.getPaths()]
    out = []
    pattern = spec.get("path")
    for p in sorted(set(paths)):
        rel = p.relative_to(root).as_posix() if p.is_relative_to(root) else p.name
        if p.suffix.lower() not in MUSIC21_SUFFIXES:
            continue
        if pattern and not fnmatch.fnmatch(rel, pattern):
            continue
        out.append((str(p), rel))
    if not out:
        raise CorpusError(f"music21 query {spec} selects no works")
    return out


def export_music21(args: tuple[str, str, str]) -> list[tuple[str, bytes | None, str | None]]:
    """Parse one music21 corpus file and export it to MIDI bytes (one per score of an opus)."""
    path, rel, _label = args
    try:
        from music21 import converter, stream
        from music21.midi import translate

        parsed = converter.parse(path)
        scores = list(parsed.scores) if isinstance(parsed, stream.Opus) else [parsed]
    except Exception as exc:  # music21 raises many kinds on malformed scores
        return [(rel, None, f"music21 cannot parse: {type(exc).__name__}: {exc}"[:300])]
    out = []
    for i, score in enumerate(scores):
        name = rel if len(scores) == 1 else f"{rel}#{i + 1}"
        try:
            data = translate.music21ObjectToMidiFile(score).writestr()
            out.append((name, data, None))
        except Exception as exc:
            out.append(
                (name, None, f"music21 MIDI export failed: {type(exc).__name__}: {exc}"[:300])
            )
    return out


def iter_music21(spec: dict, label: str, seed: int, workers: int = 1) -> list[Found]:
    """Export the works a music21 query selects to MIDI, in parallel; failures carry reasons."""
    works = music21_paths(spec)
    limit = spec.get("limit")
    if limit is not None and len(works) > limit:
        works = sorted(random.Random(seed).sample(works, limit))
    log.info("%s: exporting %d works with %d workers", label, len(works), workers)
    jobs = [(p, rel, label) for p, rel in works]
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            results = list(pool.map(export_music21, jobs, chunksize=4))
    else:
        results = [export_music21(j) for j in jobs]
    found = []
    for items in results:
        for name, data, reason in items:
            found.append(Found(label, name, data=data, reason=reason, size=len(data or b"")))
    return found


# --------------------------------------------------------------------------- corpus


def collect(source: dict, **kwargs) -> tuple[list[Found], str | None]:
    """The entries of one source after include/exclude and limit (a list), and its group
    pattern: :func:`iter_source` (same keyword arguments) in memory."""
    return list(iter_source(source, **kwargs)), source_kind(source)[1].get("group")


def iter_source(
    source: dict,
    *,
    limits: Limits,
    seed: int,
    tegridy_zips: dict[str, str] | None = None,
    workers: int = 1,
    reader: ZipReader | None = None,
) -> Iterator[Found]:
    """The entries of one source after include/exclude and limit, one at a time.

    Entries of folders and archives carry no content: it is read (through ``reader``) when
    :func:`~tokentransfer.corpus.iter_rows` checks them, one at a time. Nothing is held for the
    whole source except where it must be: a ``limit`` draws its sample from the list of all
    entries, and music21 exports are made (in parallel) before the first is given.
    """
    kind, spec = source_kind(source)
    label = source_label(source)
    if kind == "music21":
        yield from iter_music21(spec, label, seed, workers)
        return
    if kind == "tegridy":
        zpath = (tegridy_zips or {}).get(spec["zip"])
        if zpath is None:
            raise CorpusError(f"no local copy of Tegridy zip {spec['zip']} was provided")
        verify(zpath, spec["zip"])  # a mirror's copy as much as a download: pinned by sha256
        found = iter_zip(zpath, label, limits, prefix="", reader=reader)
    else:
        found = iter_dir(spec["path"], label, limits, reader=reader)
    found = iter_filtered(found, spec.get("include"), spec.get("exclude"))
    if spec.get("limit") is None:
        yield from found
    else:
        yield from select(list(found), spec["limit"], seed)


def ingest_manifest(
    name: str,
    corpus: dict,
    *,
    store: str | os.PathLike,
    manifest: str | os.PathLike,
    limits: Limits,
    seed: int,
    tegridy_zips: dict[str, str] | None = None,
    workers: int = 1,
) -> dict[str, int]:
    """Ingest every source of corpus ``name`` into ``store``, write its manifest row by row
    as the rows are made, and return the count of rows per status.

    Raises :class:`CorpusError` when no file at all is accepted (the old manifest, if any, is
    left as it was): an empty corpus must not look like success. Memory does not grow with the
    number of files: entries are found, checked and written one at a time (archive entries
    and folder files are read when they are checked; nested zips are streamed to a temporary
    folder beside ``store``), and what is kept for every file (the deduplication table, the
    ingestion cache) is in a temporary database beside ``store`` (:func:`iter_rows`); both
    folders are removed at the end. (A source with a ``limit`` lists its entries to draw from;
    music21 exports are made before the first is checked.)
    """

    def per_source(reader):
        for source in corpus["sources"]:
            entries = iter_source(
                source,
                limits=limits,
                seed=seed,
                tegridy_zips=tegridy_zips,
                workers=workers,
                reader=reader,
            )
            yield entries, source_kind(source)[1].get("group")

    counts: dict[str, int] = {}
    reasons: list[str] = []  # the first five rejection reasons in sorted order, for the error
    with (
        ZipReader(tmpdir=Path(store).parent) as reader,
        ManifestWriter(manifest) as out,
        contextlib.closing(iter_rows(per_source(reader), store, limits)) as rows,
    ):
        for row in rows:
            out.write(row)
            counts[row.status] = counts.get(row.status, 0) + 1
            if row.status == "rejected" and row.reason not in reasons:
                bisect.insort(reasons, row.reason)
                del reasons[5:]
        log.info("corpus %s: %s", name, ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
        if counts.get("ok", 0) == 0:
            raise CorpusError(
                f"corpus {name}: no usable MIDI file among {sum(counts.values())} files found"
                + (f" (reasons: {'; '.join(reasons)})" if reasons else "")
            )
    return counts


def ingest(name: str, corpus: dict, *, manifest: str | os.PathLike, **kwargs) -> list[Row]:
    """:func:`ingest_manifest` (same arguments), then the manifest's rows (read back: the whole
    manifest in memory; the workflow's ingest job does not ask for them)."""
    ingest_manifest(name, corpus, manifest=manifest, **kwargs)
    return read_manifest(manifest)
