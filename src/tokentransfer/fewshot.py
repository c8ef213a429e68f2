"""The few-shot curve: every method adapted on k pieces of a target style, k = 1, 2, 5, ...

The target's test pieces are fixed (its grouped split). From its training pieces, nested
subsets are drawn *by group* — a "piece" is a group, so the 12 transpositions of one song are
one piece and come together: draw d orders the training groups with a seeded shuffle, and the
subset of k pieces is the first k groups in that order (so the k=5 subset contains the k=2
subset of the same draw). ``k = 0`` in the config means all training pieces; a k larger than
the number of training pieces is skipped (recorded, no rows).

Each point draws its subset, then loops over the methods of the registry
(:mod:`tokentransfer.methods`) that declare a few-shot job and are chosen in
``fewshot.methods`` (or, for the graph-network walks, ``fewshot.variants``): each is fitted on
the subset alone (:meth:`tokentransfer.methods.Method.fit`) and produces ``generate.samples``
samples of ``generate.length`` tokens, measured like the evaluation's. A method's job is where
it runs: ``point`` (n-gram chains ``markov1`` .. ``markov3c``, smoothed so that they can leave
the subset's own transitions; the walk on the subset's successor counts, ``counts``; the
biased walk of each ``fewshot.variants`` entry, its graph network trained by link prediction
on the subset's graph), ``finetune`` (the pretrained transformer fine-tuned on the subset for
``fewshot.finetune_steps`` steps) or ``transfer`` (the pretrained transformer in the loop,
issue 14: ``fused_markov`` / ``fused_walk``, its logits plus lambda times the log-probabilities
of the subset's order-2 chain / counts walk under the grammar, lambda chosen on held-out groups
of the subset; ``transplant``, graph-network embeddings adapted on the subset put into its
input table, whose ``adapt_seconds`` are the per-target part; ``embed_ft`` / ``lora``, its
input embedding table alone / LoRA adapters trained for the budget of ``finetuned``). The
unadapted transformer is a reference line (the evaluation's ``transformer`` samples).

Every method with a next-token distribution also gets ``bits_per_token`` on the test pieces
(at most ``evaluate.bits_tokens`` of their tokens, as in the evaluation;
:mod:`tokentransfer.likelihood`: the chains and walks smoothed by its floor, the ``...c``
chains and every transformer under the grammar mask); the unadapted transformer's reference
line takes its value from the evaluation's record.

Rows of ``curve.tsv``: corpus, method, k, draw, pieces (groups), files, metric, value.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import time
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

#: the metrics of the curve (set metrics and per-sample means; see tokentransfer.evaluate)
CURVE_METRICS = (
    "js_trigram",
    "js_4gram",
    "pch_distance",
    "pitch_class_entropy",
    "scale_consistency",
    "groove_consistency",
    "note_density",
    "empty_beat_rate",
    "token_error_rate",
    "copy_rate",
    "longest_copy",
)
LIKELIHOOD_METRICS = ("bits_per_token",)
#: the evaluation's measures of the music (tokentransfer.evaluate.music_measures): feature
#: fidelity against excerpts of the test pieces of the samples' length, and the share the
#: style classifier assigns to the target
MUSIC_METRICS = ("feature_fidelity", "style_share")
COST_METRICS = ("adapt_seconds", "gen_tokens_per_second", "tokens")
COLUMNS = ("corpus", "method", "k", "draw", "pieces", "files", "metric", "value")


def read_groups(split_tsv: str | os.PathLike, part: str = "train") -> dict[str, list[str]]:
    """``{group: [file_id, ...]}`` of one part of a split file, both sorted."""
    groups: dict[str, list[str]] = {}
    with open(split_tsv, encoding="utf-8") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            if row["split"] == part:
                groups.setdefault(row["group"], []).append(row["file_id"])
    return {g: sorted(f) for g, f in sorted(groups.items())}


def group_order(groups: list[str], seed: int, draw: int) -> list[str]:
    """The seeded order of draw ``draw`` over the (sorted) group names."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, draw]))
    names = sorted(groups)
    return [names[i] for i in rng.permutation(len(names))]


