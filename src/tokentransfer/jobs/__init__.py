"""The job functions of the workflow's rules, one module per rules file.

A rule's script (``scripts/<rule>.py``) only unpacks ``snakemake.input``/``params`` and calls the
function named like the rule; the function reads the inputs, calls the library and writes the
outputs.

- :mod:`.corpus` (``rules/corpus.smk``): ``fetch_tegridy``, ``ingest``;
- :mod:`.tokenize` (``rules/tokenize.smk``): ``tokenizer`` (built from config, or a local
  model's: :func:`~.tokenize.import_tokenizer`), ``tokenize_shard``, ``token_index``;
- :mod:`.model` (``rules/model.smk``): ``split``, ``pretrain``, ``import_model``,
  ``perplexity``, ``model_metrics``, ``embed``, ``finetune``;
- :mod:`.graph` (``rules/graph.smk``): ``adjacency``, ``linkpred``, ``linkpred_summary``;
- :mod:`.generate` (``rules/generate.smk``): ``generate``;
- :mod:`.evaluate` (``rules/evaluate.smk``): ``baseline``, ``style_classifier``, ``evaluate``,
  ``eval_summary``, ``figures``, ``training_figure``;
- :mod:`.fewshot` (``rules/fewshot.smk``): ``fewshot_point``, ``fewshot_finetune`` and
  ``fewshot_transfer`` (all three :func:`~.fewshot.run_fewshot_point`, each with its own
  ``job``), ``fewshot_curve``.

Rule ``audio``'s script alone calls a library function directly
(:func:`tokentransfer.audio.render`: one MIDI file to FLAC).
"""
