"""The jobs of ``rules/fewshot.smk`` (the few-shot curve): ``fewshot_point``,
``fewshot_finetune`` and ``fewshot_transfer`` (one point: the registry's methods of one job
adapted on one subset of a target and sampled, their sample sets kept as MIDI;
:func:`run_fewshot_adapt`) and ``fewshot_curve`` (a target's points measured against its test
pieces and the style classifier, gathered into ``curve.tsv`` and ``curve.png``;
:func:`run_fewshot_curve`). Adaptation and sampling never read the classifier, so that a corpus
added to a run reruns only the other targets' curve jobs, not their adaptation.

The subsets, measures, rows and figure are :mod:`tokentransfer.fewshot`'s; these functions
read the inputs, call them and write the outputs.
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path

import numpy as np

from ..bars import SampleLength, tokens_per_bar
from ..evaluate import build_reference, heldout_bits
from ..fewshot import (
    COLUMNS,
    CURVE_METRICS,
    LIKELIHOOD_METRICS,
    MUSIC_METRICS,
    MusicReference,
    curve_figure,
    k_key,
    measure,
    point_rows,
    read_groups,
    subset,
)
from ..fileio import read_tsv, to_tsv, write_json, write_text_atomic
from ..samples import read_samples, write_samples
from ..tokenize import corpus_tokens, load_tokenizer, read_shard

log = logging.getLogger(__name__)


class _Point:
    """What every method of one (corpus, k, draw) shares when it is adapted and sampled: the
    subset's pieces, the test pieces (bits per token) and the sample sets written."""

    def __init__(self, *, tokenizer_json, shards, split, corpus, k, draw, cfg, eval_cfg, out_dir):
        self.tokenizer_json = tokenizer_json
        self.tokenizer = load_tokenizer(tokenizer_json)
        self.corpus, self.k, self.draw = corpus, k, draw
        self.bits_tokens = eval_cfg.get("bits_tokens")
        self.out = Path(out_dir)
        groups = read_groups(split)
        ids = subset(groups, k, cfg["seed"], draw)
        self.skipped = ids is None
        self.pieces = len(groups) if k == 0 else k
        self.record: dict = {"corpus": corpus, "k": k, "draw": draw, "pieces": self.pieces}
        self.record.update(skipped=self.skipped, file_ids=[], methods={})
        if self.skipped:
            log.info("%s: %d training pieces, fewer than k=%d: skipped", corpus, len(groups), k)
            return
        by_id = _tokens_by_id(shards, set(ids))
        self.record["file_ids"] = [f for f in ids if f in by_id]
        self.train = [by_id[f] for f in self.record["file_ids"]]
        group_of = {f: g for g, fs in groups.items() for f in fs}
        self.train_groups = [group_of[f] for f in self.record["file_ids"]]
        self.test = corpus_tokens(shards, [split], "test")

    def bits(self, log_probs_fn) -> float:
        """Bits per token of ``log_probs_fn(piece)`` over the test pieces (at most
        ``evaluate.bits_tokens`` of their tokens, as in the evaluation)."""
        return heldout_bits(log_probs_fn, self.test, self.bits_tokens).get(
            "bits_per_token", math.nan
        )

    def run(self, method, env, n: int, length: SampleLength, seed: int) -> None:
        """Adapt ``method`` (of the registry) on the subset and write ``n`` samples of
        ``length`` as a sample set ``<out_dir>/<method>/`` (its record: adaptation and sampling
        seconds, bits per token); a method that cannot be fitted on so few pieces is recorded
        without a sample set."""
        from ..baselines import bar_id
        from ..methods import CannotFit

        try:
            fitted = method.fit(self.train, env)
        except CannotFit as exc:
            log.warning("k=%d draw %d %s: %s", self.k, self.draw, method.name, exc)
            self.record["methods"][method.name] = {"fitted": False, "reason": str(exc)}
            return
        bar = bar_id(self.tokenizer)
        per_bar = tokens_per_bar(self.train, bar)
        t1 = time.perf_counter()
        samples, drawn = length.draw(fitted.sample, n, seed, bar_id=bar, per_bar=per_bar)
        gen_s = time.perf_counter() - t1
        bits = math.nan if fitted.log_probs is None else self.bits(fitted.log_probs)
        extra = {"method": method.name, "k": self.k, "draw": self.draw, "length": drawn}
        extra.update(fitted.record)  # what the method says of itself (e.g. a datastore's MB)
        extra.update(adapt_seconds=round(fitted.adapt_seconds, 4), bits_per_token=bits)
        info = write_samples(
            self.tokenizer,
            self.tokenizer_json,
            samples,
            self.out / method.name,
            None,
            gen_s,
            extra,
            fitted.adapt_seconds,
        )
        self.record["methods"][method.name] = {"fitted": True, "tokens": info["tokens_generated"]}
        log.info(
            "k=%d draw %d %s: adapt %.2f s", self.k, self.draw, method.name, extra["adapt_seconds"]
        )

    def write(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        write_json(self.record, self.out / POINT_RECORD)


#: the record of a point's sample sets (in its folder, beside one folder per method)
POINT_RECORD = "point.json"


class _Scorer:
    """What measuring one target's points shares: the tokenizer, the test pieces and the music
    reference (the test pieces' excerpts and the style classifier)."""

    def __init__(self, *, tokenizer_json, shards, split, eval_cfg, gen_cfg, classifier=None):
        self.tokenizer = load_tokenizer(tokenizer_json)
        self.shards = list(shards)
        self.copy_n = int(eval_cfg["copy_n"])
        self.test = corpus_tokens(self.shards, [split], "test")
        self.music = None
        if "reference_excerpts" in eval_cfg:
            length = SampleLength.from_section(gen_cfg)
            self.music = MusicReference(self.tokenizer, self.test, eval_cfg, length, classifier)

    def point(self, samples_dir: str) -> list[dict]:
        """The curve's rows of one point's sample sets (written by :func:`run_fewshot_adapt`),
        measured against the test pieces and, for copying, the subset it was adapted on."""
        record = json.loads((Path(samples_dir) / POINT_RECORD).read_text())
        if record["skipped"]:
            return []
        corpus, k, draw, pieces = record["corpus"], record["k"], record["draw"], record["pieces"]
        by_id = _tokens_by_id(self.shards, set(record["file_ids"]))
        train = [by_id[f] for f in record["file_ids"]]
        reference = build_reference(self.tokenizer, self.test, train, self.copy_n, (3, 4))
        rows: list[dict] = []
        for name, rec in record["methods"].items():
            values: dict = {}
            if rec["fitted"]:
                folder = Path(samples_dir) / name
                samples, _ = read_samples(folder / "tokens.h5")
                info = json.loads((folder / "generation.json").read_text())
                values = measure(
                    self.tokenizer, samples, reference, self.copy_n, self.music, corpus
                )
                values["bits_per_token"] = info["bits_per_token"]
                values["adapt_seconds"] = info["adapt_seconds"]
                values["gen_tokens_per_second"] = info["tokens_per_second"]
                values["tokens"] = info["tokens_generated"]
            rows += point_rows(corpus, name, k, draw, pieces, len(train), values)
        return rows


def run_fewshot_score(*, samples_dir: str, out_tsv: str, **scoring) -> list[dict]:
    """Measure one point's sample sets (written by :func:`run_fewshot_adapt`) against the
    target's test pieces and the subset it was adapted on: the curve's rows to ``out_tsv``.
    ``scoring``: the keywords of the scorer, ``tokenizer_json``, ``shards``, ``split``,
    ``eval_cfg`` (``copy_n`` and, for feature fidelity and style share with the style
    ``classifier``, ``reference_excerpts`` and ``seed``) and ``gen_cfg`` (``length`` and
    ``bars``: the reference excerpts' length)."""
    rows = _Scorer(**scoring).point(samples_dir)
    write_text_atomic(out_tsv, to_tsv(rows) if rows else "\t".join(COLUMNS) + "\n")
    return rows


def _tokens_by_id(shards: list[str], ids: set[str]) -> dict[str, np.ndarray]:
    """The token sequences of the files ``ids`` (every shard read once)."""
    out = {}
    for path in shards:
        shard = read_shard(path)
        for i, fid in enumerate(shard.file_ids):
            if fid in ids:
                out[fid] = shard.sequence(i)
    return out


def run_fewshot_adapt(
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
    out_dir: str,
    sampling_cfg: dict | None = None,
    job: str = "point",
    embeddings: str | None = None,
    graph_cfg: dict | None = None,
    linkpred_cfg: dict | None = None,
    model_dir: str | None = None,
    finetune_cfg: dict | None = None,
    checkpoints: str | None = None,
    use_gpu: bool = False,
    threads: int = 1,
    base_shards: list[str] | None = None,
    base_splits: list[str] | None = None,
) -> dict:
    """Adapt the methods of few-shot job ``job`` on the k-piece subset of draw ``draw`` and
    sample them: one sample set per method in ``out_dir`` (MIDI, tokens, record), and the
    point's record ``out_dir/point.json`` (the subset's files, which methods could be fitted),
    which :func:`run_fewshot_score` measures.

    The methods are those of the registry (:func:`tokentransfer.methods.fewshot_methods`)
    whose job is ``job`` among ``cfg["methods"]`` and the walks of ``cfg["variants"]``, in
    registry order: ``point`` the chains and walks (the walks' graph networks need
    ``embeddings``, ``graph_cfg`` and ``linkpred_cfg``), ``finetune`` the fine-tuned transformer,
    ``transfer`` the transformer fused, given graph-network embeddings or partly fine-tuned
    (``graph_cfg``, ``linkpred_cfg`` and the base corpus's ``base_shards`` and ``base_splits``).
    The transformer jobs read ``model_dir``, run on ``threads`` torch threads, and train for
    ``cfg["finetune_steps"]`` steps with ``finetune_cfg``'s batch, learning rate and warm-up,
    resumable from checkpoints in the folder ``checkpoints``. Reads ``cfg`` keys ``seed``,
    ``methods``, ``variants`` and ``finetune_steps``; ``gen_cfg`` keys ``samples``, ``length``,
    ``bars``, ``seed`` (and the walk's); ``sampling_cfg`` keys ``markov_discount``,
    ``temperature`` and ``top_k``; ``eval_cfg`` keys ``copy_n``, ``bits_tokens`` and ``knn``.
    Never reads the style classifier or another corpus: adding a target to a run does not rerun
    it.
    """
    from ..methods import Env, fewshot_methods
    from ..model import set_threads

    p = _Point(
        tokenizer_json=tokenizer_json,
        shards=shards,
        split=split,
        corpus=corpus,
        k=k,
        draw=draw,
        cfg=cfg,
        eval_cfg=eval_cfg,
        out_dir=out_dir,
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
            sampling=dict(sampling_cfg or {}),
            model_dir=model_dir,
            use_gpu=use_gpu,
            seed=cfg["seed"] + draw,
            groups=p.train_groups,
            budget=_finetune_spec(cfg, finetune_cfg, draw) if finetune_cfg else None,
            checkpoints=checkpoints,
            base_shards=list(base_shards or []),
            base_splits=list(base_splits or []),
            graph=graph_cfg or {},
            linkpred=linkpred_cfg or {},
            embeddings=embeddings,
        )
        n, seed = int(gen_cfg["samples"]), int(gen_cfg["seed"])
        for method in methods:
            p.run(method, env, n, SampleLength.from_section(gen_cfg), seed)
    p.write()
    return p.record


def run_fewshot_point(
    *, out_tsv: str, classifier: str | None = None, samples_dir: str | None = None, **adapt
) -> list[dict]:
    """One point adapted, sampled and measured in one call (:func:`run_fewshot_adapt` into
    ``samples_dir``, default ``out_tsv`` without its suffix, then :func:`run_fewshot_score`);
    ``adapt``: the keywords of :func:`run_fewshot_adapt`."""
    folder = samples_dir or str(Path(out_tsv).with_suffix(""))
    run_fewshot_adapt(out_dir=folder, **adapt)
    keep = ("tokenizer_json", "shards", "split")
    return run_fewshot_score(
        **{key: adapt[key] for key in keep},
        samples_dir=folder,
        eval_cfg=adapt["eval_cfg"],
        gen_cfg=adapt["gen_cfg"],
        out_tsv=out_tsv,
        classifier=classifier,
    )


def _finetune_spec(cfg: dict, ft: dict, draw: int):
    """The training budget of every gradient adapter of a point: ``fewshot.finetune_steps``
    steps with the ``finetune`` section's batch, learning rate and warm-up."""
    from ..model import TrainSpec

    steps = int(cfg["finetune_steps"])
    return TrainSpec(
        steps=steps,
        batch=ft["batch"],
        lr=ft["lr"],
        warmup=min(ft["warmup"], max(steps // 10, 1)),
        seed=cfg["seed"] + draw,
        checkpoint_every=max(steps // 4, 1),
    )


def run_fewshot_curve(
    *,
    points: list[str],
    out_tsv: str,
    out_png: str,
    corpus: str,
    transformer_h5: str | None = None,
    tokenizer_json: str,
    shards: list[str],
    split: str,
    copy_n: int,
    eval_cfg: dict | None = None,
    length: int | None = None,
    bars: int = 0,
    classifier: str | None = None,
) -> list[dict]:
    """Measure every point of one target (``points``: the sample folders of
    :func:`run_fewshot_adapt`) against its test pieces and the style ``classifier``, gather
    them into ``curve.tsv`` and draw the curves; with ``transformer_h5`` (the unadapted
    transformer's samples) add its reference line, measured by :func:`reference_rows`.

    The scoring lives here, not in the points' jobs, so that the only few-shot job that reads
    the classifier is this one: adding a corpus to a run reruns one curve job per target, not
    their adaptation. ``eval_cfg``: ``reference_excerpts`` and ``seed`` (feature fidelity and
    style share); ``length`` and ``bars``: the samples' length (the reference excerpts')."""
    eval_cfg = {"copy_n": copy_n, **(eval_cfg or {})}
    gen_cfg = {"length": length or 0, "bars": bars}
    if not length and not bars:
        eval_cfg.pop("reference_excerpts", None)
    scorer = _Scorer(
        tokenizer_json=tokenizer_json,
        shards=shards,
        split=split,
        eval_cfg=eval_cfg,
        gen_cfg=gen_cfg,
        classifier=classifier,
    )
    rows = [r for path in points for r in scorer.point(path)]
    if transformer_h5:
        rows += reference_rows(
            tokens_h5=transformer_h5,
            corpus=corpus,
            tokenizer_json=tokenizer_json,
            shards=shards,
            split=split,
            copy_n=copy_n,
            eval_cfg=eval_cfg,
            length=length,
            bars=bars,
            classifier=classifier,
        )
    rows.sort(key=lambda r: (r["method"], k_key(r["k"]), int(r["draw"]), r["metric"]))
    write_text_atomic(out_tsv, to_tsv(rows) if rows else "\t".join(COLUMNS) + "\n")
    rows = read_tsv(out_tsv)  # as every reader of the curve sees it
    curve_figure(rows, out_png, corpus)
    return rows


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
    bars: int = 0,
) -> list[dict]:
    """The unadapted transformer's samples measured like the points (copying against all
    training pieces; with ``eval_cfg``'s ``reference_excerpts`` and ``seed``, ``length`` (and
    ``bars``: :class:`tokentransfer.bars.SampleLength`) and the style ``classifier``, feature
    fidelity and style share), as rows with k = -1 (a reference
    line, not a point of the curve)."""
    tokenizer = load_tokenizer(tokenizer_json)
    test = corpus_tokens(shards, [split], "test")
    train = corpus_tokens(shards, [split], "train")
    samples, _ = read_samples(tokens_h5)
    reference = build_reference(tokenizer, test, train, copy_n, (3, 4))
    music = None
    if eval_cfg and "reference_excerpts" in eval_cfg and length:
        music = MusicReference(tokenizer, test, eval_cfg, SampleLength(length, bars), classifier)
    values = measure(tokenizer, samples, reference, copy_n, music, corpus)
    info = Path(tokens_h5).with_name("generation.json")
    if info.is_file():  # the evaluation's bits per token of the unadapted transformer
        values["bits_per_token"] = json.loads(info.read_text()).get("bits_per_token", math.nan)
    return [
        {**r, "k": -1, "pieces": 0, "files": 0}
        for r in point_rows(corpus, "transformer", -1, 0, 0, 0, values)
        if r["metric"] in (*MUSIC_METRICS, *CURVE_METRICS, *LIKELIHOOD_METRICS)
    ]
