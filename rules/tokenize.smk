# Tokenization stage: one tokenizer from config, per-file tokenization in content-addressed shards.


rule tokenizer:
    output:
        "results/tokenizer/tokenizer.json",
    log:
        "logs/tokenizer.log",
    benchmark:
        "logs/benchmarks/tokenizer.tsv"
    conda:
        "../envs/tokentransfer.yaml"
    resources:
        mem_mb=1024,
        runtime=5,
    params:
        tokenizer=config["tokenizer"],
        model={k: config["model"][k] for k in ("source", "path", "tokenizer")},
    script:
        "../scripts/build_tokenizer.py"


rule tokenize_shard:
    input:
        tokenizer="results/tokenizer/tokenizer.json",
        manifest=shard_manifest,
    output:
        "results/tokens/{corpus}/{shard}.h5",
    log:
        "logs/tokenize/{corpus}/{shard}.log",
    benchmark:
        "logs/benchmarks/tokenize/{corpus}/{shard}.tsv"
    conda:
        "../envs/tokentransfer.yaml"
    resources:
        mem_mb=2048,
        runtime=60,
    params:
        # the shard's files, named by the manifest: not inputs one by one
        store=STORE,
        shards=N_SHARDS,
        files=shard_files,
        # not an output: Snakemake does not delete it, so a shard whose file list changed
        # takes the tokens of the files it held before from there (tokenize.py)
        cache="results/tokens/{corpus}/.cache/{shard}.h5",
    script:
        "../scripts/tokenize_shard.py"


rule token_index:
    input:
        corpus_shards,
    output:
        report(
            "results/tokens/{corpus}/index.tsv",
            caption="../report/token_index.rst",
            category="Tokens",
        ),
    log:
        "logs/token_index/{corpus}.log",
    benchmark:
        "logs/benchmarks/token_index/{corpus}.tsv"
    conda:
        "../envs/tokentransfer.yaml"
    resources:
        mem_mb=1024,
        runtime=10,
    script:
        "../scripts/token_index.py"
