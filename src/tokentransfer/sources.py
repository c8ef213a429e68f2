"""The corpus sources and one corpus's ingestion under their old module name: they live in
:mod:`tokentransfer.corpus.sources`, and every name is re-exported by :mod:`tokentransfer.corpus`.
"""

from .corpus.sources import (
    MUSIC21_SUFFIXES,
    SOURCE_KINDS,
    collect,
    export_music21,
    ingest,
    ingest_manifest,
    iter_music21,
    iter_source,
    music21_paths,
    source_kind,
    source_label,
)

__all__ = [
    "MUSIC21_SUFFIXES",
    "SOURCE_KINDS",
    "collect",
    "export_music21",
    "ingest",
    "ingest_manifest",
    "iter_music21",
    "iter_source",
    "music21_paths",
    "source_kind",
    "source_label",
]
