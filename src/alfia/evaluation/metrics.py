"""Discrimination and threshold metrics, computed for many row weightings at once.

Every metric here takes the labels ``y`` (n,), the probabilities ``prob`` (n,) and a weight matrix
``weights`` (b, n). Each row of ``weights`` is one weighting of the n rows: a row of ones gives the
plain metric, a row of bootstrap counts gives the metric on that bootstrap resample. Computing all
resamples with a few array operations is what makes 1,000-resample CIs take well under a second.

The values equal scikit-learn's (``average_precision_score``, ``roc_auc_score``,
``precision_recall_curve``, ``fbeta_score``) with ``sample_weight`` set to the row weights; the tests
in ``tests/evaluation/test_metrics.py`` hold them to that.

Threshold convention (scikit-learn's): a row is predicted positive when ``prob >= threshold``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def fbeta_from_counts(tp, fp, fn, beta: float):
    """F-beta from confusion counts; 0 where it is undefined (no predicted and no actual positives)."""
    b2 = beta * beta
    num = (1.0 + b2) * tp
    den = num + b2 * fn + fp
    return np.divide(num, den, out=np.zeros(np.broadcast(num, den).shape), where=den > 0)


def _safe_ratio(num, den):
    """num / den, NaN where den is 0 (e.g. PPV when nothing is predicted positive)."""
    num, den = np.broadcast_arrays(np.asarray(num, float), np.asarray(den, float))
    return np.divide(num, den, out=np.full(num.shape, np.nan), where=den > 0)


@dataclass(frozen=True)
class RankedScores:
    """One model's scores sorted once, so every weighting reuses the order.

    ``thresholds[k]`` is the k-th distinct score in descending order; the cumulative counts at
    position ``ends[k]`` of the sorted rows are the counts of rows with ``prob >= thresholds[k]``.
    Ties share one threshold, as in scikit-learn's curves.
    """

    order: np.ndarray
    y_sorted: np.ndarray
    ends: np.ndarray
    thresholds: np.ndarray

    @classmethod
    def of(cls, y, prob) -> "RankedScores":
        y = np.asarray(y, dtype=float)
        prob = np.asarray(prob, dtype=float)
        order = np.argsort(-prob, kind="mergesort")
        sorted_prob = prob[order]
        ends = np.r_[np.flatnonzero(np.diff(sorted_prob)), prob.size - 1]
        return cls(order=order, y_sorted=y[order], ends=ends, thresholds=sorted_prob[ends])

    def cumulative_counts(self, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Weighted true and false positives at every threshold: two (b, k) arrays."""
        w = np.atleast_2d(weights)[:, self.order]
        tps = np.cumsum(w * self.y_sorted, axis=1)[:, self.ends]
        fps = np.cumsum(w * (1.0 - self.y_sorted), axis=1)[:, self.ends]
        return tps, fps


def auprc(tps: np.ndarray, fps: np.ndarray) -> np.ndarray:
    """Average precision: sum over thresholds of (R_k - R_{k-1}) * P_k, scikit-learn's definition."""
    recall = tps / tps[:, -1:]
    predicted = tps + fps
    precision = np.divide(tps, predicted, out=np.zeros_like(tps), where=predicted > 0)
    recall_steps = np.diff(recall, axis=1, prepend=0.0)
    return np.sum(recall_steps * precision, axis=1)


def auroc(tps: np.ndarray, fps: np.ndarray) -> np.ndarray:
    """Area under the ROC curve by the trapezoidal rule, starting from (0, 0)."""
    tpr = np.concatenate([np.zeros((tps.shape[0], 1)), tps / tps[:, -1:]], axis=1)
    fpr = np.concatenate([np.zeros((fps.shape[0], 1)), fps / fps[:, -1:]], axis=1)
    return np.trapezoid(tpr, fpr, axis=1)


def best_fbeta(tps: np.ndarray, fps: np.ndarray, beta: float) -> tuple[np.ndarray, np.ndarray]:
    """Highest F-beta over all thresholds and the index of the threshold that reaches it.

    Ties go to the highest threshold (the first in descending order).
    """
    fn = tps[:, -1:] - tps
    scores = fbeta_from_counts(tps, fps, fn, beta)
    best = np.argmax(scores, axis=1)
    return scores[np.arange(scores.shape[0]), best], best


THRESHOLD_METRICS = ("f1", "f2", "sensitivity", "specificity", "ppv", "npv")


def predicted_death(prob, threshold: float) -> np.ndarray:
    """The decision at a threshold, the convention above: True where ``prob >= threshold``."""
    return np.asarray(prob, dtype=float) >= threshold


def confusion_at_threshold(y, prob, threshold: float, weights: np.ndarray) -> dict[str, np.ndarray]:
    """Weighted tp, fp, fn, tn at one fixed threshold: each a (b,) array."""
    y = np.asarray(y, dtype=float)
    predicted = predicted_death(prob, threshold).astype(float)
    w = np.atleast_2d(weights)
    return {
        "tp": w @ (y * predicted),
        "fp": w @ ((1.0 - y) * predicted),
        "fn": w @ (y * (1.0 - predicted)),
        "tn": w @ ((1.0 - y) * (1.0 - predicted)),
    }


def threshold_metrics(y, prob, threshold: float, weights: np.ndarray) -> dict[str, np.ndarray]:
    """F1, F2, sensitivity, specificity, PPV and NPV at one fixed threshold, each a (b,) array.

    PPV (NPV) is NaN when no row is predicted positive (negative): it is undefined there.
    """
    c = confusion_at_threshold(y, prob, threshold, weights)
    tp, fp, fn, tn = c["tp"], c["fp"], c["fn"], c["tn"]
    return {
        "f1": fbeta_from_counts(tp, fp, fn, 1.0),
        "f2": fbeta_from_counts(tp, fp, fn, 2.0),
        "sensitivity": _safe_ratio(tp, tp + fn),
        "specificity": _safe_ratio(tn, tn + fp),
        "ppv": _safe_ratio(tp, tp + fp),
        "npv": _safe_ratio(tn, tn + fn),
    }


def ranking_metrics(y, prob, weights: np.ndarray, ranked: RankedScores | None = None) -> dict[str, np.ndarray]:
    """AUPRC, AUROC, best F1 and best F2 (test-optimal thresholds), each a (b,) array."""
    ranked = ranked or RankedScores.of(y, prob)
    tps, fps = ranked.cumulative_counts(weights)
    return {
        "auprc": auprc(tps, fps),
        "auroc": auroc(tps, fps),
        "best_f1": best_fbeta(tps, fps, 1.0)[0],
        "best_f2": best_fbeta(tps, fps, 2.0)[0],
    }


def discrimination(y, prob) -> tuple[float, float]:
    """AUPRC and AUROC of one unweighted set of rows (e.g. the validation monitor of every training epoch);
    NaN for both when only one class is present."""
    y = np.asarray(y, dtype=float)
    if len(np.unique(y)) < 2:
        return float("nan"), float("nan")
    tps, fps = RankedScores.of(y, prob).cumulative_counts(np.ones((1, y.size)))
    return float(auprc(tps, fps)[0]), float(auroc(tps, fps)[0])
