# Tokenization stage: one tokenizer from config, per-file tokenization in content-addressed shards.


rule tokenizer:
    output:
        "results/tokenizer/tokenizer.json",
    params:
        tokenizer=config["tokenizer"],
    log:
        "logs/tokenizer.log",
    benchmark:
        "logs/benchmarks/tokenizer.tsv"
    resources:
        mem_mb=1024,
        runtime=5,
    conda:
        "../envs/tokentransfer.yaml"
    script:
        "../scripts/build_tokenizer.py"


rule tokenize_shard:
    input:
        tokenizer="results/tokenizer/tokenizer.json",
        midi=shard_midi,
    output:
        "results/tokens/{corpus}/{shard}.h5",
    log:
        "logs/tokenize/{corpus}/{shard}.log",
    benchmark:
        "logs/benchmarks/tokenize/{corpus}/{shard}.tsv"
    resources:
        mem_mb=2048,
        runtime=60,
    conda:
        "../envs/tokentransfer.yaml"
    script:
        "../scripts/tokenize_shard.py"


rule token_index:
    input:
        corpus_shards,
    output:
        "results/tokens/{corpus}/index.tsv",
    log:
        "logs/token_index/{corpus}.log",
    benchmark:
        "logs/benchmarks/token_index/{corpus}.tsv"
    resources:
        mem_mb=1024,
        runtime=10,
    conda:
        "../envs/tokentransfer.yaml"
    script:
        "../scripts/token_index.py"