def subset(groups: dict[str, list[str]], k: int, seed: int, draw: int) -> list[str] | None:
    """File ids of the k-piece subset of draw ``draw`` (k = 0: every training piece); None
    when the target has fewer than k training pieces."""
    if k == 0:
        k = len(groups)
    if k > len(groups) or k < 1:
        return None
    chosen = group_order(list(groups), seed, draw)[:k]
    return sorted(f for g in chosen for f in groups[g])


# --------------------------------------------------------------------------- points


def _rows(corpus, method, k, draw, pieces, files, values: dict[str, float]) -> list[dict]:
    return [
        {
            "corpus": corpus,
            "method": method,
            "k": k,
            "draw": draw,
            "pieces": pieces,
            "files": files,
            "metric": m,
            "value": values.get(m, math.nan),
        }
        for m in (*MUSIC_METRICS, *CURVE_METRICS, *LIKELIHOOD_METRICS, *COST_METRICS)
    ]


class MusicReference:
    """What feature fidelity and style share are measured against, as in the evaluation
    (:func:`tokentransfer.evaluate.run_evaluate`): the musical features of
    ``evaluate.reference_excerpts`` excerpts of ``length`` tokens of the test pieces (seeded by
    ``evaluate.seed``), and the style classifier (None: no style share)."""

    def __init__(self, tokenizer, test, eval_cfg: dict, length: int, classifier=None) -> None:
        from .baselines import bar_id, real_excerpts
        from .features import score_features
        from .rwr import decode
        from .style import StyleClassifier

        excerpts = real_excerpts(
            test,
            int(eval_cfg["reference_excerpts"]),
            int(length),
            int(eval_cfg["seed"]),
            bar_id=bar_id(tokenizer),
        )
        self.features = [score_features(decode(tokenizer, s)) for s in excerpts]
        self.classifier = StyleClassifier.load(classifier) if classifier else None

    def measure(self, scores, corpus: str) -> dict[str, float]:
        from .evaluate import music_measures

        row, _, _ = music_measures(scores, self.features, self.classifier, corpus)
        return {k: row[k] for k in MUSIC_METRICS}


def measure(
    tokenizer, samples, reference, copy_n: int, music: MusicReference | None = None, corpus=""
) -> dict[str, float]:
    """The curve's metrics of one sample set (means over samples for per-sample metrics;
    with ``music``, feature fidelity and style share)."""
    from .evaluate import evaluate_set
    from .metrics import describe
    from .rwr import decode

    scores = [decode(tokenizer, s) for s in samples]
    set_metrics, per_sample = evaluate_set(tokenizer, samples, 0, reference, copy_n, scores)
    out = dict(set_metrics)
    for name in CURVE_METRICS:
        if name not in out:
            out[name] = describe([r[name] for r in per_sample])[0]
    if music is not None:
        out.update(music.measure(scores, corpus))
    return out


