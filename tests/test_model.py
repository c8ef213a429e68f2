"""The transformer and the embedding caches, with tiny real models built here (no downloads)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch

from tokentransfer.embed import (
    contextual,
    position_table,
    read_embeddings,
    sinusoids,
    token_table,
    windows,
    write_embeddings,
)
from tokentransfer.model import (
    ModelError,
    ModelSpec,
    TrainSpec,
    WindowSampler,
    build_model,
    evaluate,
    load_model,
    save_model,
    special_ids,
    train,
)
from tokentransfer.tokenize import build_tokenizer, save_tokenizer, tokenize_file

TINY = ModelSpec(arch="gpt2", layers=1, dim=16, heads=2, context=32, dropout=0.1)


@pytest.fixture(scope="module")
def saved_tok(tok, tmp_path_factory):
    """The tokenizer saved to JSON and loaded back, and the JSON's path."""
    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    save_tokenizer(tok, path)
    from tokentransfer.tokenize import load_tokenizer

    return load_tokenizer(path), path


@pytest.fixture(scope="module")
def seqs(saved_tok, midi_corpora):
    """Fiddle tunes exported from music21's corpus (tests/music21_corpora.py)."""
    tokenizer, _ = saved_tok
    return [tokenize_file(tokenizer, p) for p in sorted((midi_corpora / "tunes").glob("*.mid"))]


def tiny(saved_tok, spec=TINY, seed=0):
    tokenizer, _ = saved_tok
    return build_model(spec, len(tokenizer), special_ids(tokenizer), seed)


def test_tiny_model_is_tiny_and_learns_a_repeated_batch(saved_tok, seqs, tmp_path):
    tokenizer, _ = saved_tok
    special = special_ids(tokenizer)
    model = tiny(saved_tok)
    assert sum(p.numel() for p in model.parameters()) < 20_000
    data = seqs[:1]
    before = evaluate(model, data, special)["loss"]
    spec = TrainSpec(steps=40, batch=4, lr=1e-2, warmup=2, checkpoint_every=100, log_every=10)
    stats = train(model, WindowSampler(data, special, 32, 0), spec, checkpoint=tmp_path / "c.pt")
    after = evaluate(model, data, special)["loss"]
    assert after < before - 0.5, (before, after)
    assert stats["tokens_seen"] == 40 * 4 * 32


def test_resume_in_process_gives_the_same_weights(saved_tok, seqs, tmp_path):
    special = special_ids(saved_tok[0])
    spec = TrainSpec(steps=12, batch=2, lr=5e-3, warmup=2, checkpoint_every=4, log_every=2)
    ref = tiny(saved_tok)
    train(ref, WindowSampler(seqs, special, 32, 1), spec, checkpoint=tmp_path / "ref.pt")
    part = tiny(saved_tok)
    torch.manual_seed(123)  # the global RNG is restored from the checkpoint, not from here
    train(
        part, WindowSampler(seqs, special, 32, 1), spec, checkpoint=tmp_path / "p.pt", stop_after=6
    )
    again = tiny(saved_tok)
    log_path = tmp_path / "log.tsv"
    train(
        again,
        WindowSampler(seqs, special, 32, 1),
        spec,
        checkpoint=tmp_path / "p.pt",
        log_path=log_path,
    )
    for (k, a), (_, b) in zip(ref.state_dict().items(), again.state_dict().items(), strict=True):
        assert torch.equal(a, b), k
    steps = [int(line.split("\t")[0]) for line in log_path.read_text().splitlines()[1:]]
    assert steps == [2, 4, 6, 8, 10, 12]  # the log carries on from the checkpoint, no repeats


TRAIN_SCRIPT = textwrap.dedent(
    """
    import sys, time, torch
    torch.set_num_threads(1)
    from tokentransfer.model import *
    from tokentransfer.tokenize import load_tokenizer, tokenize_file
    tok = load_tokenizer(sys.argv[1])
    special = special_ids(tok)
    seqs = [tokenize_file(tok, p) for p in sys.argv[4:]]
    spec = ModelSpec(arch="gpt2", layers=1, dim=16, heads=2, context=32, dropout=0.1)
    model = build_model(spec, len(tok), special, 0)
    ts = TrainSpec(steps=60, batch=2, lr=5e-3, warmup=2, checkpoint_every=5, log_every=5)
    train(model, WindowSampler(seqs, special, 32, 0), ts, checkpoint=sys.argv[2])
    torch.save(model.state_dict(), sys.argv[3])
    """
)


