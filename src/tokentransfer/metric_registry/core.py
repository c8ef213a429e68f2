"""What a metric is (:class:`Metric`, checked when made), the registry (:data:`REGISTRY`,
:func:`register`, :func:`get`) and the lists read from it (:func:`select`, :func:`names`,
:func:`labels`); see :mod:`tokentransfer.metric_registry` for the fields."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

LEVELS = ("sample", "set")
KINDS = ("scalar", "histogram", "matrix")
TABLES = ("summary", "features", "curve", "results")
FIGURES = ("chart", "curve")
GROUPS = (
    "fidelity",
    "style",
    "texture",
    "pitch",
    "rhythm",
    "melody",
    "form",
    "tokens",
    "copy",
    "cost",
    "likelihood",
)


@dataclass(frozen=True)
class Metric:
    """One metric and where it goes (see the module's docstring)."""

    name: str
    group: str
    level: str
    doc: str
    kind: str = "scalar"
    fn: Callable | None = None
    family: Callable | None = None
    tables: tuple[str, ...] = ()
    figures: tuple[str, ...] = ()
    fidelity: bool = False
    style: bool = False
    empty: float | None = None
    label: str = ""
    curve_label: str = ""
    header: str = ""
    digits: int = 3
    of_groups: tuple[str, ...] = ()
    record: str = ""

    def __post_init__(self) -> None:
        def bad(what: str, value, allowed) -> None:
            if value not in allowed:
                raise ValueError(f"metric {self.name}: {what} {value!r} is not one of {allowed}")

        bad("level", self.level, LEVELS)
        bad("kind", self.kind, KINDS)
        bad("group", self.group, GROUPS)
        for t in self.tables:
            bad("table", t, TABLES)
        for f in self.figures:
            bad("figure", f, FIGURES)
        for g in self.of_groups:
            bad("group", g, GROUPS)
        if (self.fidelity or self.style or "features" in self.tables) and self.fn is None:
            raise ValueError(f"metric {self.name}: a fidelity or style feature needs its fn")
        if self.figures and not self.label:
            raise ValueError(f"metric {self.name}: a metric in a figure needs its label")
        if "results" in self.tables and not self.header:
            raise ValueError(f"metric {self.name}: a column of the results table needs a header")


#: every metric by name, in the order of registration
REGISTRY: dict[str, Metric] = {}


def register(metric: Metric) -> Metric:
    """Add ``metric``; a name registered twice is refused."""
    if metric.name in REGISTRY:
        raise ValueError(f"metric {metric.name} is registered twice")
    REGISTRY[metric.name] = metric
    return metric


def get(name: str) -> Metric:
    """The metric called ``name``; an unknown name is refused with the known ones."""
    if name not in REGISTRY:
        raise KeyError(f"no metric {name!r}; known: {', '.join(REGISTRY)}")
    return REGISTRY[name]


def select(
    *,
    level: str | None = None,
    table: str | None = None,
    figure: str | None = None,
    groups: tuple[str, ...] | None = None,
    fidelity: bool | None = None,
    style: bool | None = None,
    kind: str | None = None,
    feature: bool | None = None,
) -> tuple[Metric, ...]:
    """The registered metrics that match every filter given (``feature``: has a score
    function), in the order of registration."""
    out = []
    for mt in REGISTRY.values():
        if level is not None and mt.level != level:
            continue
        if table is not None and table not in mt.tables:
            continue
        if figure is not None and figure not in mt.figures:
            continue
        if groups is not None and mt.group not in groups:
            continue
        if fidelity is not None and mt.fidelity != fidelity:
            continue
        if style is not None and mt.style != style:
            continue
        if kind is not None and mt.kind != kind:
            continue
        if feature is not None and (mt.fn is not None) != feature:
            continue
        out.append(mt)
    return tuple(out)


def names(**filters) -> tuple[str, ...]:
    """Names of :func:`select`'s metrics."""
    return tuple(mt.name for mt in select(**filters))


def labels(figure: str) -> tuple[tuple[str, str], ...]:
    """``(name, label)`` of the panels of ``figure``, in order."""
    out = []
    for mt in select(figure=figure):
        label = mt.curve_label if figure == "curve" and mt.curve_label else mt.label
        out.append((mt.name, label))
    return tuple(out)
