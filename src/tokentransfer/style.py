"""A style classifier: which corpus does a window of music come from?

Trained once per run on real windows of every corpus (base and targets, training pieces only):
excerpts of ``generate.length`` tokens starting at a bar line (as
:func:`tokentransfer.baselines.real_excerpts` draws them, ``windows`` per corpus, so classes are
balanced), each described by what it sounds like (:data:`STYLE_FEATURES`, the registry's
style features: rhythm, texture, register and pitch content, the top lines' melody and the
bars' form of the decoded notes; never the velocity or instrument tokens, which would name a
corpus without hearing it). The model is a multinomial logistic regression on the
standardised features with an L2 penalty, fitted by L-BFGS from zero weights (deterministic).

Its accuracy on windows of the held-out pieces (each target's test pieces, the base corpus's
validation pieces) is reported beside the majority-class rate (rule ``style_classifier``:
:func:`tokentransfer.jobs.evaluate.run_style_classifier`), and the evaluation reports for
every method the share of its samples classified as the target's style.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import metric_registry as reg
from .features import FEATURES, score_features

log = logging.getLogger(__name__)

#: the features a window is described by (the registry's style features), in the order of the
#: vector
STYLE_FEATURES: tuple[str, ...] = reg.names(style=True)
assert set(STYLE_FEATURES) <= set(FEATURES)

#: rows of the held-out table after the corpora's (no corpus name has parentheses)
ALL_ROW = "(all)"
MAJORITY_ROW = "(majority class)"


def vector_of(features: dict[str, np.ndarray], names: Sequence[str] | None = None) -> np.ndarray:
    """The features ``names`` (default :data:`STYLE_FEATURES`) of a
    :func:`tokentransfer.features.score_features` dict, concatenated."""
    return np.concatenate([features[name] for name in (names or STYLE_FEATURES)])


def style_vector(score) -> np.ndarray:
    """The window's :data:`STYLE_FEATURES` concatenated (nan where undefined)."""
    return vector_of(score_features(score, STYLE_FEATURES))


def feature_labels(score) -> list[str]:
    """A name for each entry of :func:`style_vector` (``pitch_class_histogram[3]``,
    ``pitch_class_transition_matrix[2,7]`` for row 2, column 7, ...)."""
    feats = score_features(score, STYLE_FEATURES)
    out = []
    for name in STYLE_FEATURES:
        size = len(feats[name])
        if size == 1:
            out.append(name)
        elif reg.get(name).kind == "matrix":
            side = int(round(size**0.5))
            out += [f"{name}[{i},{j}]" for i in range(side) for j in range(side)]
        else:
            out += [f"{name}[{i}]" for i in range(size)]
    return out


def style_vectors(tokenizer, windows: Sequence[np.ndarray]) -> np.ndarray:
    """``[windows, features]``: :func:`style_vector` of each decoded token window."""
    from .midi import decode

    return np.stack([style_vector(decode(tokenizer, w)) for w in windows])


