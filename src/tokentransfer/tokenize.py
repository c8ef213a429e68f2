"""Per-file tokenization with miditok, in content-addressed shards stored as HDF5.

One tokenizer is built from config and saved once as JSON; its sha256 (``tokenizer_hash``) is
written into every shard. A shard file ``results/tokens/{corpus}/{shard}.h5`` holds:

- ``ids``       int32 [total]  the token ids of all files, concatenated
- ``offsets``   int64 [n+1]    file i's tokens are ``ids[offsets[i]:offsets[i+1]]``
- ``file_ids``  bytes [n]      content sha256 of each file, sorted
- ``failed_ids`` bytes [m], ``failed_reasons`` str [m]: files that could not be tokenized
- attributes ``tokenizer_hash``, ``corpus``, ``shard``, ``miditok_version``, ``tokens_format``.

A shard job whose file list changed (files added to the corpus) does not tokenize again the files
it tokenized before: the workflow keeps a hard link of each shard it writes at
``results/tokens/{corpus}/.cache/{shard}.h5`` (not an output, so Snakemake does not delete it
before the job runs again), and the job takes the token arrays of file ids it finds there.
Tokens are a function of the file's content (its id is its sha256) and of the tokenizer, so the
cache is used only when its tokenizer hash, miditok version and ``tokens_format`` are the
current ones; the shard written is the same, byte for byte, as one tokenized from scratch.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .fileio import atomic_path, h5_atomic, sha256_file, write_text_atomic

log = logging.getLogger(__name__)

#: version of the shard layout and token arrays; a cache of another version is not reused
TOKENS_FORMAT = 1
#: the miditok tokenizer classes config key ``tokenizer.kind`` accepts (the schema's enum lists
#: the same): REMI only, the one token stream that the grammar every sampler follows models
#: (:func:`tokentransfer.grammar.unsupported`)
TOKENIZER_KINDS = ("REMI",)


class TokenizeError(RuntimeError):
    """A tokenizer cannot be built or loaded."""


def build_tokenizer(cfg: dict):
    """A miditok tokenizer from the ``tokenizer`` config: ``kind`` plus TokenizerConfig fields."""
    import miditok

    cfg = dict(cfg)
    kind = cfg.pop("kind", "REMI")
    if kind not in TOKENIZER_KINDS:
        raise TokenizeError(f"config key tokenizer.kind: {kind!r} is not one of {TOKENIZER_KINDS}")
    if "beat_res" in cfg:  # YAML keys are strings like "0-4"; miditok wants (0, 4) tuples
        cfg["beat_res"] = {
            tuple(int(x) for x in str(k).split("-")): int(v) for k, v in cfg["beat_res"].items()
        }
    known = {
        name
        for name, p in inspect.signature(miditok.TokenizerConfig.__init__).parameters.items()
        if p.kind is not inspect.Parameter.VAR_KEYWORD and name != "self"
    }
    unknown = sorted(set(cfg) - known)
    if unknown:  # TokenizerConfig would silently keep a typo as an "additional parameter"
        raise TokenizeError(
            f"config key tokenizer: unknown field(s) {unknown}; miditok TokenizerConfig takes "
            f"kind and {sorted(known)}"
        )
    try:
        tok_cfg = miditok.TokenizerConfig(**cfg)
    except TypeError as exc:
        raise TokenizeError(f"config key tokenizer: {exc}") from exc
    return getattr(miditok, kind)(tok_cfg)


def save_tokenizer(tokenizer, path: str | os.PathLike) -> str:
    """Save the tokenizer JSON atomically; return its sha256."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tokenizer.save(tmp.parent, filename=tmp.name)
    return sha256_file(path)


def load_tokenizer(path: str | os.PathLike):
    """Load a tokenizer from its local JSON; a missing or invalid file is a named error."""
    import miditok

    path = Path(path)
    if not path.is_file():
        raise TokenizeError(f"tokenizer file not found: {path}")
    try:
        params = json.loads(path.read_text())
        kind = params["tokenization"]
        cls = getattr(miditok, kind)
    except (ValueError, KeyError, AttributeError) as exc:
        raise TokenizeError(f"{path} is not a miditok tokenizer JSON: {exc}") from exc
    return cls(params=path)


