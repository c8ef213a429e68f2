# Corpus stage: fetch Tegridy zips (when no mirror holds them) and ingest every corpus safely.


rule fetch_tegridy:
    output:
        "resources/tegridy/{zipname}",
    log:
        "logs/fetch_tegridy/{zipname}.log",
    benchmark:
        "logs/benchmarks/fetch_tegridy/{zipname}.tsv"
    retries: 2
    conda:
        "../envs/tokentransfer.yaml"
    resources:
        mem_mb=512,
        runtime=30,
    params:
        url=config["tegridy"]["url"],
    script:
        "../scripts/fetch_tegridy.py"


checkpoint ingest:
    input:
        unpack(ingest_inputs),
    output:
        manifest=report(
            "results/corpora/{corpus}/manifest.tsv",
            caption="../report/manifest.rst",
            category="Corpora",
        ),
    log:
        "logs/ingest/{corpus}.log",
    benchmark:
        "logs/benchmarks/ingest/{corpus}.tsv"
    conda:
        "../envs/tokentransfer.yaml"
    threads: config["threads"]["ingest"]
    resources:
        mem_mb=4096,
        runtime=60,
    params:
        sources=lambda wildcards: config["corpora"][wildcards.corpus]["sources"],
        zips=tegridy_zips,
        # not read by the job: a digest of the source folders' files, to rerun on a change
        listing=ingest_listing,
        limits=config["ingest"],
        seed=config["seed"],
        store=STORE,
    script:
        "../scripts/ingest.py"
