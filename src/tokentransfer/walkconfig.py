"""The walk's settings (config section ``generate``), checked in one place.

:class:`WalkConfig` holds them and checks each value (:func:`check`, a one-line error naming
the key); the config schema's ``generate`` section and the CLI's walk flags call the same
check. The method itself: :mod:`tokentransfer.walk`.
"""

from __future__ import annotations

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
        if self.length < 0:
            raise ValueError(f"generate.length must be >= 0, got {self.length}")
        if self.samples < 0:
            raise ValueError(f"generate.samples must be >= 0, got {self.samples}")
        if not self.temperature > 0:
            raise ValueError(f"generate.temperature must be > 0, got {self.temperature}")
        if self.top_k < 0:
            raise ValueError(f"generate.top_k must be >= 0 (0: all), got {self.top_k}")
        if not 0.0 <= self.restart <= 1.0:
            raise ValueError(f"generate.restart must be in [0, 1], got {self.restart}")
        if self.similarity not in SIMILARITIES:
            raise ValueError(
                f"generate.similarity must be one of {SIMILARITIES}, got {self.similarity!r}"
            )
        if self.scale not in SCALES:
            raise ValueError(f"generate.scale must be one of {SCALES}, got {self.scale!r}")
        if not 0.0 <= self.chromatic <= 1.0:
            raise ValueError(f"generate.chromatic must be in [0, 1], got {self.chromatic}")
        if self.melody not in MELODIES:
            raise ValueError(f"generate.melody must be one of {MELODIES}, got {self.melody!r}")
        if self.form not in FORMS:
            raise ValueError(f"generate.form must be one of {FORMS}, got {self.form!r}")
        if self.context not in CONTEXTS:
            raise ValueError(
                f"generate.context must be one of {tuple(CONTEXTS)}, got {self.context!r}"
            )

    @classmethod
    def from_section(cls, section: dict) -> WalkConfig:
        """The walk's settings from a ``generate`` config section: the keys that are fields
        of WalkConfig (the defaults for those it lacks), the others ignored. Rule ``generate``
        and every method that walks (:mod:`tokentransfer.methods`) build it so."""
        return cls(**{k: section[k] for k in cls.__dataclass_fields__ if k in section})
