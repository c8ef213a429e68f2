"""The embedding transplant and the adapters it is compared with change only their own weights."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.tiny import midi_pieces, tiny_model
from tokentransfer.embed import token_table
from tokentransfer.model import (
    TrainSpec,
    evaluate,
    load_model,
    save_model,
    special_ids,
)
from tokentransfer.tokenize import save_tokenizer
from tokentransfer.transplant import (
    embedding_finetune,
    fit_map,
    lora_finetune,
    transplant,
    transplant_embeddings,
    untie_output,
)

WTE = "transformer.wte.weight"
#: the ``linkpred`` settings of the graph networks below (tiny: 16 wide, 20 epochs)
HP = {
    "hidden": 16,
    "layers": 2,
    "dropout": 0.1,
    "lr": 0.01,
    "epochs": 20,
    "patience": 5,
    "val_fraction": 0.1,
    "test_fraction": 0.1,
}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def corpora(tok, midi_corpora: Path):
    """Base and target: Bach chorales and fiddle tunes (tests/music21_corpora.py)."""
    return midi_pieces(tok, midi_corpora / "chorales"), midi_pieces(tok, midi_corpora / "tunes")


def hashes(model) -> dict[str, str]:
    """sha256 of every parameter and buffer by name (shared tensors under each name)."""
    out = {}
    for name, t in [
        *model.named_parameters(remove_duplicate=False),
        *model.named_buffers(remove_duplicate=False),
    ]:
        out[name] = hashlib.sha256(t.detach().cpu().contiguous().numpy().tobytes()).hexdigest()
    return out


@pytest.fixture(scope="module")
def adapted(tok, corpora):
    base, target = corpora
    model = tiny_model(tok)
    ge, _ = transplant_embeddings(base, target, token_table(model), HP, target_epochs=15)
    return ge


def test_transplant_changes_only_the_input_embedding_table(tok, corpora, adapted):
    model = tiny_model(tok)
    before = hashes(model)
    table0 = token_table(model).copy()
    assert before["lm_head.weight"] == before[WTE]  # GPT-2 ties them
    x = torch.tensor([[special_ids(tok)["bos"], *corpora[1][0][:20].tolist()]])
    with torch.no_grad():
        out0 = model(input_ids=x).logits
    emb_map = fit_map(adapted.h_base, adapted.base_ids, table0, ridge=1.0)
    done = transplant(model, adapted.h_target, adapted.target_ids, emb_map)
    after = hashes(model)
    assert done["untied"] and done["rows"] == len(adapted.target_ids)
    assert set(after) == set(before)
    changed = {n for n in before if before[n] != after[n]}
    assert changed == {WTE}  # the output layer keeps the pretrained (formerly tied) weights
    table1 = token_table(model)
    others = np.setdiff1d(np.arange(len(tok)), adapted.target_ids)
    assert np.array_equal(table1[others], table0[others])
    rows = emb_map(adapted.h_target).astype(np.float32)
    assert np.array_equal(table1[adapted.target_ids], rows)
    with torch.no_grad():
        assert not torch.allclose(model(input_ids=x).logits, out0)


def test_a_transplanted_model_saves_and_loads_untied(tok, adapted, tmp_path):
    model = tiny_model(tok)
    emb_map = fit_map(adapted.h_base, adapted.base_ids, token_table(model))
    transplant(model, adapted.h_target, adapted.target_ids, emb_map)
    tok_json = tmp_path / "tokenizer.json"
    save_tokenizer(tok, tok_json)
    save_model(model, tok_json, tmp_path / "hf")
    loaded, _ = load_model(tmp_path / "hf")
    assert hashes(loaded) == hashes(model)


def test_direct_transplant_where_widths_match_and_refused_where_not(tok, adapted):
    model = tiny_model(tok, dim=16)  # the graph network's hidden width is 16 too
    before = hashes(model)
    transplant(model, adapted.h_target, adapted.target_ids)
    assert np.allclose(token_table(model)[adapted.target_ids], adapted.h_target, atol=1e-6)
    assert {n for n, h in hashes(model).items() if h != before[n]} == {WTE}
    wide = tiny_model(tok, dim=32)
    with pytest.raises(ValueError, match="give a map"):
        transplant(wide, adapted.h_target, adapted.target_ids)


def test_the_map_reproduces_a_linear_table_and_reports_its_fit():
    rng = np.random.default_rng(0)
    h = rng.standard_normal((200, 8))
    w, b = rng.standard_normal((8, 12)), rng.standard_normal(12)
    table = np.zeros((300, 12))
    ids = rng.permutation(300)[:200]
    table[ids] = h @ w + b
    m = fit_map(h, ids, table, ridge=1e-8)
    assert np.allclose(m.weight, w, atol=1e-6) and np.allclose(m.bias, b, atol=1e-6)
    assert m.r2 > 1 - 1e-9 and m.r2_heldout > 1 - 1e-9
    noisy = table.copy()
    noisy[ids] += rng.standard_normal((200, 12)) * 3
    m2 = fit_map(h, ids, noisy, ridge=10.0)
    assert 0 < m2.r2_heldout < m2.r2 < 1


def test_transplant_embeddings_share_the_base_network(tok, corpora, adapted):
    assert adapted.h_base.shape == (len(adapted.base_ids), 16)
    assert adapted.h_target.shape == (len(adapted.target_ids), 16)
    assert (
        0.5 < adapted.base_val_auc <= 1 and adapted.target_val_auc >= adapted.target_val_auc_before
    )
    # without adaptation the target is embedded by the base network as it is
    base, target = corpora
    model = tiny_model(tok)
    again, net = transplant_embeddings(base, target, token_table(model), HP, target_epochs=0)
    assert np.allclose(again.h_base, adapted.h_base, atol=1e-5)  # seeded
    assert again.target_val_auc == again.target_val_auc_before
    reused, _ = transplant_embeddings(
        base, target, token_table(model), HP, target_epochs=0, base=again, base_model=net
    )
    assert np.array_equal(reused.h_target, again.h_target)


def test_embedding_finetuning_changes_only_the_input_table(tok, corpora, tmp_path):
    model = tiny_model(tok)
    special = special_ids(tok)
    data = corpora[1][:4]
    before = hashes(model)
    loss0 = evaluate(model, data, special)["loss"]
    spec = TrainSpec(steps=15, batch=4, lr=3e-2, warmup=1, checkpoint_every=100, log_every=5)
    stats = embedding_finetune(model, data, special, spec, tmp_path / "ckpt.pt")
    assert {n for n, h in hashes(model).items() if h != before[n]} == {WTE}
    assert stats["trainable"] == len(tok) * 16 and stats["seconds"] > 0
    assert evaluate(model, data, special)["loss"] < loss0 - 0.1


def test_lora_changes_only_its_own_parameters(tok, corpora, tmp_path):
    model = tiny_model(tok)
    special = special_ids(tok)
    data = corpora[1][:4]
    before = hashes(model)
    loss0 = evaluate(model, data, special)["loss"]
    spec = TrainSpec(steps=15, batch=4, lr=3e-2, warmup=1, checkpoint_every=100, log_every=5)
    peft_model, stats = lora_finetune(model, data, special, spec, tmp_path / "ckpt.pt", r=4)
    after = hashes(peft_model)
    lora = {n for n in after if "lora_" in n}
    assert lora and stats["trainable"] == sum(
        p.numel() for n, p in peft_model.named_parameters() if "lora_" in n
    )
    # every base weight, under its wrapped name, is unchanged
    for name, h in after.items():
        if name in lora:
            continue
        plain = name.replace("base_model.model.", "").replace(".base_layer", "")
        assert h == before[plain], name
    assert all(
        p.abs().sum() > 0 for n, p in peft_model.named_parameters() if "lora_B" in n
    )  # lora_B starts at zero: it trained
    assert evaluate(peft_model, data, special)["loss"] < loss0 - 0.02
    merged = peft_model.merge_and_unload()
    assert (
        hashes(merged)["transformer.h.0.attn.c_attn.weight"]
        != before["transformer.h.0.attn.c_attn.weight"]
    )


def test_untie_is_a_no_op_on_an_untied_model(tok):
    model = tiny_model(tok)
    assert untie_output(model) and not untie_output(model)
    assert model.get_output_embeddings().weight is not model.get_input_embeddings().weight


def test_lora_adapters_start_from_the_configured_seed_whatever_ran_before(tok, corpora, tmp_path):
    """Two LoRA fits with the same spec give the same adapters although other draws of the
    global torch RNG came before one of them (a job adapting other methods first)."""
    special = special_ids(tok)
    data = corpora[1][:2]
    spec = TrainSpec(steps=2, batch=2, lr=1e-2, warmup=1, checkpoint_every=100, seed=5)
    got = []
    for skip in (0, 1000):
        model = tiny_model(tok)  # (building it seeds the global RNG)
        torch.rand(skip)  # what an earlier method of the job may have drawn
        peft_model, _ = lora_finetune(model, data, special, spec, tmp_path / f"ck{skip}.pt", r=4)
        got.append({n: h for n, h in hashes(peft_model).items() if "lora_" in n})
    assert got[0] and got[0] == got[1]
