"""A finished run's artefacts: which methods it can sample, and those methods loaded or fitted.

``tokentransfer generate --method`` and ``tokentransfer infill`` sample any method of the
registry (:mod:`tokentransfer.methods`) from a run's ``results/`` folder, without rerunning the
workflow. How a method is obtained follows from what the registry says of it:

- the walks (``kind`` graph) load the run's graphs of the target (``graphs/<corpus>/``) and,
  for a graph-network variant, its node embeddings (``linkpred/<model>/<corpus>/<variant>/``);
- the methods that read a transformer load the run's pretrained model (``models/<model>/hf``)
  or, for the fine-tuned one, the model fine-tuned on the target (``finetune/<model>/<corpus>``);
- every other method is fitted on the fly on the target's training pieces (the run's token
  shards and split): the chains, the fused methods and the reference excerpts in seconds; the
  methods that train (a graph network or a gradient adapter: they read the ``linkpred``,
  ``fewshot`` or ``finetune`` section), for the few-shot budget (``fewshot.finetune_steps``
  steps), in minutes.

A method is available when every file it needs is there (:meth:`Run.available`). The run's
config is the schema's defaults, overlaid with a config file where one is given
(:func:`run_config`).
"""

from __future__ import annotations

import copy
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from .layout import Layout
from .methods import REGISTRY, WALK_KEYS, Env, Fitted, Method

#: bytes a generated token takes while sampling (int64 ids), for the memory check
BYTES_PER_TOKEN = 8


class RunError(ValueError):
    """The run lacks what was asked for; the message says what, on one line."""


def schema_defaults(schema: dict) -> dict:
    """The config the schema's defaults make (object sections filled in recursively)."""
    out = {}
    for key, prop in schema.get("properties", {}).items():
        if "default" in prop:
            value = copy.deepcopy(prop["default"])
            if isinstance(value, dict) and prop.get("properties"):
                value = {**schema_defaults(prop), **value}
            out[key] = value
        elif prop.get("type") == "object" and prop.get("properties"):
            out[key] = schema_defaults(prop)
    return out


def _overlay(base: dict, top: dict) -> dict:
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _overlay(out[key], value)
        else:
            out[key] = value
    return out


def run_config(path: str | os.PathLike | None = None) -> dict:
    """The run's config: the schema's defaults, overlaid with the file ``path`` (checked
    against the schema) where one is given."""
    from .config import SCHEMA_PATH, ConfigError, check, load_yaml

    schema = load_yaml(SCHEMA_PATH)
    cfg = schema_defaults(schema)
    if path is not None:
        if not Path(path).is_file():
            raise RunError(f"--config {path}: no such file")
        given = load_yaml(path)
        try:
            check(given, schema)
        except ConfigError as exc:
            raise RunError(f"--config {path}: {exc}") from None
        cfg = _overlay(cfg, given)
    return cfg


