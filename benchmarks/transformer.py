"""Training and embedding-extraction throughput of the workflow's transformer.

Builds the model of a config (default: config/config.yaml's `model`), feeds it real tokens
(the bach fixture corpus tokenized with the config's tokenizer, or `--tokens DIR` of a run's
shards), and prints tokens/s for:

- training: `model.train` steps as the `pretrain` rule runs them (`tokentransfer.model.train`);
- extraction: the contextual-embedding pass of the `embed` rule (`tokentransfer.embed.contextual`);
- the same two on a GPU when one is visible (`--device cuda`).

    python benchmarks/transformer.py [--config config/config.yaml] [--steps 20] [--device cpu]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

# this folder holds tokenize.py, which would hide the standard library's tokenize module
if sys.path and Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
    del sys.path[0]
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
import yaml  # noqa: E402

from tokentransfer.embed import contextual  # noqa: E402
from tokentransfer.model import (  # noqa: E402
    TrainSpec,
    WindowSampler,
    build_model,
    model_spec,
    n_params,
    special_ids,
    train,
)
from tokentransfer.tokenize import build_tokenizer, corpus_tokens, tokenize_file  # noqa: E402

SHARED = Path(os.environ.get("TOKENTRANSFER_SHARED", REPO.parent / "shared"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--config", default=str(REPO / "config" / "config.yaml"))
    ap.add_argument("--steps", type=int, default=20, help="training steps timed (after 2 warm-up)")
    ap.add_argument("--tokens", help="a token folder (results/tokens/CORPUS) instead of fixtures")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    cfg = yaml.safe_load(Path(args.config).read_text())
    model_cfg = {
        "arch": "gpt2",
        "layers": 2,
        "dim": 128,
        "heads": 4,
        "context": 256,
        "dropout": 0.1,
        "batch": 8,
        "lr": 1e-3,
        **cfg.get("model", {}),
    }
    tokenizer = build_tokenizer(cfg.get("tokenizer", {"kind": "REMI", "use_programs": True}))
    special = special_ids(tokenizer)
    if args.tokens:
        seqs = corpus_tokens(sorted(str(p) for p in Path(args.tokens).glob("*.h5")))
    else:
        files = sorted((SHARED / "data" / "fixtures" / "bach").glob("*.mid"))
        seqs = [tokenize_file(tokenizer, p) for p in files]
    spec = model_spec(model_cfg)
    device = torch.device(args.device)
    model = build_model(spec, len(tokenizer), special, 0).to(device)
    print(
        f"model: {spec.arch} {spec.layers}x{spec.dim}, context {spec.context}, "
        f"{n_params(model):,} parameters; device {device}, {args.threads} threads"
    )
    print(f"data: {len(seqs)} pieces, {sum(len(s) for s in seqs):,} tokens")

    sampler = WindowSampler(seqs, special, spec.context, 0)
    with tempfile.TemporaryDirectory() as tmp:
        warm = TrainSpec(steps=2, batch=model_cfg["batch"], checkpoint_every=10**9)
        train(model, sampler, warm, checkpoint=Path(tmp) / "warm.pt", device=device)
        timed = TrainSpec(
            steps=args.steps, batch=model_cfg["batch"], checkpoint_every=10**9, log_every=10**9
        )
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        stats = train(model, sampler, timed, checkpoint=Path(tmp) / "t.pt", device=device)
        if device.type == "cuda":
            torch.cuda.synchronize()
        train_s = time.perf_counter() - t0
    train_tps = stats["tokens_seen"] / train_s
    flops = 6 * n_params(model) * stats["tokens_seen"] / train_s

    t0 = time.perf_counter()
    _, count = contextual(model, seqs, special, batch=model_cfg.get("batch", 8), progress_every=0)
    if device.type == "cuda":
        torch.cuda.synchronize()
    extract_s = time.perf_counter() - t0
    extract_tps = int(count.sum()) / extract_s

    print("stage\ttokens\tseconds\ttokens_per_s")
    print(f"train\t{stats['tokens_seen']}\t{train_s:.2f}\t{train_tps:.0f}")
    print(f"extract\t{int(count.sum())}\t{extract_s:.2f}\t{extract_tps:.0f}")
    print(f"training throughput ~ {flops / 1e9:.1f} GFLOP/s (6 x parameters x tokens)")
    planned = model_cfg["steps"] * model_cfg["batch"] * spec.context
    print(f"the config's pretraining ({planned:,} tokens) takes ~{planned / train_tps:.0f} s here")
    return 0


if __name__ == "__main__":
    sys.exit(main())
