# Generation stage: biased random walks with restart over each target's successor graph,
# decoded to MIDI; the variant `counts` walks on the counts alone (a first-order Markov chain).


rule generate:
    input:
        unpack(generate_inputs),
    output:
        info="results/generated/{model}/{corpus}/{variant}/generation.json",
        tokens="results/generated/{model}/{corpus}/{variant}/tokens.h5",
        samples=expand(
            "results/generated/{{model}}/{{corpus}}/{{variant}}/sample_{i:03d}.mid",
            i=range(config["generate"]["samples"]),
        ),
    log:
        "logs/generate/{model}/{corpus}/{variant}.log",
    benchmark:
        "logs/benchmarks/generate/{model}/{corpus}/{variant}.tsv"
    conda:
        "../envs/graph.yaml"
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        cfg=section("generate", only=(*WALK_KEYS, "bars")),
        prompt=config["generate"]["prompt"],
        bits_tokens=config["evaluate"]["bits_tokens"],
    script:
        "../scripts/generate.py"
