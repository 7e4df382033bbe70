"""The vectorised metrics equal scikit-learn's, with and without bootstrap weights, and known answers hold."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.calibration import calibration_curve
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (average_precision_score, brier_score_loss, confusion_matrix, fbeta_score,
                             precision_recall_curve, roc_auc_score)

from alfia.evaluation.calibration import brier, calibration_slope_intercept, clipped_logit, ece
from alfia.evaluation.metrics import RankedScores, ranking_metrics, threshold_metrics
from alfia.evaluation.thresholds import choose_threshold


def _arrays(seed=3, n=500, ties=True):
    rng = np.random.default_rng(seed)
    y = rng.binomial(1, 0.2, n)
    prob = np.clip(0.2 + 0.25 * y + rng.normal(0, 0.2, n), 0, 1)
    if ties:  # scores with many ties, as from a tree model
        prob = np.round(prob, 2)
    return y, prob


def _sk_best_fbeta(y, prob, beta, sample_weight=None):
    precision, recall, _ = precision_recall_curve(y, prob, sample_weight=sample_weight)
    with np.errstate(divide="ignore", invalid="ignore"):
        f = (1 + beta**2) * precision * recall / (beta**2 * precision + recall)
    return np.nanmax(f)


@pytest.mark.parametrize("ties", [True, False])
def test_ranking_metrics_equal_sklearn(ties):
    y, prob = _arrays(ties=ties)
    got = {k: v[0] for k, v in ranking_metrics(y, prob, np.ones((1, y.size))).items()}
    assert got["auprc"] == pytest.approx(average_precision_score(y, prob), abs=1e-12)
    assert got["auroc"] == pytest.approx(roc_auc_score(y, prob), abs=1e-12)
    assert got["best_f1"] == pytest.approx(_sk_best_fbeta(y, prob, 1.0), abs=1e-12)
    assert got["best_f2"] == pytest.approx(_sk_best_fbeta(y, prob, 2.0), abs=1e-12)


def test_weighted_metrics_equal_sklearn_with_sample_weight():
    """A bootstrap resample is a weighting by draw counts (zeros included): each row of weights must
    give scikit-learn's value with that sample_weight."""
    y, prob = _arrays()
    rng = np.random.default_rng(7)
    weights = rng.multinomial(y.size, np.full(y.size, 1 / y.size), size=4).astype(float)
    got = ranking_metrics(y, prob, weights)
    cal = calibration_slope_intercept(y, prob, weights)
    for i, w in enumerate(weights):
        assert got["auprc"][i] == pytest.approx(average_precision_score(y, prob, sample_weight=w), abs=1e-12)
        assert got["auroc"][i] == pytest.approx(roc_auc_score(y, prob, sample_weight=w), abs=1e-12)
        assert got["best_f1"][i] == pytest.approx(_sk_best_fbeta(y, prob, 1.0, w), abs=1e-12)
        assert brier(y, prob, w[None])[0] == pytest.approx(brier_score_loss(y, prob, sample_weight=w), abs=1e-12)
        sk = LogisticRegression(C=np.inf, tol=1e-12, max_iter=10_000).fit(
            clipped_logit(prob)[:, None], y, sample_weight=w)
        assert cal["calibration_slope"][i] == pytest.approx(sk.coef_[0, 0], rel=1e-4)


def test_threshold_metrics_equal_sklearn():
    y, prob = _arrays()
    threshold = 0.37
    got = {k: v[0] for k, v in threshold_metrics(y, prob, threshold, np.ones((1, y.size))).items()}
    pred = (prob >= threshold).astype(int)
    tn, fp, fn, tp = confusion_matrix(y, pred).ravel()
    assert got["f1"] == pytest.approx(fbeta_score(y, pred, beta=1.0))
    assert got["f2"] == pytest.approx(fbeta_score(y, pred, beta=2.0))
    assert got["sensitivity"] == pytest.approx(tp / (tp + fn))
    assert got["specificity"] == pytest.approx(tn / (tn + fp))
    assert got["ppv"] == pytest.approx(tp / (tp + fp))
    assert got["npv"] == pytest.approx(tn / (tn + fn))


def test_ppv_is_undefined_when_nothing_is_predicted_positive():
    y, prob = _arrays()
    got = threshold_metrics(y, prob, 1.5, np.ones((1, y.size)))
    assert np.isnan(got["ppv"][0]) and got["sensitivity"][0] == 0.0 and got["specificity"][0] == 1.0


