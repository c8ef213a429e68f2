"""The jobs of ``rules/corpus.smk`` (the corpus stage): ``fetch_tegridy`` (one pinned Tegridy
zip downloaded and verified, when no mirror holds it) and ``ingest`` (every source of one corpus
read safely, its accepted MIDI files stored by content hash, its manifest written).
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..corpus import Limits, ingest_manifest
from ..tegridy import download

log = logging.getLogger(__name__)


def run_fetch_tegridy(*, zipname: str, out: str, url: str) -> Path:
    """Download the pinned Tegridy zip ``zipname`` from ``url`` (config key ``tegridy.url``)
    to ``out``, atomically, its sha256 checked against the pinned one before it lands; return
    ``out``. A failed download leaves nothing at ``out`` (and an earlier file there as it was).
    """
    return download(zipname, out, base_url=url)


def run_ingest(
    *,
    corpus: str,
    sources: list[dict],
    store: str,
    manifest: str,
    limits: dict | None,
    seed: int,
    zips: dict[str, str],
    workers: int = 1,
) -> dict[str, int]:
    """Ingest corpus ``corpus``: its ``sources`` (config key ``corpora.<corpus>.sources``) into
    ``store`` (``{file_id}.mid``), its manifest to ``manifest``; return the count of manifest
    rows per status (``ok``, ``duplicate``, ``rejected``).

    ``limits`` is config section ``ingest`` (:class:`tokentransfer.corpus.Limits`), ``seed``
    config key ``seed`` (which files a source's ``limit`` keeps), ``zips`` the local path of
    each Tegridy zip the sources name. Raises :class:`tokentransfer.corpus.CorpusError` when no
    file is accepted (the old manifest, if any, is left as it was).
    """
    return ingest_manifest(
        corpus,
        {"sources": list(sources)},
        store=store,
        manifest=manifest,
        limits=Limits.from_config(limits),
        seed=seed,
        tegridy_zips=dict(zips),
        workers=workers,
    )
