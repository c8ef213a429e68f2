"""Pins in pyproject.toml and envs/*.yaml agree, and every rule that runs code names its conda env.

The checks are functions of paths (``version_problems``, ``rule_env_problems``), so that they are
also run against deliberately drifted copies, to show that they can fail.

Rules for the pins (package names normalised: lower case, ``_`` and ``.`` -> ``-``):
- a package pinned in more than one place (pyproject [project] dependencies, its extras, the
  conda and pip lists of any envs/*.yaml) has the same version everywhere;
- pyproject's dependencies and extras are exact pins (``==``), and so are the env packages
  (``name=version`` for conda, ``name==version`` for pip), python and pip excepted;
- every runtime dependency of pyproject is pinned in at least one envs/*.yaml (the rules' envs:
  tokentransfer.yaml for most rules, torch.yaml for the transformer ones), except the orchestrator
  (snakemake runs the rules; a ``script:`` gets snakemake's own module path, not the env's);
- every package of every envs/*.yaml is a runtime dependency of pyproject, since a local run
  (``pip install -e .``, no conda) must have whatever any rule's env has;
- envs/tokentransfer.yaml exists and every env pins python;
- the env's python version satisfies pyproject's requires-python;
- no package is in both the conda and the pip list of one env.
"""

from __future__ import annotations

import ast
import re
import shutil
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from tests.conftest import REPO

#: the env of most rules; it must exist
RUNTIME_ENV = "tokentransfer.yaml"
#: runtime dependencies of pyproject that the rules' env does not need
ORCHESTRATOR_ONLY = {"snakemake"}
#: env packages that are not Python distributions of pyproject (fluidsynth: the audio renderer,
#: a system program that a pip install gets from the OS, e.g. Debian's fluidsynth)
ENV_ONLY = {"python", "pip", "fluidsynth"}
#: conda-forge names whose PyPI name differs
CONDA_TO_PYPI = {
    "pytorch": "torch",
    "pytables": "tables",
    "matplotlib-base": "matplotlib",
    "pyg": "torch-geometric",
}
#: directives whose rule runs code in a conda env (``run:`` cannot use one; wrappers bring theirs)
CODE_DIRECTIVES = {"script", "shell", "notebook"}


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name.strip().lower())