@dataclass
class ShardResult:
    file_ids: list[str]
    sequences: list[np.ndarray]
    failed: list[tuple[str, str]]
    seconds: float
    reused: int = 0  # files whose tokens came from the cache

    @property
    def tokens(self) -> int:
        return int(sum(len(s) for s in self.sequences))


def tokenize_file(tokenizer, path: str | os.PathLike) -> np.ndarray:
    """Token ids of one MIDI file, as int32."""
    import symusic

    score = symusic.Score(str(path))
    seq = tokenizer.encode(score)
    # tokenizers with one stream per track return a list: concatenate the tracks
    ids = [i for s in seq for i in s.ids] if isinstance(seq, list) else seq.ids
    if len(ids) == 0:
        raise TokenizeError("no tokens")
    return np.asarray(ids, dtype=np.int32)


def tokenize_paths(
    tokenizer,
    paths: list[str],
    progress_every: int = 200,
    known: dict[str, np.ndarray] | None = None,
) -> ShardResult:
    """Tokenize each file on its own; a file that fails is recorded and the rest go on.

    File ids are the file names' stems (the store names files by content sha256). ``known``
    gives the token ids of files already tokenized by the same tokenizer (by file id): they are
    taken as they are, not read again.
    """
    t0 = time.perf_counter()
    known = known or {}
    items = sorted((Path(p).stem, p) for p in paths)
    file_ids, seqs, failed = [], [], []
    for n, (fid, p) in enumerate(items, 1):
        if fid in known:
            seqs.append(known[fid])
            file_ids.append(fid)
            continue
        try:
            seqs.append(tokenize_file(tokenizer, p))
            file_ids.append(fid)
        except Exception as exc:  # miditok/symusic raise many kinds on odd files
            failed.append((fid, f"{type(exc).__name__}: {exc}"[:300]))
        if progress_every and n % progress_every == 0:
            log.info("tokenized %d/%d files", n, len(items))
    return ShardResult(file_ids, seqs, failed, time.perf_counter() - t0)


#: tokens per HDF5 chunk of a shard's ``ids`` (fewer in a smaller shard: one chunk then)
SHARD_CHUNK = 1 << 16


def _blocks(seqs: list[np.ndarray], size: int) -> Iterator[tuple[int, np.ndarray]]:
    """The concatenation of ``seqs`` as int32 in consecutive blocks of ``size`` tokens (the last
    one shorter), with each block's start."""
    buf = np.empty(size, dtype=np.int32)
    fill = start = 0
    for seq in seqs:
        pos = 0
        while pos < len(seq):
            take = min(size - fill, len(seq) - pos)
            buf[fill : fill + take] = seq[pos : pos + take]
            fill += take
            pos += take
            if fill == size:
                yield start, buf
                start += size
                fill = 0
    if fill:
        yield start, buf[:fill]


def write_shard(
    result: ShardResult, path: str | os.PathLike, *, tokenizer_hash: str, corpus: str, shard: str
) -> None:
    """Write a shard's HDF5 file atomically."""
    from importlib.metadata import version

    import h5py

    offsets = np.zeros(len(result.sequences) + 1, dtype=np.int64)
    if result.sequences:
        np.cumsum([len(s) for s in result.sequences], out=offsets[1:])
    total = int(offsets[-1])
    with h5_atomic(path, track_order=True) as h5:
        if total:
            chunk = min(total, SHARD_CHUNK)
            ds = h5.create_dataset(
                "ids",
                shape=(total,),
                dtype=np.int32,
                chunks=(chunk,),
                compression="gzip",
                shuffle=True,
            )
            # one chunk at a time, each written once and whole: the shard's tokens are never
            # held twice (a shard of a Lakh-size corpus holds ~38 M tokens)
            for start, block in _blocks(result.sequences, chunk):
                ds[start : start + len(block)] = block
        else:  # an empty shard (few files, many shards): HDF5 cannot chunk a 0-length array
            h5.create_dataset("ids", data=np.zeros(0, dtype=np.int32))
        h5.create_dataset("offsets", data=offsets)
        h5.create_dataset("file_ids", data=np.array(result.file_ids, dtype="S64"))
        h5.create_dataset("failed_ids", data=np.array([f for f, _ in result.failed], dtype="S64"))
        h5.create_dataset(
            "failed_reasons",
            data=[r for _, r in result.failed],
            dtype=h5py.string_dtype(),
        )
        h5.attrs["tokenizer_hash"] = tokenizer_hash
        h5.attrs["corpus"] = corpus
        h5.attrs["shard"] = shard
        h5.attrs["miditok_version"] = version("miditok")
        h5.attrs["tokens_format"] = TOKENS_FORMAT


