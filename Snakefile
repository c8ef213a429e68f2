# tokentransfer: cross-style music generation by token transfer.
# Run: snakemake --cores 8   (config/config.yaml, the embedded default corpus, offline)
#      snakemake --cores 8 --configfile config/tegridy.yaml   (the Tegridy MIDI Dataset)


from snakemake.utils import min_version

min_version("9.0")


# The embedded default, unless config files are given with --configfile: those replace it
# (Snakemake would otherwise merge them into the default, mixing in its corpora).
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/corpus.smk"
include: "rules/tokenize.smk"
include: "rules/model.smk"
include: "rules/graph.smk"
include: "rules/generate.smk"
include: "rules/evaluate.smk"
include: "rules/fewshot.smk"


rule all:
    default_target: True
    input:
        all_targets(),
