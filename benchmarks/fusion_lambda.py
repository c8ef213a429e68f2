"""Fused sampling's lambda: the choice on held-out adaptation pieces against the test pieces.

For each target and k: the few-shot subset of draw 0 (as rule ``fewshot_transfer`` draws it),
lambda chosen by :func:`tokentransfer.fusion.choose_lambda` (held-out groups, or with one group
the tail of the fitted pieces, reported but not chosen), and the bits/token of every lambda of
the grid on the test tokens the evaluation scores. Reads a finished run's ``results/`` (tokens,
splits, tokenizer, the pretrained model) and the run's config files.

    python benchmarks/fusion_lambda.py --root . --configfile config/tegridy.yaml \\
        --model tegridy --k 1 5 20 --targets bach karaoke jazzlead
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

if sys.path and Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
    del sys.path[0]
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import yaml  # noqa: E402

from tokentransfer.fusion import LAMBDAS, choose_lambda  # noqa: E402
from tokentransfer.jobs.fewshot import _Point  # noqa: E402
from tokentransfer.likelihood import bits_per_token, fused_log_probs, scored_pieces  # noqa: E402
from tokentransfer.methods import Env, get  # noqa: E402
from tokentransfer.model import set_threads  # noqa: E402


def merged_config(root: Path, files: list[str]) -> dict:
    """The run's config/config.yaml, then each file over it (as Snakemake merges), this
    checkout's schema defaults in."""
    from snakemake.utils import validate

    def merge(a, b):
        for k, v in b.items():
            both = isinstance(v, dict) and isinstance(a.get(k), dict)
            a[k] = merge(a[k], v) if both else v
        return a

    cfg: dict = {}
    for f in ["config/config.yaml", *files]:
        cfg = merge(cfg, yaml.safe_load((root / f).read_text()))
    validate(cfg, str(REPO / "schemas/config.schema.yaml"), set_default=True)  # this checkout's
    return cfg


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--root", default=".", help="the run's working directory")
    ap.add_argument("--configfile", nargs="*", default=[])
    ap.add_argument("--model", required=True, help="model.name of the run")
    ap.add_argument("--k", nargs="+", type=int, default=[1, 5, 20])
    ap.add_argument("--targets", nargs="+", required=True)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    root = Path(args.root).resolve()
    cfg = merged_config(root, args.configfile)
    set_threads(args.threads)
    res = root / "results"
    tok_json = str(res / "tokenizer/tokenizer.json")
    print(
        "| target | k | method | groups | best lambda on held-out | lambda chosen "
        "| test bits there | best lambda on test | test bits there | lambda 0 (transformer) |\n"
        "|---|---|---|---|---|---|---|---|---|---|"
    )
    for k in args.k:
        for corpus in args.targets:
            p = _Point(
                tokenizer_json=tok_json,
                shards=sorted(str(s) for s in (res / "tokens" / corpus).glob("*.h5")),
                split=str(res / "splits" / f"{corpus}.tsv"),
                corpus=corpus,
                k=k,
                draw=0,
                cfg=cfg["fewshot"],
                eval_cfg=cfg["evaluate"],
                out_dir=tempfile.mkdtemp(prefix="fusion_lambda."),  # nothing is written there
            )
            if p.skipped:
                continue
            env = Env(
                p.tokenizer,
                tok_json,
                gen=cfg["generate"],
                eval=cfg["evaluate"],
                sampling=cfg["sampling"],
                model_dir=str(res / "models" / args.model / "hf"),
                seed=cfg["fewshot"]["seed"],
                groups=p.train_groups,
            )
            model, bos = env.load_model(), env.special["bos"]
            test = scored_pieces(p.test, cfg["evaluate"].get("bits_tokens"))
            for name in ("fused_markov", "fused_walk"):
                method = get(name)
                choice = choose_lambda(
                    model,
                    lambda f, m=method, e=env: m.target_model(f, e),
                    p.train,
                    bos=bos,
                    seed=env.seed,
                    groups=env.groups,
                    device=env.device,
                    max_tokens=cfg["evaluate"].get("bits_tokens"),
                )
                target = method.target_model(p.train, env)
                per: list[list] = [[] for _ in LAMBDAS]
                for s in test:
                    lp = fused_log_probs(model, target, s, list(LAMBDAS), bos, env.grammar)
                    for j in range(len(LAMBDAS)):
                        per[j].append(lp[j])
                bits = {
                    lam: bits_per_token(per[j])["bits_per_token"] for j, lam in enumerate(LAMBDAS)
                }
                best = min(bits, key=lambda lam: (bits[lam], lam))
                held = min(choice.bits, key=lambda lam: (choice.bits[lam], lam))
                groups = len(set(p.train_groups))
                print(
                    f"| {corpus} | {k} | {name} | {groups} | {held:g} | {choice.lam:g} "
                    f"| {bits[choice.lam]:.3f} | {best:g} | {bits[best]:.3f} | {bits[0.0]:.3f} |",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
