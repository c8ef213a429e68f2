"""The job of ``rules/tokenize.smk``'s rule ``tokenizer`` with ``model.source: local``: take the
local model's tokenizer (otherwise the rule builds one from config with
:func:`tokentransfer.tokenize.build_tokenizer`)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from ..fileio import sha256_file
from ..model import ModelError
from ..tokenize import load_tokenizer


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
