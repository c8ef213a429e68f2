"""Link-prediction metrics on positive and negative scores (numpy)."""

from __future__ import annotations

import numpy as np


def auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """ROC AUC as the Mann-Whitney statistic: P(pos > neg), ties counted half."""
    from scipy.stats import rankdata

    pos, neg = np.asarray(pos, dtype=np.float64).ravel(), np.asarray(neg, dtype=np.float64).ravel()
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    ranks = rankdata(np.concatenate([pos, neg]))
    u = ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2
    return float(u / (len(pos) * len(neg)))


def average_precision(pos: np.ndarray, neg: np.ndarray) -> float:
    """Average precision: sum over distinct score thresholds of (R_t - R_{t-1}) * P_t."""
    pos, neg = np.asarray(pos, dtype=np.float64).ravel(), np.asarray(neg, dtype=np.float64).ravel()
    if len(pos) == 0:
        return float("nan")
    scores = np.concatenate([pos, neg])
    labels = np.concatenate([np.ones(len(pos)), np.zeros(len(neg))])
    order = np.argsort(-scores, kind="mergesort")
    scores, labels = scores[order], labels[order]
    last = np.r_[np.nonzero(np.diff(scores))[0], len(scores) - 1]  # end of each tie block
    tps = np.cumsum(labels)[last]
    precision = tps / (last + 1)
    recall = tps / len(pos)
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def hits_at_k(pos: np.ndarray, neg: np.ndarray, k: int = 20) -> float:
    """Fraction of positives scored strictly above the k-th highest negative (OGB).

    With fewer than ``k`` negatives the lowest negative is the threshold.
    """
    pos, neg = np.asarray(pos, dtype=np.float64).ravel(), np.asarray(neg, dtype=np.float64).ravel()
    if len(pos) == 0:
        return float("nan")
    if len(neg) == 0:
        return 1.0
    threshold = np.sort(neg)[::-1][min(k, len(neg)) - 1]
    return float(np.mean(pos > threshold))


def link_metrics(pos: np.ndarray, neg: np.ndarray) -> dict[str, float]:
    """``{"auc", "ap", "hits@20"}`` of positive and negative scores."""
    return {
        "auc": auc(pos, neg),
        "ap": average_precision(pos, neg),
        "hits@20": hits_at_k(pos, neg, 20),
    }
