"""The corpus package's errors: a corpus that cannot be built, a file that cannot be read."""

from __future__ import annotations


class CorpusError(RuntimeError):
    """A corpus cannot be built at all (for example: every file was rejected)."""


class Unreadable(Exception):
    """A file's content cannot be read; the message is the reason the manifest lists."""
