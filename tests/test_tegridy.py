"""The pinned Tegridy catalogue, checksum verification and download over real HTTP."""

from __future__ import annotations

import csv
import functools
import hashlib
import http.server
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tokentransfer.tegridy import (
    DEFAULT_URL,
    TegridyError,
    catalogue,
    download,
    lookup,
    mirror_path,
    verify,
)

SMALL = "Gothic-Horror-Movies-CC-BY-NC-SA.zip"
UNDER_MISC = "www_jsbach_net_mirror_copy.zip"


def test_catalogue_has_the_14_zips(tegridy_dir: Path):
    cat = catalogue()
    assert len(cat) == 14
    for name, entry in cat.items():
        assert entry.file == name
        assert name.endswith(".zip")
        assert len(entry.sha256) == 64 and int(entry.sha256, 16) >= 0
        assert entry.bytes > 0 and entry.midi_files > 0
        assert entry.upstream_path.endswith(name)
    assert cat["POP909-Score.zip"].upstream_path == "Misc/POP909-Score.zip"
    assert cat[UNDER_MISC].upstream_path == f"Misc/{UNDER_MISC}"
    assert cat[SMALL].upstream_path == SMALL
    # The packaged copy equals the mirror's MANIFEST.tsv.
    with open(tegridy_dir / "MANIFEST.tsv", newline="") as fh:
        mirror = {r["file"]: r for r in csv.DictReader(fh, delimiter="\t")}
    assert set(mirror) == set(cat)
    for name, r in mirror.items():
        assert r["sha256"] == cat[name].sha256
        assert int(r["bytes"]) == cat[name].bytes
        assert r["upstream_path"] == cat[name].upstream_path
    assert sorted(p.name for p in tegridy_dir.glob("*.zip")) == sorted(cat)


def test_lookup_unknown():
    with pytest.raises(TegridyError, match="unknown Tegridy zip 'nope.zip'"):
        lookup("nope.zip")


@pytest.mark.parametrize("name", sorted(catalogue()))
def test_verify_mirror_zip(tegridy_dir: Path, name: str):
    path = tegridy_dir / name
    assert verify(path, name) == path
    assert path.stat().st_size == catalogue()[name].bytes
    assert mirror_path(tegridy_dir, name) == path


def test_mirror_path_missing(tmp_path: Path):
    assert mirror_path(None, SMALL) is None
    assert mirror_path("", SMALL) is None
    assert mirror_path(tmp_path, SMALL) is None


def test_verify_fails_on_tampered_copy(tmp_path: Path, tegridy_dir: Path):
    copy = tmp_path / SMALL
    data = bytearray((tegridy_dir / SMALL).read_bytes())
    data[len(data) // 2] ^= 0xFF
    copy.write_bytes(bytes(data))
    with pytest.raises(TegridyError) as exc:
        verify(copy, SMALL)
    msg = str(exc.value)
    assert SMALL in msg and str(copy) in msg
    assert "checksum" in msg
    assert hashlib.sha256(bytes(data)).hexdigest() in msg
    assert catalogue()[SMALL].sha256 in msg
    # A right file under the wrong name fails too.
    with pytest.raises(TegridyError, match="POP909-Score.zip"):
        verify(tegridy_dir / SMALL, "POP909-Score.zip")


def test_verify_missing_file(tmp_path: Path):
    with pytest.raises(TegridyError, match=f"{SMALL} not found"):
        verify(tmp_path / SMALL, SMALL)


# --------------------------------------------------------------------------- download


@pytest.fixture(autouse=True)
def _no_proxy_for_loopback(monkeypatch: pytest.MonkeyPatch):
    """A proxy set in the environment must not swallow requests to the local test server."""
    for var in ("no_proxy", "NO_PROXY"):
        monkeypatch.setenv(var, "127.0.0.1,localhost")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002
        pass


@contextmanager
def _serve(root: Path) -> Iterator[str]:
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _upstream(root: Path, name: str, data: bytes) -> Path:
    target = root / catalogue()[name].upstream_path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return target


@pytest.mark.parametrize("name", [SMALL, UNDER_MISC])
def test_download_from_local_server(tmp_path: Path, tegridy_dir: Path, name: str):
    root = tmp_path / "upstream"
    good = (tegridy_dir / name).read_bytes()
    _upstream(root, name, good)
    dest = tmp_path / "got" / name
    with _serve(root) as url:
        assert download(name, dest, base_url=url, timeout=30) == dest
        assert dest.read_bytes() == good
        verify(dest, name)
        # Base URLs with and without the trailing slash reach the same file.
        dest2 = tmp_path / "got2" / name
        download(name, dest2, base_url=url.rstrip("/"), timeout=30)
        assert dest2.read_bytes() == good
    assert sorted(p.name for p in dest.parent.iterdir()) == [name]  # no temporary left


def test_download_corrupt_is_refused_atomically(tmp_path: Path, tegridy_dir: Path):
    root = tmp_path / "upstream"
    data = bytearray((tegridy_dir / SMALL).read_bytes())
    data[100] ^= 0x01  # same size, one bit off
    _upstream(root, SMALL, bytes(data))
    dest = tmp_path / "got" / SMALL
    with _serve(root) as url, pytest.raises(TegridyError) as exc:
        download(SMALL, dest, base_url=url, timeout=30)
    msg = str(exc.value)
    assert "checksum" in msg and SMALL in msg
    assert hashlib.sha256(bytes(data)).hexdigest() in msg
    assert not dest.exists()
    assert list(dest.parent.iterdir()) == []  # the temporary file was removed too


def test_download_corrupt_keeps_existing_dest(tmp_path: Path, tegridy_dir: Path):
    """A failed download never replaces a file already at ``dest``."""
    root = tmp_path / "upstream"
    _upstream(root, SMALL, (tegridy_dir / SMALL).read_bytes() + b"trailing junk")
    dest = tmp_path / "got" / SMALL
    dest.parent.mkdir()
    shutil.copy(tegridy_dir / SMALL, dest)
    with _serve(root) as url, pytest.raises(TegridyError, match="more bytes than the pinned"):
        download(SMALL, dest, base_url=url, timeout=30)
    assert dest.read_bytes() == (tegridy_dir / SMALL).read_bytes()
    assert sorted(p.name for p in dest.parent.iterdir()) == [SMALL]


def test_download_missing_upstream_leaves_nothing(tmp_path: Path):
    root = tmp_path / "upstream"
    root.mkdir()
    dest = tmp_path / "got" / SMALL
    with _serve(root) as url, pytest.raises(Exception) as exc:  # urllib's HTTPError (404)
        download(SMALL, dest, base_url=url, timeout=30)
    assert "404" in str(exc.value)
    assert not dest.exists()
    assert list(dest.parent.iterdir()) == []


def test_default_url_points_at_the_dataset_repository():
    assert DEFAULT_URL.startswith("https://")
    assert "asigalov61/Tegridy-MIDI-Dataset" in DEFAULT_URL
