"""The few-shot curve: every method adapted on k pieces of a target style, k = 1, 2, 5, ...

The target's test pieces are fixed (its grouped split). From its training pieces, nested
subsets are drawn *by group* — a "piece" is a group, so the 12 transpositions of one song are
one piece and come together: draw d orders the training groups with a seeded shuffle, and the
subset of k pieces is the first k groups in that order (so the k=5 subset contains the k=2
subset of the same draw). ``k = 0`` in the config means all training pieces; a k larger than
the number of training pieces is skipped (recorded, no rows).

Each method adapts on the subset alone and produces ``generate.samples`` samples of
``generate.length`` tokens: n-gram chains (``markov1`` .. ``markov3``, smoothed so that they
can leave the subset's own transitions), the walk on the subset's successor counts
(``counts``), the biased walk of each ``fewshot.variants`` entry (graph network trained by link
prediction on the subset's graph, features from the pretrained model's embeddings of this
target), and ``finetuned`` (the pretrained transformer fine-tuned on the subset for
``fewshot.finetune_steps`` steps, in its own job). The unadapted transformer is a reference
line (the evaluation's ``transformer`` samples).

The pretrained transformer in the loop (issue 14; one job per point, :func:`run_point` with
``transfer``), each method adapted on the subset alone:

- ``fused_markov`` / ``fused_walk``: the unadapted transformer's logits plus lambda times the
  log-probabilities of the subset's smoothed order-2 chain / of the subset's counts walk, under
  the grammar (:mod:`tokentransfer.fusion`); lambda chosen from :data:`tokentransfer.fusion.LAMBDAS`
  on held-out groups of the subset (a single piece: its last fifth); no gradient step;
- ``transplant``: a graph network trained on the base corpus's graph and adapted on the
  subset's, its node embeddings put into the frozen transformer's input table through a ridge
  map fitted on the base (:mod:`tokentransfer.transplant`); its ``adapt_seconds`` are the
  per-target part (adapting the network on the subset, the map, the transplant), the base
  network, trained once per model, is logged apart;
- ``embed_ft`` / ``lora``: the input embedding table alone / LoRA adapters trained for
  ``fewshot.finetune_steps`` steps, the budget of ``finetuned``.

Every method with a next-token distribution also gets ``bits_per_token`` on the test pieces
(:mod:`tokentransfer.likelihood`; the chains and walks smoothed by its floor, the
``...c`` chains and every transformer under the grammar mask).

Rows of ``curve.tsv``: corpus, method, k, draw, pieces (groups), files, metric, value.
"""

from __future__ import annotations

import csv
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
COST_METRICS = ("adapt_seconds", "gen_tokens_per_second", "tokens")
COLUMNS = ("corpus", "method", "k", "draw", "pieces", "files", "metric", "value")
MARKOVS = ("markov1", "markov2", "markov3", "markov1c", "markov2c", "markov3c")
#: methods that adapt the pretrained transformer without fine-tuning all of it (issue 14)
TRANSFER = ("fused_markov", "fused_walk", "transplant", "embed_ft", "lora")
#: order of the chain of ``fused_markov``
FUSED_ORDER = 2


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


# --------------------------------------------------------------------------- methods


def _walk_config(gen_cfg: dict):
    from .rwr import WalkConfig

    return WalkConfig(**{k: gen_cfg[k] for k in WalkConfig.__dataclass_fields__ if k in gen_cfg})


def _walk(tokenizer, succ, gen_cfg: dict, h=None, vocab_ids=None, ctx=None):
    """``(walker, samples)``."""
    from .rwr import Walker

    walker = Walker(succ, tokenizer, h, vocab_ids, _walk_config(gen_cfg), ctx)
    return walker, walker.generate()


