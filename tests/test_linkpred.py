"""Leak-free link prediction: split properties, metrics, heuristics, planted structure, the
original's leaky protocol, determinism. Real DGL throughout (no mocks)."""

from __future__ import annotations

import logging
from copy import deepcopy

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from tokentransfer import linkpred as lp


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny graphs: one intra-op thread is ~10x faster than two on a shared 2-core box."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# --------------------------------------------------------------------------- helpers


def random_graph(n_vocab: int, n_used: int, density: float, seed: int) -> sp.csr_matrix:
    """Directed counts over ``n_used`` of ``n_vocab`` ids: one-way and two-way edges, self
    co-occurrences on the diagonal, a token with only a self co-occurrence, unused ids."""
    rng = np.random.default_rng(seed)
    used = np.sort(rng.choice(n_vocab - 1, n_used, replace=False))
    M = np.zeros((n_vocab, n_vocab))
    block = (rng.random((n_used, n_used)) < density) * rng.integers(1, 5, (n_used, n_used))
    M[np.ix_(used, used)] = block
    M[used, used] += rng.integers(0, 3, n_used)  # self co-occurrences
    M[n_vocab - 1, n_vocab - 1] = 7  # a token seen only next to itself
    return sp.csr_matrix(M)


def planted(k: int, size: int, p_in: float, p_out: float, seed: int, dim: int = 16):
    """``k`` dense communities (directed counts both ways), features = community mean + noise,
    and the true pair probabilities."""
    rng = np.random.default_rng(seed)
    n = k * size
    community = np.repeat(np.arange(k), size)
    prob = np.where(community[:, None] == community[None, :], p_in, p_out)
    upper = np.triu(rng.random((n, n)) < prob, 1)
    counts = upper * rng.integers(1, 4, (n, n))
    A = sp.csr_matrix(counts + counts.T * (rng.random((n, n)) < 0.8))
    features = 2.0 * rng.standard_normal((k, dim))[community] + rng.standard_normal((n, dim))
    return A, features, prob


def pair_set(pairs: np.ndarray) -> set[tuple[int, int]]:
    return {(int(u), int(v)) for u, v in pairs}


def both_ways(pairs: np.ndarray) -> set[tuple[int, int]]:
    return pair_set(pairs) | {(v, u) for u, v in pair_set(pairs)}


# --------------------------------------------------------------------------- nodes and pairs


def test_used_nodes_pairs_and_weights():
    A = sp.csr_matrix(
        np.array(
            [
                [5, 2, 0, 0, 0, 0],  # 0 -> 1 (and a self co-occurrence)
                [1, 0, 0, 3, 0, 0],  # 1 -> 0, 1 -> 3
                [0, 0, 9, 0, 0, 0],  # 2: only itself: not used
                [0, 0, 0, 0, 0, 0],  # 3: only incoming: used
                [0, 0, 0, 0, 0, 0],  # 4: unused
                [0, 0, 0, 4, 0, 0],  # 5 -> 3
            ]
        )
    )
    nodes = lp.used_nodes(A)
    assert nodes.tolist() == [0, 1, 3, 5]
    pairs = lp.undirected_pairs(A, nodes)
    assert pairs.tolist() == [[0, 1], [1, 2], [2, 3]]  # local ids
    assert lp.pair_weights(A, nodes, pairs).tolist() == [3, 3, 4]


GRAPHS = [  # n_vocab, n_used, density, seed
    (60, 40, 0.08, 0),
    (60, 40, 0.08, 1),
    (90, 70, 0.03, 2),
    (40, 30, 0.30, 3),
]


