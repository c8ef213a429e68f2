"""The jobs of ``rules/tokenize.smk`` (the tokenization stage): ``tokenizer`` (built from config,
or a local model's taken), ``tokenize_shard`` (the MIDI files of one shard of a corpus, each
tokenized on its own, into one HDF5 file) and ``token_index`` (a corpus's shards in one TSV).
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from ..fileio import sha256_file
from ..model import ModelError
from ..shards import shard_paths
from ..tokenize import (
    ShardResult,
    build_tokenizer,
    load_tokenizer,
    save_tokenizer,
    tokenize_shard,
    write_index,
)

log = logging.getLogger(__name__)


def run_tokenizer(*, tokenizer_cfg: dict, model: dict, out: str) -> str:
    """Write the workflow's tokenizer JSON to ``out``; return its sha256.

    ``model`` holds config keys ``model.source``, ``model.path`` and ``model.tokenizer``: with
    source ``local`` the local model's tokenizer is taken (:func:`import_tokenizer`), otherwise
    one is built from ``tokenizer_cfg`` (config section ``tokenizer``:
    :func:`tokentransfer.tokenize.build_tokenizer`).
    """
    if model["source"] == "local":
        digest = import_tokenizer(model["path"], model["tokenizer"], out)
        log.info("tokenizer of local model %s, sha256 %s", model["path"], digest)
    else:
        tokenizer = build_tokenizer(dict(tokenizer_cfg))
        digest = save_tokenizer(tokenizer, out)
        log.info(
            "tokenizer %s: %d tokens, sha256 %s", type(tokenizer).__name__, len(tokenizer), digest
        )
    return digest


def run_tokenize_shard(
    *,
    tokenizer_json: str,
    manifest: str,
    store: str,
    corpus: str,
    shard: str,
    shards: int,
    files: str | None,
    out: str,
    cache: str | None = None,
) -> ShardResult:
    """Tokenize the stored files of shard ``shard`` (``"0003"``) of ``shards`` (config key
    ``shards``) of corpus ``corpus`` into ``out``; return what was tokenized.

    The shard's files are the accepted rows of ``manifest`` that fall in the shard
    (:func:`tokentransfer.shards.shard_paths`, read from ``store``); ``files`` is the digest of
    their ids the workflow planned the job with (a manifest rewritten since is refused).
    ``cache`` (a path beside the shard that the workflow does not delete) gives the tokens of
    files the shard held when it was last written (:func:`tokentransfer.tokenize.tokenize_shard`).
    """
    midi = shard_paths(manifest, int(shard), shards, store, digest=files)
    result = tokenize_shard(tokenizer_json, midi, out, corpus=corpus, shard=shard, cache=cache)
    log.info(
        "%d files, %d tokens, %d failed in %.2f s (%d files from the cache)",
        len(result.file_ids),
        result.tokens,
        len(result.failed),
        result.seconds,
        result.reused,
    )
    return result


def run_token_index(*, shards: list[str], out: str, corpus: str) -> dict[str, int]:
    """Aggregate corpus ``corpus``'s token shards into the index TSV ``out`` (one row per file:
    shard, token count, status); return the totals (files, failed, tokens). Every shard must
    carry the same tokenizer hash."""
    totals = write_index(list(shards), out)
    log.info("corpus %s: %s", corpus, totals)
    return totals


def import_tokenizer(model_path: str, tokenizer_json: str | None, out: str) -> str:
    """Copy a local model's tokenizer JSON into place after checking it loads."""
    src = Path(tokenizer_json) if tokenizer_json else Path(model_path) / "tokenizer.json"
    tokenizer = load_tokenizer(src)  # refuses a missing or invalid file with a named error
    config = Path(model_path) / "config.json"
    if not config.is_file():
        raise ModelError(f"model file missing: {config} (a local HF checkpoint with safetensors)")
    vocab_size = json.loads(config.read_text()).get("vocab_size")
    if vocab_size != len(tokenizer):
        raise ModelError(
            f"vocab mismatch: model {model_path} has vocab_size {vocab_size} but tokenizer "
            f"{src} has {len(tokenizer)} tokens"
        )
    from ..grammar import unsupported

    why = unsupported(tokenizer)
    if why:
        raise ModelError(
            f"config key model.tokenizer: {src}: {why} (the walk and the grammar mask follow "
            "REMI's token stream)"
        )
    shutil.copyfile(src, out)
    return sha256_file(out)
