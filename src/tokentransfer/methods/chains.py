"""The n-gram chains (``markov1`` .. ``markov3``, the grammar-masked ``...c`` and the
pitch-memory ``...ci``), fitted by counting the pieces."""

from __future__ import annotations

import time

from .registry import Fitted, Method


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
        from ..baselines import IntervalChain, NgramModel
        from ..grammar import Grammar
        from ..likelihood import chain_log_probs
        from ..walkform import count_tables

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