def graph_embeddings(
    seqs: list[np.ndarray], vocab: int, emb: dict, variant: str, graph_cfg: dict, gcn_cfg: dict
) -> tuple[np.ndarray, np.ndarray]:
    """Train the graph network of ``variant`` on the graph of ``seqs`` (seed: the first of
    ``gcn.seeds``, encoder: the first of ``gcn.encoders``); its node embeddings and ids."""
    from .graph import cooccurrence
    from .linkpred import (
        message_graph,
        raw_features,
        split_pairs,
        standardise,
        train_from_config,
        used_nodes,
        variant_pairs,
    )

    seed = gcn_cfg["seeds"][0]
    a = cooccurrence(seqs, vocab, graph_cfg["offset_weights"], graph_cfg["self_loops"])
    nodes = used_nodes(a)
    raw = raw_features(variant, nodes, emb, seed=seed)
    pairs = variant_pairs(variant, a, nodes, raw)
    split = split_pairs(pairs, len(nodes), gcn_cfg["val_fraction"], gcn_cfg["test_fraction"], seed)
    graph = message_graph(split, len(nodes), self_loops=True)
    encoder = gcn_cfg["encoders"][0]
    _, _, best = train_from_config(graph, standardise(raw), split, gcn_cfg, encoder, seed)
    return best["embeddings"], nodes


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
        for m in (*CURVE_METRICS, *LIKELIHOOD_METRICS, *COST_METRICS)
    ]


def measure(tokenizer, samples, reference, copy_n: int) -> dict[str, float]:
    """The curve's metrics of one sample set (means over samples for per-sample metrics)."""
    from .evaluate import evaluate_set
    from .metrics import describe

    set_metrics, per_sample = evaluate_set(tokenizer, samples, 0, reference, copy_n)
    out = dict(set_metrics)
    for name in CURVE_METRICS:
        if name not in out:
            out[name] = describe([r[name] for r in per_sample])[0]
    return out


class _Point:
    """What every method of one (corpus, k, draw) shares: data, reference and the output."""

    def __init__(self, *, tokenizer_json, shards, split, corpus, k, draw, cfg, gen_cfg, eval_cfg):
        from .evaluate import build_reference
        from .tokenize import load_tokenizer

        self.tokenizer_json = tokenizer_json
        self.tokenizer = load_tokenizer(tokenizer_json)
        self.corpus, self.k, self.draw = corpus, k, draw
        self.gen_cfg = gen_cfg
        self.copy_n = int(eval_cfg["copy_n"])
        groups = read_groups(split)
        ids = subset(groups, k, cfg["seed"], draw)
        self.skipped = ids is None
        self.pieces = len(groups) if k == 0 else k
        self.rows: list[dict] = []
        if self.skipped:
            log.info("%s: %d training pieces, fewer than k=%d: skipped", corpus, len(groups), k)
            return
        by_id = dict(zip(*_ids_and_tokens(shards), strict=True))  # every shard read once
        self.train = [by_id[f] for f in ids if f in by_id]
        group_of = {f: g for g, fs in groups.items() for f in fs}
        self.train_groups = [group_of[f] for f in ids if f in by_id]
        self.files = len(self.train)
        test_ids = sorted(f for fs in read_groups(split, "test").values() for f in fs)
        self.test = [by_id[f] for f in test_ids if f in by_id]

        self.reference = build_reference(self.tokenizer, self.test, self.train, self.copy_n, (3, 4))

    def bits(self, log_probs_fn) -> float:
        """Bits per token of ``log_probs_fn(piece)`` over the test pieces."""
        from .likelihood import corpus_bits

        return corpus_bits(log_probs_fn, self.test)["bits_per_token"]

    def add(
        self, method: str, samples, adapt_s: float, gen_s: float, bits: float = math.nan
    ) -> None:
        values = measure(self.tokenizer, samples, self.reference, self.copy_n)
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
        from .evaluate import to_tsv
        from .fileio import write_text_atomic

        text = to_tsv(self.rows) if self.rows else "\t".join(COLUMNS) + "\n"
        write_text_atomic(out_tsv, text)


