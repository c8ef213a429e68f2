"""What ingestion refuses by name and size, before it reads a file's content.

The safety limits (:class:`Limits`, config section ``ingest``), archive entry names that would
leave the target folder (:func:`unsafe_name`), a file's kind by its suffix, and file names
written as text (:func:`printable`). Nothing here writes a path taken from an archive or a
folder: stored files are named by their sha256; unsafe entries are still refused and listed,
because they mark a hostile archive.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath

MIDI_SUFFIXES = frozenset({".mid", ".midi", ".kar", ".smf"})
ZIP_SUFFIXES = frozenset({".zip"})
NESTED_SEPARATOR = "!"


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


def printable(name: str) -> str:
    """A file name as text: bytes that are not UTF-8 (kept by the OS as surrogates) become
    ``\\xNN`` escapes, so that the manifest can always be written."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
