"""The manifest: one row per file found (:class:`Row`, columns :data:`MANIFEST_COLUMNS`),
written row by row (:class:`ManifestWriter`) and read back (:func:`read_manifest`); the group
that keeps versions of one piece together (:func:`group_key`)."""

from __future__ import annotations

import contextlib
import csv
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath

from ..fileio import atomic_path
from .errors import CorpusError
from .safety import NESTED_SEPARATOR

MANIFEST_COLUMNS = (
    "file_id",
    "source",
    "path",
    "bytes",
    "status",
    "reason",
    "duplicate_of",
    "group",
)


@dataclass(slots=True)
class Row:
    """A manifest row."""

    file_id: str
    source: str
    path: str
    bytes: int
    status: str
    reason: str = ""
    duplicate_of: str = ""
    group: str = ""

    def as_list(self) -> list[str]:
        return [
            self.file_id,
            self.source,
            self.path,
            str(self.bytes),
            self.status,
            self.reason,
            self.duplicate_of,
            self.group,
        ]


def group_key(path: str, pattern: str | None, file_id: str) -> str:
    """The group of a file: the piece's name that ``pattern`` finds in the file's stem.

    ``pattern`` is a regex searched in the file name without its folder and suffix; its first
    capture group (or whole match) names the piece, lower-cased, prefixed ``piece:``. Without a
    pattern, or when it does not match, a file is its own group (its file id). Names are shared
    across the sources of one corpus, which can only merge groups (never leak across a split).
    """
    if pattern:
        stem = PurePosixPath(path.rsplit(NESTED_SEPARATOR, 1)[-1]).stem
        m = re.search(pattern, stem)
        if m:
            name = m.group(1) if m.groups() else m.group(0)
            return f"piece:{name.lower()}"
    return file_id


_VOLATILE = re.compile(r"0x[0-9a-fA-F]+|id\(\)=\d+")


def clean_reason(text: str) -> str:
    """A reason on one line, without memory addresses (they would make manifests differ by run)."""
    text = _VOLATILE.sub("..", text)
    return text.replace("\t", " ").replace("\n", " ").replace("\r", " ")


def write_manifest(rows: Iterable[Row], path: str | os.PathLike) -> None:
    """Write the manifest TSV atomically, row by row (no copy of the whole text in memory)."""
    with ManifestWriter(path) as writer:
        for row in rows:
            writer.write(row)


class ManifestWriter:
    """Writes a manifest row by row to a temporary file beside ``path``, renamed into place
    when the ``with`` block ends without an exception (else removed: the old manifest stays).

    An OS error that does not say which file it is about (a full disk) is raised again naming
    the manifest, as :func:`~tokentransfer.fileio.write_text_atomic` does.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = path
        self._reason = MANIFEST_COLUMNS.index("reason")

    @contextlib.contextmanager
    def _named(self) -> Iterator[None]:
        try:
            yield
        except OSError as exc:
            if exc.filename is not None or exc.errno is None:
                raise
            raise type(exc)(exc.errno, exc.strerror, os.path.abspath(self.path)) from exc

    def __enter__(self) -> ManifestWriter:
        with contextlib.ExitStack() as stack, self._named():
            tmp = stack.enter_context(atomic_path(self.path))
            self._fh = stack.enter_context(open(tmp, "w", newline="", encoding="utf-8"))
            # the csv writer quotes tabs, newlines and quotes in paths
            self._writer = csv.writer(self._fh, delimiter="\t", lineterminator="\n")
            self._writer.writerow(MANIFEST_COLUMNS)
            self._stack = stack.pop_all()
        return self

    def write(self, row: Row) -> None:
        values = row.as_list()
        values[self._reason] = clean_reason(row.reason)
        with self._named():
            self._writer.writerow(values)

    def __exit__(self, *exc) -> None:
        if exc[0] is not None:
            self._stack.__exit__(*exc)  # closed and removed; the exception goes on
            return
        with contextlib.ExitStack() as stack, self._named():
            stack.push(self._stack)  # closed, then renamed into place (or removed on an error)
            self._fh.flush()
            os.fsync(self._fh.fileno())


def read_manifest(path: str | os.PathLike) -> list[Row]:
    """Read a manifest written by :func:`write_manifest`."""
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh, delimiter="\t")
        header = next(reader)
        if tuple(header) != MANIFEST_COLUMNS:
            raise CorpusError(f"{path}: not a manifest (columns {header})")
        return [Row(r[0], r[1], r[2], int(r[3]), r[4], r[5], r[6], r[7]) for r in reader if r]


def summarize(rows: list[Row]) -> dict[str, int]:
    """Counts per status."""
    out: dict[str, int] = {}
    for r in rows:
        out[r.status] = out.get(r.status, 0) + 1
    return out
