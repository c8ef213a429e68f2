"""The REMI grammar mask as a ``transformers`` logits processor.

:class:`GrammarLogitsProcessor` follows the token stream of each sequence of a batch (the
columns of ``input_ids`` it has not seen yet, at every call) in a
:class:`tokentransfer.grammar.GrammarState` and sets the logits of the tokens the grammar does
not allow next to ``-inf``. It works with ``model.generate(logits_processor=[...])`` and with
the project's own KV-cached sampler (:func:`tokentransfer.baselines.transformer_samples`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from transformers import LogitsProcessor

from .grammar import Grammar


class GrammarLogitsProcessor(LogitsProcessor):
    """Mask the logits of tokens the REMI ``grammar`` forbids in each sequence's state.

    ``skip``: token ids that are not part of the music stream (BOS, PAD, ...): they are passed
    over when the state is advanced. A processor follows one batch: make a new one per
    ``generate`` call.
    """

    def __init__(self, grammar: Grammar, skip: Sequence[int] = ()) -> None:
        self.grammar = grammar
        self.skip = np.asarray(sorted({int(t) for t in skip}), dtype=np.int64)
        self.state = None
        self.seen = 0

    def _advance(self, input_ids: torch.Tensor) -> None:
        ids = input_ids.detach().cpu().numpy().astype(np.int64)
        if self.state is None:
            self.state = self.grammar.new_state(ids.shape[0])
        if ids.shape[1] < self.seen:
            raise ValueError("a GrammarLogitsProcessor follows one batch: make a new one")
        for col in range(self.seen, ids.shape[1]):
            tok = ids[:, col]
            keep = ~np.isin(tok, self.skip)
            if keep.all():
                self.grammar.advance(self.state, tok)
            elif keep.any():
                idx = np.flatnonzero(keep)
                sub = self.state.take(idx)
                self.grammar.advance(sub, tok[idx])
                self.state.put(idx, sub)
        self.seen = ids.shape[1]

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        self._advance(input_ids)
        allowed = self.grammar.mask(self.state)  # [batch, V]
        v = min(scores.shape[1], allowed.shape[1])
        keep = torch.zeros(scores.shape, dtype=torch.bool, device=scores.device)
        keep[:, :v] = torch.from_numpy(allowed[:, :v]).to(scores.device)
        return scores.masked_fill(~keep, -float("inf"))
