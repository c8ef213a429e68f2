"""The registry of generation methods: one home for what a method is and how it runs.

A method is a :class:`Method` registered under its name (:func:`register`). It says what it is
(``kind``: ``graph`` a walk, ``baseline`` a generator, ``reference`` real pieces), where its
evaluation samples come from (``folder``: ``generated`` by rule ``generate`` for the walks,
``baselines`` by rule ``baseline`` for the rest), what its job needs besides the target's
tokens (``model``: the pretrained or the fine-tuned transformer; ``base``: the base corpus),
and whether the few-shot curve adapts it on k pieces (``fewshot``: the job that does,
``point``, ``finetune`` or ``transfer``). :meth:`Method.fit` adapts it on a set of pieces
(token sequences) and returns a :class:`Fitted`: ``sample(n, length, seed)`` under the grammar
mask where the method has one, and ``log_probs(seq)`` (base-2 log-probability of each token
of a piece but the first) where the method defines a next-token distribution, for bits per
token.

Everything that enumerates or branches on methods reads this registry: the evaluation
(:func:`tokentransfer.jobs.evaluate.run_baseline`, :func:`tokentransfer.evaluate.method_kind`),
the few-shot curve (:func:`tokentransfer.jobs.fewshot.run_fewshot_point` loops over
:func:`fewshot_methods`), the rules' input functions and wildcard constraints
(``rules/common.smk``), and the config's lists of method and variant names (checked against
:func:`allowed_names` when the config is loaded). A new method is one new class registered here
(or anywhere before the job runs) plus its tests.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property, partial
from pathlib import Path
from typing import Any

import numpy as np

from .rwr import WalkConfig
from .variants import VARIANTS

log = logging.getLogger(__name__)

#: the few-shot jobs, in order, and the suffix of each one's point file
FEWSHOT_JOBS = {"point": "", "finetune": "_finetuned", "transfer": "_transfer"}


class CannotFit(ValueError):
    """The pieces are too few for the method (a graph too small to split into pairs): the
    few-shot curve records the point without values."""


@dataclass
class Env:
    """What a method is adapted and sampled with: one job's tokenizer, settings and files.

    ``gen``: the ``generate`` keys the job reads (``samples``, ``length``, ``seed`` and, for
    the walks, those of :class:`tokentransfer.rwr.WalkConfig`); ``sampling``: the ``sampling``
    keys (``markov_discount`` of the chains; ``temperature`` and ``top_k`` of the
    transformers); ``eval``: the ``evaluate`` keys (``bits_tokens``, ``knn``); ``model_dir``: the
    transformer folder (evaluation: the pretrained one, or the fine-tuned one for
    ``finetuned``; few-shot: the pretrained one); ``seed``: seeds an adaptation's own draws
    (few-shot: ``fewshot.seed + draw``); ``groups``: the fitting pieces' groups; ``budget``: the
    :class:`tokentransfer.model.TrainSpec` of the gradient adapters (few-shot; without one the
    ``finetuned`` model folder is already adapted, by rule ``finetune``); ``checkpoints``: a
    folder for their resumable checkpoints; ``base_shards`` / ``base_splits``: the base corpus;
    ``graph`` / ``linkpred``: those sections (graph networks); ``embeddings``: the pretrained
    model's embedding cache of the target (the walks' graph networks).
    """

    tokenizer: Any
    tokenizer_json: str
    gen: dict
    eval: dict = field(default_factory=dict)
    sampling: dict = field(default_factory=dict)
    model_dir: str | None = None
    use_gpu: bool = False
    seed: int = 0
    groups: list[str] | None = None
    budget: Any = None
    checkpoints: str | None = None
    base_shards: list[str] = field(default_factory=list)
    base_splits: list[str] = field(default_factory=list)
    graph: dict = field(default_factory=dict)
    linkpred: dict = field(default_factory=dict)
    embeddings: str | None = None

    @cached_property
    def grammar(self):
        from .grammar import Grammar

        return Grammar(self.tokenizer)

    @cached_property
    def special(self) -> dict[str, int]:
        from .model import special_ids

        return special_ids(self.tokenizer)

    @cached_property
    def device(self):
        from .model import device_for

        return device_for(self.use_gpu)

    @cached_property
    def embedding_cache(self) -> dict:
        from .embed import read_embeddings

        if not self.embeddings:
            raise ValueError("a graph-network walk needs the target's embedding cache")
        return read_embeddings(self.embeddings)

    def walk_config(self):
        """The walk's settings from ``gen`` (the keys of WalkConfig that it holds)."""
        return WalkConfig.from_section(self.gen)

    def load_model(self):
        """The transformer of ``model_dir`` on the device."""
        from .model import load_model

        if self.model_dir is None:
            raise ValueError("this method needs a model folder")
        model, _ = load_model(self.model_dir, self.tokenizer_json)
        model.to(self.device)
        return model

    def checkpoint(self, name: str) -> Path:
        if self.checkpoints is None:
            raise ValueError("a gradient adapter needs a checkpoint folder")
        folder = Path(self.checkpoints)
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{name}.pt"

    def base_pieces(self, part: str | None = "train") -> list[np.ndarray]:
        """The base corpus's pieces (of ``part`` of its splits; None: every piece)."""
        from .tokenize import corpus_tokens

        if part is None:
            return corpus_tokens(self.base_shards)
        return corpus_tokens(self.base_shards, self.base_splits, part)


