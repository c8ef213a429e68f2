"""Where the workflow writes: every path of ``results/`` (and two of ``resources/``) in one place.

Each method of :class:`Layout` names one file or folder. Called with the names it takes (a
corpus, a model, a variant...) it gives that path; called without them, the Snakemake pattern
with those names as wildcards (``{corpus}``, ``{model}``...). So ``RESULTS.split("bach")`` is
``results/splits/bach.tsv`` and ``RESULTS.split()`` is ``results/splits/{corpus}.tsv``.

The rules' input functions (:mod:`tokentransfer.inputs`, ``rules/common.smk``), the command line
(:mod:`tokentransfer.runs`: a finished run's ``--results`` folder, any root) and the tables
(:mod:`tokentransfer.tables`) read their paths here. The rules spell their outputs out, so that
a rule reads on its own; tests/test_layout.py parses the workflow and checks that every path a
rule writes or reads under ``results/`` is a pattern of :meth:`Layout.patterns`, so the two
cannot drift.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

#: where ingestion stores a corpus's accepted files, named {file_id}.mid
STORE = "resources/corpora/{corpus}/midi"


def store(corpus: str = "{corpus}") -> str:
    """The folder of a corpus's accepted MIDI files (written by ingestion, read by tokenizing)."""
    return STORE.format(corpus=corpus)


def tegridy_download(zipname: str = "{zipname}") -> str:
    """Where rule ``fetch_tegridy`` downloads a Tegridy zip that no mirror holds."""
    return f"resources/tegridy/{zipname}"


