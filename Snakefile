# tokentransfer: cross-style music generation by token transfer.
# Run: snakemake --cores 8   (config/config.yaml, the embedded default corpus, offline)
#      snakemake --cores 8 --configfile config/tegridy.yaml   (the Tegridy MIDI Dataset)


from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/corpus.smk"
include: "rules/tokenize.smk"
include: "rules/model.smk"


rule all:
    default_target: True
    input:
        all_targets(),
