"""DGL works with the installed torch through tokentransfer.dglcompat, and only through it."""

from __future__ import annotations

import re
import subprocess
import sys

import torch

from tests.conftest import REPO
from tokentransfer.dglcompat import STUBBED_GRAPHBOLT, dgl


def test_dgl_imports_and_its_parts_work():
    from dgl.nn import GraphConv, SAGEConv

    g = dgl.graph((torch.tensor([0, 1, 2, 3]), torch.tensor([1, 2, 3, 0])))
    x = torch.randn(4, 8)
    assert GraphConv(8, 3, allow_zero_in_degree=True)(g, x).shape == (4, 3)
    assert SAGEConv(8, 3, "mean")(g, x).shape == (4, 3)
    src, dst = dgl.dataloading.negative_sampler.GlobalUniform(2)(g, torch.tensor([0, 1]))
    assert len(src) == len(dst) > 0
    g.edata["w"] = torch.tensor([1.0, 2.0, 3.0, 4.0])
    torch.manual_seed(0)
    walks, _ = dgl.sampling.random_walk(g, torch.tensor([0, 1]), length=6, prob="w")
    assert walks.shape == (2, 7) and walks[0].tolist() == [0, 1, 2, 3, 0, 1, 2]
    walks, _ = dgl.sampling.random_walk(g, torch.tensor([0]), length=6, restart_prob=0.5)
    assert walks.shape[0] == 1 and walks[0, 0] == 0
    n2v = dgl.sampling.node2vec_random_walk(g, torch.tensor([0]), 1.0, 1.0, 3)
    assert n2v[0].tolist() == [0, 1, 2, 3]


def test_graphbolt_is_stubbed_only_when_its_library_is_missing():
    import importlib.util
    from pathlib import Path

    folder = Path(importlib.util.find_spec("dgl").submodule_search_locations[0]) / "graphbolt"
    have = (folder / f"libgraphbolt_pytorch_{torch.__version__.split('+')[0]}.so").exists()
    assert STUBBED_GRAPHBOLT is not have


def test_plain_import_dgl_fails_here_so_the_shim_is_needed():
    """Documents why the module exists: a bare `import dgl` breaks with this torch."""
    proc = subprocess.run([sys.executable, "-c", "import dgl"], capture_output=True, text=True)
    if STUBBED_GRAPHBOLT:
        assert proc.returncode != 0
    else:
        assert proc.returncode == 0


def test_no_other_module_imports_dgl_directly():
    pattern = re.compile(r"^\s*(import dgl\b|from dgl\b)", re.M)
    offenders = []
    for folder in ("src", "scripts", "benchmarks"):
        for path in (REPO / folder).rglob("*.py"):
            if path.name == "dglcompat.py":
                continue
            text = path.read_text()
            # `from dgl.nn import ...` is fine after the shim; a first import must be the shim
            for m in pattern.finditer(text):
                before = text[: m.start()]
                if "tokentransfer.dglcompat" not in before and "from .dglcompat" not in before:
                    offenders.append(f"{path.relative_to(REPO)}: {m.group(0).strip()}")
    assert offenders == []