@dataclass
class ShardListing:
    """What a shard holds, without its tokens (:func:`read_listing`): its file ids, where each
    file's tokens start and end in the shard (``offsets``), the files that failed (id ->
    reason) and the tokenizer's hash."""

    file_ids: list[str]
    offsets: np.ndarray
    failed: dict[str, str]
    tokenizer_hash: str

    @property
    def lengths(self) -> np.ndarray:
        """Tokens of each file."""
        return np.diff(self.offsets)

    def __len__(self) -> int:
        return len(self.file_ids)


@dataclass
class Shard(ShardListing):
    """A shard read back with its tokens (:func:`read_shard`): ``sequence(i)`` gives file i's
    token ids."""

    ids: np.ndarray

    def sequence(self, i: int) -> np.ndarray:
        return self.ids[self.offsets[i] : self.offsets[i + 1]]


def _listing(h5) -> dict:
    return {
        "file_ids": [b.decode() for b in h5["file_ids"][:]],
        "offsets": h5["offsets"][:],
        "failed": dict(
            zip(
                [b.decode() for b in h5["failed_ids"][:]],
                [r.decode() if isinstance(r, bytes) else r for r in h5["failed_reasons"][:]],
                strict=True,
            )
        ),
        "tokenizer_hash": str(h5.attrs["tokenizer_hash"]),
    }


def read_listing(path: str | os.PathLike) -> ShardListing:
    """A shard's listing without decompressing its tokens (what the token index needs)."""
    import h5py

    with h5py.File(path, "r") as h5:
        return ShardListing(**_listing(h5))


def read_shard(path: str | os.PathLike) -> Shard:
    """A shard's listing and its token ids."""
    import h5py

    with h5py.File(path, "r") as h5:
        return Shard(**_listing(h5), ids=h5["ids"][:])


def corpus_tokens(
    shard_paths: list[str], splits: list[str] | None = None, part: str | None = None
) -> list[np.ndarray]:
    """Token sequences of a corpus (all shards), optionally only the files of one split part,
    in file id order."""
    from .split import read_split

    keep = None
    if part is not None:
        keep = set()
        for sp in splits or []:
            keep |= {fid for fid, p in read_split(sp).items() if p == part}
    items = []
    for path in shard_paths:
        shard = read_shard(path)
        for i, fid in enumerate(shard.file_ids):
            if keep is None or fid in keep:
                items.append((fid, shard.sequence(i)))
    return [seq for _, seq in sorted(items, key=lambda x: x[0])]


INDEX_COLUMNS = ("file_id", "shard", "tokens", "status", "reason")


def write_index(shard_paths: list[str], path: str | os.PathLike) -> dict[str, int]:
    """Aggregate shards into one TSV index (file id, shard, token count, status); return totals.

    Every shard must carry the same tokenizer hash.
    """
    lines = ["\t".join(INDEX_COLUMNS)]
    hashes = set()
    totals = {"files": 0, "failed": 0, "tokens": 0}
    for sp in sorted(shard_paths):
        shard = read_listing(sp)  # token counts from the offsets: the tokens are not read
        hashes.add(shard.tokenizer_hash)
        name = Path(sp).stem
        for fid, n in zip(shard.file_ids, shard.lengths.tolist(), strict=True):
            lines.append(f"{fid}\t{name}\t{n}\tok\t")
            totals["files"] += 1
            totals["tokens"] += n
        for fid, reason in sorted(shard.failed.items()):
            lines.append(f"{fid}\t{name}\t0\tfailed\t{reason.replace(chr(9), ' ')}")
            totals["failed"] += 1
    if len(hashes) > 1:
        raise TokenizeError(f"shards were made by different tokenizers: {sorted(hashes)}")
    write_text_atomic(path, "\n".join(lines) + "\n")
    return totals


