"""Every key of the config schema refuses a wrong type and a wrong value, naming the key.

The cases are generated from schemas/config.schema.yaml itself, so a key added to the schema is
tested without anyone remembering to: for each leaf key, a value of the wrong type, and where the
schema constrains the value (enum, minimum, maximum, ...) a value just outside it, and for the
lists of method and variant names (checked against the method registry, not by the schema) an
unknown name. The message must start with ``config key <dotted key>:`` and name what is allowed
(the type, the allowed values or the bound). Source settings are reached through a ``dir``,
``tegridy`` and ``music21`` source of a target corpus; ``corpora.NAME.*`` through the target
corpus.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator

import pytest

from tokentransfer.config import SCHEMA_PATH, ConfigError, check, load_yaml
from tokentransfer.methods import allowed_names

SCHEMA = load_yaml(SCHEMA_PATH)
GOOD = {
    "corpora": {
        "base": {"role": "base", "sources": [{"music21": {"composer": "palestrina"}}]},
        "bach": {
            "role": "target",
            "sources": [
                {"dir": {"path": "/data/bach"}},
                {"tegridy": {"zip": "POP909-Score.zip"}},
                {"music21": {"composer": "bach"}},
            ],
        },
    }
}
#: where each source kind sits in GOOD's target corpus
SOURCE_INDEX = {"dir": 0, "tegridy": 1, "music21": 2}
TYPE_WORDS = {
    "integer": "'integer'",
    "number": "'number'",
    "boolean": "'boolean'",
    "string": "'string'",
    "array": "'array'",
    "object": "'object'",
}


def resolve(node: dict) -> dict:
    """Follow ``$ref``s within the schema."""
    while "$ref" in node:
        target = SCHEMA
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def leaves(node: dict, path: tuple) -> Iterator[tuple[tuple, dict]]:
    """(path, schema) of every leaf key below ``node`` (objects with properties recurse)."""
    node = resolve(node)
    props = node.get("properties")
    if node.get("type") == "object" and props:
        for name, sub in props.items():
            yield from leaves(sub, (*path, name))
    else:
        yield path, node


def all_leaves() -> Iterator[tuple[tuple, dict]]:
    for name, sub in SCHEMA["properties"].items():
        if name == "corpora":
            continue
        yield from leaves(sub, (name,))
    corpus = resolve(SCHEMA["definitions"]["corpus"])
    for name in ("role", "enabled"):
        yield ("corpora", "bach", name), resolve(corpus["properties"][name])
    source_kinds = resolve(SCHEMA["definitions"]["source"])["properties"]
    for kind, spec in source_kinds.items():
        for name, sub in spec["properties"].items():
            yield ("corpora", "bach", "sources", SOURCE_INDEX[kind], kind, name), resolve(sub)


def dotted(path: tuple) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else p)
    return out


def wrong_values(spec: dict, key: str = "") -> list[tuple[str, object, list[str]]]:
    """(case, value, words the message must hold) for one leaf (``key``: its dotted key)."""
    types = spec.get("type")
    if types is None and "oneOf" in spec:  # music21.composer: a string or a list of strings
        return [("type", 5, ["is not valid under any of the given schemas"])]
    types = types if isinstance(types, list) else [types]
    cases = []
    if "boolean" not in types and "integer" not in types and "number" not in types:
        bad = True  # a boolean where a string, array or object is expected
    else:
        bad = "not-a-value"
    words = [TYPE_WORDS[t] for t in types if t in TYPE_WORDS]
    cases.append(("type", bad, ["is not of type", *words]))
    if "enum" in spec:
        cases.append(("enum", "no-such-value", ["is not one of", *map(str, spec["enum"][:3])]))
    if "minimum" in spec:
        cases.append(
            ("minimum", spec["minimum"] - 1, ["less than the minimum", str(spec["minimum"])])
        )
    if "exclusiveMinimum" in spec:
        m = spec["exclusiveMinimum"]
        cases.append(("exclusiveMinimum", m, ["less than or equal to the minimum", str(m)]))
    if "maximum" in spec:
        cases.append(("maximum", spec["maximum"] + 1, ["greater than the maximum"]))
    if "exclusiveMaximum" in spec:
        m = spec["exclusiveMaximum"]
        cases.append(("exclusiveMaximum", m, ["greater than or equal to the maximum"]))
    if "array" in types:
        items = resolve(spec.get("items", {}))
        if "enum" in items:
            cases.append(("item", ["no-such-value"], ["is not one of", str(items["enum"][0])]))
        elif key in allowed_names():
            names = allowed_names()[key]
            cases.append(("name", ["no-such-value"], ["is not one of", names[0], names[-1]]))
        elif items.get("type") in ("integer", "number"):
            cases.append(("item", ["x"], ["is not of type"]))
        elif items.get("type") == "string":
            cases.append(("item", [5], ["is not of type 'string'"]))
    if spec.get("minLength"):
        cases.append(("minLength", "", ["should be non-empty"]))
    return cases


CASES = [
    pytest.param(path, value, words, id=f"{dotted(path)}-{case}")
    for path, spec in all_leaves()
    for case, value, words in wrong_values(spec, dotted(path))
]


def set_key(config: dict, path: tuple, value) -> None:
    node = config
    for p in path[:-1]:
        node = node.setdefault(p, {}) if isinstance(node, dict) else node[p]
    node[path[-1]] = value


def test_every_top_level_section_is_covered():
    covered = {p.values[0][0] for p in CASES}
    assert covered == set(SCHEMA["properties"])
    assert len(CASES) > 80
    named = {dotted(p.values[0]) for p in CASES if p.id.endswith("-name")}
    assert named == set(allowed_names())  # every registry-checked list has its unknown name


@pytest.mark.parametrize(("path", "value", "words"), CASES)
def test_wrong_value_names_key_and_allowed(path, value, words):
    config = copy.deepcopy(GOOD)
    set_key(config, path, value)
    with pytest.raises(ConfigError) as err:
        check(config, SCHEMA)
    msg = str(err.value)
    key = dotted(path)
    item_case = isinstance(value, list) and len(value) == 1
    expected = f"config key {key}[0]:" if item_case else f"config key {key}:"
    assert msg.startswith(expected), msg
    for w in words:
        assert w in msg, msg


def test_walk_defaults_are_the_schemas():
    """One set of walk defaults: WalkConfig's fields (and so the CLI's `generate` options,
    which read them) equal the schema's generate defaults."""
    import dataclasses

    from tokentransfer.cli import build_parser
    from tokentransfer.config import SCHEMA_PATH, load_yaml
    from tokentransfer.walk import WalkConfig

    props = load_yaml(SCHEMA_PATH)["properties"]["generate"]["properties"]
    walk = WalkConfig()
    shared = [f.name for f in dataclasses.fields(WalkConfig) if f.name in props]
    assert {"length", "samples", "temperature", "top_k", "restart", "context"} <= set(shared)
    for name in shared:
        assert getattr(walk, name) == props[name]["default"], name
    args = build_parser().parse_args(["generate", "--corpus", "bach", "--out", "x"])
    assert (args.n, args.length, args.top_k, args.restart) == (
        props["samples"]["default"],
        props["length"]["default"],
        props["top_k"]["default"],
        props["restart"]["default"],
    )


def test_linkpred_training_keys_are_the_schemas_and_the_trainers():
    """One mapping from the ``linkpred`` section to a network's training: every key of
    ``training_kwargs`` is a key of the schema's section, read by the methods that train a
    network (LINKPRED_KEYS), and a keyword of ``train_link_predictor``; the schema's defaults
    pass through unchanged."""
    import inspect

    from tokentransfer.config import SCHEMA_PATH, load_yaml
    from tokentransfer.linkpred import TRAINING_KEYS, train_link_predictor, training_kwargs
    from tokentransfer.methods import LINKPRED_KEYS

    props = load_yaml(SCHEMA_PATH)["properties"]["linkpred"]["properties"]
    defaults = {k: v["default"] for k, v in props.items() if "default" in v}
    kwargs = training_kwargs(defaults)
    assert set(kwargs) == set(TRAINING_KEYS)
    assert kwargs == {k: defaults[k] for k in TRAINING_KEYS}
    assert set(TRAINING_KEYS) <= set(LINKPRED_KEYS)
    assert set(TRAINING_KEYS) <= set(inspect.signature(train_link_predictor).parameters)