def test_sigkilled_training_resumes_to_the_same_weights(saved_tok, midi_corpora, tmp_path):
    files = [str(p) for p in sorted((midi_corpora / "tunes").glob("*.mid"))[:4]]
    script = tmp_path / "train.py"
    script.write_text(TRAIN_SCRIPT)
    args = [sys.executable, str(script), str(saved_tok[1])]
    subprocess.run(
        [*args, str(tmp_path / "ref.pt"), str(tmp_path / "ref.weights"), *files],
        check=True,
        timeout=300,
    )
    ckpt = tmp_path / "killed.pt"
    proc = subprocess.Popen([*args, str(ckpt), str(tmp_path / "k.weights"), *files])
    deadline = time.time() + 120
    while not ckpt.exists() and time.time() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert ckpt.exists() and not (tmp_path / "k.weights").exists(), "killed too late"
    step = torch.load(ckpt, weights_only=True)["step"]
    assert 0 < step < 60
    subprocess.run([*args, str(ckpt), str(tmp_path / "k.weights"), *files], check=True, timeout=300)
    ref = torch.load(tmp_path / "ref.weights", weights_only=True)
    got = torch.load(tmp_path / "k.weights", weights_only=True)
    for k in ref:
        assert torch.equal(ref[k], got[k]), k


def test_local_model_round_trip_and_named_errors(saved_tok, tmp_path):
    tokenizer, tok_path = saved_tok
    model = tiny(saved_tok)
    digest = save_model(model, tok_path, tmp_path / "m")
    assert len(digest) == 64
    loaded, loaded_tok = load_model(tmp_path / "m")
    assert len(loaded_tok) == len(tokenizer)
    for (k, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert torch.equal(a, b), k
    other = tmp_path / "other.json"
    save_tokenizer(build_tokenizer({"kind": "REMI"}), other)  # no program tokens: fewer
    with pytest.raises(ModelError, match=r"vocab mismatch: model .* vocab_size \d+ .*other.json"):
        load_model(tmp_path / "m", other)
    (tmp_path / "m" / "model.safetensors").unlink()
    with pytest.raises(ModelError, match="model file missing: .*model.safetensors"):
        load_model(tmp_path / "m")


def test_embedding_tables_equal_the_weights(saved_tok, seqs, tmp_path):
    model = tiny(saved_tok)
    special = special_ids(saved_tok[0])
    pos, kind = position_table(model)
    ctx, count = contextual(model, seqs[:3], special)
    write_embeddings(
        tmp_path / "e.h5",
        token=token_table(model),
        position=pos,
        position_kind=kind,
        contextual_table=ctx,
        count=count,
        attrs={"model_hash": "m", "tokenizer_hash": "t", "manifest_hash": "c"},
    )
    cache = read_embeddings(tmp_path / "e.h5")
    assert np.array_equal(cache["token"], model.transformer.wte.weight.detach().numpy())
    assert np.array_equal(cache["position"], model.transformer.wpe.weight.detach().numpy())
    assert cache["attrs"]["position_kind"] == "learned"
    assert cache["count"].sum() == sum(len(s) + 2 for s in seqs[:3])


def test_contextual_equals_a_direct_computation(saved_tok, seqs):
    """Windows over long pieces give the same means as a per-position direct computation."""
    model = tiny(saved_tok)
    model.eval()
    special = special_ids(saved_tok[0])
    data = seqs[:3]
    ctx, count = contextual(model, data, special, batch=3, stride=8)
    vocab, dim = model.transformer.wte.weight.shape
    sums = np.zeros((vocab, dim))
    n = np.zeros(vocab, dtype=int)
    length, stride = 32, 8
    with torch.no_grad():
        for s in data:
            piece = np.concatenate([[special["bos"]], s, [special["eos"]]])
            for pos in range(len(piece)):
                # the window that counts position pos starts at the largest multiple of stride
                # such that pos sits in its counted part
                start = 0 if pos < length else ((pos - length) // stride + 1) * stride
                w = torch.from_numpy(piece[start : start + length]).long()[None]
                h = model(input_ids=w, output_hidden_states=True).hidden_states[-1][0]
                sums[piece[pos]] += h[pos - start].double().numpy()
                n[piece[pos]] += 1
    assert np.array_equal(count, n)
    seen = n > 0
    np.testing.assert_allclose(ctx[seen], (sums[seen] / n[seen, None]), rtol=1e-4, atol=1e-5)
    assert np.all(ctx[~seen] == 0)


def test_windows_count_every_position_once():
    for n in (5, 32, 33, 100, 257):
        covered = []
        for start, first in windows(np.zeros(n), 32, 8):
            end = min(start + 32, n)
            covered += list(range(start + first, end))
        assert covered == list(range(n)), n


def test_llama_has_computed_sinusoids(saved_tok):
    spec = ModelSpec(arch="llama", layers=1, dim=16, heads=2, context=32, dropout=0.0)
    model = tiny(saved_tok, spec)
    pos, kind = position_table(model)
    assert kind.startswith("sinusoidal") and pos.shape == (32, 16)
    assert np.array_equal(pos, sinusoids(32, 16))


def test_bad_specs_are_refused(saved_tok):
    with pytest.raises(ModelError, match="model.arch"):
        tiny(saved_tok, ModelSpec(arch="rnn"))
    with pytest.raises(ModelError, match="model.dim"):
        tiny(saved_tok, ModelSpec(dim=10, heads=3))