@dataclass(frozen=True)
class Layout:
    """The paths of a run's results folder ``root`` (the workflow's: ``results``)."""

    root: str = "results"

    def _p(self, *parts: str) -> str:
        return "/".join((str(self.root), *parts))

    # ------------------------------------------------------------------ corpora and tokens
    def manifest(self, corpus: str = "{corpus}") -> str:
        return self._p("corpora", corpus, "manifest.tsv")

    def tokenizer(self) -> str:
        return self._p("tokenizer", "tokenizer.json")

    def tokens(self, corpus: str = "{corpus}") -> str:
        """The folder of a corpus's token shards."""
        return self._p("tokens", corpus)

    def shard(self, corpus: str = "{corpus}", shard: str = "{shard}") -> str:
        return f"{self.tokens(corpus)}/{shard}.h5"

    def shard_cache(self, corpus: str = "{corpus}", shard: str = "{shard}") -> str:
        """A shard's earlier tokens (not an output: Snakemake does not delete it)."""
        return f"{self.tokens(corpus)}/.cache/{shard}.h5"

    def token_index(self, corpus: str = "{corpus}") -> str:
        return f"{self.tokens(corpus)}/index.tsv"

    def split(self, corpus: str = "{corpus}") -> str:
        return self._p("splits", f"{corpus}.tsv")

    # ------------------------------------------------------------------ the transformer
    def model(self, model: str = "{model}") -> str:
        """The folder of a pretrained (or imported) transformer and its records."""
        return self._p("models", model)

    def model_hf(self, model: str = "{model}") -> str:
        return f"{self.model(model)}/hf"

    def model_log(self, model: str = "{model}") -> str:
        return f"{self.model(model)}/training_log.tsv"

    def model_info(self, model: str = "{model}") -> str:
        return f"{self.model(model)}/train.json"

    def model_metrics(self, model: str = "{model}") -> str:
        return f"{self.model(model)}/metrics.json"

    def perplexity(self, model: str = "{model}", corpus: str = "{corpus}") -> str:
        return f"{self.model(model)}/perplexity/{corpus}.json"

    def checkpoints(self, model: str = "{model}", *under: str) -> str:
        """The scratch checkpoints of a training job (not an output), under ``under``."""
        return self._p("checkpoints", model, *under)

    def embeddings(self, model: str = "{model}", corpus: str = "{corpus}") -> str:
        return self._p("embeddings", model, f"{corpus}.h5")

    def finetune(self, model: str = "{model}", corpus: str = "{corpus}") -> str:
        """The folder of the transformer fine-tuned on a target, and its records."""
        return self._p("finetune", model, corpus)

    def finetune_hf(self, model: str = "{model}", corpus: str = "{corpus}") -> str:
        return f"{self.finetune(model, corpus)}/hf"

    def finetune_log(self, model: str = "{model}", corpus: str = "{corpus}") -> str:
        return f"{self.finetune(model, corpus)}/training_log.tsv"

    def finetune_metrics(self, model: str = "{model}", corpus: str = "{corpus}") -> str:
        return f"{self.finetune(model, corpus)}/metrics.json"

    def transformer(self, kind: str, model: str = "{model}", corpus: str = "{corpus}") -> str:
        """The transformer a method samples (its registry ``model``): ``finetuned``, the one
        fine-tuned on the target; else the pretrained one."""
        return self.finetune_hf(model, corpus) if kind == "finetuned" else self.model_hf(model)

    # ------------------------------------------------------------------ graphs
    def graphs(self, corpus: str = "{corpus}") -> str:
        return self._p("graphs", corpus)

    def adjacency(self, corpus: str = "{corpus}") -> str:
        return f"{self.graphs(corpus)}/adjacency.npz"

    def successors(self, corpus: str = "{corpus}") -> str:
        return f"{self.graphs(corpus)}/successors.npz"

    def context_successors(self, corpus: str = "{corpus}") -> str:
        return f"{self.graphs(corpus)}/context_successors.npz"

    def walk_tables(self, corpus: str = "{corpus}") -> str:
        return f"{self.graphs(corpus)}/walk_tables.npz"

    def graph_stats(self, corpus: str = "{corpus}") -> str:
        return f"{self.graphs(corpus)}/graph_stats.json"

    def linkpred(
        self, model: str = "{model}", corpus: str = "{corpus}", variant: str = "{variant}"
    ) -> str:
        """The folder of a graph network (one feature variant) and its records."""
        return self._p("linkpred", model, corpus, variant)

    def linkpred_checkpoint(self, model="{model}", corpus="{corpus}", variant="{variant}"):
        return f"{self.linkpred(model, corpus, variant)}/checkpoint.pt"

    def nodes(self, model="{model}", corpus="{corpus}", variant="{variant}") -> str:
        """A graph network's node embeddings."""
        return f"{self.linkpred(model, corpus, variant)}/nodes.h5"

    def linkpred_log(self, model="{model}", corpus="{corpus}", variant="{variant}") -> str:
        return f"{self.linkpred(model, corpus, variant)}/training_log.tsv"

    def linkpred_metrics(self, model="{model}", corpus="{corpus}", variant="{variant}"):
        return f"{self.linkpred(model, corpus, variant)}/metrics.json"

    def linkpred_summary(self) -> str:
        return self._p("linkpred", "summary.tsv")

    # ------------------------------------------------------------------ sample sets
    def sample_set(self, folder: str, model: str, corpus: str, name: str) -> str:
        """The folder of a sample set: ``<root>/<folder>/<model>/<corpus>/<name>``, where
        ``folder`` is the method's registry folder (``generated`` or ``baselines``)."""
        return self._p(folder, model, corpus, name)

    def generated(self, model="{model}", corpus="{corpus}", variant="{variant}") -> str:
        """A walk's sample set (rule ``generate``)."""
        return self.sample_set("generated", model, corpus, variant)

    def baseline(self, model="{model}", corpus="{corpus}", method="{method}") -> str:
        """A baseline's sample set (rule ``baseline``)."""
        return self.sample_set("baselines", model, corpus, method)

    @staticmethod
    def set_info(folder: str) -> str:
        return f"{folder}/generation.json"

    @staticmethod
    def set_tokens(folder: str) -> str:
        return f"{folder}/tokens.h5"

    @staticmethod
    def set_midi(folder: str, i: int) -> str:
        return f"{folder}/sample_{i:03d}.mid"

    def set_midis(self, folder: str, samples: int) -> list[str]:
        """The MIDI files of a set of ``samples`` samples."""
        return [self.set_midi(folder, i) for i in range(samples)]

    # ------------------------------------------------------------------ style and evaluation
    def style_classifier(self) -> str:
        return self._p("style", "classifier.json")

    def style_heldout(self) -> str:
        return self._p("style", "heldout.tsv")

    def eval(self, model: str = "{model}", corpus: str = "{corpus}") -> str:
        """The folder of a target's evaluation."""
        return self._p("eval", model, corpus)

    def eval_metrics(self, model: str = "{model}", corpus: str = "{corpus}") -> str:
        return f"{self.eval(model, corpus)}/metrics.tsv"

    def eval_samples(self, model: str = "{model}", corpus: str = "{corpus}") -> str:
        return f"{self.eval(model, corpus)}/samples.tsv"

    def eval_features(self, model: str = "{model}", corpus: str = "{corpus}") -> str:
        return f"{self.eval(model, corpus)}/features.tsv"

    def eval_summary(self) -> str:
        return self._p("eval", "summary.tsv")

    def figure(self, model: str = "{model}", corpus: str = "{corpus}", name="metrics") -> str:
        """A target's figure ``name`` (metrics, pitch_classes, pianorolls)."""
        return f"{self.eval(model, corpus)}/figures/{name}.png"

    def training_figure(self, model: str = "{model}") -> str:
        return self._p("eval", model, "training.png")

    def audio(self, model="{model}", corpus="{corpus}", setname="{setname}") -> str:
        return f"{self.eval(model, corpus)}/audio/{setname}.flac"

    # ------------------------------------------------------------------ few-shot
    def fewshot(self, model: str = "{model}", corpus: str = "{corpus}") -> str:
        """The folder of a target's few-shot curve."""
        return self._p("fewshot", model, corpus)

    def fewshot_point(
        self, model="{model}", corpus="{corpus}", k="{k}", draw="{draw}", suffix=""
    ) -> str:
        """The samples of one few-shot job at (k, draw); ``suffix`` names the job
        (:data:`tokentransfer.methods.FEWSHOT_JOBS`: ``""``, ``_finetuned``, ``_transfer``)."""
        return f"{self.fewshot(model, corpus)}/samples/k{k}_d{draw}{suffix}"

    def fewshot_checkpoints(
        self, model="{model}", corpus="{corpus}", k="{k}", draw="{draw}", suffix=""
    ) -> str:
        """The scratch checkpoints of a few-shot job that trains (not an output)."""
        return self.checkpoints(model, "fewshot", corpus, f"k{k}_d{draw}{suffix}")

    def fewshot_curve(self, model: str = "{model}", corpus: str = "{corpus}") -> str:
        return f"{self.fewshot(model, corpus)}/curve.tsv"

    def fewshot_figure(self, model: str = "{model}", corpus: str = "{corpus}") -> str:
        return f"{self.fewshot(model, corpus)}/curve.png"

    # ------------------------------------------------------------------ all of them
    def patterns(self, samples: int = 1, fewshot_suffixes=("", "_finetuned", "_transfer")):
        """Every path pattern of the layout, by method name (``name`` or ``name:<detail>``),
        the sample sets' MIDI files for ``samples`` samples."""
        out = {}
        for name, fn in inspect.getmembers(self, inspect.ismethod):
            if name.startswith("_") or name == "patterns":
                continue
            params = inspect.signature(fn).parameters.values()
            if all(p.default is not p.empty or p.kind is p.VAR_POSITIONAL for p in params):
                out[name] = fn()
        for kind in ("pretrained", "finetuned"):
            out[f"transformer:{kind}"] = self.transformer(kind)
        for name in ("pitch_classes", "pianorolls"):
            out[f"figure:{name}"] = self.figure(name=name)
        for suffix in fewshot_suffixes:
            out[f"fewshot_point:{suffix}"] = self.fewshot_point(suffix=suffix)
            out[f"fewshot_checkpoints:{suffix}"] = self.fewshot_checkpoints(suffix=suffix)
        for which in ("generated", "baseline"):
            folder = getattr(self, which)()
            out[f"{which}:info"] = self.set_info(folder)
            out[f"{which}:tokens"] = self.set_tokens(folder)
            for i, midi in enumerate(self.set_midis(folder, samples)):
                out[f"{which}:midi{i}"] = midi
        out["checkpoints:finetune"] = self.checkpoints("{model}", "{corpus}")
        return out


#: the workflow's results folder
RESULTS = Layout()
