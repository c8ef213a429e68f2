"""Shared fixtures: where the repository, the shared data and the test corpora are.

Tests that need ../shared/data/tegridy (or the fixture corpora cut from it) use the
``tegridy_dir`` / ``fixtures_dir`` fixtures: when the folder is missing they skip on a
developer's machine but FAIL when the ``CI`` environment variable is set, so CI never skips
them silently. Every other test reads music exported from the corpus that the ``music21``
package ships (tests/music21_corpora.py), which exists wherever the project is installed, so a
fresh clone runs it: the end-to-end tests of the workflow ``music21_corpora`` (folders with the
awkward files a user's folder has), the unit tests ``midi_corpora`` (plain pieces in three
styles).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TOKENTRANSFER_SHARED", REPO.parent / "shared"))

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _need(path: Path, what: str) -> Path:
    if path.is_dir():
        return path
    msg = f"{what} not found at {path}"
    if os.environ.get("CI"):
        pytest.fail(f"{msg}: CI must have it (set TOKENTRANSFER_SHARED or put shared/ beside)")
    pytest.skip(msg)


@pytest.fixture(scope="session")
def tegridy_dir() -> Path:
    """The folder of the 14 Tegridy zips (with MANIFEST.tsv)."""
    return _need(SHARED / "data" / "tegridy", "Tegridy mirror")


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """The folder of the four small fixture corpora (bach, karaoke, jazzlead, base_edge)."""
    return _need(SHARED / "data" / "fixtures", "fixture corpora")


@pytest.fixture(scope="session")
def music21_corpora(tmp_path_factory) -> Path:
    """``base/`` and ``fiddle/`` MIDI folders exported from music21's corpus, once a session."""
    from tests.music21_corpora import build

    return build(tmp_path_factory.mktemp("music21_corpora"))


@pytest.fixture(scope="session")
def midi_corpora(tmp_path_factory) -> Path:
    """``chorales/``, ``tunes/`` and ``band/``: plain MIDI folders (every file a readable piece)
    exported from music21's corpus, once a session; the unit tests' real music."""
    from tests.music21_corpora import build_plain

    return build_plain(tmp_path_factory.mktemp("midi_corpora"))


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a test module (``pytestmark = pytest.mark.usefixtures(...)``):
    tiny models run faster on one thread than on two of a shared 2-core machine."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def grammar(tok):
    """The REMI grammar of ``tok`` (:class:`tokentransfer.grammar.Grammar`)."""
    from tokentransfer.grammar import Grammar

    return Grammar(tok)


@pytest.fixture(scope="module")
def tunes(tok, midi_corpora: Path):
    """The one-line fiddle tunes of ``midi_corpora`` tokenized with ``tok`` (16 pieces, each
    longer than a context of 32 tokens)."""
    from tests.tiny import midi_pieces

    return midi_pieces(tok, midi_corpora / "tunes")


@pytest.fixture(scope="session")
def tok():
    """The REMI tokenizer with program tokens (the workflow's default kind), built once a
    session: the unit tests' tokenizer. Tests that need another build their own."""
    from tokentransfer.tokenize import build_tokenizer

    return build_tokenizer({"kind": "REMI", "use_programs": True})


def write_config(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def snakemake_cmd(workdir: Path, *args: str) -> list[str]:
    """``python -m snakemake`` on this checkout's Snakefile, working in ``workdir``."""
    return [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        *args,
    ]


def snakemake(workdir: Path, *args: str, check: bool = True, timeout: int = 1200):
    """Run the real workflow with the CLI in ``workdir`` (its own results/, resources/, logs/)."""
    cmd = snakemake_cmd(workdir, *args)
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"snakemake {' '.join(args)} failed ({proc.returncode}):\n"
            f"{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}"
        )
    return proc


@pytest.fixture
def copy_tree():
    def _copy(src: Path, dst: Path) -> Path:
        shutil.copytree(src, dst)
        return dst

    return _copy
