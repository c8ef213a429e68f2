"""The kNN-LM's approximate search (tokentransfer.knnindex, faiss's IVF index): against exact
search on real keys (a tiny transformer's hidden states of real fiddle tunes), the restricted
search the choice of lambda uses, missing neighbours, seeding, and the registry's method with
``search: ivf``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.tiny import tiny_model
from tokentransfer import knn
from tokentransfer.knn import Datastore, build_datastore, index_store, knn_mixture, restricted
from tokentransfer.knnindex import IvfIndex, auto_lists
from tokentransfer.model import save_model, special_ids
from tokentransfer.tokenize import save_tokenizer

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def model(tok):
    return tiny_model(tok).eval()


@pytest.fixture(scope="module")
def store(model, tok, tunes):
    return build_datastore(model, tunes[:10], special_ids(tok)["bos"])


@pytest.fixture(scope="module")
def queries(model, tok, tunes):
    held = build_datastore(model, tunes[12:14], special_ids(tok)["bos"])
    return held.keys[:300]


def _ivf(store: Datastore, **kw) -> Datastore:
    s = knn.settings({"search": "ivf", **kw})
    return index_store(Datastore(store.keys, store.values, store.piece, store.position), s, 0)


def test_scanning_every_list_is_exact_search(store, queries):
    """nprobe = lists scans every key: the same neighbours and distances as exact search."""
    ivf = _ivf(store, lists=8, nprobe=8)
    assert ivf.index.lists == 8 and ivf.index.nprobe == 8
    d_exact, v_exact = store.search(queries, 16)
    d_ivf, v_ivf = ivf.search(queries, 16)
    assert torch.allclose(d_ivf, d_exact, rtol=1e-4, atol=1e-3)
    # ties aside, the same values (the values of equal distances may come in another order)
    assert (v_ivf == v_exact).float().mean() > 0.99


def test_a_few_lists_find_most_true_neighbours_and_never_closer_ones(store, queries):
    """With 2 of 32 lists scanned, a found neighbour is a real key at its true distance: the
    k-th distance is never below the exact k-th, and most of the exact 16 are found."""
    ivf = _ivf(store, lists=32, nprobe=2)
    d_exact, _ = store.search(queries, 16)
    d_ivf, _ = ivf.search(queries, 16)
    assert (d_ivf[:, -1] >= d_exact[:, -1] - 1e-3).all()
    # the nearest neighbour: found exactly for most queries (it is usually in the nearest list)
    assert (torch.isclose(d_ivf[:, 0], d_exact[:, 0], rtol=1e-4, atol=1e-3)).float().mean() > 0.5


def test_restricted_search_returns_only_kept_keys(store, queries):
    """The choice of lambda searches the fitted pieces' keys: through the index with a bitmap,
    never a key outside it (checked by distance against exact search over the kept keys)."""
    keep = store.piece < 5
    ivf = _ivf(store, lists=8, nprobe=8)
    view = restricted(ivf, keep)
    assert len(view) == int(keep.sum())
    d_view, v_view = view.search(queries, 16)
    d_sub, v_sub = store.subset(keep).search(queries, 16)
    assert torch.allclose(d_view, d_sub, rtol=1e-4, atol=1e-3)
    d_all, _ = ivf.search(queries, 16)
    assert not torch.allclose(d_view, d_all)  # the restriction removed nearer keys


def test_missing_neighbours_weigh_nothing(store, queries):
    """Lists too few to hold k kept keys: the missing neighbours come back at distance inf and
    weigh 0; a query with none gets the transformer's distribution alone."""
    ivf = _ivf(store, lists=64, nprobe=1)
    keep = torch.zeros(len(store), dtype=torch.bool)
    keep[:3] = True
    d, v = restricted(ivf, keep).search(queries, 16)
    assert torch.isinf(d).any() and torch.isinf(d[:, 3:]).all()
    vocab = int(store.values.max()) + 1
    p_knn = knn.knn_distribution(d, v, 1.0, vocab)
    found = torch.isfinite(d).any(1)
    assert torch.allclose(p_knn[found].sum(1), torch.ones(int(found.sum()), dtype=torch.float64))
    assert (p_knn[~found] == 0).all()
    logits = torch.randn(len(d), vocab, dtype=torch.float64)
    mixed = knn_mixture(logits, d, v, 0.5, 1.0)
    assert torch.allclose(mixed[~found], torch.softmax(logits[~found], 1))


