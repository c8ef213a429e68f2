"""The manifest's rows from the files found in a corpus's sources: each file checked,
deduplicated by content and stored once under its hash (:func:`iter_rows`)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..fileio import sha256_bytes, write_bytes_atomic
from .cache import INGEST_CACHE_NAME, IngestCache, Scratch, SeenFiles, _CacheWriter
from .checks import check_midi
from .errors import Unreadable
from .found import Found
from .manifest import Row, group_key
from .safety import Limits

log = logging.getLogger(__name__)


def build_rows(
    sources: Iterable[tuple[Iterable[Found], str | None]],
    store: str | os.PathLike,
    limits: Limits,
    progress_every: int = 500,
    cache: str | os.PathLike | bool | None = True,
) -> list[Row]:
    """The rows of :func:`iter_rows`, as a list (the whole manifest in memory)."""
    return list(iter_rows(sources, store, limits, progress_every, cache))


def iter_rows(
    sources: Iterable[tuple[Iterable[Found], str | None]],
    store: str | os.PathLike,
    limits: Limits,
    progress_every: int = 500,
    cache: str | os.PathLike | bool | None = True,
) -> Iterator[Row]:
    """Check, deduplicate and store the files of all sources; yield the manifest rows in order.

    ``sources`` yields (found entries, group pattern) per source, in config order; entries are
    taken one at a time (a list is emptied as it is read: each entry is dropped once its row is
    made). What is kept for every file (the deduplication table of accepted file ids and their
    groups, :class:`SeenFiles`; the last run's cache, :class:`IngestCache`) is on disk, in a
    :class:`Scratch` database beside ``store`` removed at the end, so that memory does not grow
    with the number of files when the rows are written as they come (:class:`ManifestWriter`).
    Accepted files are written once to ``store/{file_id}.mid`` (atomically; an existing file of
    the right size is left untouched so that its modification time, and so Snakemake's view of
    it, stays).

    ``cache`` (``True``: ``{store}/../.ingest-cache.tsv``; ``None`` or ``False``: none) is an
    :class:`IngestCache`: a folder file whose source, path, size, mtime and ctime are the ones
    it recorded is not read again, its hash and check verdict are taken from it (an accepted
    file is read again only when the store no longer holds it, whole). The rows are the same
    as without it; the cache is rewritten (atomically) for the next run once the last row is
    made (a consumer that stops early leaves the old cache).
    """
    store = Path(store)
    store.mkdir(parents=True, exist_ok=True)
    if cache is True:
        cache = store.parent / INGEST_CACHE_NAME
    with Scratch(store.parent) as scratch:
        yield from _check_rows(sources, store, limits, progress_every, cache, scratch)


def _check_rows(
    sources: Iterable[tuple[Iterable[Found], str | None]],
    store: Path,
    limits: Limits,
    progress_every: int,
    cache: str | os.PathLike | None,
    scratch: Scratch,
) -> Iterator[Row]:
    """:func:`iter_rows`, its per-file state (the cache's rows, the dedup table) in ``scratch``."""
    previous = IngestCache.load(cache, limits, scratch) if cache else None
    seen = SeenFiles(scratch)
    n = reused = 0
    record = _CacheWriter(cache, limits) if cache else None
    try:
        for found, pattern in sources:
            for f in _consume(found):
                n += 1
                if progress_every and n % progress_every == 0:
                    log.info(
                        "checked %d files (%d accepted, %d from the cache)", n, len(seen), reused
                    )
                if f.reason is not None:
                    yield Row("", f.source, f.path, f.size, "rejected", f.reason)
                    continue
                hit = previous.get(f) if previous is not None else None
                if hit is not None:
                    fid, reason = hit
                    first = seen.get(fid)
                    if reason or first is not None or _stored(store, fid, f.size):
                        reused += 1
                        if record is not None:
                            record.add(f, fid, reason)
                        if first is not None:
                            yield Row(fid, f.source, f.path, f.size, "duplicate", "", fid, first)
                        elif reason:
                            yield Row(fid, f.source, f.path, f.size, "rejected", reason)
                        else:
                            group = group_key(f.path, pattern, fid)
                            seen.add(fid, group)
                            yield Row(fid, f.source, f.path, f.size, "ok", "", "", group)
                        continue
                try:
                    data = f.content()
                except Unreadable as exc:
                    yield Row("", f.source, f.path, f.size, "rejected", str(exc))
                    continue
                except OSError as exc:
                    yield Row("", f.source, f.path, f.size, "rejected", f"unreadable: {exc}")
                    continue
                assert data is not None
                f.data = None  # one file's content in memory at a time
                fid = sha256_bytes(data)
                first = seen.get(fid)
                if first is not None:
                    # the same content as an accepted file: the check's verdict is "ok"
                    if record is not None and len(data) == f.size:
                        record.add(f, fid, "")
                    yield Row(fid, f.source, f.path, len(data), "duplicate", "", fid, first)
                    continue
                reason = check_midi(data, limits)
                if record is not None and len(data) == f.size:
                    record.add(f, fid, reason or "")
                if reason is not None:
                    yield Row(fid, f.source, f.path, len(data), "rejected", reason)
                    continue
                group = group_key(f.path, pattern, fid)
                seen.add(fid, group)
                if not _stored(store, fid, len(data)):  # a cut copy is replaced
                    write_bytes_atomic(store / f"{fid}.mid", data)
                yield Row(fid, f.source, f.path, len(data), "ok", "", "", group)
    except BaseException:
        if record is not None:
            record.discard()
        raise
    if record is not None:
        record.commit()
    log.info(
        "checked %d files: %d accepted; %d known from the ingestion cache, not read",
        n,
        len(seen),
        reused,
    )


def _consume(found: list[Found] | Iterable[Found]) -> Iterator[Found]:
    """The entries of a list, each dropped from it once the next is asked for (a list of
    176,581 found files takes ~380 bytes a file; :func:`iter_rows` is their only reader); the
    entries of any other iterable as they come."""
    if not isinstance(found, list):
        yield from found
        return
    for i in range(len(found)):
        f = found[i]
        found[i] = None
        yield f
        del f


def _stored(store: Path, fid: str, size: int) -> bool:
    """Whether the store holds file ``fid`` whole (its size; the name is its hash)."""
    try:
        return os.stat(store / f"{fid}.mid").st_size == size
    except OSError:
        return False