@dataclass
class StyleClassifier:
    """Multinomial logistic regression over standardised style vectors."""

    classes: list[str]
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray  # [features, classes]
    bias: np.ndarray  # [classes]
    #: the features of its vector, in order (a classifier keeps those it was trained on)
    features: tuple[str, ...] = STYLE_FEATURES

    def vector(self, features: dict[str, np.ndarray]) -> np.ndarray:
        """The vector of this classifier's :attr:`features` from a
        :func:`tokentransfer.features.score_features` dict (which must hold them)."""
        missing = [n for n in self.features if n not in features]
        if missing:
            raise ValueError(
                f"the style classifier needs features {missing} that are not measured; "
                "retrain it (rule style_classifier)"
            )
        x = vector_of(features, self.features)
        if len(x) != len(self.mean):
            raise ValueError(
                f"the style classifier takes {len(self.mean)} inputs, its features give "
                f"{len(x)}; retrain it (rule style_classifier)"
            )
        return x

    def _standardise(self, x: np.ndarray) -> np.ndarray:
        z = (np.asarray(x, dtype=np.float64) - self.mean) / self.scale
        return np.where(np.isfinite(z), z, 0.0)  # an undefined feature sits at the mean

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        """``[windows, classes]`` class probabilities."""
        return _softmax(self._standardise(np.atleast_2d(x)) @ self.weights + self.bias)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Index into :attr:`classes` of the most probable class of each row."""
        return np.argmax(self.probabilities(x), axis=1)

    def save(self, path: str | os.PathLike, **info) -> None:
        """As JSON (floats written exactly, so the same model gives the same bytes), written
        atomically; ``info`` adds entries (e.g. the feature labels, the training sizes)."""
        import json

        from .fileio import write_text_atomic

        record = {
            "classes": self.classes,
            "features": list(self.features),
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "weights": self.weights.tolist(),
            "bias": self.bias.tolist(),
            **info,
        }
        write_text_atomic(path, json.dumps(record, indent=1) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike) -> StyleClassifier:
        import json

        record = json.loads(Path(path).read_text())
        return cls(
            classes=[str(c) for c in record["classes"]],
            mean=np.asarray(record["mean"], dtype=np.float64),
            scale=np.asarray(record["scale"], dtype=np.float64),
            weights=np.asarray(record["weights"], dtype=np.float64).reshape(
                len(record["mean"]), len(record["classes"])
            ),
            bias=np.asarray(record["bias"], dtype=np.float64),
            features=tuple(record.get("features", STYLE_FEATURES)),
        )


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def train_classifier(
    x: np.ndarray, y: np.ndarray, classes: Sequence[str], l2: float = 1e-2, max_iter: int = 500
) -> StyleClassifier:
    """Fit the logistic regression: mean cross-entropy plus ``l2 / 2`` times the squared
    weights (bias not penalised), minimised by L-BFGS from zero (deterministic)."""
    from scipy.optimize import minimize

    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    k = len(classes)
    if len(x) == 0 or k < 2:
        raise ValueError(f"a style classifier needs windows of two or more corpora, got {k}")
    with np.errstate(invalid="ignore"):
        mean = np.nanmean(np.where(np.isfinite(x), x, np.nan), axis=0)
        scale = np.nanstd(np.where(np.isfinite(x), x, np.nan), axis=0)
    mean = np.where(np.isfinite(mean), mean, 0.0)
    scale = np.where(np.isfinite(scale) & (scale > 1e-12), scale, 1.0)
    model = StyleClassifier(list(classes), mean, scale, np.zeros((x.shape[1], k)), np.zeros(k))
    z = model._standardise(x)
    onehot = np.eye(k)[y]
    n, d = z.shape

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = theta[: d * k].reshape(d, k), theta[d * k :]
        logits = z @ w + b
        logits -= logits.max(axis=1, keepdims=True)
        logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        value = -(onehot * logp).sum() / n + 0.5 * l2 * (w * w).sum()
        g = (np.exp(logp) - onehot) / n
        return value, np.concatenate([(z.T @ g + l2 * w).ravel(), g.sum(axis=0)])

    res = minimize(
        loss, np.zeros(d * k + k), jac=True, method="L-BFGS-B", options={"maxiter": max_iter}
    )
    model.weights = res.x[: d * k].reshape(d, k)
    model.bias = res.x[d * k :]
    log.info("style classifier: %d windows, %d features, %d classes; %s", n, d, k, res.message)
    return model


# --------------------------------------------------------------------------- the held-out table


def read_heldout(path: str | os.PathLike) -> dict[str, dict[str, str]]:
    """The held-out table by corpus (and :data:`ALL_ROW`, :data:`MAJORITY_ROW`)."""
    from .fileio import read_tsv

    return {r["corpus"]: r for r in read_tsv(Path(path))}
