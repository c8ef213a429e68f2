"""The graph-network feature variants: the one list of their names.

A variant names the node features a graph network is trained on by link prediction
(:func:`tokentransfer.linkpred.raw_features` computes them): ``emb`` (the transformer's token
embeddings, the original's model 1), ``emb_pos`` (token embeddings times position embeddings,
model 2), ``emb_neighbours`` (token embeddings on the corpus graph, model 3), ``contextual``
(mean contextual hidden states) and ``random`` (a seeded control). For the *circular* variants
the graph itself is a function of the features, as in the original.

The method registry (:mod:`tokentransfer.methods`) registers one walk per variant (and
``counts``, the walk without a network), and the config lists of variants
(``linkpred.variants``, ``generate.variants``, ``fewshot.variants``) are checked against the
registry when the config is loaded (:func:`tokentransfer.config.check`). This module imports
nothing, so that the registry need not import torch and DGL to know the names.
"""

VARIANTS = ("emb", "emb_pos", "emb_neighbours", "contextual", "random")
CIRCULAR_VARIANTS = ("emb", "emb_pos")
