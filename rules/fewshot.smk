# Few-shot curve: every method adapted on nested subsets of k pieces of each target and sampled
# (its samples kept as MIDI under samples/), then measured on the target's test pieces by
# fewshot_curve, the only few-shot job that reads the style classifier: a corpus added to a run
# reruns the other targets' curve jobs, not their adaptation. Many small jobs, in group
# "fewshot": profiles/slurm submits them 16 to a cluster job (group-components).


rule fewshot_point:
    input:
        tokenizer="results/tokenizer/tokenizer.json",
        shards=lambda wildcards: shards_of([wildcards.corpus]),
        split="results/splits/{corpus}.tsv",
        embeddings="results/embeddings/{model}/{corpus}.h5",
    output:
        directory("results/fewshot/{model}/{corpus}/samples/k{k}_d{draw}"),
    log:
        "logs/fewshot/{model}/{corpus}/k{k}_d{draw}.log",
    benchmark:
        "logs/benchmarks/fewshot/{model}/{corpus}/k{k}_d{draw}.tsv"
    group:
        "fewshot"
    conda:
        "../envs/graph.yaml"
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        **fewshot_params("point"),
    script:
        "../scripts/fewshot_point.py"


rule fewshot_finetune:
    input:
        tokenizer="results/tokenizer/tokenizer.json",
        model="results/models/{model}/hf",
        shards=lambda wildcards: shards_of([wildcards.corpus]),
        split="results/splits/{corpus}.tsv",
    output:
        directory("results/fewshot/{model}/{corpus}/samples/k{k}_d{draw}_finetuned"),
    log:
        "logs/fewshot/{model}/{corpus}/k{k}_d{draw}_finetuned.log",
    benchmark:
        "logs/benchmarks/fewshot/{model}/{corpus}/k{k}_d{draw}_finetuned.tsv"
    group:
        "fewshot"
    conda:
        "../envs/torch.yaml"
    threads: config["model"]["threads"]
    resources:
        mem_mb=8000,
        runtime=120,
        gpu=GPU,
    params:
        **fewshot_params("finetune"),
        use_gpu=config["use_gpu"],
        checkpoints="results/checkpoints/{model}/fewshot/{corpus}/k{k}_d{draw}_finetuned",
    script:
        "../scripts/fewshot_point.py"


rule fewshot_transfer:
    input:
        tokenizer="results/tokenizer/tokenizer.json",
        model="results/models/{model}/hf",
        shards=lambda wildcards: shards_of([wildcards.corpus]),
        split="results/splits/{corpus}.tsv",
        base_shards=shards_of(BASES),
        base_splits=expand("results/splits/{corpus}.tsv", corpus=BASES),
    output:
        directory("results/fewshot/{model}/{corpus}/samples/k{k}_d{draw}_transfer"),
    log:
        "logs/fewshot/{model}/{corpus}/k{k}_d{draw}_transfer.log",
    benchmark:
        "logs/benchmarks/fewshot/{model}/{corpus}/k{k}_d{draw}_transfer.tsv"
    group:
        "fewshot"
    conda:
        "../envs/torch.yaml"
    threads: config["model"]["threads"]
    resources:
        mem_mb=8000,
        runtime=120,
        gpu=GPU,
    params:
        **fewshot_params("transfer"),
        use_gpu=config["use_gpu"],
        checkpoints="results/checkpoints/{model}/fewshot/{corpus}/k{k}_d{draw}_transfer",
    script:
        "../scripts/fewshot_point.py"


rule fewshot_curve:
    input:
        unpack(fewshot_curve_inputs),
    output:
        curve=report(
            "results/fewshot/{model}/{corpus}/curve.tsv",
            caption="../report/fewshot_curve.rst",
            category="Few-shot",
            subcategory="{corpus}",
        ),
        figure=report(
            "results/fewshot/{model}/{corpus}/curve.png",
            caption="../report/fewshot_figure.rst",
            category="Few-shot",
            subcategory="{corpus}",
        ),
    log:
        "logs/fewshot/{model}/{corpus}/curve.log",
    benchmark:
        "logs/benchmarks/fewshot/{model}/{corpus}/curve.tsv"
    conda:
        "../envs/torch.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        copy_n=config["evaluate"]["copy_n"],
        eval=section("evaluate", only=("reference_excerpts", "seed")),
        length=config["generate"]["length"],
        bars=config["generate"]["bars"],
    script:
        "../scripts/fewshot_curve.py"
