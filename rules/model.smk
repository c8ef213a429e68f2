# Transformer stage: splits, pretraining (or a local checkpoint), perplexities, embedding
# caches and the fine-tuning baseline. Each rule's params are the config keys its job reads.


rule split:
    input:
        "results/corpora/{corpus}/manifest.tsv",
    output:
        "results/splits/{corpus}.tsv",
    log:
        "logs/split/{corpus}.log",
    benchmark:
        "logs/benchmarks/split/{corpus}.tsv"
    conda:
        "../envs/tokentransfer.yaml"
    resources:
        mem_mb=512,
        runtime=5,
    params:
        fraction=split_fraction,
        held=split_part,
        seed=config["seed"],
    script:
        "../scripts/split.py"


if MODEL_SOURCE == "pretrain":

    rule pretrain:
        input:
            tokenizer="results/tokenizer/tokenizer.json",
            shards=shards_of(BASES),
            splits=expand("results/splits/{corpus}.tsv", corpus=BASES),
        output:
            model=directory("results/models/{model}/hf"),
            log="results/models/{model}/training_log.tsv",
            info="results/models/{model}/train.json",
        log:
            "logs/pretrain/{model}.log",
        benchmark:
            "logs/benchmarks/pretrain/{model}.tsv"
        conda:
            "../envs/torch.yaml"
        threads: config["model"]["threads"]
        resources:
            mem_mb=8000,
            runtime=240,
            gpu=GPU,
        params:
            cfg=section("model", only=PRETRAIN_KEYS),
            seed=config["seed"],
            use_gpu=config["use_gpu"],
            checkpoints="results/checkpoints/{model}",
        script:
            "../scripts/pretrain.py"

else:

    rule import_model:
        input:
            tokenizer="results/tokenizer/tokenizer.json",
        output:
            model=directory("results/models/{model}/hf"),
            log="results/models/{model}/training_log.tsv",
            info="results/models/{model}/train.json",
        log:
            "logs/import_model/{model}.log",
        benchmark:
            "logs/benchmarks/import_model/{model}.tsv"
        conda:
            "../envs/torch.yaml"
        resources:
            mem_mb=8000,
            runtime=30,
        params:
            path=config["model"]["path"],
        script:
            "../scripts/import_model.py"


rule perplexity:
    input:
        model="results/models/{model}/hf",
        shards=lambda wildcards: shards_of([wildcards.corpus]),
        split="results/splits/{corpus}.tsv",
    output:
        "results/models/{model}/perplexity/{corpus}.json",
    log:
        "logs/perplexity/{model}/{corpus}.log",
    benchmark:
        "logs/benchmarks/perplexity/{model}/{corpus}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: config["model"]["threads"]
    resources:
        mem_mb=4000,
        runtime=60,
        gpu=GPU,
    params:
        part=split_part,
        eval_tokens=config["model"]["eval_tokens"],
        use_gpu=config["use_gpu"],
    script:
        "../scripts/perplexity.py"


rule model_metrics:
    input:
        info="results/models/{model}/train.json",
        perplexities=expand(
            "results/models/{{model}}/perplexity/{corpus}.json", corpus=CORPORA
        ),
    output:
        report(
            "results/models/{model}/metrics.json",
            caption="../report/model_metrics.rst",
            category="Transformer",
        ),
    log:
        "logs/model_metrics/{model}.log",
    benchmark:
        "logs/benchmarks/model_metrics/{model}.tsv"
    conda:
        "../envs/tokentransfer.yaml"
    resources:
        mem_mb=512,
        runtime=5,
    script:
        "../scripts/model_metrics.py"


rule embed:
    input:
        model="results/models/{model}/hf",
        shards=lambda wildcards: shards_of([wildcards.corpus]),
        split="results/splits/{corpus}.tsv",
        manifest="results/corpora/{corpus}/manifest.tsv",
    output:
        "results/embeddings/{model}/{corpus}.h5",
    log:
        "logs/embed/{model}/{corpus}.log",
    benchmark:
        "logs/benchmarks/embed/{model}/{corpus}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: config["model"]["threads"]
    resources:
        mem_mb=8000,
        runtime=120,
        gpu=GPU,
    params:
        batch=config["embed"]["batch"],
        stride=config["embed"]["stride"],
        use_gpu=config["use_gpu"],
        contextual=contextual_variant_used(),
    script:
        "../scripts/embed.py"


rule finetune:
    input:
        model="results/models/{model}/hf",
        shards=lambda wildcards: shards_of([wildcards.corpus]),
        split="results/splits/{corpus}.tsv",
    output:
        model=directory("results/finetune/{model}/{corpus}/hf"),
        log="results/finetune/{model}/{corpus}/training_log.tsv",
        metrics="results/finetune/{model}/{corpus}/metrics.json",
    log:
        "logs/finetune/{model}/{corpus}.log",
    benchmark:
        "logs/benchmarks/finetune/{model}/{corpus}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: config["model"]["threads"]
    resources:
        mem_mb=8000,
        runtime=240,
        gpu=GPU,
    params:
        cfg=section("finetune", without=("targets",)),
        eval_tokens=config["model"]["eval_tokens"],
        seed=config["seed"],
        use_gpu=config["use_gpu"],
        checkpoints="results/checkpoints/{model}/{corpus}",
    script:
        "../scripts/finetune.py"
