"""Zip archives as sources: their entries listed, each refused one with its reason
(:func:`iter_zip`), and read one at a time when they are checked (:class:`ZipReader`)."""

from __future__ import annotations

import io
import os
import stat
import tempfile
import zipfile
import zlib
from collections import OrderedDict
from collections.abc import Iterator
from functools import partial
from pathlib import Path

from ..fileio import CHUNK
from .errors import Unreadable
from .found import Found
from .safety import NESTED_SEPARATOR, Limits, _kind_of, unsafe_name


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
