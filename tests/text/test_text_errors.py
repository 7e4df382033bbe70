"""Bad input: each gets a clear AlfiaError naming the row and column; unknown columns warn once."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pytest

from alfia.errors import AlfiaError
from alfia.text import TextEncodingWarning, encode_cohort, render_row


@pytest.fixture
def eicu(random_cohorts) -> pd.DataFrame:
    return random_cohorts["eicu"].head(30).reset_index(drop=True).copy()


def test_unknown_template_is_refused(eicu):
    with pytest.raises(AlfiaError, match=r"cohort\.parquet: no text template for cohort variant "
                                         r"'hirid'; known templates: mimic, eicu, physionet2012"):
        encode_cohort(eicu, "hirid", source="cohort.parquet")


def test_auto_refuses_a_table_that_matches_no_template():
    df = pd.DataFrame({"stay_id": [1, 2], "heart_rate": [80, 90], "label": [0, 1]})
    with pytest.raises(AlfiaError, match="match no known cohort variant"):
        encode_cohort(df, "auto", source="x.parquet")


def test_auto_picks_the_template_the_columns_match(eicu, random_cohorts):
    assert encode_cohort(eicu, "auto")["text"].tolist() == encode_cohort(eicu, "eicu")["text"].tolist()


def test_value_outside_the_schema_range_names_row_and_column(eicu):
    eicu.loc[7, "age"] = 150
    stay = eicu.loc[7, "stay_id"]
    with pytest.raises(AlfiaError) as err:
        encode_cohort(eicu, "eicu", source="cohort.parquet")
    message = str(err.value)
    assert f"row 7 (stay_id={stay})" in message and "column 'age'" in message
    assert "150 is outside the schema's range [18, 120] years" in message


def test_negative_and_infinite_values_are_out_of_range(eicu):
    eicu.loc[2, "gcs_dynamic_min"] = -1
    with pytest.raises(AlfiaError, match=r"row 2 .*column 'gcs_dynamic_min'"):
        encode_cohort(eicu, "eicu")
    eicu.loc[2, "gcs_dynamic_min"] = np.nan
    eicu.loc[4, "weight"] = np.inf
    with pytest.raises(AlfiaError, match=r"row 4 .*column 'weight'"):
        encode_cohort(eicu, "eicu")


def test_fractional_value_in_an_integer_column_is_refused(eicu):
    eicu.loc[3, "sapsii"] = 41.5
    with pytest.raises(AlfiaError, match=r"row 3 .*column 'sapsii': value 41.5 is not an integer"):
        encode_cohort(eicu, "eicu")


def test_unknown_category_and_non_number_name_the_row(eicu):
    bad = eicu.copy()
    bad["unittype"] = bad["unittype"].astype(object)
    bad.loc[5, "unittype"] = "Burn ICU"
    with pytest.raises(AlfiaError, match=r"row 5 .*column 'unittype': unknown category 'Burn ICU'"):
        encode_cohort(bad, "eicu")
    bad = eicu.copy()
    bad["oasis"] = bad["oasis"].astype(object)
    bad.loc[6, "oasis"] = "high"
    with pytest.raises(AlfiaError, match=r"row 6 .*column 'oasis': 'high' is not a number"):
        encode_cohort(bad, "eicu")


def test_unknown_column_is_reported_once_and_ignored(eicu):
    plain = encode_cohort(eicu, "eicu")
    extra = eicu.assign(heart_rate_mean=80.0, notes="x")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = encode_cohort(extra, "eicu")
    unknown = [w for w in caught if "unknown to the eicu template" in str(w.message)]
    assert len(unknown) == 1 and issubclass(unknown[0].category, TextEncodingWarning)
    assert "heart_rate_mean, notes" in str(unknown[0].message)
    assert out["text"].tolist() == plain["text"].tolist()
    assert "notes" not in out.columns


def test_absent_predictors_are_missing_with_one_warning(eicu):
    partial = eicu.drop(columns=["apacheiv", "obesity"])
    with pytest.warns(TextEncodingWarning, match="2 eicu predictor"):
        out = encode_cohort(partial, "eicu", "state")
    assert all(re.search(r"\(APACHE IV\)[^.]* not recorded\.", t) for t in out["text"])
    assert not any("obese" in t for t in out["text"])


def test_empty_cohort_is_refused(eicu):
    with pytest.raises(AlfiaError, match="cohort.parquet: the cohort has no rows"):
        encode_cohort(eicu.iloc[:0], "eicu", source="cohort.parquet")


def test_missing_stay_id_and_bad_missing_mode(eicu):
    with pytest.raises(AlfiaError, match="column 'stay_id' is missing"):
        encode_cohort(eicu.drop(columns="stay_id"), "eicu")
    with pytest.raises(AlfiaError, match="missing must be one of omit, state"):
        encode_cohort(eicu, "eicu", "drop")
    with pytest.raises(AlfiaError, match="row 0, column 'age'"):
        render_row({"age": 5}, "eicu")
