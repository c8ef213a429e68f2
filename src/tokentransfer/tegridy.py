"""The Tegridy MIDI Dataset: pinned zips, read from a local mirror or downloaded and verified.

The 14 zips are pinned by file name and sha256 (``data/tegridy_manifest.tsv``, a copy of the
dataset mirror's MANIFEST.tsv: hashes only, no music). A zip is taken from ``tegridy.mirror``
when that folder holds it, else downloaded from ``tegridy.url`` + its upstream path. Either
way its checksum is verified before use; a mismatch is an error that names the file.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import os
import urllib.request
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .fileio import atomic_path, sha256_file

log = logging.getLogger(__name__)

DEFAULT_URL = "https://raw.githubusercontent.com/asigalov61/Tegridy-MIDI-Dataset/master/"


class TegridyError(RuntimeError):
    """A Tegridy zip is unknown, missing or fails its checksum."""


@dataclass(frozen=True)
class TegridyZip:
    file: str
    midi_files: int
    bytes: int
    sha256: str
    upstream_path: str


def catalogue() -> dict[str, TegridyZip]:
    """The pinned zips, by file name."""
    text = resources.files("tokentransfer").joinpath("data/tegridy_manifest.tsv").read_text()
    rows = csv.DictReader(text.splitlines(), delimiter="\t")
    return {
        r["file"]: TegridyZip(
            r["file"], int(r["midi_files"]), int(r["bytes"]), r["sha256"], r["upstream_path"]
        )
        for r in rows
    }


def lookup(name: str) -> TegridyZip:
    cat = catalogue()
    if name not in cat:
        raise TegridyError(f"unknown Tegridy zip {name!r}; known: {', '.join(sorted(cat))}")
    return cat[name]


def verify(path: str | os.PathLike, name: str) -> Path:
    """Check ``path`` against the pinned size and sha256 of zip ``name``; return it."""
    entry = lookup(name)
    path = Path(path)
    if not path.is_file():
        raise TegridyError(f"Tegridy zip {name} not found at {path}")
    digest = sha256_file(path)
    if digest != entry.sha256:
        raise TegridyError(
            f"Tegridy zip {name} at {path} fails its checksum: sha256 {digest}, "
            f"expected {entry.sha256}"
        )
    return path


def mirror_path(mirror: str | os.PathLike | None, name: str) -> Path | None:
    """The zip in the mirror folder, or ``None`` when there is no mirror or it lacks the zip."""
    if not mirror:
        return None
    p = Path(mirror, name)
    return p if p.is_file() else None


class VerifiedMirror:
    """The zips of mirror folders verified so far: each is checked against its pinned sha256
    once per path, size and modification time (a workflow's DAG asks for a zip's path many
    times; hashing a 2 GB zip each time would take minutes)."""

    def __init__(self) -> None:
        self._verified: set[tuple[str, int, int]] = set()

    def path(self, mirror: str | os.PathLike | None, name: str) -> Path | None:
        """The mirror's copy of zip ``name``, verified (:func:`verify`: a
        :class:`TegridyError` names the zip and both hashes); ``None`` when there is no mirror
        or it lacks the zip. A copy whose size or mtime changed is verified again."""
        local = mirror_path(mirror, name)
        if local is None:
            return None
        st = local.stat()
        key = (str(local), st.st_size, st.st_mtime_ns)
        if key not in self._verified:
            verify(local, name)
            self._verified.add(key)
        return local


def download(name: str, dest: str | os.PathLike, base_url: str = DEFAULT_URL, timeout=60) -> Path:
    """Download zip ``name`` to ``dest`` atomically, verifying its sha256 before it lands."""
    entry = lookup(name)
    url = base_url.rstrip("/") + "/" + urllib.request.quote(entry.upstream_path)
    log.info("downloading %s from %s", name, url)
    h = hashlib.sha256()
    got = 0
    with atomic_path(dest) as tmp:
        with urllib.request.urlopen(url, timeout=timeout) as resp, open(tmp, "wb") as out:
            while block := resp.read(1 << 20):
                h.update(block)
                got += len(block)
                out.write(block)
                if got > entry.bytes:
                    raise TegridyError(f"{url}: more bytes than the pinned {entry.bytes}")
        if h.hexdigest() != entry.sha256:
            raise TegridyError(
                f"download of {name} from {url} fails its checksum: sha256 {h.hexdigest()}, "
                f"expected {entry.sha256}"
            )
    log.info("downloaded %s (%d bytes, checksum ok)", name, got)
    return Path(dest)