def _ids_and_tokens(shards: list[str]) -> tuple[list[str], list[np.ndarray]]:
    from .tokenize import read_shard

    ids, seqs = [], []
    for path in shards:
        shard = read_shard(path)
        for i, fid in enumerate(shard.file_ids):
            ids.append(fid)
            seqs.append(shard.sequence(i))
    return ids, seqs


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
    embeddings: str | None = None,
    graph_cfg: dict | None = None,
    gcn_cfg: dict | None = None,
    finetune: dict | None = None,
    transfer: dict | None = None,
) -> list[dict]:
    """Adapt the methods on the k-piece subset of draw ``draw``; measured rows to ``out_tsv``.

    Without ``finetune`` and ``transfer``: every cheap method (the chains of
    ``cfg["methods"]``, the counts walk, the walks of ``cfg["variants"]``, whose graph networks
    need ``embeddings``, ``graph_cfg`` and ``gcn_cfg``). With ``finetune`` (keys ``model_dir``,
    ``cfg``: the ``finetune`` config section, ``checkpoint``, ``use_gpu``, ``threads``): the
    transformer fine-tuned on the subset. With ``transfer`` (the same keys, ``checkpoint`` a
    folder, plus ``base_shards`` and ``base_splits``: the base corpus, whose training pieces the
    transplant's graph network and map are fitted on; ``graph_cfg`` and ``gcn_cfg`` needed): the
    methods of :data:`TRANSFER` in ``cfg["methods"]``.
    """
    p = _Point(
        tokenizer_json=tokenizer_json,
        shards=shards,
        split=split,
        corpus=corpus,
        k=k,
        draw=draw,
        cfg=cfg,
        gen_cfg=gen_cfg,
        eval_cfg=eval_cfg,
    )
    if p.skipped:
        pass
    elif transfer is not None:
        _transfer(p, cfg, gen_cfg, eval_cfg, transfer, graph_cfg or {}, gcn_cfg or {})
    elif finetune is None:
        _cheap_methods(p, cfg, gen_cfg, eval_cfg, embeddings, graph_cfg or {}, gcn_cfg or {})
    else:
        _finetuned(p, cfg, gen_cfg, eval_cfg, finetune)
    p.write(out_tsv)
    return p.rows


def _cheap_methods(p: _Point, cfg, gen_cfg, eval_cfg, embeddings, graph_cfg, gcn_cfg) -> None:
    from .baselines import NgramModel
    from .embed import read_embeddings
    from .grammar import Grammar
    from .graph import context_successors, successors
    from .likelihood import chain_log_probs, walk_log_probs

    n, length, seed = int(gen_cfg["samples"]), int(gen_cfg["length"]), int(gen_cfg["seed"])
    vocab = len(p.tokenizer)
    for method in cfg["methods"]:
        if method not in MARKOVS:
            continue
        t0 = time.perf_counter()
        chain = NgramModel(int(method[6]), vocab, discount=eval_cfg["markov_discount"])
        chain.fit(p.train)
        t1 = time.perf_counter()
        grammar = Grammar(p.tokenizer) if method.endswith("c") else None
        samples = chain.sample(n, length, seed, grammar=grammar)
        t2 = time.perf_counter()
        bits = p.bits(lambda s, c=chain, g=grammar: chain_log_probs(c, s, g))
        p.add(method, samples, t1 - t0, t2 - t1, bits)
    t0 = time.perf_counter()
    succ = successors(p.train, vocab)
    ctx = context_successors(p.train, p.tokenizer) if gen_cfg["context"] != "none" else None
    t1 = time.perf_counter()
    if "counts" in cfg["methods"]:
        walker, samples = _walk(p.tokenizer, succ, gen_cfg, ctx=ctx)
        t2 = time.perf_counter()
        p.add("counts", samples, t1 - t0, t2 - t1, p.bits(lambda s: walk_log_probs(walker, s)))
    emb = read_embeddings(embeddings) if cfg["variants"] else None
    for variant in cfg["variants"]:
        t0 = time.perf_counter()
        try:
            h, nodes = graph_embeddings(p.train, vocab, emb, variant, graph_cfg, gcn_cfg)
        except ValueError as exc:  # a graph too small to split into train/val/test pairs
            log.warning("k=%d draw %d %s: no graph network (%s)", p.k, p.draw, variant, exc)
            p.rows += _rows(p.corpus, variant, p.k, p.draw, p.pieces, p.files, {})
            continue
        t1 = time.perf_counter()
        walker, samples = _walk(p.tokenizer, succ, gen_cfg, h, nodes, ctx)
        t2 = time.perf_counter()
        bits = p.bits(lambda s, w=walker: walk_log_probs(w, s))
        p.add(variant, samples, t1 - t0, t2 - t1, bits)


