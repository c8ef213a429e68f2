"""What a generation method is and where the methods are kept: :class:`Method` (what it is,
what its job reads, :meth:`Method.fit`), the :class:`Env` it is fitted with and the
:class:`Fitted` it returns, the registry (:data:`REGISTRY`, :func:`register`, :func:`get`) and
the lists read from it (:func:`names`, :func:`fewshot_methods`, :func:`fewshot_jobs`,
:func:`reads`, :func:`allowed_names`), and the config keys the methods read. The methods
themselves are :mod:`.chains`, :mod:`.walks`, :mod:`.references` and :mod:`.transformers`;
:mod:`tokentransfer.methods` registers them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from ..walk import WalkConfig

#: the few-shot jobs, in order, and the suffix of each one's point file
FEWSHOT_JOBS = {"point": "", "finetune": "_finetuned", "transfer": "_transfer"}


class CannotFit(ValueError):
    """The pieces are too few for the method (a graph too small to split into pairs): the
    few-shot curve records the point without values."""


@dataclass
class Env:
    """What a method is adapted and sampled with: one job's tokenizer, settings and files.

    ``gen``: the ``generate`` keys the job reads (``samples``, ``length``, ``seed`` and, for
    the walks, those of :class:`tokentransfer.walk.WalkConfig`); ``sampling``: the ``sampling``
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
        from ..grammar import Grammar

        return Grammar(self.tokenizer)

    @cached_property
    def special(self) -> dict[str, int]:
        from ..model import special_ids

        return special_ids(self.tokenizer)

    @cached_property
    def device(self):
        from ..model import device_for

        return device_for(self.use_gpu)

    @cached_property
    def embedding_cache(self) -> dict:
        from ..embed import read_embeddings

        if not self.embeddings:
            raise ValueError("a graph-network walk needs the target's embedding cache")
        return read_embeddings(self.embeddings)

    def walk_config(self):
        """The walk's settings from ``gen`` (the keys of WalkConfig that it holds)."""
        return WalkConfig.from_section(self.gen)

    def load_model(self):
        """The transformer of ``model_dir`` on the device."""
        from ..model import load_model

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
        from ..tokenize import corpus_tokens

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


#: the walk's keys of the generate section (tokentransfer.walk.WalkConfig)
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
