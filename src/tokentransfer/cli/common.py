"""What the commands of a finished run share: the usage error, the flags given, the prompt, the
run and method opened, and the settings a method is sampled with."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


class UsageError(Exception):
    """A flag or file of the command line is refused; the message names it, on one line."""


class Given(argparse.Action):
    """Store the value and remember that the flag was given (``args.given``)."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        namespace.given = set(getattr(namespace, "given", ())) | {self.dest}


def given(args: argparse.Namespace, name: str) -> bool:
    return name in getattr(args, "given", ())


def fail(command: str, exc: Exception) -> int:
    print(f"tokentransfer {command}: {exc}", file=sys.stderr)
    return 2


def earlier_output(record: Path, command: str) -> bool:
    """Whether the JSON record ``record`` says that ``tokentransfer <command>`` wrote it."""
    try:
        return json.loads(record.read_text()).get("command") == command
    except (OSError, ValueError, AttributeError):
        return False


def check_prompt(prompt: Path, flag: str = "--prompt") -> None:
    from ..corpus import Limits, check_midi

    if not prompt.exists():
        raise UsageError(f"{flag} {prompt}: no such file")
    if not prompt.is_file():
        raise UsageError(f"{flag} {prompt}: not a file")
    reason = check_midi(prompt.read_bytes(), Limits(max_file_mb=1024, max_hours=1e9))
    if reason is not None:
        raise UsageError(f"{flag} {prompt}: {reason}")


def prompt_ids(run, prompt: str, flag: str = "--prompt"):
    """The prompt's token ids, or a UsageError naming the file."""
    from ..tokenize import tokenize_file

    try:
        return tokenize_file(run.tokenizer, prompt)
    except Exception as exc:  # miditok and symusic raise many kinds on odd files
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UsageError(f"{flag} {prompt}: cannot be tokenized: {first}") from None


def open_run(args: argparse.Namespace, corpus: str, name: str, flag: str = "--method"):
    """The run of ``--results`` and the method ``name`` (given by ``flag``) it has for
    ``corpus``."""
    from ..runs import Run

    run = Run.open(args.results, args.config, args.model)
    context = args.context if given(args, "context") else None
    return run, run.method(name, corpus, context, flag)


def check_walk_flag(args: argparse.Namespace, key: str) -> None:
    """The walk's own check of setting ``key`` (tokentransfer.walkconfig.problem), naming the
    flag."""
    from ..walkconfig import problem

    why = problem(key, getattr(args, key))
    if why:
        raise UsageError(f"--{key.replace('_', '-')}: {why}")


def method_settings(args: argparse.Namespace, run, method) -> tuple[dict, dict, dict]:
    """The ``generate``, ``evaluate`` and ``sampling`` settings ``method`` is fitted and
    sampled with (:meth:`tokentransfer.runs.Run.fit`'s): the run's config, with the flags given
    on the command line (temperature and top-k go to the section the method samples with,
    ``generate`` for the walks and ``sampling`` for the rest; refused for a method that has
    neither)."""
    from ..runs import sampling_keys, walk_section

    section = sampling_keys(method)
    for flag in ("temperature", "top_k"):
        if given(args, flag) and section is None:
            raise UsageError(
                f"--{flag.replace('_', '-')}: {method.name} has no sampling "
                f"{flag.replace('_', '-')}"
            )
    for flag in ("temperature", "top_k"):
        if given(args, flag):
            check_walk_flag(args, flag)
    walk_flags = ("beta", "restart", "similarity", "context")
    overrides = {k: getattr(args, k, None) for k in walk_flags if given(args, k)}
    sampling = {k: getattr(args, k) for k in ("temperature", "top_k") if given(args, k)}
    if section == "generate":
        overrides.update(sampling)
    gen = walk_section(run.config, overrides)
    sampling_cfg = dict(run.config["sampling"])
    if section == "sampling":
        sampling_cfg.update(sampling)
    return gen, dict(run.config["evaluate"]), sampling_cfg
