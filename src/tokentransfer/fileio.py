"""Small file helpers: atomic writes, content hashes, JSON records, TSV tables, logging
set-up."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import logging
import math
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

CHUNK = 1 << 20


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's content, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(CHUNK):
            h.update(block)
    return h.hexdigest()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it into place only on success.

    A killed or failing writer leaves no file under the final name (the temporary one is
    removed on an exception; after SIGKILL a ``.tmp-*`` file may stay behind and is
    harmless: nothing reads it).
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".tmp-{final.name}.", suffix=suffix, dir=final.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o644)
        os.replace(tmp_path, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file, fsync, rename).

    An OS error that does not say which file it is about (a full disk, a file size limit)
    is raised again, of the same class, naming ``path``.
    """
    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        if exc.filename is not None or exc.errno is None:
            raise
        raise type(exc)(exc.errno, exc.strerror, os.path.abspath(path)) from exc


@contextlib.contextmanager
def h5_atomic(path: str | os.PathLike, **kwargs) -> Iterator:
    """Yield an ``h5py.File`` built in memory; write it to ``path`` atomically on success.

    HDF5 is assembled in a memory buffer and only then written out through
    :func:`write_bytes_atomic`, so a full disk or a read-only folder fails in one plain
    ``OSError`` with the OS message and leaves neither a partial file nor a temporary one.
    (Letting the HDF5 library write to a file that does not fit makes it fail at close, and
    the process can then crash at interpreter exit.) ``kwargs`` go to ``h5py.File``.
    """
    import io

    import h5py

    buf = io.BytesIO()
    with h5py.File(buf, "w", **kwargs) as h5:
        yield h5
    write_bytes_atomic(path, buf.getvalue())


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    write_bytes_atomic(path, text.encode("utf-8"))


def setup_logging(log_path: str | os.PathLike | None = None, level: int = logging.INFO) -> None:
    """Send log records (and, for a Snakemake job, stderr) to ``log_path`` or to stderr."""
    if log_path is not None:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        stream = open(log_path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115
        sys.stderr = stream
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )


def torch_save_atomic(obj, path: str | os.PathLike) -> None:
    """``torch.save`` to ``path`` atomically and reproducibly.

    Saving to a file names the zip's inner folder after the (temporary, random) file name, so
    two identical saves would differ; saving to memory first names it ``archive`` every time.
    """
    import io

    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    write_bytes_atomic(path, buf.getvalue())


def write_json(obj: dict, path: str | os.PathLike) -> None:
    """A JSON record, atomically (keys sorted, indented, a final newline)."""
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def tsv_cell(v) -> str:
    """A TSV cell: strings as they are, ints as ints, other numbers with 4 decimals, None and
    non-finite floats empty."""
    if isinstance(v, str):
        return v
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return ""
    if isinstance(v, int):
        return str(v)
    return f"{v:.4f}"


def to_tsv(rows: list[dict]) -> str:
    """Rows of dicts as TSV text (columns of the first row, numbers with 4 decimals)."""
    if not rows:
        return ""
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter="\t", lineterminator="\n")
    columns = list(rows[0])
    writer.writerow(columns)
    for r in rows:
        writer.writerow([tsv_cell(r.get(c)) for c in columns])
    return buf.getvalue()


def read_tsv(path: str | os.PathLike) -> list[dict[str, str]]:
    """The rows of a TSV file with a header, as dicts of strings."""
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))
