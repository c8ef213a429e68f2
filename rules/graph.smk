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
