"""Importing the package makes torch's OpenMP threads wait passively, unless the user chose."""

import os
import subprocess
import sys
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[1] / "src")
CODE = (
    "import tokentransfer, torch, os; "
    "print(os.environ.get('OMP_WAIT_POLICY'), torch.get_num_threads() >= 1)"
)


def _run(env):
    out = subprocess.run(
        [sys.executable, "-c", CODE], env=env, capture_output=True, text=True, check=True
    )
    return out.stdout.split()


def test_passive_wait_policy_is_set_and_a_user_choice_kept():
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [SRC, env.get("PYTHONPATH")]))
    assert _run(env) == ["PASSIVE", "True"]
    assert _run({**env, "OMP_WAIT_POLICY": "ACTIVE"}) == ["ACTIVE", "True"]
