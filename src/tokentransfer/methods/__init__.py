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

Modules: :mod:`.registry` (what a method is, the registry and the lists read from it, the
config keys the methods read), :mod:`.chains`, :mod:`.walks`, :mod:`.references` and
:mod:`.transformers` (the methods); every public name is re-exported here, and the methods are
registered below, in the order of the tables.
"""

from __future__ import annotations

from ..variants import VARIANTS
from .chains import Chain
from .references import RealExcerpts
from .registry import (
    BUDGET,
    FEWSHOT_JOBS,
    LINKPRED_KEYS,
    REGISTRY,
    SAMPLING,
    WALK_KEYS,
    CannotFit,
    Env,
    Fitted,
    Method,
    allowed_names,
    fewshot_jobs,
    fewshot_methods,
    get,
    names,
    reads,
    register,
    unregister,
)
from .transformers import FUSED_ORDER, Adapter, Finetuned, Fused, Knn, Transformer, Transplant
from .walks import Walk, walk_tables

__all__ = [
    "BUDGET",
    "FEWSHOT_JOBS",
    "FUSED_ORDER",
    "LINKPRED_KEYS",
    "REGISTRY",
    "SAMPLING",
    "WALK_KEYS",
    "Adapter",
    "CannotFit",
    "Chain",
    "Env",
    "Finetuned",
    "Fitted",
    "Fused",
    "Knn",
    "Method",
    "RealExcerpts",
    "Transformer",
    "Transplant",
    "Walk",
    "allowed_names",
    "fewshot_jobs",
    "fewshot_methods",
    "get",
    "names",
    "reads",
    "register",
    "unregister",
    "walk_tables",
]

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