@pytest.mark.parametrize(("n_vocab", "n_used", "density", "graph_seed"), GRAPHS)
@pytest.mark.parametrize("seed", [0, 7])
def test_split_properties(n_vocab, n_used, density, graph_seed, seed):
    A = random_graph(n_vocab, n_used, density, graph_seed)
    nodes = lp.used_nodes(A)
    assert n_vocab - 1 not in nodes  # the self-only token is not a node
    n = len(nodes)
    local = A[nodes][:, nodes].toarray()
    pairs = lp.undirected_pairs(A, nodes)
    split = lp.split_pairs(pairs, n, 0.1, 0.15, seed=seed)

    positives = [split.train_pos, split.val_pos, split.test_pos]
    negatives = [split.val_neg, split.test_neg]
    for arr in positives + negatives:
        assert arr.ndim == 2 and arr.shape[1] == 2
        assert np.all(arr[:, 0] < arr[:, 1])  # canonical, so no self-loops anywhere
        assert len(pair_set(arr)) == len(arr)  # no duplicates (without replacement)
    # every corpus pair lands in exactly one positive split, never with its reverse elsewhere
    sets = [both_ways(p) for p in positives]
    for i in range(3):
        for j in range(i + 1, 3):
            assert not sets[i] & sets[j]
    assert set().union(*map(pair_set, positives)) == pair_set(pairs)
    assert sum(map(len, positives)) == len(pairs)
    assert len(split.test_pos) == round(0.15 * len(pairs))
    assert len(split.val_pos) == round(0.1 * len(pairs))
    # negatives: true non-pairs of the FULL graph, as many as positives, val/test disjoint
    for neg, pos in zip(negatives, positives[1:], strict=True):
        assert len(neg) == len(pos)
        u, v = neg[:, 0], neg[:, 1]
        assert np.all(local[u, v] == 0) and np.all(local[v, u] == 0)
    assert not pair_set(split.val_neg) & pair_set(split.test_neg)
    # deterministic under the seed, different under another
    again = lp.split_pairs(pairs, n, 0.1, 0.15, seed=seed)
    other = lp.split_pairs(pairs, n, 0.1, 0.15, seed=seed + 1)
    for name in ("train_pos", "val_pos", "test_pos", "val_neg", "test_neg"):
        assert np.array_equal(getattr(split, name), getattr(again, name))
    assert not np.array_equal(split.test_pos, other.test_pos)
    assert not np.array_equal(split.test_neg, other.test_neg)
    # the message graph holds the training pairs both ways, self loops, nothing held out
    g = lp.message_graph(split, n)
    src, dst = (t.numpy() for t in g.edges())
    edges = set(zip(src.tolist(), dst.tolist(), strict=True))
    assert g.num_nodes() == n
    assert {(u, v) for u, v in edges if u != v} == both_ways(split.train_pos)
    assert {u for u, v in edges if u == v} == set(range(n))
    assert not edges & (both_ways(split.val_pos) | both_ways(split.test_pos))
    bare = lp.message_graph(split, n, self_loops=False)
    assert bare.num_edges() == 2 * len(split.train_pos)
    # training negatives: never a positive, never a val/test negative, no duplicates
    rng = np.random.default_rng(seed)
    free = n * (n - 1) // 2 - len(pairs) - len(split.val_neg) - len(split.test_neg)
    for _ in range(3):
        tn = lp.train_negatives(split, pairs, len(split.train_pos), rng)
        assert len(tn) == min(len(split.train_pos), free)
        assert np.all(tn[:, 0] < tn[:, 1]) and len(pair_set(tn)) == len(tn)
        assert np.all(local[tn[:, 0], tn[:, 1]] == 0) and np.all(local[tn[:, 1], tn[:, 0]] == 0)
        assert not pair_set(tn) & (pair_set(split.val_neg) | pair_set(split.test_neg))


