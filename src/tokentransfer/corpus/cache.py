"""An ingestion's per-file state on disk, so that its memory does not grow with the number of
files: a scratch database (:class:`Scratch`) holding the deduplication table
(:class:`SeenFiles`) and the last run's ingestion cache (:class:`IngestCache`), and the writer
of the next run's cache (:class:`_CacheWriter`)."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path

from .found import Found
from .safety import Limits

log = logging.getLogger(__name__)


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