def _finetuned(p: _Point, cfg, gen_cfg, eval_cfg, finetune: dict) -> None:
    """The pretrained transformer fine-tuned on the subset (``fewshot.finetune_steps`` steps,
    resumable from its checkpoint after a kill), sampled and measured."""
    from .baselines import start_tokens, transformer_samples
    from .grammar import Grammar
    from .likelihood import transformer_log_probs
    from .model import WindowSampler, context_length, device_for, load_model
    from .model import special_ids as specials
    from .model import train as train_model
    from .stages import set_threads

    set_threads(int(finetune.get("threads", 1)))
    model, _ = load_model(finetune["model_dir"], p.tokenizer_json)
    device = device_for(bool(finetune.get("use_gpu")))
    special = specials(p.tokenizer)
    spec = _finetune_spec(cfg, finetune["cfg"], p.draw)
    checkpoint = Path(finetune["checkpoint"])
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    sampler = WindowSampler(p.train, special, context_length(model), spec.seed)
    stats = train_model(model, sampler, spec, checkpoint=checkpoint, device=device)
    t1 = time.perf_counter()
    samples = transformer_samples(
        model,
        int(gen_cfg["samples"]),
        int(gen_cfg["length"]),
        int(gen_cfg["seed"]),
        start_tokens(p.tokenizer),
        temperature=eval_cfg["temperature"],
        top_k=eval_cfg["top_k"],
        device=device,
        banned=sorted(special.values()),
        grammar=Grammar(p.tokenizer),
    )
    t2 = time.perf_counter()
    g, bos = Grammar(p.tokenizer), special["bos"]
    bits = p.bits(lambda s: transformer_log_probs(model, s, bos, g))
    p.add("finetuned", samples, stats["seconds"], t2 - t1, bits)
    checkpoint.unlink(missing_ok=True)


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


