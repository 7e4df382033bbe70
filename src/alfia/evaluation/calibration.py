"""Calibration metrics, for many row weightings at once (see ``metrics.py`` for the weights convention).

- Brier score: weighted mean of (prob - y)^2.
- ECE: expected calibration error over 10 equal-width bins of the predicted probability,
  [0, 0.1), [0.1, 0.2), ..., [0.9, 1.0] (the same bins as scikit-learn's ``calibration_curve`` with
  ``strategy="uniform"``): sum over bins of (rows in bin / rows) * |observed rate - mean prob|.
- Calibration slope: b in the logistic recalibration model logit P(y=1) = a + b * logit(prob).
  1 is ideal; below 1 means predictions are too extreme (over-fitting), above 1 too timid.
- Calibration intercept (calibration-in-the-large): a in logit P(y=1) = a + logit(prob), the slope
  fixed at 1. 0 is ideal; above 0 means risks are underestimated on average.

Both logistic fits use Newton-Raphson on all weightings at once. A fit that does not converge (the
classes are separated by the score, so the slope runs to infinity) gives NaN, reported as null.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit, logit

N_BINS = 10
# Probabilities of exactly 0 or 1 have an infinite logit; clip them to keep the recalibration fit finite.
LOGIT_CLIP = 1e-8
_MAX_NEWTON_ITER = 100
_NEWTON_TOL = 1e-10
_MAX_SLOPE = 1e4  # beyond this the classes are (quasi-)separated; the slope is reported as undefined


def clipped_logit(prob) -> np.ndarray:
    return logit(np.clip(np.asarray(prob, dtype=float), LOGIT_CLIP, 1.0 - LOGIT_CLIP))


def bin_index(prob, n_bins: int = N_BINS) -> np.ndarray:
    """Equal-width bin of each probability; the last bin includes 1.0."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return np.searchsorted(edges[1:-1], np.asarray(prob, dtype=float), side="right")


def brier(y, prob, weights: np.ndarray) -> np.ndarray:
    w = np.atleast_2d(weights)
    sq = (np.asarray(prob, dtype=float) - np.asarray(y, dtype=float)) ** 2
    return (w @ sq) / w.sum(axis=1)


def ece(y, prob, weights: np.ndarray, n_bins: int = N_BINS) -> np.ndarray:
    """Expected calibration error over ``n_bins`` equal-width bins."""
    w = np.atleast_2d(weights)
    one_hot = np.eye(n_bins)[bin_index(prob, n_bins)]  # (n, bins)
    observed = w @ (one_hot * np.asarray(y, dtype=float)[:, None])
    predicted = w @ (one_hot * np.asarray(prob, dtype=float)[:, None])
    # sum_b (n_b / n) * |mean_y_b - mean_p_b| == sum_b |sum_y_b - sum_p_b| / n
    return np.abs(observed - predicted).sum(axis=1) / w.sum(axis=1)


def reliability_curve(y, prob, n_bins: int = N_BINS) -> dict[str, np.ndarray]:
    """Per non-empty bin: mean predicted probability, observed event rate, and row count (for plots)."""
    y = np.asarray(y, dtype=float)
    prob = np.asarray(prob, dtype=float)
    idx = bin_index(prob, n_bins)
    count = np.bincount(idx, minlength=n_bins)
    keep = count > 0
    mean_prob = np.bincount(idx, weights=prob, minlength=n_bins)[keep] / count[keep]
    observed = np.bincount(idx, weights=y, minlength=n_bins)[keep] / count[keep]
    return {"mean_prob": mean_prob, "observed": observed, "count": count[keep]}


def _separated(x, y, w) -> np.ndarray:
    """True per weighting where the score separates the classes (no finite maximum-likelihood slope)."""
    positive, negative = (y == 1) & (w > 0), (y == 0) & (w > 0)
    lowest_positive = np.where(positive, x, np.inf).min(axis=1)
    highest_negative = np.where(negative, x, -np.inf).max(axis=1)
    return highest_negative <= lowest_positive