def memory_limit_bytes() -> int:
    """The most memory a command's samples may take: half the memory available now
    (``MemAvailable`` of /proc/meminfo; else the machine's physical memory)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024 // 2
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"  # pragma: no cover


def check_memory(n: int, tokens: int, flag: str, limit: int | None = None) -> None:
    """Refuse ``n`` samples of ``tokens`` tokens each when their ids alone would not fit in
    ``limit`` bytes (default: :func:`memory_limit_bytes`), naming ``flag`` and the limit."""
    limit = memory_limit_bytes() if limit is None else int(limit)
    need = int(n) * int(tokens) * BYTES_PER_TOKEN
    if need > limit:
        most = max(limit // (BYTES_PER_TOKEN * max(int(n), 1)), 0)
        raise RunError(
            f"{flag}: {n} samples of {tokens} tokens need {_size(need)} "
            f"({BYTES_PER_TOKEN} bytes a token); the limit is {_size(limit)} (half the memory "
            f"available): at most {most} tokens a sample"
        )


def max_tokens(n: int, limit: int | None = None) -> int:
    """The most tokens a sample may hold, for ``n`` samples within ``limit`` bytes."""
    limit = memory_limit_bytes() if limit is None else int(limit)
    return max(limit // (BYTES_PER_TOKEN * max(int(n), 1)), 1)


def loads(method: Method) -> str:
    """How a run gives ``method``: ``graph`` (loads the run's graphs), ``model`` (loads a
    run's transformer), ``trains`` (fitted on the fly by training: minutes) or ``fits``
    (fitted on the fly in seconds)."""
    if method.kind == "graph":
        return "graph"
    if method.model == "finetuned":
        return "model"
    if set(method.reads) & {"linkpred", "fewshot", "finetune"}:
        return "trains"
    if method.model is not None and not method.fewshot:
        return "model"
    return "fits"


def sampling_keys(method: Method) -> str | None:
    """The config section whose ``temperature`` and ``top_k`` the method samples with
    (``sampling``: the transformers; ``generate``: the walks), or None (it has neither)."""
    for section in ("sampling", "generate"):
        if "temperature" in method.reads.get(section, ()):
            return section
    return None


@dataclass
class Run:
    """A finished run's ``results`` folder, its config and its model name."""

    results: Path
    config: dict
    model_name: str | None = None
    use_gpu: bool = False
    _scratch: list = field(default_factory=list, repr=False)

    @classmethod
    def open(
        cls,
        results: str | os.PathLike,
        config: str | os.PathLike | None = None,
        model: str | None = None,
        use_gpu: bool = False,
    ) -> Run:
        """The run of ``results``; refused when its tokenizer is missing (not a run's
        results folder)."""
        results = Path(results)
        tok = Path(Layout(str(results)).tokenizer())
        if not tok.is_file():
            raise RunError(
                f"missing {tok} (run the workflow first, or point --results at its results folder)"
            )
        return cls(results, run_config(config), model, use_gpu)

    # ------------------------------------------------------------------ files
    @property
    def layout(self) -> Layout:
        """The paths of the run's results folder."""
        return Layout(str(self.results))

    @property
    def tokenizer_json(self) -> Path:
        return Path(self.layout.tokenizer())

    @cached_property
    def tokenizer(self):
        from .tokenize import load_tokenizer

        return load_tokenizer(self.tokenizer_json)

    @cached_property
    def bar_id(self) -> int:
        from .baselines import bar_id

        return bar_id(self.tokenizer)

    @property
    def model(self) -> str:
        """The model name: as given, else the only model folder of the run, else the
        config's ``model.name``."""
        if self.model_name:
            return self.model_name
        found = sorted(p.name for p in Path(self.layout.model("")).glob("*") if p.is_dir())
        if len(found) == 1:
            return found[0]
        return str(self.config.get("model", {}).get("name", "small"))

    def shards(self, corpus: str) -> list[str]:
        return sorted(str(p) for p in Path(self.layout.tokens(corpus)).glob("*.h5"))

    def split(self, corpus: str) -> Path:
        return Path(self.layout.split(corpus))

    def corpora(self) -> list[str]:
        """The run's corpora with token shards and a split."""
        return sorted(
            p.name
            for p in Path(self.layout.tokens("")).glob("*")
            if p.is_dir() and self.shards(p.name) and self.split(p.name).is_file()
        )

    def parts(self, corpus: str) -> set[str]:
        from .split import read_split

        return set(read_split(self.split(corpus)).values())

    def targets(self) -> list[str]:
        """Corpora holding out test pieces (a base holds out validation pieces)."""
        return [c for c in self.corpora() if "test" in self.parts(c)]

    def bases(self) -> list[str]:
        return [c for c in self.corpora() if "test" not in self.parts(c)]

    def model_dir(self, kind: str, corpus: str) -> Path:
        return Path(self.layout.transformer(kind, self.model, corpus))

    def walk_files(self, method: Method, corpus: str, context: str) -> list[Path]:
        files = [self.layout.successors(corpus)]
        if context != "none":
            files.append(self.layout.context_successors(corpus))
        if method.graph_network:
            files.append(self.layout.nodes(self.model, corpus, method.name))
        return [Path(f) for f in files]

    def needs(self, method: Method, corpus: str, context: str | None = None) -> list[Path]:
        """The files ``method`` needs for ``corpus`` (the walks': with ``context``, default
        the config's ``generate.context``)."""
        files = [self.tokenizer_json, *map(Path, self.shards(corpus)), self.split(corpus)]
        if corpus not in self.corpora():
            files.append(Path(self.layout.tokens(corpus)))
        if method.kind == "graph":
            ctx = self.config["generate"]["context"] if context is None else context
            files += self.walk_files(method, corpus, ctx)
        if method.model is not None:
            files.append(self.model_dir(method.model, corpus))
        if method.base and not self.bases():
            files.append(Path(self.layout.tokens("<base corpus>")))
        return files

    def available(self, corpus: str, context: str | None = None) -> list[str]:
        """The registry's methods that this run can sample for ``corpus``, in registry
        order."""
        return [
            name
            for name, m in REGISTRY.items()
            if all(p.exists() for p in self.needs(m, corpus, context))
        ]

    def method(
        self, name: str, corpus: str, context: str | None = None, flag: str = "--method"
    ) -> Method:
        """The registry's method ``name``, refused in one line (naming ``flag`` and the
        methods the run has) when the run cannot sample it for ``corpus``."""
        if corpus not in self.targets():
            have = ", ".join(self.targets()) or "none"
            raise RunError(f"--corpus {corpus}: not a target corpus of this run (it has: {have})")
        have = self.available(corpus, context)
        if name not in have:
            why = "unknown method" if name not in REGISTRY else "this run does not have it"
            raise RunError(f"{flag} {name}: {why} for {corpus} (this run has: {', '.join(have)})")
        return REGISTRY[name]

    # ------------------------------------------------------------------ pieces and fitting
    def train_pieces(self, corpus: str) -> list[np.ndarray]:
        from .tokenize import corpus_tokens

        return corpus_tokens(self.shards(corpus), [str(self.split(corpus))], "train")

    def train_groups(self, corpus: str) -> list[str]:
        """The group of each training piece, in :meth:`train_pieces`' order (file id)."""
        from .fewshot import read_groups
        from .split import read_split
        from .tokenize import read_listing

        groups = read_groups(self.split(corpus))
        group_of = {f: g for g, fs in groups.items() for f in fs}
        ids = sorted(f for f, part in read_split(self.split(corpus)).items() if part == "train")
        present = set()
        for shard in self.shards(corpus):
            present |= set(read_listing(shard).file_ids)
        return [group_of[f] for f in ids if f in present]

    def tokens_per_bar(self, corpus: str) -> float:
        from .bars import tokens_per_bar

        return tokens_per_bar(self.train_pieces(corpus), self.bar_id)

    def env(
        self, method: Method, corpus: str, gen: dict, eval_cfg: dict, sampling: dict | None = None
    ) -> Env:
        """The :class:`~tokentransfer.methods.Env` that ``method`` is fitted with: the run's
        tokenizer, the ``generate``, ``evaluate`` and ``sampling`` settings given (``sampling``
        by default the run config's), its model folder, the base corpus, the graph and
        link-prediction sections and, for the methods that train, the few-shot budget and a
        scratch checkpoint folder."""
        from .jobs.fewshot import _finetune_spec

        bases = self.bases()
        env = Env(
            self.tokenizer,
            str(self.tokenizer_json),
            gen=gen,
            eval=eval_cfg,
            sampling=dict(self.config["sampling"] if sampling is None else sampling),
            model_dir=str(self.model_dir(method.model, corpus)) if method.model else None,
            use_gpu=self.use_gpu,
            seed=int(self.config.get("seed", 0)),
            groups=self.train_groups(corpus),
            base_shards=[s for b in bases for s in self.shards(b)],
            base_splits=[str(self.split(b)) for b in bases],
            graph=self.config["graph"],
            linkpred=self.config["linkpred"],
        )
        if loads(method) == "trains":
            scratch = tempfile.TemporaryDirectory(prefix="tokentransfer-fit-")
            self._scratch.append(scratch)
            env.checkpoints = scratch.name
            env.budget = _finetune_spec(self.config["fewshot"], self.config["finetune"], 0)
        return env

    def fit(
        self, method: Method, corpus: str, gen: dict, eval_cfg: dict, sampling: dict | None = None
    ) -> Fitted:
        """``method`` ready to sample for ``corpus``: a walk from the run's graph files (with
        the walk settings of ``gen``), anything else by its ``fit`` on the target's training
        pieces with :meth:`env`."""
        if method.kind == "graph":
            return self.walk(method, corpus, gen)
        env = self.env(method, corpus, gen, eval_cfg, sampling)
        return method.fit(self.train_pieces(corpus), env)

    def walk(self, method: Method, corpus: str, gen: dict) -> Fitted:
        """The walk ``method`` of ``corpus`` from the run's graph files, with the walk
        settings of ``gen``; the melody and form tables where the settings use them: the
        run's ``graphs/<corpus>/walk_tables.npz``, else (a run older than those tables)
        counted on the training pieces."""
        import time

        from .likelihood import walk_log_probs
        from .walk import WalkConfig

        t0 = time.perf_counter()
        cfg = WalkConfig.from_section(gen)
        files = self.walk_files(method, corpus, cfg.context)
        nodes = files[-1] if method.graph_network else None
        tables = None
        saved = Path(self.layout.walk_tables(corpus))
        if (cfg.melody != "none" or cfg.form != "none") and not saved.is_file():
            from .walkform import count_tables

            tables = count_tables(self.train_pieces(corpus), self.tokenizer)
        context = files[1] if cfg.context != "none" else None
        walker = load_walker(self.tokenizer, files[0], nodes, cfg, context, saved, tables)

        def sample(n, length, seed, prompt=None):
            return walker.generate(n, length, prompt=prompt, seed=seed)

        walker.generate(1, 1, seed=0)  # compiles (or loads) the walk's kernel: set-up time
        record = {"parameters": cfg.__dict__, "nodes": str(nodes) if nodes else None}
        setup = time.perf_counter() - t0
        return Fitted(sample, lambda s: walk_log_probs(walker, s), record, setup)


def load_walker(
    tokenizer, successors_npz, nodes_h5, cfg, context_npz=None, walk_npz=None, tables=None
):
    """A :class:`tokentransfer.walk.Walker` from a run's files: the successor counts, the node
    embeddings of ``nodes_h5`` (None: the counts alone), unless ``cfg.context`` is none the
    context successor counts (``context_npz``; None: ``context_successors.npz`` beside the
    successors) and, where ``cfg``'s melody or form is not none, the walk tables: ``tables``
    if given, else those of ``walk_npz`` (None: ``walk_tables.npz`` beside the successors)."""
    from .graph import load_coo, load_matrix
    from .walk import Walker, load_node_embeddings

    h = vocab_ids = None
    if nodes_h5:
        h, vocab_ids = load_node_embeddings(nodes_h5)
    ctx = None
    if cfg.context != "none":
        ctx = load_coo(context_npz or Path(successors_npz).with_name("context_successors.npz"))
    if tables is None and (cfg.melody != "none" or cfg.form != "none"):
        from .walkform import load_tables

        tables = load_tables(walk_npz or Path(successors_npz).with_name("walk_tables.npz"))
    return Walker(load_matrix(successors_npz), tokenizer, h, vocab_ids, cfg, ctx, tables)


def sample_length_or_bars(
    fitted: Fitted,
    n: int,
    seed: int,
    prompt: np.ndarray | None,
    *,
    length: int | None,
    bars: int | None,
    per_bar: Callable[[], float],
    bar_id: int,
    limit_tokens: int,
) -> tuple[list[np.ndarray], dict]:
    """``n`` samples of ``length`` tokens, or of ``bars`` bars (:func:`tokentransfer.bars.
    sample_bars`, budgets from ``per_bar()`` tokens a bar, at most ``limit_tokens``), each
    after the prompt; and what was drawn."""
    if bars is not None:
        from .bars import sample_bars

        return sample_bars(
            fitted.sample,
            n,
            bars,
            seed,
            per_bar(),
            prompt,
            bar_id=bar_id,
            max_tokens=limit_tokens,
        )
    return fitted.sample(n, length, seed, prompt), {"length": length}


def walk_section(config: dict, overrides: dict) -> dict:
    """The ``generate`` section with the walk's keys of ``overrides`` (those not None)."""
    gen = dict(config["generate"])
    gen.update({k: v for k, v in overrides.items() if k in WALK_KEYS and v is not None})
    return gen