@dataclass
class Fitted:
    """A method adapted on a set of pieces.

    ``sample(n, length, seed, prompt)``: ``n`` samples, each the prompt (if any) followed by
    ``length`` tokens; ``log_probs(seq)``: base-2 log-probabilities of ``seq[1:]`` (None:
    no next-token distribution); ``record``: what the sample set's ``generation.json`` says of
    the method; ``adapt_seconds``: the time the adaptation took.
    """

    sample: Callable[..., list[np.ndarray]]
    log_probs: Callable[[np.ndarray], np.ndarray] | None = None
    record: dict = field(default_factory=dict)
    adapt_seconds: float = 0.0
    takes_prompt: bool = True


class Method:
    """One generation method (see the module doc)."""

    name: str = ""
    kind: str = "baseline"
    #: where its evaluation samples come from: "baselines" (rule baseline), "generated" (rule
    #: generate) or None (not in the evaluation)
    folder: str | None = "baselines"
    #: the transformer its job reads: None, "pretrained" or "finetuned"
    model: str | None = None
    #: its job reads the base corpus's shards
    base: bool = False
    #: the few-shot job that adapts it on k pieces (None: not on the curve)
    fewshot: str | None = None
    #: a walk biased by a graph network's embeddings (chosen by the *.variants lists)
    graph_network: bool = False
    #: the config keys its fit and sampling read, by section (beyond generate's samples,
    #: length and seed): a rule passes its methods' keys only, so that another key's change
    #: does not rerun it
    reads: dict[str, tuple[str, ...]] = {}

    @property
    def evaluated(self) -> bool:
        """Listed in ``evaluate.methods`` (made by rule ``baseline``)."""
        return self.folder == "baselines"

    def fit(self, pieces: list[np.ndarray], env: Env) -> Fitted:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<method {self.name}>"


#: every registered method by name, in registration order
REGISTRY: dict[str, Method] = {}


def register(method: Method | type[Method]) -> Method | type[Method]:
    """Add a method (an instance, or a class made without arguments) to the registry; usable
    as a class decorator. A name registered again is replaced."""
    inst = method() if isinstance(method, type) else method
    if not inst.name:
        raise ValueError("a method needs a name")
    if inst.fewshot is not None and inst.fewshot not in FEWSHOT_JOBS:
        raise ValueError(f"{inst.name}: fewshot job must be one of {list(FEWSHOT_JOBS)}")
    REGISTRY[inst.name] = inst
    return method


def unregister(name: str) -> None:
    REGISTRY.pop(name, None)


def get(name: str) -> Method:
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown method {name!r} (known: {', '.join(REGISTRY)})") from None


def names(**want) -> list[str]:
    """Names of the methods whose attributes equal ``want`` (e.g. ``folder="baselines"``)."""
    return [n for n, m in REGISTRY.items() if all(getattr(m, k) == v for k, v in want.items())]


def fewshot_methods(methods: Iterable[str], variants: Iterable[str], job: str) -> list[Method]:
    """The methods one few-shot job adapts, in registry order: those of ``fewshot.methods``
    and the graph-network walks of ``fewshot.variants`` whose job is ``job``."""
    chosen = set(methods) | set(variants)
    return [m for m in REGISTRY.values() if m.fewshot == job and m.name in chosen]


def fewshot_jobs(methods: Iterable[str], variants: Iterable[str] = ()) -> list[str]:
    """The few-shot jobs a configuration needs per point (``point`` always)."""
    return [j for j in FEWSHOT_JOBS if j == "point" or fewshot_methods(methods, variants, j)]


