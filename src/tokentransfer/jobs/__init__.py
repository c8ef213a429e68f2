"""The job functions of the workflow's rules, one module per rules file.

A rule's script (``scripts/<rule>.py``) only unpacks ``snakemake.input``/``params`` and calls the
function named like the rule; the function reads the inputs, calls the library and writes the
outputs.

- :mod:`.tokenize` (``rules/tokenize.smk``): rule ``tokenizer`` of a local model
  (:func:`~.tokenize.import_tokenizer`);
- :mod:`.model` (``rules/model.smk``): ``pretrain``, ``import_model``, ``perplexity``,
  ``model_metrics``, ``embed``, ``finetune``;
- :mod:`.graph` (``rules/graph.smk``): ``adjacency``, ``linkpred``, ``gcn_summary``;
- :mod:`.generate` (``rules/generate.smk``): ``generate``;
- :mod:`.evaluate` (``rules/evaluate.smk``): ``baseline``, ``style_classifier``, ``evaluate``,
  ``eval_summary``, ``figures``, ``training_figure``;
- :mod:`.fewshot` (``rules/fewshot.smk``): ``fewshot_point``, ``fewshot_finetune`` and
  ``fewshot_transfer`` (all three :func:`~.fewshot.run_fewshot_point`, each with its own
  ``job``), ``fewshot_curve``.

The other rules' scripts call library functions directly: ``split`` (:mod:`tokentransfer.split`),
``tokenize_shard`` and ``token_index`` (:mod:`tokentransfer.tokenize`), ``ingest``
(:mod:`tokentransfer.sources`), ``tokenizer`` built from config
(:func:`tokentransfer.tokenize.build_tokenizer`) and ``audio`` (:func:`tokentransfer.audio.render`:
one MIDI file to FLAC).
"""
