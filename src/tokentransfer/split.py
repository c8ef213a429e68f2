"""Grouped, seeded train/test splits of a corpus: versions of one piece never straddle a split.

Groups are ranked by a hash of (seed, group) and the first ``ceil(fraction * groups)`` are held
out. The ranking does not depend on which other groups exist, so a corpus that grows keeps the
assignment of its old groups except where a new group takes a held-out place.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections import Counter

from .corpus import Row, read_manifest
from .fileio import write_text_atomic

SPLIT_COLUMNS = ("file_id", "group", "split")


def _rank(seed: int, group: str) -> str:
    return hashlib.sha256(f"{seed}\0{group}".encode()).hexdigest()


def assign(rows: list[Row], fraction: float, seed: int, held: str = "test") -> dict[str, str]:
    """``{file_id: "train" | held}`` for the ``ok`` rows of a manifest.

    With two or more groups at least one is held out and at least one is kept for training;
    a corpus of one group is all training.
    """
    if not 0 <= fraction < 1:
        raise ValueError(f"split fraction must be in [0, 1), got {fraction}")
    ok = [r for r in rows if r.status == "ok"]
    groups = sorted({r.group for r in ok}, key=lambda g: _rank(seed, g))
    n_held = 0
    if len(groups) >= 2 and fraction > 0:
        n_held = min(max(1, math.ceil(fraction * len(groups))), len(groups) - 1)
    held_groups = set(groups[:n_held])
    return {r.file_id: (held if r.group in held_groups else "train") for r in ok}


def write_split(
    manifest: str | os.PathLike, out: str | os.PathLike, fraction: float, seed: int, held: str
) -> Counter:
    """Write ``file_id group split`` for a corpus, one row per accepted file (a duplicate's
    rows repeat its kept file's id and are left out); return the counts per split."""
    rows = read_manifest(manifest)
    split = assign(rows, fraction, seed, held)
    lines = ["\t".join(SPLIT_COLUMNS)]
    lines += [f"{r.file_id}\t{r.group}\t{split[r.file_id]}" for r in rows if r.status == "ok"]
    write_text_atomic(out, "\n".join(lines) + "\n")
    return Counter(split.values())


def read_split(path: str | os.PathLike) -> dict[str, str]:
    """``{file_id: split}`` from a split file."""
    with open(path, encoding="utf-8") as fh:
        header = fh.readline().rstrip("\n").split("\t")
        if tuple(header) != SPLIT_COLUMNS:
            raise ValueError(f"{path}: not a split file (columns {header})")
        out = {}
        for line in fh:
            fid, _group, part = line.rstrip("\n").split("\t")
            out[fid] = part
        return out