def _transfer(p: _Point, cfg, gen_cfg, eval_cfg, transfer: dict, graph_cfg, gcn_cfg) -> None:
    """The methods of :data:`TRANSFER` in ``cfg["methods"]`` on the subset (see the module
    doc), each sampled like ``finetuned`` and scored in bits/token under the grammar."""
    import copy

    from .baselines import start_tokens, transformer_samples
    from .embed import token_table
    from .fusion import chain_target, choose_lambda, fused_samples, walk_target
    from .grammar import Grammar
    from .likelihood import fused_log_probs, transformer_log_probs
    from .model import device_for, load_model
    from .model import special_ids as specials
    from .stages import corpus_tokens, set_threads
    from .transplant import (
        embedding_finetune,
        fit_map,
        graph_embeddings,
        lora_finetune,
        transplant,
    )

    methods = [m for m in TRANSFER if m in cfg["methods"]]
    if not methods:
        return
    set_threads(int(transfer.get("threads", 1)))
    model0, _ = load_model(transfer["model_dir"], p.tokenizer_json)
    device = device_for(bool(transfer.get("use_gpu")))
    model0.to(device)
    special = specials(p.tokenizer)
    bos, banned = special["bos"], sorted(special.values())
    g = Grammar(p.tokenizer)
    n, length, seed = int(gen_cfg["samples"]), int(gen_cfg["length"]), int(gen_cfg["seed"])
    sample_kw = {
        "start": start_tokens(p.tokenizer),
        "temperature": eval_cfg["temperature"],
        "top_k": eval_cfg["top_k"],
        "device": device,
        "banned": banned,
    }
    folder = Path(transfer["checkpoint"])
    folder.mkdir(parents=True, exist_ok=True)
    spec = _finetune_spec(cfg, transfer["cfg"], p.draw)

    def sample_and_score(method, model, adapt_s):
        t1 = time.perf_counter()
        samples = transformer_samples(model, n, length, seed, grammar=g, **sample_kw)
        t2 = time.perf_counter()
        bits = p.bits(lambda s: transformer_log_probs(model, s, bos, g, device))
        p.add(method, samples, adapt_s, t2 - t1, bits)

    makers = {
        "fused_markov": lambda f: chain_target(
            f, FUSED_ORDER, g, discount=eval_cfg["markov_discount"]
        ),
        "fused_walk": lambda f: walk_target(f, p.tokenizer, _walk_config(gen_cfg)),
    }
    for method in methods:
        if method in makers:
            t0 = time.perf_counter()
            choice = choose_lambda(
                model0,
                makers[method],
                p.train,
                bos=bos,
                seed=cfg["seed"] + p.draw,
                groups=p.train_groups,
                device=device,
            )
            target = makers[method](p.train)
            t1 = time.perf_counter()
            samples = fused_samples(model0, target, choice.lam, n, length, seed, **sample_kw)
            t2 = time.perf_counter()
            bits = p.bits(
                lambda s, t=target, lam=choice.lam: fused_log_probs(
                    model0, t, s, [lam], bos, g, device
                )[0]
            )
            log.info("k=%d draw %d %s: lambda grid %s", p.k, p.draw, method, choice.rows())
            p.add(method, samples, t1 - t0, t2 - t1, bits)
        elif method == "transplant":
            base = corpus_tokens(transfer["base_shards"], transfer["base_splits"], "train")
            t0 = time.perf_counter()
            try:
                ge, _ = graph_embeddings(
                    base,
                    p.train,
                    token_table(model0),
                    offset_weights=tuple(graph_cfg["offset_weights"]),
                    encoder=gcn_cfg["encoders"][0],
                    hidden=gcn_cfg["hidden"],
                    layers=gcn_cfg["layers"],
                    dropout=gcn_cfg["dropout"],
                    lr=gcn_cfg["lr"],
                    epochs=gcn_cfg["epochs"],
                    patience=gcn_cfg["patience"],
                    target_epochs=gcn_cfg["epochs"],
                    val_fraction=gcn_cfg["val_fraction"],
                    test_fraction=gcn_cfg["test_fraction"],
                    seed=gcn_cfg["seeds"][0],
                )
            except ValueError as exc:  # a subset graph too small to split into pairs
                log.warning("k=%d draw %d transplant: no graph network (%s)", p.k, p.draw, exc)
                p.rows += _rows(p.corpus, method, p.k, p.draw, p.pieces, p.files, {})
                continue
            t1 = time.perf_counter()
            table = token_table(model0)
            model = copy.deepcopy(model0)
            emb_map = fit_map(ge.h_base, ge.base_ids, table)
            transplant(model, ge.h_target, ge.target_ids, emb_map)
            adapt = ge.target_seconds + time.perf_counter() - t1
            log.info(
                "transplant: base network %.1f s (val AUC %.3f), map R2 %.3f (held out %.3f), "
                "target val AUC %.3f -> %.3f, %d rows, %.1f s in all",
                ge.base_seconds,
                ge.base_val_auc,
                emb_map.r2,
                emb_map.r2_heldout,
                ge.target_val_auc_before,
                ge.target_val_auc,
                len(ge.target_ids),
                time.perf_counter() - t0,
            )
            sample_and_score(method, model, adapt)
        elif method == "embed_ft":
            model = copy.deepcopy(model0)
            stats = embedding_finetune(
                model, p.train, special, spec, folder / "embed_ft.pt", device=device
            )
            sample_and_score(method, model, stats["seconds"])
            (folder / "embed_ft.pt").unlink(missing_ok=True)
        elif method == "lora":
            model = copy.deepcopy(model0)
            peft_model, stats = lora_finetune(
                model, p.train, special, spec, folder / "lora.pt", device=device
            )
            sample_and_score(method, peft_model.merge_and_unload(), stats["seconds"])
            (folder / "lora.pt").unlink(missing_ok=True)


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
    from .evaluate import read_tsv, to_tsv
    from .fileio import write_text_atomic

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
    *, tokenizer_json: str, shards: list[str], split: str, tokens_h5: str, corpus: str, copy_n: int
) -> list[dict]:
    """The unadapted transformer's samples measured like the points (copying against all
    training pieces), as rows with k = -1 (a reference line, not a point of the curve)."""
    from .evaluate import build_reference
    from .stages import corpus_tokens, read_samples
    from .tokenize import load_tokenizer

    tokenizer = load_tokenizer(tokenizer_json)
    test = corpus_tokens(shards, [split], "test")
    train = corpus_tokens(shards, [split], "train")
    samples, _ = read_samples(tokens_h5)
    reference = build_reference(tokenizer, test, train, copy_n, (3, 4))
    values = measure(tokenizer, samples, reference, copy_n)
    return [
        {**r, "k": -1, "pieces": 0, "files": 0}
        for r in _rows(corpus, "transformer", -1, 0, 0, 0, values)
        if r["metric"] in CURVE_METRICS
    ]


#: metrics drawn, with labels
FIGURE_METRICS = (
    ("js_trigram", "trigram JS divergence to test"),
    ("js_4gram", "4-gram JS divergence to test"),
    ("pch_distance", "pitch-class distance to test"),
    ("groove_consistency", "groove consistency"),
    ("token_error_rate", "token error rate"),
    ("copy_rate", "copy rate from the subset"),
)


def curve_figure(rows: list[dict], path: str | os.PathLike, title: str = "") -> None:
    """Metric against k (log axis), one line per method (mean over draws, band: min to max);
    the unadapted transformer as a dashed horizontal line."""
    from .figures import _pyplot, _save

    plt = _pyplot()
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
    _save(fig, path)
    plt.close(fig)
