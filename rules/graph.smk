# Graph stage: token co-occurrence graphs of each target, graph networks trained by leak-free
# link prediction for every feature variant, and the summary table against heuristics.


rule adjacency:
    input:
        tokenizer="results/tokenizer/tokenizer.json",
        shards=lambda wildcards: shards_of([wildcards.corpus]),
        split="results/splits/{corpus}.tsv",
    output:
        adjacency="results/graphs/{corpus}/adjacency.npz",
        successors="results/graphs/{corpus}/successors.npz",
        context="results/graphs/{corpus}/context_successors.npz",
        walk="results/graphs/{corpus}/walk_tables.npz",
        stats=report(
            "results/graphs/{corpus}/graph_stats.json",
            caption="../report/graph_stats.rst",
            category="Graphs",
        ),
    log:
        "logs/adjacency/{corpus}.log",
    benchmark:
        "logs/benchmarks/adjacency/{corpus}.tsv"
    conda:
        "../envs/graph.yaml"
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        offset_weights=config["graph"]["offset_weights"],
        self_loops=config["graph"]["self_loops"],
    script:
        "../scripts/adjacency.py"


rule linkpred:
    input:
        adjacency="results/graphs/{corpus}/adjacency.npz",
        embeddings="results/embeddings/{model}/{corpus}.h5",
    output:
        checkpoint="results/linkpred/{model}/{corpus}/{variant}/checkpoint.pt",
        nodes="results/linkpred/{model}/{corpus}/{variant}/nodes.h5",
        log="results/linkpred/{model}/{corpus}/{variant}/training_log.tsv",
        metrics="results/linkpred/{model}/{corpus}/{variant}/metrics.json",
    log:
        "logs/linkpred/{model}/{corpus}/{variant}.log",
    benchmark:
        "logs/benchmarks/linkpred/{model}/{corpus}/{variant}.tsv"
    conda:
        "../envs/graph.yaml"
    threads: config["linkpred"]["threads"]
    resources:
        mem_mb=4000,
        runtime=60,
        gpu=GPU,
    params:
        encoders=config["linkpred"]["encoders"],
        seeds=config["linkpred"]["seeds"],
        hp=section("linkpred", without=("variants", "encoders", "seeds", "threads")),
        use_gpu=config["use_gpu"],
    script:
        "../scripts/linkpred.py"


rule linkpred_summary:
    input:
        expand(
            "results/linkpred/{model}/{corpus}/{variant}/metrics.json",
            model=MODEL,
            corpus=TARGETS,
            variant=config["linkpred"]["variants"],
        ),
    output:
        report(
            "results/linkpred/summary.tsv",
            caption="../report/linkpred_summary.rst",
            category="Link prediction",
        ),
    log:
        "logs/linkpred_summary.log",
    benchmark:
        "logs/benchmarks/linkpred_summary.tsv"
    conda:
        "../envs/graph.yaml"
    resources:
        mem_mb=512,
        runtime=5,
    params:
        names=linkpred_summary_names(),
    script:
        "../scripts/linkpred_summary.py"
