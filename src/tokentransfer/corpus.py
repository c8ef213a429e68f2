"""Safe ingestion of raw MIDI into a content-addressed corpus with a manifest.

A corpus is a name plus a list of sources (``music21``, ``tegridy``, ``dir``). Ingestion walks
every source, refuses what is unsafe or not MIDI (each with a reason), checks that each MIDI file
parses and has notes, stores every accepted file once under its content hash, and writes a
manifest with one row per file found::

    file_id  source  path  bytes  status  reason  duplicate_of  group

``status`` is ``ok``, ``duplicate`` (``duplicate_of`` names the kept file id) or ``rejected``
(``reason`` says why). ``group`` keeps versions of one piece together (a regex per source picks
the piece's name out of the file name) so that later train/test splits cannot leak.

Nothing here writes a path taken from an archive or a folder: stored files are named by their
sha256, so an entry like ``../../etc/passwd`` can never leave the store; such entries are still
refused and listed, because they mark a hostile archive.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import logging
import os
import random
import re
import stat
import tempfile
import zipfile
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path, PurePosixPath

from .fileio import CHUNK, atomic_path, sha256_bytes, write_bytes_atomic

log = logging.getLogger(__name__)

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
MIDI_SUFFIXES = frozenset({".mid", ".midi", ".kar", ".smf"})
ZIP_SUFFIXES = frozenset({".zip"})
NESTED_SEPARATOR = "!"


class CorpusError(RuntimeError):
    """A corpus cannot be built at all (for example: every file was rejected)."""


class Unreadable(Exception):
    """A file's content cannot be read; the message is the reason the manifest lists."""


@dataclass(frozen=True)
class Limits:
    """Safety limits for ingestion; every one has a config key under ``ingest``."""

    max_file_mb: float = 32.0
    max_archive_mb: float = 2048.0
    max_ratio: float = 200.0
    max_depth: int = 3
    max_hours: float = 2.0
    min_ticks_per_quarter: int = 24
    max_ticks_per_quarter: int = 32767
    min_notes: int = 1

    @property
    def max_file_bytes(self) -> int:
        return int(self.max_file_mb * 1024 * 1024)

    @property
    def max_archive_bytes(self) -> int:
        return int(self.max_archive_mb * 1024 * 1024)

    @classmethod
    def from_config(cls, cfg: dict | None) -> Limits:
        return cls(**(cfg or {}))


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


# --------------------------------------------------------------------------- entry checks


def unsafe_name(name: str) -> str | None:
    """Why an archive entry name is unsafe to extract, or ``None`` when it is safe."""
    if "\x00" in name:
        return "unsafe path: NUL byte in name"
    norm = name.replace("\\", "/")
    if norm.startswith("/") or re.match(r"^[A-Za-z]:", norm):
        return "unsafe path: absolute"
    if any(part == ".." for part in PurePosixPath(norm).parts):
        return "unsafe path: leaves the target folder"
    return None


def _suffix(name: str) -> str:
    """``PurePosixPath(name).suffix``; without pathlib for a plain file name (pathlib interns
    every part of every path it parses: at 176,581 files, a table that grows and is copied)."""
    if "/" in name:
        name = PurePosixPath(name).name
    i = name.rfind(".")
    return name[i:] if 0 < i < len(name) - 1 else ""


def _kind_of(name: str) -> str:
    suffix = _suffix(name).lower()
    if suffix in MIDI_SUFFIXES:
        return "midi"
    if suffix in ZIP_SUFFIXES:
        return "zip"
    return "other"


def _bounded_read(fh: io.BufferedIOBase, limit: int) -> bytes | None:
    """Read at most ``limit`` bytes; ``None`` when there is more (declared sizes can lie)."""
    data = fh.read(limit + 1)
    return None if len(data) > limit else data


#: what reading a damaged zip entry raises (zlib.error: corrupt deflate data)
ZIP_READ_ERRORS = (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError)
ZIP_READ_ERRORS += (zlib.error,)


