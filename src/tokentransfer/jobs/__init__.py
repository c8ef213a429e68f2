"""The job functions of the workflow's rules, one module per rules file.

A rule's script (``scripts/<rule>.py``) only unpacks ``snakemake.input``/``params`` and calls the
function named like the rule; the function reads the inputs, calls the library and writes the
outputs.

- :mod:`.tokenize` (``rules/tokenize.smk``): rule ``tokenizer`` of a local model
  (:func:`~.tokenize.import_tokenizer`);
- :mod:`.model` (``rules/model.smk``): ``pretrain``, ``import_model``, ``perplexity``,
  ``model_metrics``, ``embed``, ``finetune``;
- :mod:`.graph` (``rules/graph.smk``): ``adjacency``, ``linkpred``, ``gcn_summary``;
- :mod:`.generate` (``rules/generate.smk``): ``generate``.

The other rules' scripts call library functions directly: ``split`` (:mod:`tokentransfer.split`),
``tokenize_shard`` and ``token_index`` (:mod:`tokentransfer.tokenize`), ``ingest``
(:mod:`tokentransfer.sources`), the evaluation's (:mod:`tokentransfer.evaluate`,
:mod:`tokentransfer.style`, :mod:`tokentransfer.figures`, :mod:`tokentransfer.audio`) and the
few-shot curve's (:mod:`tokentransfer.fewshot`).
"""