class _Point:
    """What every method of one (corpus, k, draw) shares: data, reference and the output."""

    def __init__(
        self, *, tokenizer_json, shards, split, corpus, k, draw, cfg, eval_cfg, length, classifier
    ):
        from .evaluate import build_reference
        from .tokenize import corpus_tokens, load_tokenizer

        self.tokenizer_json = tokenizer_json
        self.tokenizer = load_tokenizer(tokenizer_json)
        self.corpus, self.k, self.draw = corpus, k, draw
        self.copy_n = int(eval_cfg["copy_n"])
        self.bits_tokens = eval_cfg.get("bits_tokens")
        groups = read_groups(split)
        ids = subset(groups, k, cfg["seed"], draw)
        self.skipped = ids is None
        self.pieces = len(groups) if k == 0 else k
        self.rows: list[dict] = []
        if self.skipped:
            log.info("%s: %d training pieces, fewer than k=%d: skipped", corpus, len(groups), k)
            return
        by_id = _tokens_by_id(shards, set(ids))
        self.train = [by_id[f] for f in ids if f in by_id]
        group_of = {f: g for g, fs in groups.items() for f in fs}
        self.train_groups = [group_of[f] for f in ids if f in by_id]
        self.files = len(self.train)
        self.test = corpus_tokens(shards, [split], "test")
        self.reference = build_reference(self.tokenizer, self.test, self.train, self.copy_n, (3, 4))
        self.music = None
        if "reference_excerpts" in eval_cfg:
            self.music = MusicReference(self.tokenizer, self.test, eval_cfg, length, classifier)

    def bits(self, log_probs_fn) -> float:
        """Bits per token of ``log_probs_fn(piece)`` over the test pieces (at most
        ``evaluate.bits_tokens`` of their tokens, as in the evaluation)."""
        from .evaluate import heldout_bits

        return heldout_bits(log_probs_fn, self.test, self.bits_tokens).get(
            "bits_per_token", math.nan
        )

    def run(self, method, env, n: int, length: int, seed: int) -> None:
        """Adapt ``method`` (of the registry) on the subset, sample and measure it; a method
        that cannot be fitted on so few pieces gets its rows without values."""
        from .methods import CannotFit

        try:
            fitted = method.fit(self.train, env)
        except CannotFit as exc:
            log.warning("k=%d draw %d %s: %s", self.k, self.draw, method.name, exc)
            self.rows += _rows(
                self.corpus, method.name, self.k, self.draw, self.pieces, self.files, {}
            )
            return
        t1 = time.perf_counter()
        samples = fitted.sample(n, length, seed)
        t2 = time.perf_counter()
        bits = math.nan if fitted.log_probs is None else self.bits(fitted.log_probs)
        self.add(method.name, samples, fitted.adapt_seconds, t2 - t1, bits)

    def add(
        self, method: str, samples, adapt_s: float, gen_s: float, bits: float = math.nan
    ) -> None:
        values = measure(
            self.tokenizer, samples, self.reference, self.copy_n, self.music, self.corpus
        )
        tokens = sum(len(s) for s in samples)
        values["bits_per_token"] = bits
        values["adapt_seconds"] = adapt_s
        values["gen_tokens_per_second"] = tokens / max(gen_s, 1e-9)
        values["tokens"] = tokens
        self.rows += _rows(self.corpus, method, self.k, self.draw, self.pieces, self.files, values)
        log.info(
            "k=%d draw %d %s: js_trigram %.3f, adapt %.2f s",
            self.k,
            self.draw,
            method,
            values["js_trigram"],
            adapt_s,
        )

    def write(self, out_tsv: str) -> None:
        from .fileio import to_tsv, write_text_atomic

        text = to_tsv(self.rows) if self.rows else "\t".join(COLUMNS) + "\n"
        write_text_atomic(out_tsv, text)


def _tokens_by_id(shards: list[str], ids: set[str]) -> dict[str, np.ndarray]:
    """The token sequences of the files ``ids`` (every shard read once)."""
    from .tokenize import read_shard

    out = {}
    for path in shards:
        shard = read_shard(path)
        for i, fid in enumerate(shard.file_ids):
            if fid in ids:
                out[fid] = shard.sequence(i)
    return out