def test_split_rejection_sampling_path():
    """A graph with > 2M candidate pairs draws negatives by rejection: same guarantees."""
    rng = np.random.default_rng(5)
    n = 2100
    u, v = rng.integers(0, n, 6000), rng.integers(0, n, 6000)
    A = sp.csr_matrix((np.ones(6000), (u, v)), shape=(n, n))
    nodes = lp.used_nodes(A)
    pairs = lp.undirected_pairs(A, nodes)
    split = lp.split_pairs(pairs, len(nodes), seed=3)
    assert len(nodes) * (len(nodes) - 1) // 2 > lp._ENUMERATE_MAX
    pos = pair_set(pairs)
    for neg in (split.val_neg, split.test_neg):
        assert len(neg) == len(split.test_pos) and len(pair_set(neg)) == len(neg)
        assert np.all(neg[:, 0] < neg[:, 1]) and not pair_set(neg) & pos
    assert not pair_set(split.val_neg) & pair_set(split.test_neg)
    tn = lp.train_negatives(split, pairs, 5000, np.random.default_rng(0))
    assert len(pair_set(tn)) == 5000 and not pair_set(tn) & pos
    assert not pair_set(tn) & (pair_set(split.val_neg) | pair_set(split.test_neg))


def test_split_of_a_dense_graph_takes_all_non_pairs_and_warns(caplog):
    n = 12
    full = np.ones((n, n)) - np.eye(n)
    for u, v in ((0, 5), (2, 9), (3, 4)):  # the only non-pairs
        full[u, v] = full[v, u] = 0
    A = sp.csr_matrix(full)
    nodes = lp.used_nodes(A)
    pairs = lp.undirected_pairs(A, nodes)
    with caplog.at_level(logging.WARNING, logger="tokentransfer.linkpred"):
        split = lp.split_pairs(pairs, n, seed=0)
    assert "too dense" in caplog.text
    negatives = np.concatenate([split.val_neg, split.test_neg])
    assert pair_set(negatives) == {(0, 5), (2, 9), (3, 4)}
    assert len(split.val_neg) >= 1 and len(split.test_neg) >= 1


def test_split_canonicalises_reverse_pairs_and_drops_self_loops():
    given = np.array([[0, 1], [1, 0], [2, 2], [3, 1], [1, 3], [4, 2], [5, 5], [0, 4], [2, 3]])
    split = lp.split_pairs(given, 6, 0.2, 0.2, seed=0)
    positives = np.concatenate([split.train_pos, split.val_pos, split.test_pos])
    assert pair_set(positives) == {(0, 1), (1, 3), (2, 4), (0, 4), (2, 3)}
    assert len(positives) == 5


def test_split_rejects_bad_fractions_and_tiny_graphs():
    pairs = np.array([[0, 1], [1, 2], [0, 2]])
    with pytest.raises(ValueError):
        lp.split_pairs(pairs, 3, 0.5, 0.5)
    with pytest.raises(ValueError):  # a non-zero fraction holds out >= 1 pair: none left
        lp.split_pairs(pairs[:2], 3, 0.1, 0.1)
    split = lp.split_pairs(pairs, 3, 0.1, 0.1)
    assert [len(split.train_pos), len(split.val_pos), len(split.test_pos)] == [1, 1, 1]
    with pytest.raises(ValueError):
        lp.train_link_predictor(
            lp.message_graph(split), np.eye(3), lp.split_pairs(pairs, 3, 0.0, 0.1)
        )


# --------------------------------------------------------------------------- features


def test_variant_features_and_pairs():
    rng = np.random.default_rng(0)
    V, d, L = 12, 6, 9
    emb = {
        "token": rng.standard_normal((V, d)),
        "position": rng.standard_normal((L, d)),
        "contextual": rng.standard_normal((V, d)),
        "count": rng.integers(0, 5, V),
    }
    emb["token"][:, 2] = 3.0  # a constant column
    nodes = np.array([1, 3, 4, 8, 10])
    for variant in lp.VARIANTS:
        x = lp.variant_features(variant, nodes, emb, seed=1)
        assert x.shape == (5, L if variant == "emb_pos" else d) and x.dtype == np.float32
        assert np.allclose(x.mean(axis=0), 0, atol=1e-6)
        assert np.allclose(x.std(axis=0)[x.std(axis=0) > 0], 1, atol=1e-5)
    assert np.all(lp.variant_features("emb", nodes, emb)[:, 2] == 0)  # zero variance guarded
    raw = lp.raw_features("emb_pos", nodes, emb)
    assert np.allclose(raw, emb["token"][nodes] @ emb["position"].T)
    r1, r2 = (lp.variant_features("random", nodes, emb, seed=s) for s in (1, 2))
    assert np.array_equal(r1, lp.variant_features("random", nodes, emb, seed=1))
    assert not np.allclose(r1, r2)
    # circular variants: pairs of positive raw cosine; the others: corpus pairs
    feats = np.array([[1.0, 0.0], [0.9, 0.1], [-1.0, 0.0], [0.0, 1.0]])
    assert lp.variant_pairs("emb", None, None, feats).tolist() == [[0, 1], [1, 3]]
    A = sp.csr_matrix(np.array([[0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 2], [0, 0, 0, 0]]))
    nodes4 = lp.used_nodes(A)
    assert lp.variant_pairs("random", A, nodes4, feats).tolist() == [[0, 1], [2, 3]]
    assert np.allclose(lp.cosine_scores(feats, np.array([[0, 2], [0, 3]])), [-1.0, 0.0])
    with pytest.raises(ValueError):
        lp.variant_features("nope", nodes, emb)


