"""Leak-free link prediction on a token graph, and the original's leaky protocol for reference.

The graph is a scipy.sparse CSR matrix ``A`` [V, V] of directed, weighted co-occurrence counts
over vocabulary ids. Link prediction here is about *undirected pairs*:

- ``used_nodes`` keeps the tokens with an off-diagonal edge; every later array indexes them by
  their position in that list ("local ids" 0..n-1);
- ``undirected_pairs`` turns the directed graph into pairs ``(u, v)`` with ``u < v``: a pair and
  its reverse are one pair, so they can never straddle a split; self co-occurrences are dropped;
- ``split_pairs`` makes a seeded train/val/test split of the pairs, with validation and test
  negatives drawn *without replacement* from true non-pairs of the full graph (disjoint between
  val and test); ``train_negatives`` draws fresh training negatives each epoch from the
  non-pairs that are neither positives nor val/test negatives;
- ``message_graph`` is the only graph a model sees: the training pairs in both directions, plus
  self loops (structural, for GCN normalisation; never positives);
- ``LinkPredictor`` is a GCN (``GraphConv``, norm 'both') or GraphSAGE ('mean') encoder with a
  symmetric scorer (an MLP on ``h_u * h_v``), trained full-batch with early stopping on the
  validation AUC (``train_link_predictor``); ``train_network`` is the one entry point that
  every graph network of the project is trained by (the rule's job, the graph-network walks,
  the transplant): split, message graph, training;
- metrics (``auc``, ``average_precision``, ``hits_at_k``) are numpy, and the simple heuristics
  (common neighbours, Adamic-Adar, preferential attachment, feature cosine) score the same test
  pairs from the same message graph, so a model's number always has a baseline beside it;
- ``original_protocol`` re-runs the original's set-up (identity self-loops as positives,
  directed edges split so the reverse of a test edge stays in training, negatives drawn with
  replacement, no validation) and reports, beside its metrics, how many of those leaks its split
  really holds. Its numbers are a labelled reference, never a result.

Feature variants (named in :mod:`tokentransfer.variants`): ``emb`` (model 1), ``emb_pos``
(model 2), ``emb_neighbours`` (model 3), ``contextual`` and a ``random`` control. For the two
*circular* variants the graph itself is a function of the features (pairs with positive feature
cosine), as in the original.

Modules: ``pairs`` (graph and pairs, the split), ``features``, ``metrics``, ``heuristics``,
``model`` (``LinkPredictor``, its scores), ``training`` (``train_network``,
``train_link_predictor``) and ``original`` (the original's leaky protocol); every public name
is re-exported here.
"""

from .features import (
    CIRCULAR_VARIANTS,
    VARIANTS,
    cosine_matrix,
    cosine_scores,
    raw_features,
    standardise,
    variant_features,
    variant_graph,
    variant_pairs,
)
from .heuristics import heuristic_scores
from .metrics import (
    auc,
    average_precision,
    hits_at_k,
    link_metrics,
)
from .model import (
    ENCODERS,
    LinkPredictor,
    evaluate,
    predict,
)
from .original import (
    OriginalModel,
    OriginalSplit,
    leak_counts,
    original_protocol,
    original_split,
)
from .pairs import _ENUMERATE_MAX as _ENUMERATE_MAX  # tests/test_linkpred.py reads it
from .pairs import (
    PairSplit,
    message_graph,
    pair_weights,
    split_pairs,
    train_negatives,
    undirected_pairs,
    used_nodes,
)
from .training import (
    TRAINING_KEYS,
    Network,
    train_link_predictor,
    train_network,
    training_kwargs,
)

__all__ = [
    "CIRCULAR_VARIANTS",
    "ENCODERS",
    "LinkPredictor",
    "Network",
    "OriginalModel",
    "OriginalSplit",
    "PairSplit",
    "TRAINING_KEYS",
    "VARIANTS",
    "auc",
    "average_precision",
    "cosine_matrix",
    "cosine_scores",
    "evaluate",
    "heuristic_scores",
    "hits_at_k",
    "leak_counts",
    "link_metrics",
    "message_graph",
    "original_protocol",
    "original_split",
    "pair_weights",
    "predict",
    "raw_features",
    "split_pairs",
    "standardise",
    "train_link_predictor",
    "train_negatives",
    "train_network",
    "training_kwargs",
    "undirected_pairs",
    "used_nodes",
    "variant_features",
    "variant_graph",
    "variant_pairs",
]
