"""The references: excerpts of real pieces (``real_target``, the ceiling; ``real_base``, the
floor)."""

from __future__ import annotations

from .registry import Fitted, Method


class RealExcerpts(Method):
    """Excerpts of real pieces from a bar on: ``real_target`` of the target's training
    pieces (the ceiling), ``real_base`` of the base corpus (the floor)."""

    kind = "reference"

    def __init__(self, name: str) -> None:
        self.name = name
        self.base = name == "real_base"

    def fit(self, pieces, env):
        from ..baselines import bar_id, real_excerpts

        if self.base:
            pieces = env.base_pieces(None)

        def sample(n, length, seed, prompt=None):
            return real_excerpts(pieces, n, length, seed, bar_id=bar_id(env.tokenizer))

        return Fitted(sample, None, {"pieces": len(pieces)}, 0.0, takes_prompt=False)
