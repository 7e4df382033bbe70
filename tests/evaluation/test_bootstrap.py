"""Stratified bootstrap: reproducible, stratified, CIs around their estimates; the paired test."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from alfia.errors import AlfiaError
from alfia.evaluation import evaluate_predictions, paired_bootstrap, paired_compare
from alfia.evaluation.bootstrap import bootstrap_p_value, stratified_bootstrap_weights

from .fabricate import synthetic_predictions

N_BOOT = 200


def _frame(stay_id, split, label, prob):
    return pd.DataFrame({"stay_id": stay_id, "split": split, "label": label, "prob": prob})


def test_resamples_keep_each_class_size():
    y = np.r_[np.ones(30), np.zeros(170)]
    for weights in stratified_bootstrap_weights(y, 50, seed=1):
        assert np.all(weights[:, y == 1].sum(axis=1) == 30)
        assert np.all(weights[:, y == 0].sum(axis=1) == 170)
        assert np.all(weights >= 0) and np.all(weights == np.round(weights))


def test_bootstrap_is_reproducible_under_a_seed(cohort):
    pred = _frame(*cohort[:4])
    first = evaluate_predictions(pred, n_boot=N_BOOT, seed=7)
    again = evaluate_predictions(pred, n_boot=N_BOOT, seed=7)
    other = evaluate_predictions(pred, n_boot=N_BOOT, seed=8)
    assert first == again
    assert first["metrics"]["auprc"]["ci_low"] != other["metrics"]["auprc"]["ci_low"]
    assert first["metrics"]["auprc"]["value"] == other["metrics"]["auprc"]["value"]


def test_every_ci_contains_its_point_estimate(cohort):
    result = evaluate_predictions(_frame(*cohort[:4]), n_boot=N_BOOT)
    assert len(result["metrics"]) == 14
    for name, m in result["metrics"].items():
        assert m["ci_low"] <= m["value"] <= m["ci_high"], name
        assert m["ci_low"] < m["ci_high"], name
    for op in result["operating_points"].values():
        for name, m in op["metrics"].items():
            assert m["ci_low"] <= m["value"] <= m["ci_high"], name


def test_ci_narrows_with_more_rows():
    small = evaluate_predictions(_frame(*synthetic_predictions(300, 400, seed=2)[:4]), n_boot=N_BOOT)
    large = evaluate_predictions(_frame(*synthetic_predictions(300, 4000, seed=2)[:4]), n_boot=N_BOOT)
    width = lambda r: r["metrics"]["auroc"]["ci_high"] - r["metrics"]["auroc"]["ci_low"]  # noqa: E731
    assert width(large) < 0.6 * width(small)


def test_p_value_rule():
    assert bootstrap_p_value(np.zeros(99)) == 1.0
    assert bootstrap_p_value(np.full(999, 0.01)) == pytest.approx(2 / 1000)
    d = np.r_[np.full(90, 0.02), np.full(10, -0.01)]
    assert bootstrap_p_value(d) == pytest.approx(2 * 11 / 101)


def test_paired_bootstrap_identical_models_differ_by_nothing(cohort):
    _, split, label, prob, _ = cohort
    test = split == "test"
    result = paired_bootstrap(label[test], prob[test], prob[test], n_boot=N_BOOT)
    for metric in ("auprc", "auroc"):
        assert result[metric]["difference"] == 0.0
        assert result[metric]["ci_low"] == 0.0 == result[metric]["ci_high"]
        assert result[metric]["p_value"] == 1.0


def test_paired_bootstrap_detects_a_clearly_better_model(cohort):
    _, split, label, prob, latent = cohort
    test = split == "test"
    noisy = expit(-2 + 0.5 * latent + np.random.default_rng(3).normal(0, 1.5, latent.size))
    result = paired_bootstrap(label[test], prob[test], noisy[test], n_boot=N_BOOT, seed=1)
    for metric in ("auprc", "auroc"):
        d = result[metric]
        assert d["difference"] > 0 and d["ci_low"] > 0
        assert d["p_value"] == pytest.approx(2 / (N_BOOT + 1))
        assert d["difference"] == pytest.approx(d["a"] - d["b"])
    again = paired_bootstrap(label[test], prob[test], noisy[test], n_boot=N_BOOT, seed=1)
    assert again == result


def test_paired_compare_aligns_rows_by_stay_id(cohort):
    stay_id, split, label, prob, latent = cohort
    other = expit(-2 + 1.2 * latent)
    a = _frame(stay_id, split, label, prob)
    b = _frame(stay_id, split, label, other)
    shuffled = b.sample(frac=1.0, random_state=0)
    test = split == "test"
    expected = paired_bootstrap(label[test], prob[test], other[test], n_boot=N_BOOT)
    got = paired_compare(a, shuffled, "test", n_boot=N_BOOT, name_a="ALFIA", name_b="LightGBM")
    assert got["auprc"] == expected["auprc"] and got["auroc"] == expected["auroc"]
    assert got["model_a"] == "ALFIA" and got["split"] == "test"


def test_paired_compare_refuses_different_stays(cohort):
    stay_id, split, label, prob, _ = cohort
    a = _frame(stay_id, split, label, prob)
    b = _frame(stay_id + 100_000, split, label, prob)
    with pytest.raises(AlfiaError, match=r"not scored on the same test stays: 800 stay_id\(s\) only in a"):
        paired_compare(a, b, n_boot=N_BOOT)
    c = a.copy()
    c.loc[c["split"] == "test", "label"] = 1 - c.loc[c["split"] == "test", "label"]
    with pytest.raises(AlfiaError, match="disagree on the label"):
        paired_compare(a, c, n_boot=N_BOOT)