# --------------------------------------------------------------------------- metrics


def test_metrics_known_answers():
    pos, neg = np.array([3.0, 4.0, 5.0]), np.array([0.0, 1.0, 2.0])
    assert lp.link_metrics(pos, neg) == {"auc": 1.0, "ap": 1.0, "hits@20": 1.0}
    assert lp.auc(neg, pos) == 0.0
    assert lp.hits_at_k(neg, pos) == 0.0
    assert lp.auc(np.ones(4), np.ones(5)) == 0.5
    assert lp.average_precision(np.ones(2), np.ones(1)) == pytest.approx(2 / 3)
    # P N P N at 0.9 0.7 0.5 0.1
    pos, neg = np.array([0.9, 0.5]), np.array([0.7, 0.1])
    assert lp.auc(pos, neg) == 0.75
    assert lp.average_precision(pos, neg) == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    assert lp.hits_at_k(pos, neg, k=1) == 0.5  # strictly above the best negative
    assert lp.hits_at_k(pos, neg, k=20) == 1.0  # fewer than k negatives: the lowest
    assert lp.hits_at_k(np.array([0.7]), neg, k=1) == 0.0  # a tie is not a hit
    assert lp.auc(np.array([1.0, 0.0]), np.array([0.0])) == 0.75  # one tie counts half


def test_heuristics_on_a_hand_made_graph():
    train = np.array([[0, 1], [0, 2], [1, 2], [1, 3], [2, 3], [3, 4]])
    empty = np.empty((0, 2), dtype=np.int64)
    split = lp.PairSplit(train, empty, np.array([[0, 3]]), empty, np.array([[0, 4]]), 6)
    scores = lp.heuristic_scores(split)
    cn_pos, cn_neg = scores["common_neighbours"]
    assert cn_pos.tolist() == [2] and cn_neg.tolist() == [0]  # N(0)={1,2}, N(3)={1,2,4}
    aa_pos, aa_neg = scores["adamic_adar"]
    assert aa_pos[0] == pytest.approx(2 / np.log(3)) and aa_neg[0] == 0
    pa_pos, pa_neg = scores["preferential_attachment"]
    assert pa_pos.tolist() == [6] and pa_neg.tolist() == [2]


# --------------------------------------------------------------------------- the model


def test_scorer_is_symmetric_and_both_encoders_run():
    rng = np.random.default_rng(0)
    split = lp.split_pairs(np.argwhere(np.triu(rng.random((20, 20)) < 0.3, 1)), 20, seed=0)
    g = lp.message_graph(split, 20)
    x = torch.randn(20, 5)
    pairs = torch.tensor([[0, 3], [4, 9], [7, 1]])
    for encoder in lp.ENCODERS:
        for layers in (1, 3):
            model = lp.LinkPredictor(5, hidden=8, layers=layers, encoder=encoder).eval()
            h = model.embed(g, x)
            assert h.shape == (20, 8)
            assert torch.allclose(model.score(h, pairs), model.score(h, pairs.flip(1)))