@dataclass
class Pins:
    """Where each package is pinned: {normalised name: {place: version or None}}."""

    places: dict[str, dict[str, str | None]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def add(self, name: str, version: str | None, place: str) -> None:
        self.places.setdefault(normalise(name), {})[place] = version


# --------------------------------------------------------------------------- parsing


def _pip_pin(spec: str, place: str, pins: Pins) -> None:
    try:
        req = Requirement(spec)
    except InvalidRequirement:
        pins.problems.append(f"{place}: cannot parse {spec!r} as a requirement")
        return
    exact = [s.version for s in req.specifier if s.operator == "=="]
    if len(exact) != 1 or len(req.specifier) != 1 or "*" in exact[0]:
        pins.problems.append(f"{place}: {spec!r} is not pinned as name==version")
        pins.add(req.name, None, place)
        return
    pins.add(req.name, exact[0], place)


def read_pyproject(pyproject: Path, pins: Pins) -> str | None:
    """Add pyproject's dependencies and extras to ``pins``; return requires-python."""
    project = tomllib.loads(pyproject.read_text())["project"]
    for spec in project.get("dependencies", []):
        _pip_pin(spec, "pyproject dependencies", pins)
    for extra, specs in project.get("optional-dependencies", {}).items():
        for spec in specs:
            _pip_pin(spec, f"pyproject extra [{extra}]", pins)
    return project.get("requires-python")


_CONDA_SPEC = re.compile(
    r"(?:[\w.-]+::)?(?P<name>[A-Za-z0-9][A-Za-z0-9_.-]*)"
    r"(?:\s*(?:==?|\s)\s*(?P<version>[0-9][\w.!+]*)(?:[=\s]\S+)?)?"
)


def read_env(env: Path, pins: Pins) -> None:
    """Add the conda and pip pins of one envs/*.yaml to ``pins``."""
    data = yaml.safe_load(env.read_text()) or {}
    deps = data.get("dependencies") or []
    if not isinstance(deps, list):
        pins.problems.append(f"{env.name}: dependencies is not a list")
        return
    for dep in deps:
        if isinstance(dep, dict):
            if set(dep) != {"pip"} or not isinstance(dep["pip"], list):
                pins.problems.append(f"{env.name}: unexpected entry {dep!r}")
                continue
            for spec in dep["pip"]:
                _pip_pin(str(spec), f"{env.name} pip", pins)
            continue
        spec = str(dep).strip()
        m = _CONDA_SPEC.fullmatch(spec)
        if m is None:
            pins.problems.append(f"{env.name} conda: {spec!r} is not pinned as name=version")
            name = re.match(r"(?:[\w.-]+::)?([A-Za-z0-9_.-]+)", spec)
            if name:
                pins.add(name.group(1), None, f"{env.name} conda")
            continue
        name = normalise(m["name"])
        name = CONDA_TO_PYPI.get(name, name)
        if m["version"] is None and name not in ENV_ONLY - {"python"}:
            pins.problems.append(f"{env.name} conda: {spec!r} is not pinned as name=version")
        pins.add(name, m["version"], f"{env.name} conda")


# --------------------------------------------------------------------------- checks


def version_problems(pyproject: Path, envs_dir: Path) -> list[str]:
    """Everything that is out of step between ``pyproject`` and ``envs_dir/*.yaml``."""
    pins = Pins()
    requires_python = read_pyproject(pyproject, pins)
    envs = sorted(envs_dir.glob("*.yaml")) + sorted(envs_dir.glob("*.yml"))
    runtime_env = envs_dir / RUNTIME_ENV
    if not runtime_env.is_file():
        pins.problems.append(f"{RUNTIME_ENV}: missing from {envs_dir}")
    for env in envs:
        read_env(env, pins)
    problems = pins.problems

    for name, places in sorted(pins.places.items()):
        if name == "python":
            continue
        # the same version wherever the package is pinned
        versions = {p: v for p, v in places.items() if v is not None}
        if len({Version(v) if _valid(v) else v for v in versions.values()}) > 1:
            where = ", ".join(f"{p}: {v}" for p, v in sorted(versions.items()))
            problems.append(f"{name}: different versions ({where})")
        # not twice in one env
        for env in envs:
            if f"{env.name} conda" in places and f"{env.name} pip" in places:
                problems.append(f"{name}: in both the conda and the pip list of {env.name}")

    # runtime dependencies <-> the rules' envs
    def envs_of(name: str) -> list[str]:
        places = pins.places.get(name, {})
        return sorted({env.name for env in envs for p in places if p.startswith(f"{env.name} ")})

    runtime = {n for n, places in pins.places.items() if "pyproject dependencies" in places}
    in_envs = {n for n in pins.places if envs_of(n)}
    for name in sorted(runtime - in_envs - ORCHESTRATOR_ONLY):
        problems.append(f"{name}: a runtime dependency of pyproject in no envs/*.yaml")
    for name in sorted(in_envs - runtime - ENV_ONLY):
        where = ", ".join(envs_of(name))
        problems.append(f"{name}: in {where} but not a runtime dependency of pyproject")

    # python: pinned in every env, within requires-python
    python = pins.places.get("python", {})
    for env in envs:
        if f"{env.name} conda" not in python:
            problems.append(f"python: {env.name} does not pin python")
    for place, version in sorted(python.items()):
        if requires_python and version and not _python_ok(version, requires_python):
            problems.append(f"python: {place} has {version}, pyproject wants {requires_python}")
    return problems


def _valid(v: str) -> bool:
    try:
        Version(v)
    except InvalidVersion:
        return False
    return True


def _python_ok(version: str, requires: str) -> bool:
    """A conda python pin (``3.11`` means 3.11.*) within pyproject's requires-python."""
    spec = SpecifierSet(requires)
    parts = version.split(".")
    probe = version if len(parts) >= 3 else ".".join([*parts, "0"][:3])
    return _valid(probe) and Version(probe) in spec


@dataclass
class Rule:
    name: str
    file: Path
    line: int
    directives: dict[str, str]  # directive -> its text (the rest of its line and its block)


_RULE = re.compile(r"^(?P<indent>[ \t]*)(?P<kind>rule|checkpoint)(?:\s+(?P<name>\w+))?\s*:")
_DIRECTIVE = re.compile(r"^(?P<key>\w+)\s*:(?P<rest>.*)$")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def _code(line: str) -> bool:
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith("#")


def parse_rules(path: Path) -> list[Rule]:
    """The rules and checkpoints of one Snakefile, with their directives (text parsing)."""
    lines = path.read_text().splitlines()
    rules: list[Rule] = []
    i = 0
    while i < len(lines):
        m = _RULE.match(lines[i])
        if not m:
            i += 1
            continue
        head_indent = len(m["indent"].expandtabs())
        name = m["name"] or f"<anonymous at line {i + 1}>"
        start = i + 1
        j = start
        while j < len(lines) and (not _code(lines[j]) or _indent(lines[j]) > head_indent):
            j += 1
        body = lines[start:j]
        code_lines = [ln for ln in body if _code(ln)]
        directives: dict[str, str] = {}
        if code_lines:
            level = _indent(code_lines[0])
            key = None
            for ln in body:
                if _code(ln) and _indent(ln) == level:
                    d = _DIRECTIVE.match(ln.strip())
                    key = d["key"] if d else None
                    if key:
                        directives[key] = d["rest"].strip()
                elif key and _code(ln):
                    directives[key] = (directives[key] + "\n" + ln.strip()).strip()
        rules.append(Rule(name, path, i + 1, directives))
        i = j
    return rules


def workflow_files(workflow_dir: Path) -> list[Path]:
    files = [workflow_dir / "Snakefile", *sorted((workflow_dir / "rules").glob("*.smk"))]
    return [f for f in files if f.is_file()]


def rule_env_problems(workflow_dir: Path) -> list[str]:
    """Rules with ``script:``/``shell:``/``notebook:`` lacking a ``conda:`` env in envs/."""
    envs_dir = (workflow_dir / "envs").resolve()
    problems = []
    for path in workflow_files(workflow_dir):
        for rule in parse_rules(path):
            where = f"{path.relative_to(workflow_dir)}:{rule.line} rule {rule.name}"
            if not CODE_DIRECTIVES & rule.directives.keys():
                continue
            if "conda" not in rule.directives:
                problems.append(f"{where}: runs code but has no conda: directive")
                continue
            text = rule.directives["conda"].strip().rstrip(",").strip()
            try:
                value = ast.literal_eval(text)
            except (SyntaxError, ValueError):
                value = None
            if not isinstance(value, str):
                problems.append(f"{where}: conda: {text!r} is not a plain path to envs/*.yaml")
                continue
            env = (path.parent / value).resolve()
            if env.parent != envs_dir or env.suffix not in {".yaml", ".yml"}:
                problems.append(f"{where}: conda: {value} is not a file envs/*.yaml")
            elif not env.is_file():
                problems.append(f"{where}: conda: {value} does not exist")
    return problems


# --------------------------------------------------------------------------- tests


def test_pins_in_step():
    assert version_problems(REPO / "pyproject.toml", REPO / "envs") == []


def test_rules_name_their_env():
    rules = [r for f in workflow_files(REPO) for r in parse_rules(f)]
    runs_code = {r.name for r in rules if CODE_DIRECTIVES & r.directives.keys()}
    # the parser sees the rules (so that an empty result is not a vacuous pass)
    assert {"ingest", "tokenizer", "tokenize_shard", "token_index"} <= runs_code
    assert rule_env_problems(REPO) == []


@pytest.mark.parametrize(
    "name, expected",
    [
        ("PyYAML", "pyyaml"),
        ("typing_extensions", "typing-extensions"),
        ("zope.Interface", "zope-interface"),
    ],
)
def test_normalise(name, expected):
    assert normalise(name) == expected


@pytest.fixture
def drifted(tmp_path) -> Path:
    """A copy of the files these checks read, to be drifted by a test."""
    for name in ("pyproject.toml", "Snakefile"):
        shutil.copy(REPO / name, tmp_path / name)
    for folder in ("envs", "rules"):
        shutil.copytree(REPO / folder, tmp_path / folder)
    assert version_problems(tmp_path / "pyproject.toml", tmp_path / "envs") == []
    assert rule_env_problems(tmp_path) == []
    return tmp_path


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


@pytest.mark.parametrize(
    "file, old, new, expected",
    [
        ("envs/tokentransfer.yaml", "h5py=3.16.0", "h5py=3.15.1", "h5py: different versions"),
        ("envs/tokentransfer.yaml", "miditok==3.1.0", "miditok==3.0.4", "miditok: different"),
        ("envs/*.yaml", "  - jsonschema=4.26.0\n", "", "jsonschema: a runtime dependency"),
        ("envs/torch.yaml", "pytorch=2.13.0", "pytorch=2.12.1", "torch: different versions"),
        ("envs/torch.yaml", "transformers==5.24.0", "transformers", "'transformers' is not"),
        ("envs/torch.yaml", "python=3.11\n", "", "python: torch.yaml does not pin python"),
        ("envs/tokentransfer.yaml", "  - pip:\n", "  - scipy=1.16.2\n  - pip:\n", "scipy: diff"),
        ("envs/tokentransfer.yaml", "numpy=2.4.6", "numpy", "'numpy' is not pinned"),
        ("envs/tokentransfer.yaml", "python=3.11", "python=3.13", "python: tokentransfer.yaml"),
        ("envs/tokentransfer.yaml", "  - pip:\n", "  - music21=10.5.1\n  - pip:\n", "both"),
        ("pyproject.toml", '"numpy==2.4.6"', '"numpy>=2"', "'numpy>=2' is not pinned"),
        ("pyproject.toml", '    "pyyaml==6.0.3",\n', "", "pyyaml: in graph.yaml, tokentransfer"),
        ("pyproject.toml", '"symusic==0.6.0"', '"Symusic==0.6.1"', "symusic: different"),
        (
            "pyproject.toml",
            'slurm = ["snakemake-executor-plugin-slurm==2.8.0"]',
            'slurm = ["snakemake_executor_plugin_slurm==2.7.0"]',
            "snakemake-executor-plugin-slurm: different versions",
        ),
    ],
)
def test_version_drift_fails(drifted, file, old, new, expected):
    files = sorted(p for p in drifted.glob(file) if old in p.read_text())  # the envs that pin it
    assert files, file
    for path in files:
        _edit(path, old, new)
    problems = version_problems(drifted / "pyproject.toml", drifted / "envs")
    assert any(expected in p for p in problems), problems


def test_env_file_of_another_stage_is_checked_too(drifted):
    (drifted / "envs" / "gpu.yaml").write_text(
        "channels: [conda-forge]\ndependencies:\n  - python=3.11\n  - h5py=3.14.0\n"
    )
    problems = version_problems(drifted / "pyproject.toml", drifted / "envs")
    assert any("h5py: different versions" in p and "gpu.yaml" in p for p in problems), problems


def test_rule_without_conda_fails(drifted):
    _edit(
        drifted / "rules" / "tokenize.smk", '    conda:\n        "../envs/tokentransfer.yaml"\n', ""
    )
    problems = rule_env_problems(drifted)
    assert any("rule tokenizer: runs code but has no conda" in p for p in problems), problems


def test_rule_with_missing_env_fails(drifted):
    _edit(drifted / "rules" / "corpus.smk", '"../envs/tokentransfer.yaml"', '"../envs/gone.yaml"')
    problems = rule_env_problems(drifted)
    assert any("rule fetch_tegridy: conda: ../envs/gone.yaml does not exist" in p for p in problems)


def test_shell_rule_and_env_outside_envs_fail(drifted):
    (drifted / "rules" / "extra.smk").write_text(
        "rule shell_no_env:\n"
        "    output:\n        'x.txt',\n"
        "    shell:\n        'touch {output}'\n\n\n"
        "if True:\n\n"
        "    rule elsewhere:\n"
        "        output:\n            'y.txt',\n"
        "        conda:\n            '../tokentransfer.yaml'\n"
        "        shell:\n            'touch {output}'\n\n\n"
        "rule runs_python:\n    output:\n        'z.txt',\n    run:\n        pass\n"
    )
    problems = rule_env_problems(drifted)
    assert any("rule shell_no_env: runs code but has no conda" in p for p in problems), problems
    assert any("rule elsewhere: conda: ../tokentransfer.yaml is not" in p for p in problems)
    assert not any("runs_python" in p for p in problems), problems
