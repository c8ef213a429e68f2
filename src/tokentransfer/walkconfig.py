"""The walk's settings (config section ``generate``), checked in one place.

:class:`WalkConfig` holds them and checks each value with :func:`problem` (:data:`CHECKS`, one
rule per key), raising a one-line error naming the config key; the CLI's walk flags call the
same :func:`problem` and name the flag. The method itself: :mod:`tokentransfer.walk`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

SIMILARITIES = ("cosine", "dot")
#: scale constraints of the walk (see the module doc and :mod:`tokentransfer.tonality`)
SCALES = ("none", "key")
#: walk contexts and the notes-per-onset classes each tells apart (None: no context)
CONTEXTS = {"none": None, "position": 1, "onset": 4}
#: pitch memory of the walk (see the module doc and :mod:`tokentransfer.walkform`)
MELODIES = ("none", "interval")
#: form device of the walk
FORMS = ("none", "return")
#: walk engines: the compiled kernel, the same function run as Python
ENGINES = ("numba", "python")


def _probability(x) -> str | None:
    return None if 0.0 <= x <= 1.0 else f"a probability, in [0, 1], got {x}"


def _one_of(options):
    return lambda x: None if x in options else f"must be one of {tuple(options)}, got {x!r}"


#: the one check of each walk setting: key -> (value -> None, or why the value is refused)
CHECKS = {
    "length": lambda x: None if x >= 0 else f"must be >= 0, got {x}",
    "samples": lambda x: None if x >= 0 else f"must be >= 0, got {x}",
    "beta": lambda x: None if x >= 0 else f"must be >= 0, got {x}",
    "temperature": lambda x: None if x > 0 else f"must be > 0, got {x}",
    "top_k": lambda x: None if x >= 0 else f"must be >= 0 (0: all successors), got {x}",
    "restart": _probability,
    "similarity": _one_of(SIMILARITIES),
    "context": _one_of(CONTEXTS),
    "scale": _one_of(SCALES),
    "chromatic": _probability,
    "melody": _one_of(MELODIES),
    "form": _one_of(FORMS),
}


def problem(key: str, value) -> str | None:
    """Why the walk refuses ``value`` for setting ``key`` (a ``generate`` key, a field of
    :class:`WalkConfig`), in one line without the key (its caller names the key: the config
    key or the CLI flag), or None when it takes it."""
    check = CHECKS.get(key)
    return check(value) if check is not None else None


@dataclass
class WalkConfig:
    """Settings of the walk (config section ``generate``).

    ``length``: tokens generated per sample (a prompt not counted); ``samples``: samples per
    call; ``beta``: exponent of the counts; ``temperature``: tau of ``exp(sim / tau)``;
    ``top_k``: candidates kept per row (0: all); ``restart``: alpha, the restart probability
    per step; ``similarity``: ``"cosine"`` or ``"dot"``; ``context``: ``"none"``,
    ``"position"`` or ``"onset"`` (see the module doc); ``scale``: ``"key"`` (pitches from
    the scale of the key the sample has found, see the module doc) or ``"none"``;
    ``chromatic``: with ``scale: key``, the probability per step that the pitch drawn may
    leave the scale; ``melody``: ``"interval"`` (pitches weighted by the target's interval
    model) or ``"none"``; ``form``: ``"return"`` (bars return as the target's do) or
    ``"none"``; ``seed``: RNG seed. ``beta`` 0.75 (the default) flattens the walk so that it
    copies no more 8-grams of the target's pieces than held-out pieces share with them
    (docs/method.md); 1.0 walks the counts as they are.
    """

    length: int = 1024
    samples: int = 4
    beta: float = 0.75
    temperature: float = 0.5
    top_k: int = 16
    restart: float = 0.05
    similarity: str = "cosine"
    context: str = "onset"
    scale: str = "key"
    chromatic: float = 0.0
    melody: str = "interval"
    form: str = "return"
    seed: int = 0

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            why = problem(f.name, getattr(self, f.name))
            if why:
                raise ValueError(f"generate.{f.name}: {why}")

    @classmethod
    def from_section(cls, section: dict) -> WalkConfig:
        """The walk's settings from a ``generate`` config section: the keys that are fields
        of WalkConfig (the defaults for those it lacks), the others ignored. Rule ``generate``
        and every method that walks (:mod:`tokentransfer.methods`) build it so."""
        return cls(**{k: section[k] for k in cls.__dataclass_fields__ if k in section})
