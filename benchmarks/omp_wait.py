"""Torch jobs sharing the cores: OpenMP threads that spin against threads that sleep.

Snakemake runs several torch jobs at once (`snakemake --cores 8` on a 2-core laptop runs four
2-thread jobs). This script measures one job while another runs beside it, as the workflow
does: a competing process trains the default model (config/config.yaml's `model`, 2 threads),
and the measured process, started after it, times 10 training steps (batch 8 x context) and
sampling 4 x 256 tokens under the grammar mask with the KV cache
(`tokentransfer.baselines.transformer_samples`). Both processes get the same
`OMP_WAIT_POLICY`: unset (libgomp's default: threads spin a while at each barrier; the
children import torch before tokentransfer, which would set it) or `PASSIVE` (they sleep),
which `import tokentransfer` sets unless the environment does. Also
the measured job with 1 thread. Prints seconds per step, tokens/s and ratios to the default,
from one run; the model is built here (random weights), nothing is read from a run.

    python benchmarks/omp_wait.py [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

if sys.path and Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
    del sys.path[0]
REPO = Path(__file__).resolve().parents[1]


def child(args) -> None:
    """One process: build the default model; compete (train forever) or measure."""
    sys.path.insert(0, str(REPO / "src"))
    import torch  # first: libgomp reads OMP_WAIT_POLICY as torch loads it
    import yaml

    from tokentransfer.baselines import start_tokens, transformer_samples
    from tokentransfer.grammar import Grammar
    from tokentransfer.model import build_model, model_spec, special_ids
    from tokentransfer.tokenize import build_tokenizer

    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    model_cfg = {"arch": "gpt2", "dropout": 0.0, **cfg["model"]}
    torch.set_num_threads(args.threads)
    tok = build_tokenizer(cfg["tokenizer"])
    model = build_model(model_spec(model_cfg), len(tok), special_ids(tok), seed=0)
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    x = torch.randint(4, len(tok), (int(model_cfg["batch"]), int(model_cfg["context"])))

    def step():
        loss = model(input_ids=x, labels=x).loss
        loss.backward()
        opt.step()
        opt.zero_grad()

    if args.role == "compete":
        while True:
            step()
    step()  # warm-up
    t0 = time.perf_counter()
    for _ in range(10):
        step()
    train_s = (time.perf_counter() - t0) / 10
    model.eval()
    t0 = time.perf_counter()
    transformer_samples(model, 4, 256, 0, start=start_tokens(tok), grammar=Grammar(tok))
    sample_tps = 4 * 256 / (time.perf_counter() - t0)
    print(json.dumps({"train_s_per_step": train_s, "sample_tokens_per_s": sample_tps}))


def measure(policy: str | None, threads: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    env["HF_HUB_OFFLINE"] = "1"
    if policy:  # else unset: the child imports torch (and libgomp reads it) before tokentransfer
        env["OMP_WAIT_POLICY"] = policy
    me = [sys.executable, __file__, "--child"]
    rival = subprocess.Popen([*me, "compete", "--threads", "2"], env=env)
    try:
        time.sleep(8)  # the rival is training
        out = subprocess.run(
            [*me, "measure", "--threads", str(threads)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        rival.kill()
        rival.wait()
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    if "--child" in sys.argv:
        ap = argparse.ArgumentParser()
        ap.add_argument("--child", dest="role")
        ap.add_argument("--threads", type=int, default=2)
        child(ap.parse_args())
        return 0
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--threads", type=int, default=2, help="the measured job's torch threads")
    args = ap.parse_args()
    print(f"cores: {os.cpu_count()}, load average: {os.getloadavg()[0]:.2f}")
    runs = [
        ("default (spin)", None, args.threads),
        ("PASSIVE", "PASSIVE", args.threads),
        ("PASSIVE, 1 thread", "PASSIVE", 1),
    ]
    rows = [(name, threads, measure(policy, threads)) for name, policy, threads in runs]
    base = rows[0][2]
    print("| wait policy | threads | s/training step | ratio | sampling tokens/s | ratio |")
    print("|---|---|---|---|---|---|")
    for name, threads, r in rows:
        print(
            f"| {name} | {threads} | {r['train_s_per_step']:.3f} "
            f"| {base['train_s_per_step'] / r['train_s_per_step']:.2f}x "
            f"| {r['sample_tokens_per_s']:,.0f} "
            f"| {r['sample_tokens_per_s'] / base['sample_tokens_per_s']:.2f}x |"
        )
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
