"""Validation finds each kind of bad cohort and names the column and the row; the leakage guard."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from alfia.cohorts import schema as schema_module
from alfia.cohorts.schema import WHOLE_STAY, Variable
from alfia.cohorts.sources.synthetic import generate_synthetic
from alfia.cohorts.validate import check_cohort, find_leakage, leakage_guard, validate_cohort
from alfia.errors import AlfiaError, LeakageError


@pytest.fixture(scope="module")
def good() -> pd.DataFrame:
    return generate_synthetic("mimic", 300, seed=3)


@pytest.fixture
def df(good) -> pd.DataFrame:
    return good.copy()


def _error(df, variant="mimic") -> str:
    with pytest.raises(AlfiaError) as exc:
        check_cohort(df, variant, source="cohort.parquet")
    return str(exc.value)


def test_valid_cohort_passes(df):
    report = check_cohort(df, "mimic", source="cohort.parquet")
    assert report.ok and report.errors == [] and report.n_rows == 300


def test_missing_required_column(df):
    msg = _error(df.drop(columns=["apsiii"]))
    assert msg.startswith("cohort.parquet:") and "missing required column 'apsiii'" in msg


def test_unknown_category_names_value_row_and_stay(df):
    df.loc[4, "gender"] = "Alien"
    msg = _error(df)
    assert "column 'gender'" in msg and "unknown category 'Alien'" in msg
    assert f"row 4 (stay_id={df.loc[4, 'stay_id']})" in msg


def test_non_numeric_value(df):
    df["oasis"] = df["oasis"].astype(object)
    df.loc[7, "oasis"] = "high"
    msg = _error(df)
    assert "column 'oasis'" in msg and "non-numeric value 'high'" in msg and "row 7" in msg


def test_label_outside_0_1(df):
    df.loc[2, "hospital_expire_flag"] = 2
    msg = _error(df)
    assert "column 'hospital_expire_flag'" in msg and "label 2 is not 0 or 1" in msg
    assert "row 2" in msg


def test_missing_label(df):
    df["hospital_expire_flag"] = df["hospital_expire_flag"].astype(float)
    df.loc[2, "hospital_expire_flag"] = float("nan")
    assert "missing value at row 2" in _error(df)


def test_value_outside_range(df):
    df.loc[0, "gcs_dynamic_min"] = 2
    msg = _error(df)
    assert "column 'gcs_dynamic_min'" in msg and "outside 3-15" in msg


def test_gcs_must_be_integer(df):
    df.loc[0, "gcs_dynamic_first"] = 13.5
    df.loc[0, "gcs_dynamic_min"], df.loc[0, "gcs_dynamic_max"] = 3, 15
    assert "column 'gcs_dynamic_first': non-integer value 13.5" in _error(df)


def test_aggregate_consistency(df):
    df.loc[1, "sofa_dynamic_min"] = df.loc[1, "sofa_dynamic_max"] + 2
    df.loc[5, "sofa_dynamic_stddev"] = -0.5
    msg = _error(df)
    assert "'sofa_dynamic_min': minimum above 'sofa_dynamic_max' at row 1" in msg
    assert "'sofa_dynamic_stddev'" in msg and "row 5" in msg


def test_first_outside_min_max(df):
    row = df.index[(df["gcs_dynamic_max"] < 15)][0]
    df.loc[row, "gcs_dynamic_first"] = 15
    assert "column 'gcs_dynamic_first': value outside [gcs_dynamic_min, gcs_dynamic_max]" in _error(df)


def test_split_names_and_unique_stay_id(df):
    df.loc[3, "split"] = "holdout"
    df.loc[9, "stay_id"] = df.loc[8, "stay_id"]
    msg = _error(df)
    assert "split 'holdout' is not one of train, val, test" in msg
    assert "duplicated stay_id" in msg and "row 8" in msg and "row 9" in msg


def test_split_optional_before_splitting(df):
    assert validate_cohort(df.drop(columns=["split"]), "mimic", require_split=False).ok
    assert not validate_cohort(df.drop(columns=["split"]), "mimic").ok


def test_empty_table(df):
    assert "table has no rows" in _error(df.iloc[:0])


def test_unknown_variant(df):
    with pytest.raises(AlfiaError, match="unknown cohort variant 'mimic3'"):
        validate_cohort(df, "mimic3")


@pytest.mark.parametrize("column", [
    "los", "LOS_days", "length_of_stay", "Length_of_stay", "Survival", "discharge_location",
    "dischtime", "hospitaldischargestatus", "deathtime", "dod", "death_time", "hosp_mort",
    "hospital_expire_flag_copy", "In-hospital_death", "icu_outtime", "outcome", "hr_max_48h",
])
def test_leakage_guard_refuses_and_names_column(column):
    with pytest.raises(LeakageError) as exc:
        leakage_guard(["stay_id", "apsiii", column], "mimic", source="x.parquet")
    assert repr(column) in str(exc.value) and str(exc.value).startswith("x.parquet:")


def test_leakage_guard_allows_window_columns():
    names = ["stay_id", "hospital_expire_flag", "split", "subject_id", "sofa_dynamic_max",
             "gcs_dynamic_stddev", "admission_age", "careunit", "heart_rate_mean", "hr_max_24h"]
    leakage_guard(names, "mimic")
    assert find_leakage(names, "mimic") == []


def test_leakage_guard_refuses_schema_variable_with_late_window(monkeypatch):
    late = Variable("icu_los_hours", "continuous", "ICU length of stay", "admission", WHOLE_STAY)
    leaky = dataclasses.replace(schema_module.MIMIC_IV, variant="mimic_late",
                                predictors=(*schema_module.MIMIC_IV.predictors, late))
    monkeypatch.setitem(schema_module.SCHEMAS, "mimic_late", leaky)
    found = dict(find_leakage(["icu_los_hours"], "mimic_late"))
    assert "ends after 24 h" in found["icu_los_hours"]


def test_check_cohort_raises_leakage_error_for_leaking_column(df):
    df["deathtime"] = "2150-01-01"
    with pytest.raises(LeakageError, match="column 'deathtime' is refused"):
        check_cohort(df, "mimic", source="cohort.parquet")


def test_extra_harmless_column_is_a_warning(df):
    df["note"] = "x"
    report = check_cohort(df, "mimic")
    assert report.ok and any("note" in w for w in report.warnings)
