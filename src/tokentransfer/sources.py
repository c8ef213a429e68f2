"""Corpus sources from config: ``music21``, ``tegridy`` and ``dir``; one corpus's ingestion."""

from __future__ import annotations

import fnmatch
import logging
import os
import random
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from .corpus import (
    CorpusError,
    Found,
    Limits,
    Row,
    ZipReader,
    build_rows,
    filter_paths,
    iter_dir,
    iter_zip,
    select,
    summarize,
    write_manifest,
)
from .tegridy import verify

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


def collect(
    source: dict,
    *,
    limits: Limits,
    seed: int,
    tegridy_zips: dict[str, str] | None = None,
    workers: int = 1,
    reader: ZipReader | None = None,
) -> tuple[list[Found], str | None]:
    """The entries of one source after include/exclude and limit, and its group pattern.

    Entries of folders and archives carry no content: it is read (through ``reader``) when
    :func:`~tokentransfer.corpus.build_rows` checks them, one at a time.
    """
    kind, spec = source_kind(source)
    label = source_label(source)
    if kind == "music21":
        found = iter_music21(spec, label, seed, workers)
    elif kind == "tegridy":
        zpath = (tegridy_zips or {}).get(spec["zip"])
        if zpath is None:
            raise CorpusError(f"no local copy of Tegridy zip {spec['zip']} was provided")
        verify(zpath, spec["zip"])  # a mirror's copy as much as a download: pinned by sha256
        found = list(iter_zip(zpath, label, limits, prefix="", reader=reader))
    else:
        found = list(iter_dir(spec["path"], label, limits, reader=reader))
    if kind != "music21":
        found = filter_paths(found, spec.get("include"), spec.get("exclude"))
        found = select(found, spec.get("limit"), seed)
    return found, spec.get("group")


def ingest(
    name: str,
    corpus: dict,
    *,
    store: str | os.PathLike,
    manifest: str | os.PathLike,
    limits: Limits,
    seed: int,
    tegridy_zips: dict[str, str] | None = None,
    workers: int = 1,
) -> list[Row]:
    """Ingest every source of corpus ``name`` into ``store`` and write its manifest.

    Raises :class:`CorpusError` when no file at all is accepted: an empty corpus must not look
    like success. Memory does not grow with the sources: archive entries and folder files are
    read one at a time when they are checked (nested zips are streamed to a temporary folder
    beside ``store``, removed at the end).
    """

    def per_source(reader):
        for source in corpus["sources"]:
            yield collect(
                source,
                limits=limits,
                seed=seed,
                tegridy_zips=tegridy_zips,
                workers=workers,
                reader=reader,
            )

    with ZipReader(tmpdir=Path(store).parent) as reader:
        rows = build_rows(per_source(reader), store, limits)
    counts = summarize(rows)
    log.info("corpus %s: %s", name, ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    if counts.get("ok", 0) == 0:
        reasons = sorted({r.reason for r in rows if r.status == "rejected"})[:5]
        raise CorpusError(
            f"corpus {name}: no usable MIDI file among {len(rows)} files found"
            + (f" (reasons: {'; '.join(reasons)})" if reasons else "")
        )
    write_manifest(rows, manifest)
    return rows