def run_point(
    *,
    tokenizer_json: str,
    shards: list[str],
    split: str,
    corpus: str,
    k: int,
    draw: int,
    cfg: dict,
    gen_cfg: dict,
    eval_cfg: dict,
    out_tsv: str,
    job: str = "point",
    embeddings: str | None = None,
    graph_cfg: dict | None = None,
    gcn_cfg: dict | None = None,
    model_dir: str | None = None,
    finetune_cfg: dict | None = None,
    checkpoints: str | None = None,
    use_gpu: bool = False,
    threads: int = 1,
    base_shards: list[str] | None = None,
    base_splits: list[str] | None = None,
    classifier: str | None = None,
) -> list[dict]:
    """Adapt the methods of few-shot job ``job`` on the k-piece subset of draw ``draw``;
    measured rows to ``out_tsv``.

    The methods are those of the registry (:func:`tokentransfer.methods.fewshot_methods`)
    whose job is ``job`` among ``cfg["methods"]`` and the walks of ``cfg["variants"]``, in
    registry order: ``point`` the chains and walks (the walks' graph networks need
    ``embeddings``, ``graph_cfg`` and ``gcn_cfg``), ``finetune`` the fine-tuned transformer,
    ``transfer`` the transformer fused, given graph-network embeddings or partly fine-tuned
    (``graph_cfg``, ``gcn_cfg`` and the base corpus's ``base_shards`` and ``base_splits``).
    The transformer jobs read ``model_dir``, run on ``threads`` torch threads, and train for
    ``cfg["finetune_steps"]`` steps with ``finetune_cfg``'s batch, learning rate and warm-up,
    resumable from checkpoints in the folder ``checkpoints``. Reads ``cfg`` keys ``seed``,
    ``methods``, ``variants`` and ``finetune_steps``; ``gen_cfg`` keys ``samples``, ``length``,
    ``seed`` (and the walk's); ``eval_cfg`` keys ``copy_n``, ``markov_discount``,
    ``temperature``, ``top_k``, ``bits_tokens`` and, for feature fidelity and style share
    (with the style ``classifier``'s JSON), ``reference_excerpts`` and ``seed``.
    """
    from .methods import Env, fewshot_methods
    from .model import set_threads

    p = _Point(
        tokenizer_json=tokenizer_json,
        shards=shards,
        split=split,
        corpus=corpus,
        k=k,
        draw=draw,
        cfg=cfg,
        eval_cfg=eval_cfg,
        length=int(gen_cfg["length"]),
        classifier=classifier,
    )
    methods = fewshot_methods(cfg["methods"], cfg.get("variants", ()), job)
    if not p.skipped and methods:
        if job != "point":
            set_threads(int(threads))
        env = Env(
            p.tokenizer,
            tokenizer_json,
            gen=gen_cfg,
            eval=eval_cfg,
            model_dir=model_dir,
            use_gpu=use_gpu,
            seed=cfg["seed"] + draw,
            groups=p.train_groups,
            budget=_finetune_spec(cfg, finetune_cfg, draw) if finetune_cfg else None,
            checkpoints=checkpoints,
            base_shards=list(base_shards or []),
            base_splits=list(base_splits or []),
            graph=graph_cfg or {},
            gcn=gcn_cfg or {},
            embeddings=embeddings,
        )
        n, length, seed = int(gen_cfg["samples"]), int(gen_cfg["length"]), int(gen_cfg["seed"])
        for method in methods:
            p.run(method, env, n, length, seed)
    p.write(out_tsv)
    return p.rows