def _newton_2d(x, y, w):
    """Weighted logistic regression of y on [1, x] for each row of w: (intercept, slope) arrays."""
    b = w.shape[0]
    theta = np.tile([0.0, 1.0], (b, 1))  # start at perfect calibration
    converged = np.zeros(b, dtype=bool)

    def log_likelihood(t):
        with np.errstate(invalid="ignore", over="ignore"):
            z = t[:, :1] + t[:, 1:] * x
            value = (w * (y * z - np.logaddexp(0.0, z))).sum(1)
        return np.where(np.isnan(value), -np.inf, value)  # a non-finite candidate never counts as better

    current = log_likelihood(theta)
    for _ in range(_MAX_NEWTON_ITER):
        mu = expit(theta[:, :1] + theta[:, 1:] * x)
        r = w * (y - mu)
        h = w * mu * (1.0 - mu)
        g0, g1 = r.sum(1), (r * x).sum(1)
        h00, h01, h11 = h.sum(1), (h * x).sum(1), (h * x * x).sum(1)
        det = h00 * h11 - h01 * h01
        with np.errstate(divide="ignore", invalid="ignore"):
            step = np.stack([(h11 * g0 - h01 * g1) / det, (h00 * g1 - h01 * g0) / det], axis=1)
        step = np.where(np.isfinite(step), step, 0.0)
        step = np.clip(step, -5.0, 5.0)  # damp the first steps of a far-off start
        # Backtracking: halve a step until the likelihood does not fall. Plain Newton from slope 1
        # oscillated without converging on over-confident scores (true slope ~0.35), giving NaN.
        scale = np.ones(b)
        for _ in range(40):
            candidate = theta + scale[:, None] * step
            ok = log_likelihood(candidate) >= current - 1e-9 * (1.0 + np.abs(current))
            if ok.all():
                break
            scale = np.where(ok, scale, scale / 2)
        step = scale[:, None] * step
        theta = theta + np.where(converged[:, None], 0.0, step)
        current = log_likelihood(theta)
        converged |= np.abs(step).max(axis=1) < _NEWTON_TOL * (1.0 + np.abs(theta).max(axis=1))
        if converged.all():
            break
    bad = ~converged | (np.abs(theta[:, 1]) > _MAX_SLOPE) | ~np.isfinite(theta).all(axis=1) | _separated(x, y, w)
    theta[bad] = np.nan
    return theta[:, 0], theta[:, 1]


def _newton_offset(x, y, w):
    """Weighted logistic regression of y on an intercept with offset x: the intercept per row of w."""
    a = np.zeros(w.shape[0])
    converged = np.zeros(w.shape[0], dtype=bool)
    for _ in range(_MAX_NEWTON_ITER):
        mu = expit(a[:, None] + x)
        g = (w * (y - mu)).sum(1)
        h = (w * mu * (1.0 - mu)).sum(1)
        with np.errstate(divide="ignore", invalid="ignore"):
            step = np.clip(np.where(h > 0, g / h, 0.0), -5.0, 5.0)
        a = a + np.where(converged, 0.0, step)
        converged |= np.abs(step) < _NEWTON_TOL * (1.0 + np.abs(a))
        if converged.all():
            break
    a[~converged] = np.nan
    return a


def calibration_slope_intercept(y, prob, weights: np.ndarray) -> dict[str, np.ndarray]:
    """Calibration slope (joint fit) and calibration-in-the-large intercept (slope fixed at 1)."""
    w = np.atleast_2d(weights).astype(float)
    x = clipped_logit(prob)[None, :]
    y = np.asarray(y, dtype=float)[None, :]
    _, slope = _newton_2d(x, y, w)
    return {"calibration_slope": slope, "calibration_intercept": _newton_offset(x, y, w)}


def calibration_metrics(y, prob, weights: np.ndarray) -> dict[str, np.ndarray]:
    """Brier, ECE, calibration slope and intercept, each a (b,) array."""
    return {
        "brier": brier(y, prob, weights),
        "ece": ece(y, prob, weights),
        **calibration_slope_intercept(y, prob, weights),
    }


def calibrate_on_val(pred, *, calibrated: bool):
    """Predictions as a fair comparison scores them: every model calibrated on its own val rows, the way ALFIA
    is (a Platt map of the logit, ``models.calibrator.Calibrator.fit("platt")``), the model's own probabilities
    kept in ``prob_uncalibrated`` so that raw and calibrated metrics are both reported.

    ``calibrated``: the run applied its own post-hoc calibrator (an ALFIA run's calibration.json); its
    predictions are returned as they are. Platt scaling keeps the ranking (AUROC, AUPRC) and, thresholds being
    chosen on val, the operating points; it changes the probabilities' calibration and the decision curve.
    Returns (predictions, how they were calibrated: a sentence for the report).
    """
    from alfia.models.calibrator import Calibrator
    from alfia.runs import UNCALIBRATED_COLUMN

    if calibrated:
        return pred, "its own calibrator (calibration.json), fitted on val"
    val = pred.loc[pred["split"] == "val"]
    if val.empty or val["label"].nunique() < 2:
        return pred, "not calibrated: no val rows of both classes to fit a calibrator on"
    platt = Calibrator.fit("platt", clipped_logit(val["prob"]), val["label"].to_numpy())
    if not platt.slope > 0:  # a map that reverses the ranking would change the model, not calibrate it
        return pred, f"not calibrated: a Platt fit on val has slope {platt.slope:.3g} (not above 0)"
    out = pred.copy()
    out[UNCALIBRATED_COLUMN] = pred["prob"].to_numpy(dtype=float)
    out["prob"] = platt.transform(clipped_logit(pred["prob"]))
    return out, f"Platt on {platt.fitted_on} (a = {platt.intercept:.3f}, b = {platt.slope:.3f})"