def test_planted_communities_and_a_null_graph():
    """(a) informative features on a graph with planted communities: test AUC > 0.9 and
    within 0.05 of the Bayes-optimal AUC (true pair probabilities as scores) on the same split.
    (b) random features on an Erdős–Rényi graph (edges independent of features, no structure):
    test AUC within 0.5 +- 0.1. (c) random features on the planted graph still score well
    (message passing exploits structure), so ``random`` is a structure-only control."""
    A, features, prob = planted(k=4, size=30, p_in=0.5, p_out=0.002, seed=0)
    nodes = lp.used_nodes(A)
    split = lp.split_pairs(lp.undirected_pairs(A, nodes), len(nodes), 0.15, 0.15, seed=0)
    p = prob[np.ix_(nodes, nodes)]
    oracle = lp.auc(p[tuple(split.test_pos.T)], p[tuple(split.test_neg.T)])
    assert oracle > 0.9  # so that the threshold below is reachable at all
    g = lp.message_graph(split, len(nodes))
    x = lp.standardise(features[nodes])
    model, history, best = lp.train_link_predictor(g, x, split, hidden=32, epochs=200, seed=0)
    test = lp.evaluate(model, g, x, split)["test"]
    assert test["auc"] > 0.9 and test["auc"] >= oracle - 0.05, (test, oracle)
    assert best["val_auc"] == max(h["val_auc"] for h in history)
    assert len(history) > best["epoch"] + 1  # it stopped early, after the best epoch ...
    # ... and the best weights are the ones returned
    assert lp.evaluate(model, g, x, split)["val"]["auc"] == pytest.approx(best["val_auc"])
    assert best["embeddings"].shape == (len(nodes), 32)
    assert lp.auc(*(lp.cosine_scores(x, s) for s in (split.test_pos, split.test_neg))) > 0.8

    noise = np.random.default_rng(1).standard_normal(x.shape).astype(np.float32)
    model, _, _ = lp.train_link_predictor(g, noise, split, hidden=32, epochs=200, seed=0)
    assert lp.evaluate(model, g, noise, split)["test"]["auc"] > 0.8  # (c)

    rng = np.random.default_rng(100)
    er = sp.csr_matrix((rng.random((200, 200)) < 0.025).astype(float))
    er_nodes = lp.used_nodes(er)
    er_split = lp.split_pairs(lp.undirected_pairs(er, er_nodes), len(er_nodes), 0.2, 0.2, seed=0)
    assert len(er_split.test_pos) > 150  # enough pairs: the AUC's sd is ~0.03
    er_g = lp.message_graph(er_split, len(er_nodes))
    er_x = rng.standard_normal((len(er_nodes), 16)).astype(np.float32)
    model, _, _ = lp.train_link_predictor(er_g, er_x, er_split, hidden=32, epochs=200, seed=0)
    assert abs(lp.evaluate(model, er_g, er_x, er_split)["test"]["auc"] - 0.5) < 0.1
    for pos, neg in lp.heuristic_scores(er_split).values():
        assert abs(lp.auc(pos, neg) - 0.5) < 0.1


def test_training_is_deterministic_under_a_seed():
    A, features, _ = planted(k=2, size=20, p_in=0.4, p_out=0.02, seed=3)
    nodes = lp.used_nodes(A)
    split = lp.split_pairs(lp.undirected_pairs(A, nodes), len(nodes), seed=1)
    g = lp.message_graph(split, len(nodes))
    x = lp.standardise(features[nodes])
    runs = []
    for seed in (4, 4, 5):
        model, history, best = lp.train_link_predictor(
            g, x, split, encoder="sage", hidden=16, epochs=15, patience=100, seed=seed
        )
        runs.append((history, lp.evaluate(model, g, x, split), best["embeddings"]))
    assert runs[0][0] == runs[1][0] and runs[0][1] == runs[1][1]
    assert np.array_equal(runs[0][2], runs[1][2])
    assert runs[0][0] != runs[2][0]


# --------------------------------------------------------------------------- the original


