"""Grammar-valid sampling for the n-gram chains and the transformer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tokentransfer.baselines import NgramModel, start_tokens, transformer_samples
from tokentransfer.grammar import Grammar
from tokentransfer.logits import GrammarLogitsProcessor
from tokentransfer.midi import token_errors
from tokentransfer.model import build_model, model_spec, special_ids
from tokentransfer.tokenize import tokenize_file


@pytest.fixture(scope="module")
def chorales(tok, midi_corpora: Path) -> list[np.ndarray]:
    """Bach chorales exported from music21's corpus (tests/music21_corpora.py)."""
    return [tokenize_file(tok, p) for p in sorted((midi_corpora / "chorales").glob("*.mid"))]


@pytest.mark.parametrize("order", [1, 2, 3])
def test_constrained_chain_has_no_errors_and_the_raw_one_does(tok, chorales, order):
    chain = NgramModel(order, len(tok)).fit(chorales)
    g = Grammar(tok)
    masked = chain.sample(4, 400, seed=0, grammar=g)
    raw = chain.sample(4, 400, seed=0)
    assert all(len(s) == 400 for s in masked)
    assert all(token_errors(tok, s) == 0 for s in masked)
    assert sum(token_errors(tok, s) for s in raw) > 0  # the unconstrained chain breaks it


def test_constrained_distribution_sums_to_one_over_the_allowed_tokens(tok, chorales):
    chain = NgramModel(3, len(tok)).fit(chorales)
    g = Grammar(tok)
    piece = chorales[0][:57]
    st = g.replay(piece)
    allowed = g.mask(st)[0]
    p = chain.distribution(piece, allowed=allowed)
    raw = chain.distribution(piece)
    assert np.isclose(p.sum(), 1.0) and (p[~allowed] == 0).all()
    assert np.allclose(p[allowed], raw[allowed] / raw[allowed].sum())
    assert 0 < allowed.sum() < len(tok)


def tiny_model(tok):
    cfg = {"arch": "gpt2", "layers": 1, "dim": 16, "heads": 2, "context": 64, "dropout": 0.0}
    spec = model_spec(cfg)
    torch.manual_seed(0)
    return build_model(spec, len(tok), special_ids(tok), 0).eval()


def test_transformer_under_the_mask_has_no_errors(tok):
    """An untrained model samples noise; under the grammar mask the noise is valid REMI,
    also past the context (sliding window)."""
    model = tiny_model(tok)
    special = special_ids(tok)
    kw = dict(start=start_tokens(tok), banned=sorted(special.values()), batch=3)
    masked = transformer_samples(model, 3, 150, 0, grammar=Grammar(tok), **kw)
    raw = transformer_samples(model, 3, 150, 0, **kw)
    assert all(token_errors(tok, s) == 0 for s in masked)
    assert all(token_errors(tok, s) > 0.1 for s in raw)


def test_processor_works_with_hf_generate(tok):
    model = tiny_model(tok)
    special = special_ids(tok)
    proc = GrammarLogitsProcessor(Grammar(tok), skip=sorted(special.values()))
    start = torch.tensor([start_tokens(tok)] * 2)
    torch.manual_seed(1)
    out = model.generate(
        start,
        do_sample=True,
        max_new_tokens=60,
        min_new_tokens=60,
        logits_processor=[proc],
        pad_token_id=special["pad"],
        eos_token_id=None,
    )
    for row in out[:, 1:].numpy():  # without BOS
        assert token_errors(tok, row) == 0