def reads(methods: Iterable[str], section: str) -> list[str]:
    """The keys of config ``section`` that any of ``methods`` reads (sorted)."""
    return sorted({k for n in methods for k in get(n).reads.get(section, ())})


def allowed_names() -> dict[str, list[str]]:
    """The names each config list of methods or variants may hold, by dotted key, as the
    registry gives them (:func:`tokentransfer.config.check` refuses any other)."""
    walks = names(graph_network=True)
    return {
        "evaluate.methods": names(folder="baselines"),
        "fewshot.methods": [
            n for n, m in REGISTRY.items() if m.fewshot is not None and not m.graph_network
        ],
        "fewshot.variants": walks,
        "linkpred.variants": walks,
        "generate.variants": names(kind="graph"),
    }


# --------------------------------------------------------------------------- helpers

#: the walk's keys of the generate section (tokentransfer.rwr.WalkConfig)
WALK_KEYS = tuple(WalkConfig.__dataclass_fields__)
#: the keys of the graph networks trained for a walk or a transplant (``linkpred`` section)
LINKPRED_KEYS = (
    "seeds",
    "encoders",
    "hidden",
    "layers",
    "dropout",
    "lr",
    "epochs",
    "patience",
    "val_fraction",
    "test_fraction",
)
#: the transformers' keys: their sampling (the ``sampling`` section) and ``bits_tokens`` (how
#: many test tokens their bits per token are measured on)
SAMPLING = {"sampling": ("temperature", "top_k"), "evaluate": ("bits_tokens",)}
#: the gradient adapters' budget (few-shot)
BUDGET = {"fewshot": ("finetune_steps",), "finetune": ("batch", "lr", "warmup")}


def _prompted(env: Env, draw: Callable[..., list[np.ndarray]]) -> Callable:
    """``sample(n, length, seed, prompt=None)`` of a transformer sampler
    ``draw(n, length, seed, start, temperature=, top_k=, device=, banned=)`` (e.g.
    :func:`tokentransfer.fusion.fused_samples` with its model and target bound): from BOS and
    Bar, or from BOS and ``prompt`` (returned in front of the samples), at
    ``sampling.temperature`` and ``top_k``, on ``env.device``, the special ids banned."""
    from .baselines import start_tokens

    bos = env.special["bos"]

    def sample(n, length, seed, prompt=None):
        start = start_tokens(env.tokenizer) if prompt is None else [bos, *prompt]
        samples = draw(
            n,
            length,
            seed,
            start,
            temperature=env.sampling["temperature"],
            top_k=env.sampling["top_k"],
            device=env.device,
            banned=sorted(env.special.values()),
        )
        if prompt is not None:
            samples = [np.concatenate([prompt, s]) for s in samples]
        return samples

    return sample


def _transformer(model, env: Env, adapt_s: float, record: dict | None = None) -> Fitted:
    """A transformer sampled under the grammar mask (``sampling.temperature`` and ``top_k``),
    BOS and Bar first, or BOS and a prompt."""
    from .baselines import transformer_samples
    from .likelihood import transformer_log_probs

    bos = env.special["bos"]
    return Fitted(
        _prompted(env, partial(transformer_samples, model, grammar=env.grammar)),
        lambda s: transformer_log_probs(model, s, bos, env.grammar, env.device),
        {
            **(record or {}),
            "device": str(env.device),
            "temperature": env.sampling["temperature"],
            "top_k": env.sampling["top_k"],
            "grammar_mask": True,
        },
        adapt_s,
    )


# --------------------------------------------------------------------------- the methods


