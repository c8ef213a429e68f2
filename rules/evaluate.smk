# Evaluation stage: baselines produce sample sets like the walks' (same number, length, seed),
# a style classifier is trained once on real windows of every corpus, every set is measured
# against the target's held-out test pieces, and the report's figures.


rule baseline:
    input:
        unpack(baseline_inputs),
    output:
        info="results/baselines/{model}/{corpus}/{method}/generation.json",
        tokens="results/baselines/{model}/{corpus}/{method}/tokens.h5",
        samples=expand(
            "results/baselines/{{model}}/{{corpus}}/{{method}}/sample_{i:03d}.mid",
            i=range(config["generate"]["samples"]),
        ),
    log:
        "logs/baseline/{model}/{corpus}/{method}.log",
    benchmark:
        "logs/benchmarks/baseline/{model}/{corpus}/{method}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
        gpu=method_gpu,
    params:
        gen=section("generate", only=("samples", "length", "bars", "seed")),
        sampling=baseline_sampling_keys,
        eval=baseline_eval_keys,
        prompt=config["generate"]["prompt"],
        use_gpu=config["use_gpu"],
    script:
        "../scripts/baseline.py"


rule style_classifier:
    input:
        unpack(style_inputs),
    output:
        model="results/style/classifier.json",
        heldout=report(
            "results/style/heldout.tsv",
            caption="../report/style_heldout.rst",
            category="Evaluation",
        ),
    log:
        "logs/style_classifier.log",
    benchmark:
        "logs/benchmarks/style_classifier.tsv"
    conda:
        "../envs/torch.yaml"
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        corpora=style_corpora,
        style=config["evaluate"]["style"],
        seed=config["evaluate"]["seed"],
        length=config["generate"]["length"],
        bars=config["generate"]["bars"],
    script:
        "../scripts/style_classifier.py"


rule evaluate:
    input:
        unpack(evaluate_inputs),
    output:
        metrics=report(
            "results/eval/{model}/{corpus}/metrics.tsv",
            caption="../report/eval_metrics.rst",
            category="Evaluation",
            subcategory="{corpus}",
        ),
        samples="results/eval/{model}/{corpus}/samples.tsv",
        features=report(
            "results/eval/{model}/{corpus}/features.tsv",
            caption="../report/eval_features.rst",
            category="Evaluation",
            subcategory="{corpus}",
        ),
    log:
        "logs/evaluate/{model}/{corpus}.log",
    benchmark:
        "logs/benchmarks/evaluate/{model}/{corpus}.tsv"
    conda:
        "../envs/torch.yaml"
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        gen=section("generate", only=("samples", "length", "bars", "seed")),
        eval=section("evaluate", only=("copy_n", "reference_excerpts", "seed")),
        methods=eval_set_names,
        linkpred_variants=plan.linkpred_variants_used(config),
    script:
        "../scripts/evaluate.py"


rule eval_summary:
    input:
        expand("results/eval/{model}/{corpus}/metrics.tsv", model=MODEL, corpus=TARGETS),
    output:
        report(
            "results/eval/summary.tsv",
            caption="../report/eval_summary.rst",
            category="Evaluation",
        ),
    log:
        "logs/eval_summary.log",
    benchmark:
        "logs/benchmarks/eval_summary.tsv"
    conda:
        "../envs/torch.yaml"
    resources:
        mem_mb=512,
        runtime=5,
    script:
        "../scripts/eval_summary.py"


rule figures:
    input:
        unpack(figure_inputs),
    output:
        metrics=report(
            "results/eval/{model}/{corpus}/figures/metrics.png",
            caption="../report/fig_metrics.rst",
            category="Evaluation",
            subcategory="{corpus}",
        ),
        pitch=report(
            "results/eval/{model}/{corpus}/figures/pitch_classes.png",
            caption="../report/fig_pitch_classes.rst",
            category="Evaluation",
            subcategory="{corpus}",
        ),
        rolls=report(
            "results/eval/{model}/{corpus}/figures/pianorolls.png",
            caption="../report/fig_pianorolls.rst",
            category="Samples",
            subcategory="{corpus}",
        ),
    log:
        "logs/figures/{model}/{corpus}.log",
    benchmark:
        "logs/benchmarks/figures/{model}/{corpus}.tsv"
    conda:
        "../envs/torch.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        pianorolls=config["evaluate"]["pianorolls"],
        seed=config["evaluate"]["seed"],
        methods=eval_set_names,
    script:
        "../scripts/figures.py"


rule training_figure:
    input:
        unpack(training_figure_inputs),
    output:
        report(
            "results/eval/{model}/training.png",
            caption="../report/fig_training.rst",
            category="Training",
        ),
    log:
        "logs/figures/{model}/training.log",
    benchmark:
        "logs/benchmarks/figures/{model}/training.tsv"
    conda:
        "../envs/torch.yaml"
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        finetuned=FINETUNE,
    script:
        "../scripts/training_figure.py"


rule audio:
    input:
        audio_midi,
    output:
        report(
            "results/eval/{model}/{corpus}/audio/{setname}.flac",
            caption="../report/audio.rst",
            category="Samples",
            subcategory="{corpus}",
        ),
    log:
        "logs/audio/{model}/{corpus}/{setname}.log",
    benchmark:
        "logs/benchmarks/audio/{model}/{corpus}/{setname}.tsv"
    group:
        "audio"
    conda:
        "../envs/audio.yaml"
    resources:
        mem_mb=500,
        runtime=5,
    params:
        soundfont=config["report"]["soundfont"],
        rate=config["report"]["sample_rate"],
        max_seconds=config["report"]["max_seconds"],
    script:
        "../scripts/audio.py"