def test_original_protocol_reproduces_its_leaks():
    A, features, _ = planted(k=2, size=20, p_in=0.4, p_out=0.02, seed=2)
    nodes = lp.used_nodes(A)
    n = len(nodes)
    x = lp.standardise(features[nodes])
    out = lp.original_protocol(A, nodes, x, seed=0, epochs=20, hidden=32)
    assert out["protocol"] == "original (leaky)"
    assert all(0 <= out[k] <= 1 for k in ("auc", "ap", "hits@20"))

    split = lp.original_split(A, nodes, seed=0)
    assert out["n_test_pos"] == len(split.test_pos) == int(0.1 * len(split.edges))
    directed = {(int(u), int(v)) for u, v in zip(*A[nodes][:, nodes].nonzero(), strict=True)}
    assert pair_set(split.edges) == directed | {(u, u) for u in range(n)}
    assert out["self_loop_positives"] == n
    train = pair_set(split.train_pos)
    test_loops = sum(u == v for u, v in pair_set(split.test_pos))
    reverse_in_train = sum((v, u) in train for u, v in pair_set(split.test_pos) if u != v)
    assert out["test_self_loops"] == test_loops > 0
    assert out["test_reverse_in_train"] == reverse_in_train > 0
    negs = [tuple(map(int, p)) for p in np.concatenate([split.train_neg, split.test_neg])]
    assert out["neg_duplicates"] == len(negs) - len(set(negs)) > 0  # drawn with replacement
    assert not set(negs) & pair_set(split.edges)  # never a directed positive ...
    assert out["neg_reverse_is_positive"] == sum((v, u) in directed for u, v in negs) > 0
    # ... while the leak-free split on the same graph has none of these
    fair = lp.split_pairs(lp.undirected_pairs(A, nodes), n, seed=0)
    assert not both_ways(fair.test_pos) & both_ways(fair.train_pos)


# --------------------------------------------------------------------------- the entry point

HP = {
    "seeds": [2],
    "encoders": ["gcn"],
    "hidden": 16,
    "layers": 2,
    "dropout": 0.1,
    "lr": 0.01,
    "epochs": 30,
    "patience": 8,
    "val_fraction": 0.15,
    "test_fraction": 0.15,
    "original_protocol": False,
    "original_epochs": 2,
}


def planted_inputs(seed: int):
    """Pairs and standardised features of a planted graph (the inputs of train_network)."""
    A, features, _ = planted(k=3, size=15, p_in=0.4, p_out=0.02, seed=seed)
    nodes = lp.used_nodes(A)
    return lp.undirected_pairs(A, nodes), lp.standardise(features[nodes])


def state(model) -> dict[str, bytes]:
    return {k: v.detach().cpu().numpy().tobytes() for k, v in model.state_dict().items()}


def test_train_network_splits_trains_reuses_a_split_and_continues_a_start():
    pairs, x = planted_inputs(5)
    net = lp.train_network(pairs, x, HP, encoder="gcn", seed=2)
    split = lp.split_pairs(pairs, len(x), HP["val_fraction"], HP["test_fraction"], 2)
    assert all(np.array_equal(getattr(net.split, k), getattr(split, k)) for k in split.sizes())
    assert net.graph.num_nodes() == len(x) and net.embeddings.shape == (len(x), 16)
    assert len(net.history) <= HP["epochs"] and net.best["val_auc"] > 0.8
    assert "start_val_auc" not in net.best
    again = lp.train_network(pairs, x, HP, encoder="gcn", seed=2, split=net.split)
    assert np.array_equal(again.embeddings, net.embeddings) and again.history == net.history
    other = lp.train_network(pairs, x, HP, encoder="sage", seed=2, split=net.split)
    assert other.split is net.split and other.model.encoder == "sage"

    # continuing on another graph: zero epochs keep the start; more keep its weights as epoch -1
    pairs_t, x_t = planted_inputs(6)
    start = net.model
    kept = lp.train_network(
        pairs_t, x_t, HP, encoder="gcn", seed=3, start=deepcopy(start), epochs=0
    )
    assert kept.history == [] and kept.best["epoch"] == -1
    assert kept.best["val_auc"] == kept.best["start_val_auc"] > 0.5
    assert state(kept.model) == state(start)
    moved = lp.train_network(pairs_t, x_t, HP, encoder="gcn", seed=3, start=deepcopy(start))
    assert moved.best["start_val_auc"] == kept.best["start_val_auc"]
    assert moved.best["epoch"] >= 0 and moved.best["val_auc"] > moved.best["start_val_auc"]
    assert state(moved.model) != state(start)
    assert lp.evaluate(moved.model, moved.graph, x_t, moved.split)["val"]["auc"] == pytest.approx(
        moved.best["val_auc"]
    )