class ZipReader:
    """Reads zip entries only when their content is needed, one at a time, so that the memory
    of an ingestion does not grow with the number or size of its archives.

    At most ``max_open`` archives stay open (the least recently used is closed first). A
    nested zip is streamed to a file in a temporary folder (in ``tmpdir``, else the system's)
    and read from there; :meth:`close` (or leaving a ``with`` block) removes the folder.
    """

    def __init__(self, tmpdir: str | os.PathLike | None = None, max_open: int = 8) -> None:
        self._tmpdir = tmpdir
        self._spool: tempfile.TemporaryDirectory | None = None
        self._open: OrderedDict[str, zipfile.ZipFile] = OrderedDict()
        self._max_open = max_open
        self._spooled = 0

    def __enter__(self) -> ZipReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        while self._open:
            self._open.popitem()[1].close()
        if self._spool is not None:
            self._spool.cleanup()
            self._spool = None

    def _archive(self, path: str) -> zipfile.ZipFile:
        zf = self._open.pop(path, None)
        if zf is None:
            zf = zipfile.ZipFile(path)
            while len(self._open) >= self._max_open:
                self._open.popitem(last=False)[1].close()
        self._open[path] = zf
        return zf

    def read(self, archive: str, info: zipfile.ZipInfo, limit: int) -> bytes:
        """The content of entry ``info`` of ``archive``; :class:`Unreadable` with the reason
        when it is damaged or holds more than ``limit`` bytes."""
        try:
            with self._archive(archive).open(info) as fh:
                data = _bounded_read(fh, limit)
        except ZIP_READ_ERRORS as exc:
            raise Unreadable(f"unreadable entry: {exc}") from None
        if data is None:
            raise Unreadable("too large: content exceeds declared size limit")
        return data

    def spool(self, zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> str:
        """Stream the nested zip ``info`` of ``zf`` to a temporary file; return its path."""
        if self._spool is None:
            if self._tmpdir is not None:
                Path(self._tmpdir).mkdir(parents=True, exist_ok=True)
            self._spool = tempfile.TemporaryDirectory(prefix=".nested-zips-", dir=self._tmpdir)
        self._spooled += 1
        dest = os.path.join(self._spool.name, f"{self._spooled}.zip")
        copied = 0
        try:
            with zf.open(info) as fh, open(dest, "wb") as out:
                while block := fh.read(CHUNK):
                    copied += len(block)
                    if copied > limit:
                        raise Unreadable("too large: content exceeds declared size limit")
                    out.write(block)
        except ZIP_READ_ERRORS as exc:
            os.remove(dest)
            raise Unreadable(f"unreadable entry: {exc}") from None
        except Unreadable:
            os.remove(dest)
            raise
        return dest


# --------------------------------------------------------------------------- sources


def iter_zip(
    archive: str | os.PathLike,
    source: str,
    limits: Limits,
    prefix: str = "",
    depth: int = 0,
    budget: list[int] | None = None,
    reader: ZipReader | None = None,
) -> Iterator[Found]:
    """Yield the files of a zip archive, opening nested zips up to ``limits.max_depth``.

    Refused entries (unsafe names, links, special files, encrypted, oversized, suspicious
    compression ratio, unreadable) are yielded with a ``reason``. Non-MIDI files are yielded
    with reason ``not a MIDI file``. MIDI entries are not read here: each one's ``load`` reads
    it through ``reader`` when it is checked. Nested zips are streamed to the reader's
    temporary folder; nothing else is written.
    """
    if budget is None:
        budget = [limits.max_archive_bytes]
    if reader is None:
        reader = ZipReader()
    label = prefix.rstrip(NESTED_SEPARATOR) or source
    try:
        handle = open(archive, "rb")  # noqa: SIM115
    except OSError as exc:
        yield Found(source, label, reason=f"cannot open archive: {exc.strerror}")
        return
    with handle:
        try:
            zf = zipfile.ZipFile(handle)
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            yield Found(source, label, reason=f"not a readable zip archive: {exc}")
            return
        with zf:
            infos = sorted(zf.infolist(), key=lambda i: i.filename)
            for info in infos:
                if info.is_dir():
                    continue
                yield from _zip_entry(
                    zf, str(archive), info, source, limits, prefix, depth, budget, reader
                )


def _zip_entry(
    zf: zipfile.ZipFile,
    archive: str,
    info: zipfile.ZipInfo,
    source: str,
    limits: Limits,
    prefix: str,
    depth: int,
    budget: list[int],
    reader: ZipReader,
) -> Iterator[Found]:
    name = info.filename
    path = f"{prefix}{name}"
    size = info.file_size
    reason = unsafe_name(name)
    mode = info.external_attr >> 16
    kind = _kind_of(name)
    if reason is None and mode:
        if stat.S_ISLNK(mode):
            reason = "symbolic link"
        elif not stat.S_ISREG(mode) and stat.S_IFMT(mode) != 0:
            reason = "special file (device, fifo or socket)"
    if reason is None and info.flag_bits & 0x1:
        reason = "encrypted entry"
    if reason is None and kind == "other":
        reason = "not a MIDI file"
    if reason is None and size > limits.max_file_bytes:
        reason = f"too large: {size} bytes declared (limit {limits.max_file_bytes})"
    if reason is None and size / max(info.compress_size, 1) > limits.max_ratio:
        reason = (
            f"suspicious compression ratio {size / max(info.compress_size, 1):.0f} "
            f"(limit {limits.max_ratio:g})"
        )
    if reason is None and size > budget[0]:
        reason = "archive expands beyond the size limit"
    if reason is None and kind == "zip" and depth + 1 > limits.max_depth:
        reason = f"nested archive too deep (limit {limits.max_depth})"
    if reason is not None:
        yield Found(source, path, reason=reason, size=size)
        return
    budget[0] -= size  # zipfile never returns more than the declared size (then a CRC error)
    if kind == "zip":
        try:
            nested = reader.spool(zf, info, limits.max_file_bytes)
        except Unreadable as exc:
            yield Found(source, path, reason=str(exc), size=size)
            return
        yield from iter_zip(
            nested, source, limits, f"{path}{NESTED_SEPARATOR}", depth + 1, budget, reader
        )
        return
    load = partial(reader.read, archive, info, limits.max_file_bytes)
    yield Found(source, path, size=size, load=load)


def printable(name: str) -> str:
    """A file name as text: bytes that are not UTF-8 (kept by the OS as surrogates) become
    ``\\xNN`` escapes, so that the manifest can always be written."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def folder_problem(path: str | os.PathLike) -> str | None:
    """Why ``path`` cannot be read as a source folder (``"{path} does not exist"``,
    ``"{path} is a file, not a folder"``, ...), or ``None`` when it is a folder."""
    p = Path(path)
    if p.is_dir():
        return None
    if not os.path.lexists(p):
        return f"{p} does not exist"
    if p.is_file():
        return f"{p} is a file, not a folder"
    return f"{p} is not a folder"


def iter_dir(
    root: str | os.PathLike, source: str, limits: Limits, reader: ZipReader | None = None
) -> Iterator[Found]:
    """Yield the files under a folder, recursively, in sorted order; links are refused.

    Zips in it are listed with :func:`iter_zip` (through ``reader``); no content is read here.
    """
    root = Path(root)
    problem = folder_problem(root)
    if problem is not None:
        raise CorpusError(f"source folder {problem}")
    top = os.fspath(root)
    top_slash = os.path.join(top, "")
    # paths as strings, not Path objects (see _suffix); the same as Path's: os.walk joins the
    # normalized ``top`` and plain names
    for dirpath, dirnames, filenames in os.walk(top, followlinks=False):
        dirnames.sort()
        folder = "" if dirpath == top else dirpath[len(top_slash) :] + "/"
        links = [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
        for name in sorted(filenames + links):
            full = os.path.join(dirpath, name)
            rel = printable(folder + name)
            st = os.lstat(full)
            if stat.S_ISLNK(st.st_mode):
                yield Found(source, rel, reason="symbolic link", size=0)
                continue
            if not stat.S_ISREG(st.st_mode):
                yield Found(source, rel, reason="special file (device, fifo or socket)")
                continue
            kind = _kind_of(name)
            limit = limits.max_archive_bytes if kind == "zip" else limits.max_file_bytes
            if kind == "other":
                yield Found(source, rel, reason="not a MIDI file", size=st.st_size)
            elif st.st_size > limit:
                yield Found(
                    source,
                    rel,
                    reason=f"too large: {st.st_size} bytes (limit {limit})",
                    size=st.st_size,
                )
            elif kind == "zip":
                prefix = f"{rel}{NESTED_SEPARATOR}"
                yield from iter_zip(full, source, limits, prefix=prefix, reader=reader)
            else:
                yield Found(
                    source,
                    rel,
                    size=st.st_size,
                    file=full,
                    mtime_ns=st.st_mtime_ns,
                    ctime_ns=st.st_ctime_ns,
                )


def _utf8_name(path: str) -> bool:
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:  # bytes that are not UTF-8, kept by the OS as surrogates
        return False
    return True


def list_dir_files(root: str | os.PathLike) -> list[str]:
    """What Snakemake tracks of a ``dir`` source: a new, removed or changed file reruns.

    Every regular file under ``root``, except files whose path is not valid UTF-8: Snakemake
    cannot hold such a name (its lock file is UTF-8), so their folder is listed instead, and
    adding, removing or renaming one still reruns. (Ingestion reads them all the same and
    stores them under their hash; :func:`printable` writes their names in the manifest.)
    """
    out: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        untracked = False
        for name in sorted(filenames):
            full = os.path.join(dirpath, name)
            if os.path.isfile(full) and not os.path.islink(full):
                if _utf8_name(full):
                    out.append(full)
                else:
                    untracked = True
        if untracked:
            folder = dirpath
            while not _utf8_name(folder):  # a folder with such a name: its first UTF-8 parent
                folder = os.path.dirname(folder)
            if folder not in out:
                out.append(folder)
    return out


def listing_digest(roots: Iterable[str | os.PathLike]) -> str:
    """sha256 of the path, size and mtime of every file :func:`list_dir_files` lists under
    ``roots`` (folders it lists instead of their files count by path and mtime).

    For the workflow to rerun ingestion when a file is added, removed or changed without one
    Snakemake input per file (176,581 at Lakh size; the DAG's time grows with them): given as
    a param, it changes exactly when the listing does.
    """
    h = hashlib.sha256()
    for root in roots:
        h.update(f"root\0{os.fspath(root)}\n".encode("utf-8", "surrogateescape"))
        for path in list_dir_files(root):
            st = os.stat(path)
            line = f"{path}\0{st.st_size}\0{st.st_mtime_ns}\n"
            h.update(line.encode("utf-8", "surrogateescape"))
    return h.hexdigest()


# --------------------------------------------------------------------------- MIDI check


def check_midi(data: bytes, limits: Limits) -> str | None:
    """Why ``data`` is not a usable MIDI file, or ``None`` when it is.

    Checks the ``MThd`` header, that symusic parses it, the ticks per quarter (between
    ``limits.min_ticks_per_quarter`` and ``limits.max_ticks_per_quarter``; SMPTE timing is not
    ticks per quarter and passes), that it has at least ``limits.min_notes`` notes and lasts
    at most ``limits.max_hours``.
    """
    if len(data) == 0:
        return "empty file"
    if data[:4] != b"MThd":
        return "not a MIDI file (no MThd header)"
    if len(data) >= 14:
        tpq = int.from_bytes(data[12:14], "big")
        low, high = limits.min_ticks_per_quarter, limits.max_ticks_per_quarter
        if tpq & 0x8000 == 0 and not low <= tpq <= high:
            return f"absurd ticks per quarter: {tpq} (allowed: {low} to {high})"
    try:
        import symusic

        score = symusic.Score.from_midi(data, ttype="second")
    except Exception as exc:  # symusic raises plain RuntimeError/ValueError on bad input
        return (
            f"unreadable MIDI: {str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__}"
        )
    notes = score.note_num()
    if notes < limits.min_notes:
        return "no notes" if notes == 0 else f"only {notes} notes (minimum {limits.min_notes})"
    hours = score.end() / 3600.0
    if hours > limits.max_hours:
        return f"too long: {hours:.1f} hours (limit {limits.max_hours:g})"
    return None


# --------------------------------------------------------------------------- manifest


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


#: version of the ingestion cache's layout and of what it records; another is not reused
INGEST_CACHE_FORMAT = 1
INGEST_CACHE_NAME = ".ingest-cache.tsv"
INGEST_CACHE_COLUMNS = ("source", "path", "bytes", "mtime_ns", "ctime_ns", "file_id", "reason")


def _stat_key(source: str, path: str, size: int, mtime_ns: int, ctime_ns: int) -> int:
    """64 bits of blake2b of what identifies an unchanged folder file, as a signed integer."""
    text = f"{source}\0{path}\0{size}\0{mtime_ns}\0{ctime_ns}"
    digest = hashlib.blake2b(text.encode("utf-8", "surrogateescape"), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)


#: sqlite's page cache for an ingestion's tables (KiB): with the windows and the Bloom filter
#: below, what an ingestion holds for its files whatever their number
SCRATCH_CACHE_KIB = 1024
#: rows of the ingestion cache read ahead at a time (two windows of them are kept)
CACHE_WINDOW = 1024
#: accepted files inserted into the dedup table together (sorted: fewer pages visited)
SEEN_BATCH = 4096
#: bits of the Bloom filter of accepted file ids (2 MiB); a false positive costs one lookup
BLOOM_BITS = 1 << 24


class Scratch:
    """An ingestion's per-file state on disk: a sqlite3 database in a temporary folder (in
    ``tmpdir`` when it can be made there, else the system's), removed by :meth:`close`.

    It holds :class:`IngestCache`'s rows and :class:`SeenFiles`' table, so that memory does not
    grow with the number of files: sqlite keeps at most :data:`SCRATCH_CACHE_KIB` of pages.
    Nothing in it outlives the ingestion (journal and fsync are off).
    """

    def __init__(self, tmpdir: str | os.PathLike | None = None) -> None:
        import sqlite3

        try:
            self._dir = tempfile.TemporaryDirectory(prefix=".ingest-scratch-", dir=tmpdir)
        except OSError:
            self._dir = tempfile.TemporaryDirectory(prefix="tokentransfer-ingest-")
        path = os.path.join(self._dir.name, "state.db")
        self._connection = sqlite3.connect(path, isolation_level=None)
        # one cursor for every statement: each Connection.execute makes a cursor, which the
        # connection lists until it next sweeps its list (memory that grows between sweeps)
        self.db = self._connection.cursor()
        for pragma in ("journal_mode=OFF", "synchronous=OFF", "temp_store=FILE"):
            self.db.execute(f"PRAGMA {pragma}")
        self.db.execute(f"PRAGMA cache_size=-{SCRATCH_CACHE_KIB}")

    def __enter__(self) -> Scratch:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._dir is not None:
            self.db.close()
            self._connection.close()
            self._dir.cleanup()
            self._dir = None


class SeenFiles:
    """The deduplication table of an ingestion: accepted file id -> its group, on disk.

    A Bloom filter of fixed size (:data:`BLOOM_BITS`) answers most lookups of a new id without
    the database; accepted ids are inserted :data:`SEEN_BATCH` at a time (the pending ones are
    looked up in memory). ``len`` is the number of accepted files.
    """

    def __init__(self, scratch: Scratch) -> None:
        self._db = scratch.db
        self._db.execute("CREATE TABLE seen (fid BLOB PRIMARY KEY, grp TEXT) WITHOUT ROWID")
        self._bloom = bytearray(BLOOM_BITS // 8)
        self._pending: dict[str, str] = {}
        self._n = 0
        self._last: tuple[str, tuple[int, int, int]] = ("", (0, 0, 0))

    def __len__(self) -> int:
        return self._n

    def _bits(self, fid: str) -> tuple[int, int, int]:
        """The filter's bits of ``fid`` (those of the last id asked are kept: an id is looked up,
        then added). A file id is a sha256 in hex: its first three 32-bit words are independent
        and uniform."""
        last, bits = self._last
        if last != fid:
            word, mask = int(fid[:24], 16), BLOOM_BITS - 1
            bits = (word & mask, (word >> 32) & mask, (word >> 64) & mask)
            self._last = (fid, bits)
        return bits

    def get(self, fid: str) -> str | None:
        """The group of accepted file ``fid``, or ``None`` when no such file was accepted."""
        bloom = self._bloom
        for bit in self._bits(fid):
            if not bloom[bit >> 3] & (1 << (bit & 7)):
                return None
        group = self._pending.get(fid)
        if group is not None:
            return group
        found = self._db.execute(
            "SELECT grp FROM seen WHERE fid = ?", (bytes.fromhex(fid),)
        ).fetchone()
        if found is None:
            return None
        return fid if found[0] is None else found[0]

    def add(self, fid: str, group: str) -> None:
        """Record accepted file ``fid`` (not already recorded) and its group."""
        bloom = self._bloom
        for bit in self._bits(fid):
            bloom[bit >> 3] |= 1 << (bit & 7)
        self._pending[fid] = group
        self._n += 1
        if len(self._pending) >= SEEN_BATCH:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        rows = sorted((bytes.fromhex(k), None if g == k else g) for k, g in self._pending.items())
        self._db.execute("BEGIN")
        self._db.executemany("INSERT INTO seen VALUES (?, ?)", rows)
        self._db.execute("COMMIT")
        self._pending.clear()


class IngestCache:
    """What the last ingestion learned about each folder file: its content hash and the MIDI
    check's verdict, keyed by (source, path, size, mtime_ns, ctime_ns).

    A rerun (files added to a corpus of 176,581) then reads and hashes only new or changed
    files. It is kept at ``{store}/../.ingest-cache.tsv`` (not an output of the workflow, so
    Snakemake does not delete it), one TSV row per folder file whose content was read, under
    the column names and a line ``#<tab>{json}`` naming :data:`INGEST_CACHE_FORMAT`, the limits
    and the symusic version: the check's verdict depends on them, so a cache made under others
    is not used.

    Loaded, it is a table of a :class:`Scratch` database (row position, 64-bit key, file id,
    reason; the first row of a key wins), so that memory does not grow with its rows. The rows
    are in the order the last ingestion met the files, which a rerun follows: :meth:`get` reads
    them ahead in two windows of :data:`CACHE_WINDOW` rows and asks the database's key index
    only for a file out of that order (a new file, a moved one).
    """

    def __init__(self, db, rows: int) -> None:
        self._db = db
        self.rows = rows
        self._window: dict[int, tuple[int, bytes, str | None]] = {}
        self._ahead: dict[int, tuple[int, bytes, str | None]] = {}
        self._next = 0  # the first row after the windows
        self._last = -2  # the row of the last file found out of order

    def __len__(self) -> int:
        return self.rows

    @staticmethod
    def header(limits: Limits) -> str:
        from dataclasses import asdict
        from importlib.metadata import version

        meta = {"format": INGEST_CACHE_FORMAT, "limits": asdict(limits)}
        meta["symusic"] = version("symusic")
        return "#\t" + json.dumps(meta, sort_keys=True)

    @classmethod
    def load(cls, path: str | os.PathLike, limits: Limits, scratch: Scratch) -> IngestCache | None:
        """The cache at ``path`` in ``scratch``'s database, or ``None`` (logged) when it is
        missing, unreadable or was made under another format, limits or symusic version."""
        path = Path(path)
        if not path.exists():
            return None
        db = scratch.db
        db.execute(
            "CREATE TABLE cache (pos INTEGER PRIMARY KEY, key INTEGER NOT NULL, "
            "fid BLOB NOT NULL, reason TEXT)"
        )
        insert = "INSERT INTO cache VALUES (?, ?, ?, ?)"
        n = 0
        batch: list[tuple[int, int, bytes, str | None]] = []
        db.execute("BEGIN")
        try:
            with open(path, newline="", encoding="utf-8", errors="surrogateescape") as fh:
                reader = csv.reader(fh, delimiter="\t")
                if tuple(next(reader, ())) != INGEST_CACHE_COLUMNS:
                    raise ValueError("unexpected columns")
                meta = fh.readline().rstrip("\n")
                if meta != cls.header(limits):
                    log.info("ingestion cache %s not used: made under %s", path, meta[2:])
                    db.execute("ROLLBACK")
                    return None
                for source, rel, size, mtime, ctime, fid, reason in reader:
                    key = _stat_key(source, rel, int(size), int(mtime), int(ctime))
                    digest = bytes.fromhex(fid)
                    if len(digest) != 32:
                        log.warning("ingestion cache %s not used: a file id is not a sha256", path)
                        db.execute("ROLLBACK")
                        return None
                    batch.append((n, key, digest, reason or None))
                    n += 1
                    if len(batch) >= CACHE_WINDOW:
                        db.executemany(insert, batch)
                        batch.clear()
        except (OSError, ValueError, UnicodeError, csv.Error) as exc:
            log.warning("ingestion cache %s not used: unreadable (%s)", path, exc)
            db.execute("ROLLBACK")
            return None
        db.executemany(insert, batch)
        # indexed once loaded (a sort: cheaper than keeping the index while inserting); a key
        # met twice (a folder listed twice) keeps its first row, as when it was a sorted array
        db.execute("CREATE INDEX cache_key ON cache (key, pos)")
        twice = "SELECT key FROM cache GROUP BY key HAVING COUNT(*) > 1 LIMIT 1"
        if db.execute(twice).fetchone() is not None:
            db.execute(
                "DELETE FROM cache WHERE pos IN (SELECT b.pos FROM cache a JOIN cache b "
                "ON a.key = b.key AND a.pos < b.pos)"
            )
        db.execute("COMMIT")
        log.info("ingestion cache %s: %d files", path, n)
        return cls(db, n)

    def _read(self, start: int) -> dict[int, tuple[int, bytes, str | None]]:
        """The rows from ``start`` on, :data:`CACHE_WINDOW` of them, by key."""
        found = self._db.execute(
            "SELECT key, pos, fid, reason FROM cache WHERE pos >= ? AND pos < ?",
            (start, start + CACHE_WINDOW),
        )
        return {key: (pos, fid, reason) for key, pos, fid, reason in found}

    def _seek(self, start: int) -> None:
        self._window = self._read(start)
        self._ahead = self._read(start + CACHE_WINDOW)
        self._next = start + 2 * CACHE_WINDOW

    def get(self, f: Found) -> tuple[str, str] | None:
        """(file id, MIDI check's reason or "") of an unchanged folder file, else ``None``."""
        if f.file is None or not f.mtime_ns:
            return None
        key = _stat_key(f.source, f.path, f.size, f.mtime_ns, f.ctime_ns)
        if self._next == 0:
            self._seek(0)
        hit = self._window.get(key)
        if hit is None:
            hit = self._ahead.get(key)
            if hit is not None:  # the files went past the first window: read one more ahead
                self._window = self._ahead
                self._ahead = self._read(self._next)
                self._next += CACHE_WINDOW
        if hit is None:
            hit = self._db.execute(
                "SELECT pos, fid, reason FROM cache WHERE key = ?", (key,)
            ).fetchone()
            if hit is None:
                return None
            if hit[0] == self._last + 1:  # two files in a row out of the windows' order
                self._seek(hit[0] + 1)
            self._last = hit[0]
        return hit[1].hex(), hit[2] or ""


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


class _CacheWriter:
    """Writes the next :class:`IngestCache` beside the old one, renamed into place at the end.

    Nothing is written for a corpus without folder files (archives, music21): a temporary file
    is opened with the first row. The cache is only a shortcut: a write that fails (a full
    disk, a read-only folder) is logged and the cache left out, never failing the ingestion.
    """

    def __init__(self, path: str | os.PathLike, limits: Limits) -> None:
        self.path = Path(path)
        self.limits = limits
        self.tmp: str | None = None
        self.fh = None
        self.failed = False

    def _open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, self.tmp = tempfile.mkstemp(prefix=f".tmp-{self.path.name}.", dir=self.path.parent)
            self.fh = open(fd, "w", newline="", encoding="utf-8", errors="surrogateescape")  # noqa: SIM115
            self.writer = csv.writer(self.fh, delimiter="\t", lineterminator="\n")
            self.writer.writerow(INGEST_CACHE_COLUMNS)
            self.fh.write(IngestCache.header(self.limits) + "\n")
        except OSError as exc:
            self._fail(exc)

    def _fail(self, exc: OSError) -> None:
        log.warning("ingestion cache %s not written: %s", self.path, exc)
        self.discard()
        self.failed = True

    def add(self, f: Found, fid: str, reason: str) -> None:
        """Record a folder file whose content was read (or known): its hash and verdict."""
        if self.failed or f.file is None or not f.mtime_ns:
            return
        if self.fh is None:
            self._open()
            if self.fh is None:
                return
        try:
            self.writer.writerow([f.source, f.path, f.size, f.mtime_ns, f.ctime_ns, fid, reason])
        except OSError as exc:
            self._fail(exc)

    def commit(self) -> None:
        if self.fh is None:
            return
        try:
            self.fh.close()
            os.chmod(self.tmp, 0o644)
            os.replace(self.tmp, self.path)
            self.fh = self.tmp = None
        except OSError as exc:
            self._fail(exc)

    def discard(self) -> None:
        if self.fh is not None:
            with contextlib.suppress(OSError):
                self.fh.close()
            self.fh = None
        if self.tmp is not None:
            with contextlib.suppress(OSError):
                os.remove(self.tmp)
            self.tmp = None


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


def shard_of(file_id: str, shards: int) -> int:
    """The shard of a file: its id's first 8 hex digits modulo ``shards``."""
    return int(file_id[:8], 16) % shards


def _accepted_ids(path: str | os.PathLike) -> Iterator[str]:
    """The file ids of a manifest's accepted (``ok``) rows, read one row at a time."""
    status = MANIFEST_COLUMNS.index("status")
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh, delimiter="\t")
        header = next(reader, [])
        if tuple(header) != MANIFEST_COLUMNS:
            raise CorpusError(f"{path}: not a manifest (columns {header})")
        for r in reader:
            if r and r[status] == "ok":
                yield r[0]


def shard_file_ids(path: str | os.PathLike, shards: int) -> list[list[str]]:
    """The file ids of a manifest's accepted files in each of ``shards`` shards, sorted."""
    out: list[list[str]] = [[] for _ in range(shards)]
    for fid in _accepted_ids(path):
        out[shard_of(fid, shards)].append(fid)
    for ids in out:
        ids.sort()
    return out


def shard_digest(file_ids: Iterable[str]) -> str:
    """sha256 of a shard's file ids, sorted, one a line: it changes exactly when the shard's
    file list does (a file's id is its content's sha256: a changed file is another id)."""
    h = hashlib.sha256()
    for fid in sorted(file_ids):
        h.update(f"{fid}\n".encode())
    return h.hexdigest()


_SHARD_DIGESTS: dict[tuple[str, int], tuple[tuple[int, int, int], list[str]]] = {}


def shard_digests(path: str | os.PathLike, shards: int) -> list[str]:
    """:func:`shard_digest` of every shard of a manifest, read once per version of the file.

    For the workflow: a shard job reruns when its digest (a param) changes, that is exactly
    when its file list does, though ingestion rewrites the manifest when any file changes. The
    DAG asks once per shard; a manifest that ingestion rewrote (in the same Snakemake run: the
    checkpoint) has another inode, mtime or size and is read again. Only the digests are kept.
    """
    st = os.stat(path)
    signature = (st.st_ino, st.st_mtime_ns, st.st_size)
    key = (os.path.abspath(path), shards)
    cached = _SHARD_DIGESTS.get(key)
    if cached is None or cached[0] != signature:
        digests = [shard_digest(ids) for ids in shard_file_ids(path, shards)]
        cached = _SHARD_DIGESTS[key] = (signature, digests)
    return list(cached[1])


def shard_paths(
    manifest: str | os.PathLike,
    shard: int,
    shards: int,
    store: str | os.PathLike,
    digest: str | None = None,
) -> list[str]:
    """The stored files (``{store}/{file_id}.mid``) of shard ``shard`` of ``shards``.

    With ``digest`` (the :func:`shard_digest` the workflow planned the job with), a manifest
    whose shard holds other files than planned (rewritten since) raises :class:`CorpusError`:
    the job would record a digest that does not describe its shard.
    """
    if not 0 <= shard < shards:
        raise ValueError(f"shard {shard} is not one of {shards} shards")
    ids = sorted(fid for fid in _accepted_ids(manifest) if shard_of(fid, shards) == shard)
    if digest is not None and shard_digest(ids) != digest:
        raise CorpusError(
            f"{manifest}: shard {shard} of {shards} holds other files than planned "
            "(the manifest was rewritten since the workflow was planned; run it again)"
        )
    return [os.path.join(os.fspath(store), f"{fid}.mid") for fid in ids]
