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

Modules, one concept each (every public name is re-exported here):

- ``safety``: the limits (:class:`Limits`), unsafe entry names, file kinds by suffix;
- ``found``: a file found in a source (:class:`Found`), include/exclude and a seeded sample;
- ``zips``: zip archives, listed and read one entry at a time (:class:`ZipReader`);
- ``folders``: folders, walked in sorted order, and the listing digest the workflow tracks;
- ``checks``: the MIDI check (:func:`check_midi`);
- ``cache``: an ingestion's per-file state on disk (:class:`Scratch`, :class:`SeenFiles`) and
  the ingestion cache of the last run (:class:`IngestCache`);
- ``rows``: found files checked, deduplicated and stored, as manifest rows (:func:`iter_rows`);
- ``manifest``: the manifest's rows, written and read (:class:`ManifestWriter`);
- ``sources``: the source kinds of the config and the entry point, :func:`ingest_manifest`
  (:func:`ingest` also reads the rows back);
- ``errors``: :class:`CorpusError`, :class:`Unreadable`.

Which shard of the tokens a file goes to is the tokens' business: :mod:`tokentransfer.shards`.
"""

from .cache import (
    INGEST_CACHE_COLUMNS,
    INGEST_CACHE_FORMAT,
    INGEST_CACHE_NAME,
    IngestCache,
    Scratch,
    SeenFiles,
)
from .checks import check_midi
from .errors import CorpusError, Unreadable
from .folders import folder_problem, iter_dir, list_dir_files, listing_digest
from .found import Found, filter_paths, iter_filtered, select
from .manifest import (
    MANIFEST_COLUMNS,
    ManifestWriter,
    Row,
    clean_reason,
    group_key,
    read_manifest,
    summarize,
    write_manifest,
)
from .rows import build_rows, iter_rows
from .safety import (
    MIDI_SUFFIXES,
    NESTED_SEPARATOR,
    ZIP_SUFFIXES,
    Limits,
    printable,
    unsafe_name,
)
from .sources import (
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
from .zips import ZIP_READ_ERRORS, ZipReader, iter_zip

__all__ = [
    "CorpusError",
    "Found",
    "INGEST_CACHE_COLUMNS",
    "INGEST_CACHE_FORMAT",
    "INGEST_CACHE_NAME",
    "IngestCache",
    "Limits",
    "MANIFEST_COLUMNS",
    "MIDI_SUFFIXES",
    "MUSIC21_SUFFIXES",
    "ManifestWriter",
    "NESTED_SEPARATOR",
    "Row",
    "SOURCE_KINDS",
    "Scratch",
    "SeenFiles",
    "Unreadable",
    "ZIP_READ_ERRORS",
    "ZIP_SUFFIXES",
    "ZipReader",
    "build_rows",
    "check_midi",
    "clean_reason",
    "collect",
    "export_music21",
    "filter_paths",
    "folder_problem",
    "group_key",
    "ingest",
    "ingest_manifest",
    "iter_dir",
    "iter_filtered",
    "iter_music21",
    "iter_rows",
    "iter_source",
    "iter_zip",
    "list_dir_files",
    "listing_digest",
    "music21_paths",
    "printable",
    "read_manifest",
    "select",
    "source_kind",
    "source_label",
    "summarize",
    "unsafe_name",
    "write_manifest",
]