def read_cache(
    path: str | os.PathLike, tokenizer_hash: str, wanted: set[str]
) -> dict[str, np.ndarray]:
    """Token ids, by file id, of the files in ``wanted`` that the cached shard ``path`` holds.

    Empty when there is no cache, and (with a log line saying why) when it cannot be read or
    was made by another tokenizer, miditok version or ``tokens_format``: then every file is
    tokenized again. Files that failed before are not taken (they are tried again).
    """
    from importlib.metadata import version

    import h5py

    path = Path(path)
    if not path.exists():
        return {}
    try:
        with h5py.File(path, "r") as h5:
            attrs = dict(h5.attrs)
            current = {
                "tokens_format": TOKENS_FORMAT,
                "tokenizer_hash": tokenizer_hash,
                "miditok_version": version("miditok"),
            }
            for key, value in current.items():
                if key not in attrs or str(attrs[key]) != str(value):
                    log.info(
                        "cache %s not used: its %s is %s, now %s; tokenizing every file",
                        path,
                        key,
                        attrs.get(key, "missing"),
                        value,
                    )
                    return {}
            file_ids = [b.decode() for b in h5["file_ids"][:]]
            offsets = h5["offsets"][:]
            ids = h5["ids"][:] if any(f in wanted for f in file_ids) else np.zeros(0, np.int32)
    except Exception as exc:  # a damaged HDF5 file raises OSError, KeyError, ValueError, ...
        log.warning("cache %s not used: unreadable (%s); tokenizing every file", path, exc)
        return {}
    if len(offsets) != len(file_ids) + 1 or (
        any(f in wanted for f in file_ids)
        and (offsets[0] != 0 or offsets[-1] != len(ids) or np.any(np.diff(offsets) <= 0))
    ):
        log.warning(
            "cache %s not used: its offsets do not fit its ids; tokenizing every file", path
        )
        return {}
    ids = ids.astype(np.int32, copy=False)
    # views of the one array read (not copies): a shard's cached tokens are held once
    return {
        fid: ids[offsets[i] : offsets[i + 1]] for i, fid in enumerate(file_ids) if fid in wanted
    }


def keep_cache(out_path: str | os.PathLike, cache: str | os.PathLike) -> None:
    """Make ``cache`` a hard link to the shard ``out_path`` (a copy where links fail), atomically.

    The cache is an optimisation: failing to write it is logged, never an error.
    """
    import shutil

    try:
        with atomic_path(cache) as tmp:
            tmp.unlink()
            try:
                os.link(out_path, tmp)
            except OSError:
                shutil.copyfile(out_path, tmp)
    except OSError as exc:
        log.warning("cache %s not written: %s", cache, exc)


def tokenize_shard(
    tokenizer_path: str | os.PathLike,
    midi_paths: list[str],
    out_path: str | os.PathLike,
    *,
    corpus: str,
    shard: str,
    cache: str | os.PathLike | None = None,
) -> ShardResult:
    """Load the saved tokenizer, tokenize a shard's files and write its HDF5 file.

    With ``cache`` (a path beside the shard that the workflow does not delete), files that the
    shard held when it was last written are taken from there instead of tokenized again, and
    the new shard is linked there when it is written.
    """
    tokenizer = load_tokenizer(tokenizer_path)
    tokenizer_hash = sha256_file(tokenizer_path)
    known: dict[str, np.ndarray] = {}
    if cache is not None:
        known = read_cache(cache, tokenizer_hash, {Path(p).stem for p in midi_paths})
        log.info("reused %d files from cache %s", len(known), cache)
    result = tokenize_paths(tokenizer, midi_paths, known=known)
    result.reused = len(known)
    write_shard(result, out_path, tokenizer_hash=tokenizer_hash, corpus=corpus, shard=shard)
    if cache is not None:
        keep_cache(out_path, cache)
    return result
