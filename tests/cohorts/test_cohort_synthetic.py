"""The synthetic generator reproduces the paper's Table 1 figures and stays realistic."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from alfia.cohorts.schema import OUTCOME_COLUMN, SPLIT_COLUMN, get_schema
from alfia.cohorts.sources.synthetic import CALIBRATIONS, generate_synthetic
from alfia.cohorts.validate import validate_cohort
from alfia.errors import AlfiaError

N = 20_000


@pytest.fixture(scope="module", params=["mimic", "eicu"])
def cohort(request) -> tuple[str, pd.DataFrame]:
    return request.param, generate_synthetic(request.param, N, seed=42)


def _published_moments(cal):
    for name, spec in cal.continuous.items():
        yield name, spec.moments
    for score, spec in cal.dynamic.items():
        for agg in ("max", "min", "first", "last", "avg", "stddev"):
            yield f"{score}_dynamic_{agg}", getattr(spec, agg)


def test_columns_and_schema(cohort):
    variant, df = cohort
    assert list(df.columns) == get_schema(variant).columns
    assert len(df) == N and df["stay_id"].is_unique
    report = validate_cohort(df, variant, source="synthetic")
    assert report.ok, report.errors


def test_mortality_rate(cohort):
    variant, df = cohort
    assert abs(df[OUTCOME_COLUMN].mean() - CALIBRATIONS[variant].mortality_rate) < 0.005


def test_every_published_mean_within_a_tenth_of_its_sd(cohort):
    variant, df = cohort
    misses = []
    for name, moments in _published_moments(CALIBRATIONS[variant]):
        for group, (mean, sd) in enumerate(moments):
            got = df.loc[df[OUTCOME_COLUMN] == group, name].mean()
            if abs(got - mean) > 0.1 * sd:
                misses.append(f"{name}[{group}]: {got:.3f} vs {mean}")
    assert not misses


def test_every_published_share_within_1_5_points(cohort):
    variant, df = cohort
    cal = CALIBRATIONS[variant]
    misses = []
    tables = [(n, s) for n, s in cal.categorical.items()] + [
        (n, {float(k): v for k, v in s.items()}) for n, s in cal.ordinal.items()]
    for name, shares in tables:
        for category, by_group in shares.items():
            for group, share in enumerate(by_group):
                got = (df.loc[df[OUTCOME_COLUMN] == group, name] == category).mean()
                if abs(got - share) > 0.015:
                    misses.append(f"{name}={category}[{group}]: {got:.4f} vs {share}")
    assert not misses


def test_variables_share_a_latent_severity(cohort):
    variant, df = cohort
    apache = "apsiii" if variant == "mimic" else "apacheiv"
    corr = df[[apache, "sofa_dynamic_max", "gcs_dynamic_min", "sapsii"]].corr(method="spearman")
    assert corr.loc[apache, "sofa_dynamic_max"] > 0.3
    assert corr.loc[apache, "sapsii"] > 0.3
    assert corr.loc[apache, "gcs_dynamic_min"] < 0


def test_gcs_aggregates_are_consistent_integers(cohort):
    _, df = cohort
    for agg in ("min", "max", "first", "last"):
        col = df[f"gcs_dynamic_{agg}"]
        assert col.between(3, 15).all() and (col == col.round()).all()
    assert (df["gcs_dynamic_min"] <= df["gcs_dynamic_avg"]).all()
    assert (df["gcs_dynamic_avg"] <= df["gcs_dynamic_max"]).all()
    assert (df["sofa_dynamic_stddev"] >= 0).all()


def test_lightgbm_auroc_is_realistic(cohort):
    import lightgbm as lgb

    variant, df = cohort
    schema = get_schema(variant)
    x = df[schema.predictor_names].copy()
    for c in schema.categorical:
        x[c] = x[c].astype("category")
    y = df[OUTCOME_COLUMN]
    train, test = df[SPLIT_COLUMN] == "train", df[SPLIT_COLUMN] == "test"
    model = lgb.LGBMClassifier(verbose=-1, random_state=42, n_jobs=1).fit(x[train], y[train])
    auroc = roc_auc_score(y[test], model.predict_proba(x[test])[:, 1])
    assert 0.85 <= auroc <= 0.93


def test_same_seed_same_rows_other_seed_other_rows():
    a = generate_synthetic("eicu", 500, seed=7)
    pd.testing.assert_frame_equal(a, generate_synthetic("eicu", 500, seed=7))
    b = generate_synthetic("eicu", 500, seed=8)
    assert not np.allclose(a["apacheiv"], b["apacheiv"])


def test_bad_arguments():
    with pytest.raises(AlfiaError, match="physionet2012"):
        generate_synthetic("physionet2012", 100)
    with pytest.raises(AlfiaError, match="at least 16"):
        generate_synthetic("mimic", 3)
