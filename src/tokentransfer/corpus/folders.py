"""Folders as sources: their files listed in sorted order, links and special files refused
(:func:`iter_dir`), and what the workflow tracks of them to know when to ingest again
(:func:`list_dir_files`, :func:`listing_digest`)."""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path

from .errors import CorpusError
from .found import Found
from .safety import NESTED_SEPARATOR, Limits, _kind_of, printable
from .zips import ZipReader, iter_zip


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
