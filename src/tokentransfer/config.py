"""Config checking: the JSON schema plus checks a schema cannot express.

Every error names the config key (as a dotted path such as ``corpora.bach.sources[0]``) and,
where the schema lists them, the allowed values.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import jsonschema
import yaml

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """The config is refused; the message names the key."""


def load_yaml(path: str | os.PathLike) -> dict:
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh) or {}


def key_path(parts) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


def _describe(err: jsonschema.ValidationError) -> str:
    where = key_path(err.absolute_path)
    if err.validator == "additionalProperties":
        allowed = sorted(err.schema.get("properties", {}))
        patterns = list(err.schema.get("patternProperties", {}))
        extra = []
        if isinstance(err.instance, dict):
            extra = sorted(
                k
                for k in err.instance
                if k not in allowed and not any(re.search(p, k) for p in patterns)
            )
        bad = ", ".join(repr(e) for e in extra) or err.message
        if patterns:
            plural = "s" if len(extra) > 1 else ""
            pats = ", ".join(patterns)
            return f"config key {where}: name{plural} {bad} not allowed (names must match {pats})"
        hint = f" (allowed: {', '.join(allowed)})" if allowed else ""
        return f"config key {where}: unknown key {bad}{hint}"
    if err.validator == "enum":
        return f"config key {where}: {err.instance!r} is not one of {err.validator_value}"
    if err.validator == "required":
        return f"config key {where}: {err.message}"
    return f"config key {where}: {err.message}"


#: tokenizer options whose token stream the REMI grammar (tokentransfer.grammar) does not model
_UNMODELLED = {
    "use_rests": "rests",
    "use_pitch_intervals": "pitch intervals",
    "use_bar_end_tokens": "bar-end tokens",
}


def _check_tokenizer(tok: dict) -> None:
    """Refuse a tokenizer the walk and the grammar mask cannot follow (see grammar.unsupported),
    before any job runs."""
    for key, what in _UNMODELLED.items():
        if tok.get(key):
            raise ConfigError(
                f"config key tokenizer.{key}: {what} are not modelled by the REMI grammar that "
                "every sampler follows; leave it false"
            )
    if tok.get("max_bar_embedding") is not None:
        raise ConfigError(
            "config key tokenizer.max_bar_embedding: numbered Bar tokens are not modelled by the "
            "REMI grammar that every sampler follows; leave it unset"
        )
    streams = tok.get("one_token_stream_for_programs")
    if tok.get("use_programs") and streams is not None and not streams:
        raise ConfigError(
            "config key tokenizer.one_token_stream_for_programs: one sequence per track is "
            "not modelled by the REMI grammar that every sampler follows; leave it true"
        )


#: config keys that were renamed (dotted old key -> new key, same settings): a config that
#: still uses the old one is refused, naming both, rather than as an unknown key
RENAMED = {
    "gcn": "linkpred",
    "baselines.finetune": "finetune.targets",
    "baselines": "finetune.targets",
}

#: config keys that moved to another section (dotted old key -> new key, same setting and
#: default): the chains' and the transformers' sampling settings left ``evaluate`` for
#: ``sampling`` (the walk's stay under ``generate``); a config that still has one is refused
MOVED = {
    "evaluate.temperature": "sampling.temperature",
    "evaluate.top_k": "sampling.top_k",
    "evaluate.markov_discount": "sampling.markov_discount",
}


def _has(config: dict, dotted: str) -> bool:
    *parents, last = dotted.split(".")
    node = config
    for p in parents:
        node = node.get(p) if isinstance(node, dict) else None
    return isinstance(node, dict) and last in node


def _check_renamed(config: dict) -> None:
    for old, new in RENAMED.items():
        if _has(config, old):
            raise ConfigError(
                f"config key {old}: renamed, it is now {new} (same settings); "
                f"rename {old} to {new} in the config"
            )
    for old, new in MOVED.items():
        if _has(config, old):
            raise ConfigError(
                f"config key {old}: {old} moved to {new} (same setting and default); "
                f"move it to {new} in the config"
            )


def _check_names(config: dict) -> None:
    """Every list of method or variant names holds names of the method registry (the one list
    of them, :func:`tokentransfer.methods.allowed_names`; the schema says only "strings")."""
    from .methods import allowed_names

    for key, allowed in allowed_names().items():
        section, name = key.split(".")
        for i, value in enumerate(config.get(section, {}).get(name, ())):
            if value not in allowed:
                raise ConfigError(f"config key {key}[{i}]: {value!r} is not one of {allowed}")


def _check_walk(section: dict) -> None:
    """The walk's settings, checked by building the walk's own :class:`WalkConfig` (one rule
    per key, :data:`tokentransfer.walkconfig.CHECKS`; the schema gives their types and
    defaults only)."""
    from .walkconfig import WalkConfig

    try:
        WalkConfig.from_section(section)
    except ValueError as err:  # "generate.<key>: why"
        raise ConfigError(f"config key {err}") from None


def check(config: dict, schema: dict | None = None) -> None:
    """Raise :class:`ConfigError` for the first problem in ``config``, naming its key."""
    if schema is None:
        schema = load_yaml(SCHEMA_PATH)
    _check_renamed(config)
    validator_cls = jsonschema.validators.validator_for(schema)
    errors = sorted(validator_cls(schema).iter_errors(config), key=lambda e: list(e.path))
    if errors:
        best = jsonschema.exceptions.best_match(errors)
        raise ConfigError(_describe(best))
    _check_names(config)
    _check_walk(config.get("generate", {}))
    _check_regexes(config)
    _check_tokenizer(config.get("tokenizer", {}))
    ingest = config.get("ingest", {})
    low, high = ingest.get("min_ticks_per_quarter", 24), ingest.get("max_ticks_per_quarter", 32767)
    if low > high:
        raise ConfigError(
            f"config key ingest.min_ticks_per_quarter: {low} is larger than "
            f"ingest.max_ticks_per_quarter {high}"
        )
    enabled = {n: c for n, c in config.get("corpora", {}).items() if c.get("enabled", True)}
    roles = {c.get("role") for c in enabled.values()}
    for role in ("base", "target"):
        if role not in roles:
            raise ConfigError(f"config key corpora: no enabled corpus has role {role!r}")
    targets = [n for n, c in enabled.items() if c.get("role") == "target"]
    for name in config.get("finetune", {}).get("targets", []):
        if name not in targets:
            raise ConfigError(
                f"config key finetune.targets: {name!r} is not an enabled target corpus "
                f"(targets: {targets})"
            )
    trained = config.get("linkpred", {}).get("variants")
    for v in config.get("generate", {}).get("variants", []):
        if trained is not None and v != "counts" and v not in trained:
            raise ConfigError(
                f"config key generate.variants: {v!r} is not trained (linkpred.variants: {trained})"
            )
    model = config.get("model", {})
    if model.get("source") == "local" and not model.get("path"):
        raise ConfigError("config key model.path: required when model.source is 'local'")
    dim, heads = model.get("dim", 128), model.get("heads", 4)
    if dim % heads:
        raise ConfigError(f"config key model.dim: {dim} is not divisible by model.heads {heads}")


#: source settings that hold a regular expression
REGEX_KEYS = ("group", "include", "exclude")


def _check_regexes(config: dict) -> None:
    """Compile every source's ``group``, ``include`` and ``exclude`` (the schema cannot)."""
    for name, corpus in config.get("corpora", {}).items():
        for i, source in enumerate(corpus.get("sources", [])):
            for kind, spec in source.items():
                for key in REGEX_KEYS:
                    pattern = (spec or {}).get(key)
                    if pattern is None:
                        continue
                    try:
                        re.compile(pattern)
                    except re.error as exc:
                        raise ConfigError(
                            f"config key corpora.{name}.sources[{i}].{kind}.{key}: "
                            f"invalid regex {pattern!r}: {exc}"
                        ) from None


def enabled_corpora(config: dict, role: str | None = None) -> list[str]:
    """Names of enabled corpora (of one role), in config order."""
    return [
        name
        for name, c in config["corpora"].items()
        if c.get("enabled", True) and (role is None or c["role"] == role)
    ]