def test_the_same_seed_builds_the_same_index(store, queries):
    a = IvfIndex(store.keys, 16, 3, seed=7)
    b = IvfIndex(store.keys, 16, 3, seed=7)
    (da, ia), (db, ib) = a.search(queries, 8), b.search(queries, 8)
    assert torch.equal(da, db) and torch.equal(ia, ib)


def test_float16_keys_are_searched_as_float16(store, queries):
    """A float16 store is indexed by faiss's fp16 scalar quantizer: with every list scanned,
    the distances are exact search's over the float16 keys."""
    half = store.to("float16")
    ivf = _ivf(half, lists=4, nprobe=4, dtype="float16")
    assert ivf.keys.dtype == torch.float16
    d_exact, _ = half.search(queries, 8)
    d_ivf, _ = ivf.search(queries, 8)
    assert torch.allclose(d_ivf, d_exact, rtol=1e-3, atol=1e-2)


def test_auto_searches_exactly_up_to_the_limit(store):
    s = knn.settings({"exact_max_keys": len(store)})
    assert index_store(store, s).index is None
    s = knn.settings({"exact_max_keys": len(store) - 1, "lists": 4})
    plain = Datastore(store.keys, store.values, store.piece, store.position)
    assert index_store(plain, s).index.lists == 4
    assert auto_lists(1_000_000) == 1000 and auto_lists(1000) == 25
    assert auto_lists(100) == 2 and auto_lists(5) == 1  # faiss trains on >= 39 keys a list


def test_settings_reject_bad_search_values():
    with pytest.raises(ValueError, match="evaluate.knn.search"):
        knn.settings({"search": "hnsw"})
    with pytest.raises(ValueError, match="evaluate.knn.nprobe"):
        knn.settings({"nprobe": 0})
    with pytest.raises(ValueError, match="evaluate.knn.lists"):
        knn.settings({"lists": -1})
    with pytest.raises(ValueError, match="lists must be in"):
        IvfIndex(torch.zeros(10, 4), lists=11)


def test_the_method_with_ivf_search_records_it_and_repeats(tok, tunes, tmp_path):
    """The registry's knn with search: ivf: the record names the index, samples and bits
    are the same in a second fit with the same seed, and the bits with every list scanned
    equal exact search's."""
    from tokentransfer import methods
    from tokentransfer.methods import Env

    tok_json = tmp_path / "tokenizer.json"
    save_tokenizer(tok, tok_json)
    save_model(tiny_model(tok).eval(), tok_json, tmp_path / "hf")
    sampling = {"temperature": 1.0, "top_k": 0}

    def fit(**kw):
        ev = {"bits_tokens": 200}
        ev["knn"] = {"neighbours": 16, "lambdas": [0.0, 0.5], "temperatures": [1.0], **kw}
        env = Env(
            tok,
            str(tok_json),
            gen={},
            eval=ev,
            sampling=sampling,
            model_dir=str(tmp_path / "hf"),
            seed=0,
        )
        env.groups = [str(i // 2) for i in range(8)]
        return methods.get("knn").fit(tunes[:8], env)

    a = fit(search="ivf", lists=8, nprobe=2)
    b = fit(search="ivf", lists=8, nprobe=2)
    assert a.record["search"] == "ivf" and a.record["ivf_lists"] == 8
    assert a.record["ivf_nprobe"] == 2 and a.record["ivf_mb"] > 0
    sa, sb = a.sample(2, 40, 3), b.sample(2, 40, 3)
    assert all(np.array_equal(x, y) for x, y in zip(sa, sb, strict=True))
    seq = tunes[12][:60]
    assert np.array_equal(a.log_probs(seq), b.log_probs(seq))
    full = fit(search="ivf", lists=8, nprobe=8)
    exact = fit(search="exact")
    assert exact.record["search"] == "exact" and full.record["lambda"] == exact.record["lambda"]
    assert np.allclose(full.log_probs(seq), exact.log_probs(seq), atol=1e-4)
