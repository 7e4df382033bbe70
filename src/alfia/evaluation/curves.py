"""Decision curves and calibration curves with a confidence band (for the clinical report).

Decision-curve analysis (Vickers & Elkin, Med Decis Making 2006): at a threshold probability p_t, a
clinician who treats every stay with risk >= p_t gains, per stay,

    net benefit = TP / n - FP / n * p_t / (1 - p_t)

(false alarms weighed by the odds of the threshold). "Treat all" scores prevalence - (1 - prevalence) *
p_t / (1 - p_t); "treat none" scores 0. A model is useful at p_t when its curve lies above both.

Calibration band: the reliability curve's bins (the ECE's 10 equal-width bins) with a Wilson score 95%
interval on each bin's observed mortality, the uncertainty that comes from the bin's size.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import norm

from alfia.evaluation.calibration import N_BINS, reliability_curve

# p_t from 1% to 99%; the report's figure shows the clinically relevant range up to DCA_PLOT_MAX.
DCA_THRESHOLDS = np.round(np.arange(0.01, 1.0, 0.01), 2)
DCA_PLOT_MAX = 0.6


def net_benefit(y, prob, thresholds=DCA_THRESHOLDS) -> np.ndarray:
    """Net benefit of treating stays with ``prob >= p_t``, for each p_t."""
    y = np.asarray(y, dtype=float)
    prob = np.asarray(prob, dtype=float)
    t = np.asarray(thresholds, dtype=float)
    positive = prob[None, :] >= t[:, None]
    tp = (positive & (y[None, :] == 1)).sum(axis=1)
    fp = (positive & (y[None, :] == 0)).sum(axis=1)
    return tp / y.size - fp / y.size * t / (1.0 - t)


def treat_all(prevalence: float, thresholds=DCA_THRESHOLDS) -> np.ndarray:
    t = np.asarray(thresholds, dtype=float)
    return prevalence - (1.0 - prevalence) * t / (1.0 - t)


def decision_curve(y, prob, thresholds=DCA_THRESHOLDS) -> dict:
    """JSON-ready decision curve: thresholds, the model's net benefit, treat-all and treat-none."""
    y = np.asarray(y, dtype=float)
    t = np.asarray(thresholds, dtype=float)
    model = net_benefit(y, prob, t)
    everyone = treat_all(float(y.mean()), t)
    useful = (model > np.maximum(everyone, 0.0))
    return {
        "thresholds": t.round(4).tolist(),
        "net_benefit": model.round(6).tolist(),
        "treat_all": everyone.round(6).tolist(),
        "treat_none": [0.0] * t.size,
        "useful_thresholds": _ranges(t, useful),
        "definition": "net benefit = TP/n - FP/n * p_t/(1 - p_t) (Vickers & Elkin 2006); treat all = prevalence - "
                      "(1 - prevalence) * p_t/(1 - p_t); treat none = 0",
    }


def _ranges(t: np.ndarray, mask: np.ndarray) -> list[list[float]]:
    """Maximal runs of consecutive thresholds where ``mask`` holds, as [first, last] pairs."""
    runs, start = [], None
    for i, ok in enumerate(mask):
        if ok and start is None:
            start = i
        if not ok and start is not None:
            runs.append([float(t[start]), float(t[i - 1])])
            start = None
    if start is not None:
        runs.append([float(t[start]), float(t[-1])])
    return runs


def wilson_interval(successes, n, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of a binomial proportion (elementwise)."""
    successes = np.asarray(successes, dtype=float)
    n = np.asarray(n, dtype=float)
    z = norm.ppf(0.5 + level / 2)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return np.clip(centre - half, 0, 1), np.clip(centre + half, 0, 1)


def calibration_band(y, prob, n_bins: int = N_BINS) -> dict:
    """Reliability curve per non-empty bin with a Wilson 95% band on the observed mortality."""
    rel = reliability_curve(y, prob, n_bins)
    deaths = np.round(rel["observed"] * rel["count"])
    low, high = wilson_interval(deaths, rel["count"])
    return {"mean_prob": rel["mean_prob"].round(6).tolist(), "observed": rel["observed"].round(6).tolist(),
            "count": rel["count"].astype(int).tolist(), "ci_low": low.round(6).tolist(),
            "ci_high": high.round(6).tolist(),
            "method": f"{n_bins} equal-width bins; Wilson score 95% interval of each bin's observed mortality"}
