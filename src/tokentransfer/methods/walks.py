"""The random walks with restart: on the pieces' successor counts (``counts``) or biased by the
node embeddings of a graph network (the variants ``emb``, ``emb_pos``, ``emb_neighbours``,
``contextual``, ``random``), trained by :func:`tokentransfer.linkpred.train_network`."""

from __future__ import annotations

import time

import numpy as np

from .registry import LINKPRED_KEYS, WALK_KEYS, CannotFit, Env, Fitted, Method


class Walk(Method):
    """The biased random walk with restart on the successor counts of the pieces (and their
    grammar contexts unless ``generate.context`` is none); ``counts`` walks on the counts alone,
    a graph-network variant is biased by the node embeddings of a network trained by link
    prediction on the pieces' graph (first seed and encoder of ``linkpred``). In the evaluation the
    walks are rule ``generate``'s, from the graphs and networks of the whole training part."""

    kind = "graph"
    folder = "generated"
    fewshot = "point"

    def __init__(self, name: str) -> None:
        self.name = name
        self.graph_network = name != "counts"
        self.reads = {"generate": WALK_KEYS, "evaluate": ("bits_tokens",)}
        if self.graph_network:
            self.reads = {
                **self.reads,
                "graph": ("offset_weights", "self_loops"),
                "linkpred": LINKPRED_KEYS,
            }

    def fit(self, pieces, env):
        from ..graph import context_successors, successors
        from ..likelihood import walk_log_probs
        from ..walk import Walker

        t0 = time.perf_counter()
        succ = successors(pieces, len(env.tokenizer))
        cfg = env.walk_config()
        ctx = context_successors(pieces, env.tokenizer) if cfg.context != "none" else None
        h = nodes = None
        if self.graph_network:
            try:
                h, nodes = self.network(pieces, env)
            except ValueError as exc:  # a graph too small to split into train/val/test pairs
                raise CannotFit(f"no graph network ({exc})") from exc
        walker = Walker(succ, env.tokenizer, h, nodes, cfg, ctx, walk_tables(pieces, env, cfg))
        adapt = time.perf_counter() - t0

        def sample(n, length, seed, prompt=None):
            return walker.generate(n, length, prompt=prompt, seed=seed)

        return Fitted(sample, lambda s: walk_log_probs(walker, s), {}, adapt)

    def network(self, pieces, env) -> tuple[np.ndarray, np.ndarray]:
        """The node embeddings and vocabulary ids of the graph network of this variant on the
        co-occurrence graph of ``pieces`` (``graph.offset_weights``, ``self_loops``), trained
        by :func:`tokentransfer.linkpred.train_network` as rule ``linkpred`` trains its first
        seed and encoder (``linkpred.seeds[0]``, ``encoders[0]``)."""
        from ..graph import cooccurrence
        from ..linkpred import standardise, train_network, variant_graph

        hp, seed = env.linkpred, env.linkpred["seeds"][0]
        offsets, loops = env.graph["offset_weights"], env.graph["self_loops"]
        a = cooccurrence(pieces, len(env.tokenizer), offsets, loops)
        nodes, raw, pairs = variant_graph(self.name, a, env.embedding_cache, seed=seed)
        net = train_network(pairs, standardise(raw), hp, encoder=hp["encoders"][0], seed=seed)
        return net.embeddings, nodes


def walk_tables(pieces, env: Env, cfg):
    """The walk's interval and form tables counted on ``pieces`` (None where ``cfg`` walks
    without melody and form)."""
    if cfg.melody == "none" and cfg.form == "none":
        return None
    from ..walkform import count_tables

    return count_tables(pieces, env.tokenizer)
