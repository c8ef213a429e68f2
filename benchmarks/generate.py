"""Generation speed: the biased random walk against sampling from the transformer.

Both produce the same number of samples of the same length on this machine:
- the walk: ``tokentransfer.rwr.Walker`` over the successor graph of the bach fixture corpus,
  biased by node embeddings (random 128-d ones here: the speed does not depend on their values);
- the transformer: the config's model (default config/config.yaml: GPT-2 2x128, context 256),
  ``model.generate(do_sample=True, top_k=16)`` from BOS, batched, on the CPU (or --device cuda).
The length is capped by the transformer's context (its positional table ends there).

    python benchmarks/generate.py [--samples 4] [--length 256]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

# this folder holds tokenize.py, which would hide the standard library's tokenize module
if sys.path and Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
    del sys.path[0]
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402

from tokentransfer.graph import successors  # noqa: E402
from tokentransfer.model import build_model, special_ids  # noqa: E402
from tokentransfer.rwr import WalkConfig, Walker  # noqa: E402
from tokentransfer.stages import model_spec  # noqa: E402
from tokentransfer.tokenize import build_tokenizer, tokenize_file  # noqa: E402

SHARED = Path(os.environ.get("TOKENTRANSFER_SHARED", REPO.parent / "shared"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--config", default=str(REPO / "config" / "config.yaml"))
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--length", type=int, default=256)
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
        **cfg.get("model", {}),
    }
    spec = model_spec(model_cfg)
    length = min(args.length, spec.context - 1)
    tokenizer = build_tokenizer(cfg.get("tokenizer", {"kind": "REMI", "use_programs": True}))
    files = sorted((SHARED / "data" / "fixtures" / "bach").glob("*.mid"))
    seqs = [tokenize_file(tokenizer, p) for p in files]
    succ = successors(seqs, len(tokenizer))
    h = np.random.default_rng(0).normal(size=(len(tokenizer), 128)).astype(np.float32)
    walker = Walker(succ, tokenizer, h, None, WalkConfig(length=length, samples=args.samples))
    walker.generate(n=1, length=16)  # warm-up
    t0 = time.perf_counter()
    out = walker.generate()
    walk_s = time.perf_counter() - t0
    walk_tps = sum(len(s) for s in out) / walk_s

    special = special_ids(tokenizer)
    model = build_model(spec, len(tokenizer), special, 0).to(args.device).eval()
    start = torch.full((args.samples, 1), special["bos"], dtype=torch.long, device=args.device)
    kw = dict(do_sample=True, top_k=16, pad_token_id=special["pad"], eos_token_id=None)
    with torch.no_grad():
        model.generate(start, max_new_tokens=8, min_new_tokens=8, **kw)  # warm-up
        if args.device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        gen = model.generate(start, max_new_tokens=length, min_new_tokens=length, **kw)
        if args.device == "cuda":
            torch.cuda.synchronize()
        lm_s = time.perf_counter() - t0
    lm_tps = (gen.shape[1] - 1) * gen.shape[0] / lm_s

    print(
        f"{args.samples} samples x {length} tokens; transformer {spec.arch} "
        f"{spec.layers}x{spec.dim} on {args.device}, {args.threads} threads"
    )
    print("method\ttokens_per_s\tseconds")
    print(f"rwr_walk\t{walk_tps:.0f}\t{walk_s:.3f}")
    print(f"transformer\t{lm_tps:.0f}\t{lm_s:.3f}")
    print(f"ratio walk/transformer: {walk_tps / lm_tps:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
