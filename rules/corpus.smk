# Corpus stage: fetch Tegridy zips (when no mirror holds them) and ingest every corpus safely.


rule fetch_tegridy:
    output:
        "resources/tegridy/{zipname}",
    params:
        url=config["tegridy"]["url"],
    log:
        "logs/fetch_tegridy/{zipname}.log",
    benchmark:
        "logs/benchmarks/fetch_tegridy/{zipname}.tsv"
    retries: 2
    resources:
        mem_mb=512,
        runtime=30,
    conda:
        "../envs/tokentransfer.yaml"
    script:
        "../scripts/fetch_tegridy.py"


checkpoint ingest:
    input:
        unpack(ingest_inputs),
    output:
        manifest="results/corpora/{corpus}/manifest.tsv",
    params:
        corpus=lambda wildcards: config["corpora"][wildcards.corpus],
        zips=tegridy_zips,
        limits=config["ingest"],
        seed=config["seed"],
        store=lambda wildcards: f"resources/corpora/{wildcards.corpus}/midi",
    threads: config["threads"]["ingest"]
    log:
        "logs/ingest/{corpus}.log",
    benchmark:
        "logs/benchmarks/ingest/{corpus}.tsv"
    resources:
        mem_mb=4096,
        runtime=60,
    conda:
        "../envs/tokentransfer.yaml"
    script:
        "../scripts/ingest.py"