def test_the_job_the_walk_and_the_transplant_train_the_same_network(tmp_path):
    """Rule linkpred's job, a graph-network walk and the transplant's base network are one
    training (train_network): on the same graph, features, settings and seed they give the
    same weights and node embeddings, bit for bit."""
    import h5py

    from tokentransfer import methods
    from tokentransfer.embed import write_embeddings
    from tokentransfer.graph import cooccurrence, save_matrix
    from tokentransfer.jobs.graph import run_linkpred
    from tokentransfer.transplant import transplant_embeddings

    rng = np.random.default_rng(11)
    vocab, offsets = 40, [1.0, 0.5]
    pieces = [rng.integers(0, 32, rng.integers(20, 60)) for _ in range(14)]
    token = rng.standard_normal((vocab, 12)).astype(np.float32)
    write_embeddings(
        tmp_path / "emb.h5",
        token=token,
        position=rng.standard_normal((8, 12)).astype(np.float32),
        position_kind="learned",
        contextual_table=token,
        count=np.ones(vocab),
        attrs={},
    )
    save_matrix(cooccurrence(pieces, vocab, offsets, True), tmp_path / "adjacency.npz")
    out = tmp_path / "job"
    run_linkpred(
        adjacency=str(tmp_path / "adjacency.npz"),
        embeddings=str(tmp_path / "emb.h5"),
        variant="emb_neighbours",  # features: the token table; pairs: the corpus's
        encoders=HP["encoders"],
        seeds=HP["seeds"],
        hp=HP,
        checkpoint=str(out / "checkpoint.pt"),
        nodes_h5=str(out / "nodes.h5"),
        log_tsv=str(out / "training_log.tsv"),
        metrics_json=str(out / "metrics.json"),
    )
    job_state = torch.load(out / "checkpoint.pt", weights_only=True)
    with h5py.File(out / "nodes.h5") as h5:
        job_h, job_ids = h5["embeddings"][:], h5["vocab_ids"][:]

    env = methods.Env(
        tokenizer=list(range(vocab)),  # the walk's network reads only the vocabulary's size
        tokenizer_json="",
        gen={},
        graph={"offset_weights": offsets, "self_loops": True},
        linkpred=HP,
        embeddings=str(tmp_path / "emb.h5"),
    )
    walk_h, walk_ids = methods.get("emb_neighbours").network(pieces, env)

    ge, base_net = transplant_embeddings(
        pieces, pieces, token, HP, offset_weights=tuple(offsets), encoder="gcn", seed=2,
        target_epochs=0,
    )  # fmt: skip

    a = cooccurrence(pieces, vocab, offsets)
    nodes = lp.used_nodes(a)
    direct = lp.train_network(
        lp.undirected_pairs(a, nodes), lp.standardise(token[nodes]), HP, encoder="gcn", seed=2
    )
    assert len(direct.history) > 1
    for ids in (job_ids, walk_ids, ge.base_ids):
        assert np.array_equal(ids, nodes)
    for h in (job_h, walk_h):
        assert h.tobytes() == direct.embeddings.tobytes()
    assert state(base_net) == state(direct.model)
    assert {k: v.numpy().tobytes() for k, v in job_state.items()} == state(direct.model)
    assert ge.base_val_auc == direct.best["val_auc"]
