"""Shard assignment: the shard of a corpus's tokens that each accepted file goes to (its id's
first 8 hex digits modulo the number of shards), each shard's files and their digest, read from
the corpus's manifest (:mod:`tokentransfer.corpus`)."""

from __future__ import annotations

import csv
import hashlib
import os
from collections.abc import Iterable, Iterator

from .corpus import MANIFEST_COLUMNS, CorpusError


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
