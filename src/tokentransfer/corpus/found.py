"""A file found in a source, before the MIDI check (:class:`Found`), and the choice among the
files found: include and exclude patterns, a seeded sample."""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field


@dataclass(slots=True)
class Found:
    """One file found in a source, before the MIDI check.

    ``data`` is the content, for sources made in memory (music21 exports); ``file`` (a folder's
    file) or ``load`` (an archive entry) reads it when it is needed, so that a long list of
    found files holds no content; ``reason`` is set when the entry was refused before its
    content was read. A folder's file also carries its ``mtime_ns`` and ``ctime_ns``: with its
    size they tell a rerun that the file is unchanged (:class:`IngestCache`).
    """

    source: str
    path: str
    data: bytes | None = None
    reason: str | None = None
    size: int = 0
    load: Callable[[], bytes] | None = field(default=None, repr=False)
    file: str | None = field(default=None, repr=False)
    mtime_ns: int = 0
    ctime_ns: int = 0

    def content(self) -> bytes | None:
        """The content (read again on every call; not kept), or ``None`` for a refused entry.

        Raises :class:`Unreadable` or ``OSError`` when it cannot be read.
        """
        if self.reason is not None:
            return None
        if self.data is not None:
            return self.data
        if self.file is not None:
            with open(self.file, "rb") as fh:
                return fh.read()
        return None if self.load is None else self.load()

    @property
    def is_midi_candidate(self) -> bool:
        return self.reason is None


def select(found: list[Found], limit: int | None, seed: int) -> list[Found]:
    """Keep refused entries; keep a seeded sample of ``limit`` MIDI candidates, path order."""
    candidates = [f for f in found if f.is_midi_candidate]
    if limit is None or len(candidates) <= limit:
        return found
    keep = {id(f) for f in random.Random(seed).sample(candidates, limit)}
    return [f for f in found if not f.is_midi_candidate or id(f) in keep]


def filter_paths(found: Iterable[Found], include: str | None, exclude: str | None) -> list[Found]:
    """Keep entries whose path matches ``include`` and not ``exclude`` (regex search)."""
    return list(iter_filtered(found, include, exclude))


def iter_filtered(
    found: Iterable[Found], include: str | None, exclude: str | None
) -> Iterator[Found]:
    """:func:`filter_paths` one entry at a time."""
    inc = re.compile(include) if include else None
    exc = re.compile(exclude) if exclude else None
    for f in found:
        if (inc is None or inc.search(f.path)) and (exc is None or not exc.search(f.path)):
            yield f