def test_chosen_threshold_reaches_the_best_fbeta():
    y, prob = _arrays()
    for beta in (1.0, 2.0):
        threshold, score = choose_threshold(y, prob, beta)
        assert threshold in set(prob)
        assert fbeta_score(y, (prob >= threshold).astype(int), beta=beta) == pytest.approx(score)
        assert score == pytest.approx(_sk_best_fbeta(y, prob, beta))


def test_ece_matches_calibration_curve_bins():
    y, prob = _arrays(ties=False)
    prob_true, prob_pred = calibration_curve(y, prob, n_bins=10, strategy="uniform")
    counts = np.histogram(prob, bins=np.linspace(0, 1, 11))[0]
    counts = counts[counts > 0]
    expected = np.sum(counts / y.size * np.abs(prob_true - prob_pred))
    assert ece(y, prob, np.ones((1, y.size)))[0] == pytest.approx(expected, abs=1e-12)


def test_calibration_known_answers():
    rng = np.random.default_rng(0)
    latent = rng.normal(size=40_000)
    true_risk = 1 / (1 + np.exp(-(-1.5 + latent)))
    y = rng.binomial(1, true_risk)
    ones = np.ones((1, y.size))
    calibrated = calibration_slope_intercept(y, true_risk, ones)
    assert calibrated["calibration_slope"][0] == pytest.approx(1.0, abs=0.05)
    assert calibrated["calibration_intercept"][0] == pytest.approx(0.0, abs=0.05)
    # Twice the true log-odds: over-confident, slope 1/2.
    overconfident = 1 / (1 + np.exp(-2 * (-1.5 + latent)))
    assert calibration_slope_intercept(y, overconfident, ones)["calibration_slope"][0] == pytest.approx(0.5, abs=0.03)
    # Intercept with slope fixed at 1 makes the mean recalibrated risk equal the observed rate.
    shifted = 1 / (1 + np.exp(-(-2.5 + latent)))
    a = calibration_slope_intercept(y, shifted, ones)["calibration_intercept"][0]
    recalibrated = 1 / (1 + np.exp(-(a + clipped_logit(shifted))))
    assert recalibrated.mean() == pytest.approx(y.mean(), abs=1e-8)
    assert a == pytest.approx(1.0, abs=0.05)


def test_perfect_and_random_classifiers():
    rng = np.random.default_rng(1)
    y = rng.binomial(1, 0.15, 3000)
    ones = np.ones((1, y.size))
    perfect = np.where(y == 1, 0.9, 0.1)
    got = ranking_metrics(y, perfect, ones)
    assert got["auroc"][0] == 1.0 and got["auprc"][0] == 1.0 and got["best_f1"][0] == 1.0
    # Separated classes: the recalibration slope runs to infinity, so it is undefined (NaN).
    assert np.isnan(calibration_slope_intercept(y, perfect, ones)["calibration_slope"][0])
    noise = rng.uniform(size=y.size)
    got = ranking_metrics(y, noise, ones)
    assert got["auroc"][0] == pytest.approx(0.5, abs=0.04)
    assert got["auprc"][0] == pytest.approx(y.mean(), abs=0.04)


def test_ranked_scores_group_ties():
    ranked = RankedScores.of([1, 0, 1, 0], [0.5, 0.5, 0.9, 0.1])
    assert list(ranked.thresholds) == [0.9, 0.5, 0.1]
    tps, fps = ranked.cumulative_counts(np.ones((1, 4)))
    assert tps.tolist() == [[1, 2, 2]] and fps.tolist() == [[0, 1, 2]]


def test_calibration_slope_of_over_confident_scores_matches_logistic_regression():
    """Plain Newton from slope 1 oscillated on scores ~3x too confident and returned NaN (issue 10)."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(5)
    z = rng.normal(-2.0, 1.0, 1000)
    y = (rng.random(1000) < 1 / (1 + np.exp(-z))).astype(float)
    over_confident = 1 / (1 + np.exp(-3.7 * z))  # logits 3.7x too large: true slope ~0.27
    cal = calibration_slope_intercept(y, over_confident, np.ones((1, y.size)))
    sk = LogisticRegression(C=1e12, max_iter=1000).fit(clipped_logit(over_confident)[:, None], y)
    assert cal["calibration_slope"][0] == pytest.approx(sk.coef_[0, 0], rel=1e-4)
    assert 0.2 < cal["calibration_slope"][0] < 0.35