class Chain(Method):
    """An n-gram chain of ``order`` fitted on the pieces (``sampling.markov_discount``); the
    ``...c`` chains sample under the grammar mask; the ``...ci`` chains (``intervals``) also
    carry the walk's pitch memory, its interval tables counted on the same pieces
    (:class:`tokentransfer.baselines.IntervalChain`)."""

    fewshot = "point"
    reads = {"sampling": ("markov_discount",), "evaluate": ("bits_tokens",)}

    def __init__(self, order: int, constrained: bool = False, intervals: bool = False) -> None:
        self.order, self.constrained, self.intervals = order, constrained or intervals, intervals
        self.name = f"markov{order}{'c' if self.constrained else ''}{'i' if intervals else ''}"

    def fit(self, pieces, env):
        from .baselines import IntervalChain, NgramModel
        from .grammar import Grammar
        from .likelihood import chain_log_probs
        from .walkform import count_tables

        t0 = time.perf_counter()
        discount = env.sampling["markov_discount"]
        chain = NgramModel(self.order, len(env.tokenizer), discount=discount)
        chain.fit(pieces)
        grammar = Grammar(env.tokenizer) if self.constrained else None
        if self.intervals:
            model = IntervalChain(chain, grammar, count_tables(pieces, env.tokenizer))
            adapt = time.perf_counter() - t0
            record = {"order": self.order, "discount": discount, "train_pieces": len(pieces),
                      "grammar_mask": True, "pitch_memory": True}  # fmt: skip

            def sample_ci(n, length, seed, prompt=None):
                return model.sample(n, length, seed, None if prompt is None else list(prompt))

            return Fitted(sample_ci, model.log_probs, record, adapt)
        adapt = time.perf_counter() - t0

        def sample(n, length, seed, prompt=None):
            start = None if prompt is None else [int(t) for t in prompt]
            return chain.sample(n, length, seed, start=start, grammar=grammar)

        record = {
            "order": self.order,
            "discount": discount,
            "train_pieces": len(pieces),
            "grammar_mask": grammar is not None,
        }
        return Fitted(sample, lambda s: chain_log_probs(chain, s, grammar), record, adapt)


class Walk(Method):
    """The biased random walk with restart on the successor counts of the pieces (and their
    grammar contexts unless ``generate.context`` is none); ``counts`` walks on the counts alone,
    a graph-network variant is biased by the node embeddings of a network trained by link
    prediction on the pieces' graph (first seed and encoder of ``linkpred``). In the evaluation the
    walks are rule ``generate``'s, from the graphs and networks of the whole training part."""

    kind = "graph"
    folder = "generated"
    fewshot = "point"

    def __init__(self, name: str) -> None:
        self.name = name
        self.graph_network = name != "counts"
        self.reads = {"generate": WALK_KEYS, "evaluate": ("bits_tokens",)}
        if self.graph_network:
            self.reads = {
                **self.reads,
                "graph": ("offset_weights", "self_loops"),
                "linkpred": LINKPRED_KEYS,
            }

    def fit(self, pieces, env):
        from .graph import context_successors, successors
        from .likelihood import walk_log_probs
        from .rwr import Walker

        t0 = time.perf_counter()
        succ = successors(pieces, len(env.tokenizer))
        cfg = env.walk_config()
        ctx = context_successors(pieces, env.tokenizer) if cfg.context != "none" else None
        h = nodes = None
        if self.graph_network:
            try:
                h, nodes = self.network(pieces, env)
            except ValueError as exc:  # a graph too small to split into train/val/test pairs
                raise CannotFit(f"no graph network ({exc})") from exc
        walker = Walker(succ, env.tokenizer, h, nodes, cfg, ctx, walk_tables(pieces, env, cfg))
        adapt = time.perf_counter() - t0

        def sample(n, length, seed, prompt=None):
            return walker.generate(n, length, prompt=prompt, seed=seed)

        return Fitted(sample, lambda s: walk_log_probs(walker, s), {}, adapt)

    def network(self, pieces, env) -> tuple[np.ndarray, np.ndarray]:
        """The node embeddings and vocabulary ids of the graph network of this variant on the
        co-occurrence graph of ``pieces`` (``graph.offset_weights``, ``self_loops``), trained
        by :func:`tokentransfer.linkpred.train_network` as rule ``linkpred`` trains its first
        seed and encoder (``linkpred.seeds[0]``, ``encoders[0]``)."""
        from .graph import cooccurrence
        from .linkpred import standardise, train_network, variant_graph

        hp, seed = env.linkpred, env.linkpred["seeds"][0]
        offsets, loops = env.graph["offset_weights"], env.graph["self_loops"]
        a = cooccurrence(pieces, len(env.tokenizer), offsets, loops)
        nodes, raw, pairs = variant_graph(self.name, a, env.embedding_cache, seed=seed)
        net = train_network(pairs, standardise(raw), hp, encoder=hp["encoders"][0], seed=seed)
        return net.embeddings, nodes


def walk_tables(pieces, env: Env, cfg):
    """The walk's interval and form tables counted on ``pieces`` (None where ``cfg`` walks
    without melody and form)."""
    if cfg.melody == "none" and cfg.form == "none":
        return None
    from .walkform import count_tables

    return count_tables(pieces, env.tokenizer)


class Transformer(Method):
    """The pretrained transformer, unadapted (the few-shot curve's reference line)."""

    name = "transformer"
    model = "pretrained"
    reads = SAMPLING

    def fit(self, pieces, env):
        return _transformer(env.load_model(), env, 0.0, {"model": str(env.model_dir)})


