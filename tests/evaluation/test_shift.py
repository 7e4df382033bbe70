"""Shift report: standardised mean differences with a known answer, missingness on both sides, outcome rates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alfia.cohorts.schema import get_schema
from alfia.evaluation.external import calibration_in_the_large, headline, shift_report


def test_smd_missingness_and_outcome_rates_have_the_known_values():
    n = 40
    a = np.tile([60.0, 70.0], n // 2)  # mean 65, SD (ddof=1) ~5.06
    train = pd.DataFrame({"admission_age": a, "gender": ["Female"] * 10 + ["Male"] * 30,
                          "hospital_expire_flag": [1] * 4 + [0] * 36})
    ext = pd.DataFrame({"admission_age": np.r_[a[:30] + 5.0, [np.nan] * 10], "gender": ["Female"] * 20 + ["Male"] * 20,
                        "smoker": ["Yes"] + [None] * 39})
    report = shift_report(train, ext, get_schema("mimic"), external_labels=[1] * 8 + [0] * 32)
    rows = {r["variable"]: r for r in report["predictors"]}
    sd_a, sd_b = np.std(a, ddof=1), np.std(a[:30] + 5.0, ddof=1)
    assert rows["admission_age"]["smd"] == pytest.approx(5.0 / np.sqrt((sd_a**2 + sd_b**2) / 2))
    assert rows["admission_age"]["missing_train"] == 0.0 and rows["admission_age"]["missing_external"] == 0.25
    p, q = 0.25, 0.5  # female share: training, external
    assert abs(rows["gender"]["smd"]) == pytest.approx((q - p) / np.sqrt((p * (1 - p) + q * (1 - q)) / 2))
    assert rows["smoker"]["smd"] is None  # one observed value is no distribution
    assert rows["apsiii"]["smd"] is None and rows["apsiii"]["missing_external"] == 1.0
    assert report["outcome_rate_train"] == 0.1 and report["outcome_rate_external"] == 0.2
    assert headline(report).startswith("mortality 10.0% (train) vs 20.0% (external); 2/31 predictors")


def test_calibration_in_the_large():
    citl = calibration_in_the_large([1, 0, 0, 0], [0.5, 0.5, 0.5, 0.5])
    assert citl == {"observed_rate": 0.25, "mean_predicted": 0.5, "difference": -0.25, "observed_to_expected": 0.5}
