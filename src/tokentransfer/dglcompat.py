"""The one place that imports DGL: ``from tokentransfer.dglcompat import dgl``.

DGL 2.1.0, the newest Linux wheel, loads on import a graphbolt C++ library built only for torch
2.0-2.2 (and graphbolt's Python side needs ``torchdata.datapipes``, gone from recent torchdata).
We use none of graphbolt: when the library for the installed torch is missing, an empty module
stands in for ``dgl.graphbolt`` before ``import dgl``. GraphConv, SAGEConv, the negative
samplers and ``dgl.sampling.random_walk`` work with it (tests/test_dglcompat.py checks them).
Never ``import dgl`` anywhere else.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import types
from pathlib import Path

os.environ.setdefault("DGLBACKEND", "pytorch")


def _graphbolt_library_present() -> bool:
    import torch

    spec = importlib.util.find_spec("dgl")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("DGL is not installed: pip install dgl==2.1.0")
    folder = Path(spec.submodule_search_locations[0]) / "graphbolt"
    version = torch.__version__.split("+")[0]
    return (folder / f"libgraphbolt_pytorch_{version}.so").exists()


def _import_dgl():
    if "dgl" in sys.modules:
        return sys.modules["dgl"]
    if not _graphbolt_library_present():
        stub = types.ModuleType("dgl.graphbolt")
        stub.__doc__ = "empty stand-in: graphbolt has no library for this torch (tokentransfer)"
        stub.__path__ = []
        sys.modules["dgl.graphbolt"] = stub
    import dgl

    return dgl


dgl = _import_dgl()
STUBBED_GRAPHBOLT = getattr(sys.modules.get("dgl.graphbolt"), "__file__", None) is None

__all__ = ["dgl", "STUBBED_GRAPHBOLT"]