class Finetuned(Method):
    """The pretrained transformer fine-tuned on the pieces: for ``env.budget`` steps (the
    few-shot curve, resumable from its checkpoint), or already, by rule ``finetune`` (the
    evaluation: ``env.model_dir`` is the fine-tuned model)."""

    name = "finetuned"
    model = "finetuned"
    fewshot = "finetune"
    reads = {**SAMPLING, **BUDGET}

    def fit(self, pieces, env):
        from .model import WindowSampler, context_length
        from .model import train as train_model

        model = env.load_model()
        if env.budget is None:
            return _transformer(model, env, 0.0, {"model": str(env.model_dir)})
        checkpoint = env.checkpoint(self.name)
        sampler = WindowSampler(pieces, env.special, context_length(model), env.budget.seed)
        stats = train_model(model, sampler, env.budget, checkpoint=checkpoint, device=env.device)
        checkpoint.unlink(missing_ok=True)
        return _transformer(model, env, stats["seconds"])


class RealExcerpts(Method):
    """Excerpts of real pieces from a bar on: ``real_target`` of the target's training
    pieces (the ceiling), ``real_base`` of the base corpus (the floor)."""

    kind = "reference"

    def __init__(self, name: str) -> None:
        self.name = name
        self.base = name == "real_base"

    def fit(self, pieces, env):
        from .baselines import bar_id, real_excerpts

        if self.base:
            pieces = env.base_pieces(None)

        def sample(n, length, seed, prompt=None):
            return real_excerpts(pieces, n, length, seed, bar_id=bar_id(env.tokenizer))

        return Fitted(sample, None, {"pieces": len(pieces)}, 0.0, takes_prompt=False)


#: order of the chain of ``fused_markov``
FUSED_ORDER = 2


class Fused(Method):
    """The unadapted transformer's logits plus lambda times ln q of the pieces' smoothed
    order-2 chain (``fused_markov``) or counts walk (``fused_walk``), under the grammar; lambda
    chosen on held-out groups of the pieces (:mod:`tokentransfer.fusion`)."""

    model = "pretrained"
    folder = None
    fewshot = "transfer"

    def __init__(self, name: str) -> None:
        self.name = name
        # in the evaluation (rule baseline) as well; not fused_walk, whose walk keys of the
        # generate section that rule does not pass
        self.folder = "baselines" if name == "fused_markov" else None
        if name == "fused_markov":
            self.reads = {**SAMPLING, "sampling": (*SAMPLING["sampling"], "markov_discount")}
        else:
            self.reads = {**SAMPLING, "generate": WALK_KEYS}

    def target_model(self, pieces, env):
        from .fusion import chain_target, walk_target

        if self.name == "fused_markov":
            discount = env.sampling["markov_discount"]
            return chain_target(pieces, FUSED_ORDER, env.grammar, discount=discount)
        return walk_target(pieces, env.tokenizer, env.walk_config())

    def fit(self, pieces, env):
        from .fusion import choose_lambda, fused_samples
        from .likelihood import fused_log_probs

        model = env.load_model()
        bos = env.special["bos"]
        t0 = time.perf_counter()
        choice = choose_lambda(
            model,
            lambda f: self.target_model(f, env),
            pieces,
            bos=bos,
            seed=env.seed,
            groups=env.groups,
            device=env.device,
            max_tokens=env.eval.get("bits_tokens"),
        )
        target = self.target_model(pieces, env)
        adapt = time.perf_counter() - t0
        log.info("%s: lambda grid %s", self.name, choice.rows())

        sample = _prompted(env, partial(fused_samples, model, target, choice.lam))

        def log_probs(s):
            return fused_log_probs(model, target, s, [choice.lam], bos, env.grammar, env.device)[0]

        return Fitted(sample, log_probs, {"lambda": choice.lam}, adapt)