def _finetune_spec(cfg: dict, ft: dict, draw: int):
    """The training budget of every gradient adapter of a point: ``fewshot.finetune_steps``
    steps with the ``finetune`` section's batch, learning rate and warm-up."""
    from .model import TrainSpec

    steps = int(cfg["finetune_steps"])
    return TrainSpec(
        steps=steps,
        batch=ft["batch"],
        lr=ft["lr"],
        warmup=min(ft["warmup"], max(steps // 10, 1)),
        seed=cfg["seed"] + draw,
        checkpoint_every=max(steps // 4, 1),
    )


def run_curve(
    *,
    points: list[str],
    out_tsv: str,
    out_png: str,
    corpus: str,
    transformer_h5: str | None = None,
    **reference,
) -> list[dict]:
    """Gather the points of one target into ``curve.tsv`` and draw the curves; with
    ``transformer_h5`` (the unadapted transformer's samples) add its reference line, measured
    by :func:`reference_rows` (``reference``: its ``tokenizer_json``, ``shards``, ``split``,
    ``copy_n``)."""
    from .fileio import read_tsv, to_tsv, write_text_atomic

    rows = [r for path in points for r in read_tsv(path)]
    if transformer_h5:
        rows += reference_rows(tokens_h5=transformer_h5, corpus=corpus, **reference)
    rows.sort(key=lambda r: (r["method"], _k_key(r["k"]), int(r["draw"]), r["metric"]))
    write_text_atomic(out_tsv, to_tsv(rows) if rows else "\t".join(COLUMNS) + "\n")
    curve_figure(rows, out_png, corpus)
    return rows


def _k_key(k) -> int:
    return int(k) if str(k).lstrip("-").isdigit() else 10**9


def reference_rows(
    *,
    tokenizer_json: str,
    shards: list[str],
    split: str,
    tokens_h5: str,
    corpus: str,
    copy_n: int,
    eval_cfg: dict | None = None,
    length: int | None = None,
    classifier: str | None = None,
) -> list[dict]:
    """The unadapted transformer's samples measured like the points (copying against all
    training pieces; with ``eval_cfg``'s ``reference_excerpts`` and ``seed``, ``length`` and the
    style ``classifier``, feature fidelity and style share), as rows with k = -1 (a reference
    line, not a point of the curve)."""
    from .evaluate import build_reference
    from .samples import read_samples
    from .tokenize import corpus_tokens, load_tokenizer

    tokenizer = load_tokenizer(tokenizer_json)
    test = corpus_tokens(shards, [split], "test")
    train = corpus_tokens(shards, [split], "train")
    samples, _ = read_samples(tokens_h5)
    reference = build_reference(tokenizer, test, train, copy_n, (3, 4))
    music = None
    if eval_cfg and "reference_excerpts" in eval_cfg and length:
        music = MusicReference(tokenizer, test, eval_cfg, length, classifier)
    values = measure(tokenizer, samples, reference, copy_n, music, corpus)
    info = Path(tokens_h5).with_name("generation.json")
    if info.is_file():  # the evaluation's bits per token of the unadapted transformer
        values["bits_per_token"] = json.loads(info.read_text()).get("bits_per_token", math.nan)
    return [
        {**r, "k": -1, "pieces": 0, "files": 0}
        for r in _rows(corpus, "transformer", -1, 0, 0, 0, values)
        if r["metric"] in (*MUSIC_METRICS, *CURVE_METRICS, *LIKELIHOOD_METRICS)
    ]


#: metrics drawn, with labels
FIGURE_METRICS = (
    ("feature_fidelity", "feature fidelity (1: like the test pieces)"),
    ("style_share", "share classified as the target style"),
    ("bits_per_token", "bits per token on test pieces"),
    ("js_trigram", "trigram JS divergence to test"),
    ("empty_beat_rate", "empty-beat rate"),
    ("copy_rate", "copy rate from the subset"),
)


def curve_figure(rows: list[dict], path: str | os.PathLike, title: str = "") -> None:
    """Metric against k (log axis), one line per method (mean over draws, band: min to max);
    the unadapted transformer as a dashed horizontal line."""
    from .figures import pyplot, save_png

    plt = pyplot()
    fig, axes = plt.subplots(2, 3, figsize=(14, 7.5), squeeze=False)
    methods = sorted({r["method"] for r in rows if _k_key(r["k"]) >= 0})
    colours = {m: f"C{i % 10}" for i, m in enumerate(methods)}
    for ax, (metric, label) in zip(axes.ravel(), FIGURE_METRICS, strict=True):
        for method in methods:
            by_k: dict[int, list[float]] = {}
            for r in rows:
                if r["method"] == method and r["metric"] == metric and _k_key(r["k"]) >= 0:
                    v = float(r["value"]) if r["value"] not in ("", None) else math.nan
                    if math.isfinite(v):
                        by_k.setdefault(int(r["pieces"]), []).append(v)
            if not by_k:
                continue
            ks = sorted(by_k)
            mean = [float(np.mean(by_k[k])) for k in ks]
            ax.plot(ks, mean, marker="o", markersize=3, label=method, color=colours[method])
            lo = [min(by_k[k]) for k in ks]
            hi = [max(by_k[k]) for k in ks]
            ax.fill_between(ks, lo, hi, alpha=0.15, color=colours[method])
        for r in rows:
            line = r["method"] == "transformer" and r["metric"] == metric and _k_key(r["k"]) < 0
            if line and r["value"] not in ("", None) and math.isfinite(float(r["value"])):
                ax.axhline(float(r["value"]), color="black", linestyle="--", linewidth=1)
        ax.set_xscale("log")
        ticks = sorted({int(r["pieces"]) for r in rows if _k_key(r["k"]) >= 0})
        if ticks:
            ax.set_xticks(ticks, [str(t) for t in ticks])
            ax.minorticks_off()
        ax.set_xlabel("training pieces k")
        ax.set_title(label, fontsize=9)
    axes[0, 0].legend(fontsize=7)
    fig.suptitle(f"{title}: few-shot adaptation (dashed: the transformer unadapted)", fontsize=10)
    fig.tight_layout()
    save_png(fig, path)
    plt.close(fig)