class Knn(Method):
    """kNN-LM (:mod:`tokentransfer.knn`): the unadapted transformer's next-token distribution
    mixed with the next tokens of the nearest of the pieces' stored hidden states,
    ``(1 - lam) p_T + lam p_knn``, under the grammar; the datastore from one forward pass
    over the pieces, ``lam`` and the distance temperature chosen on held-out groups of the
    pieces (``evaluate.knn``)."""

    name = "knn"
    model = "pretrained"
    fewshot = "transfer"
    reads = {**SAMPLING, "evaluate": (*SAMPLING["evaluate"], "knn")}

    def fit(self, pieces, env):
        from .knn import build_datastore, choose_knn, knn_log_probs, knn_samples, settings

        s = settings(env.eval.get("knn"))
        model = env.load_model()
        bos = env.special["bos"]
        t0 = time.perf_counter()
        store = build_datastore(model, pieces, bos, env.device)
        choice = choose_knn(
            model,
            pieces,
            s["lambdas"],
            s["temperatures"],
            s["neighbours"],
            bos=bos,
            grammar=env.grammar,
            seed=env.seed,
            groups=env.groups,
            device=env.device,
            max_tokens=s["choice_tokens"],
            store=store,
        )
        store = store.to(s["dtype"])
        adapt = time.perf_counter() - t0
        log.info("knn: %d keys (%.1f MB), grid %s", len(store), store.megabytes, choice.rows())
        lam, temp, k = choice.lam, choice.temperature, s["neighbours"]

        draw = partial(knn_samples, model, store, lam, temp, k, grammar=env.grammar)
        sample = _prompted(env, draw)

        def log_probs(seq):
            lp = knn_log_probs(model, store, seq, [(lam, temp)], k, bos, env.grammar, env.device)
            return lp[0]

        record = {
            "lambda": lam,
            "knn_temperature": temp,
            "neighbours": k,
            "datastore_keys": len(store),
            "datastore_mb": round(store.megabytes, 3),
            "datastore_dtype": s["dtype"],
            "datastore_seconds": round(store.seconds, 4),
            "choice_seconds": round(choice.seconds, 4),
            "device": str(env.device),
            "temperature": env.sampling["temperature"],
            "top_k": env.sampling["top_k"],
            "grammar_mask": True,
        }
        return Fitted(sample, log_probs, record, adapt)


class Transplant(Method):
    """A graph network trained on the base corpus's graph and adapted on the pieces', its node
    embeddings put into the frozen transformer's input table through a ridge map fitted on
    the base (:mod:`tokentransfer.transplant`); its adaptation seconds are the per-target
    part."""

    name = "transplant"
    model = "pretrained"
    base = True
    folder = None
    fewshot = "transfer"
    reads = {**SAMPLING, "graph": ("offset_weights",), "linkpred": LINKPRED_KEYS}

    def fit(self, pieces, env):
        from .embed import token_table
        from .transplant import fit_map, transplant, transplant_embeddings

        model0 = env.load_model()
        base = env.base_pieces("train")
        hp = env.linkpred
        t0 = time.perf_counter()
        try:
            ge, _ = transplant_embeddings(
                base,
                pieces,
                token_table(model0),
                hp,
                offset_weights=tuple(env.graph["offset_weights"]),
                encoder=hp["encoders"][0],
                seed=hp["seeds"][0],
            )
        except ValueError as exc:  # a subset graph too small to split into pairs
            raise CannotFit(f"no graph network ({exc})") from exc
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
        return _transformer(model, env, adapt)


class Adapter(Method):
    """The input embedding table alone (``embed_ft``) or LoRA adapters (``lora``) trained on
    the pieces for ``env.budget`` steps, the rest of the transformer frozen."""

    model = "pretrained"
    folder = None
    fewshot = "transfer"

    reads = {**SAMPLING, **BUDGET}

    def __init__(self, name: str) -> None:
        self.name = name

    def fit(self, pieces, env):
        from .transplant import embedding_finetune, lora_finetune

        model = env.load_model()
        checkpoint = env.checkpoint(self.name)
        if self.name == "embed_ft":
            stats = embedding_finetune(
                model, pieces, env.special, env.budget, checkpoint, device=env.device
            )
        else:
            peft_model, stats = lora_finetune(
                model, pieces, env.special, env.budget, checkpoint, device=env.device
            )
            model = peft_model.merge_and_unload()
        checkpoint.unlink(missing_ok=True)
        return _transformer(model, env, stats["seconds"])


for _order in (1, 2, 3):
    register(Chain(_order))
for _order in (1, 2, 3):
    register(Chain(_order, constrained=True))
for _order in (2, 3):
    register(Chain(_order, intervals=True))
for _name in ("counts", *VARIANTS):
    register(Walk(_name))
register(Transformer)
register(Finetuned)
register(RealExcerpts("real_target"))
register(RealExcerpts("real_base"))
register(Fused("fused_markov"))
register(Fused("fused_walk"))
register(Knn)
register(Transplant)
register(Adapter("embed_ft"))
register(Adapter("lora"))
