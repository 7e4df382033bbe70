"""Variable mapping between CW-24 variants: declared data consistent with the schemas, round trips,
out-of-range and untranslatable values named, imputation from the training rows reported."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alfia.cohorts.mapping import (
    MAPPINGS, VariableMap, VariantMapping, check_mapping, fit_imputation, get_mapping, identity_mapping, impute,
    map_cohort, to_variant,
)
from alfia.cohorts.schema import get_schema
from alfia.cohorts.sources.synthetic import generate_synthetic
from alfia.errors import AlfiaError


@pytest.fixture(scope="module")
def eicu():
    return generate_synthetic("eicu", 80, seed=3)


@pytest.fixture(scope="module")
def mimic():
    return generate_synthetic("mimic", 80, seed=4)


@pytest.mark.parametrize("key", sorted(MAPPINGS))
def test_every_mapping_agrees_with_both_schemas(key):
    check_mapping(MAPPINGS[key])  # units, kinds, every source category translated, every target explained


def test_identity_mappings_check_and_unknown_pair_is_named():
    for variant in ("mimic", "eicu", "physionet2012"):
        check_mapping(identity_mapping(variant))
    with pytest.raises(AlfiaError, match="no variable mapping from the mimic variant to physionet2012"):
        get_mapping("mimic", "physionet2012")


def test_declared_unit_that_disagrees_with_the_schema_is_refused():
    bad = VariantMapping("eicu", "mimic", (VariableMap("height", "height", "in", "cm"),),
                         not_mapped={n: "x" for n in get_schema("mimic").predictor_names if n != "height"})
    with pytest.raises(AlfiaError, match="'height' declares units 'in' -> 'cm'.*'cm' -> 'cm'"):
        check_mapping(bad)


def _injective_part(forward: dict, backward: dict) -> list[str]:
    """Source categories whose translation no other category shares, and whose target maps back."""
    targets = pd.Series(forward).dropna()
    unique = targets[~targets.duplicated(keep=False)]
    return [c for c, t in unique.items() if t in backward]


@pytest.mark.parametrize("source,target", [("eicu", "mimic"), ("mimic", "eicu")])
def test_categories_round_trip_wherever_the_mapping_is_one_to_one(source, target):
    there, back = get_mapping(source, target), get_mapping(target, source)
    back_by_target = {m.target: m for m in back.variables}
    checked = 0
    for m in there.variables:
        if m.categories is None or m.source not in back_by_target:
            continue
        rev = back_by_target[m.source]
        assert rev.source == m.target
        for c in _injective_part(m.categories, rev.categories):
            assert rev.categories[m.categories[c]] == c, (m.target, c)
            checked += 1
    assert checked >= 10


def test_eicu_cohort_round_trips_through_mimic(eicu):
    there = map_cohort(eicu, "eicu", "mimic").frame
    back = map_cohort(there, "mimic", "eicu").frame
    for m in get_mapping("mimic", "eicu").variables:  # every eICU column that MIMIC-IV also has
        a, b = eicu[m.target].reset_index(drop=True), back[m.target].reset_index(drop=True)
        if get_schema("eicu")[m.target].is_categorical:
            lossy = a.isin(["Unknown", "CCU-CTICU", "CTICU"])  # declared many-to-one or "not recorded"
            assert (a[~lossy].astype(str) == b[~lossy].astype(str)).all(), m.target
            assert b[a.isin(["CCU-CTICU"]) | ((a == "Unknown") & (m.target != "ethnicity"))].isna().all()
        else:
            np.testing.assert_array_equal(a.to_numpy(float), b.to_numpy(float))
    assert back["region"].isna().all() and back["apacheiv"].isna().all()  # MIMIC-IV has neither


def test_mapping_keeps_outcome_drops_split_and_features_hide_the_outcome(eicu):
    mapped = map_cohort(eicu, "eicu", "mimic")
    assert "split" not in mapped.frame.columns
    assert (mapped.frame["hospital_expire_flag"].to_numpy() == eicu["hospital_expire_flag"].to_numpy()).all()
    assert "hospital_expire_flag" not in mapped.features.columns
    assert list(mapped.features.columns) == ["stay_id", *get_schema("mimic").predictor_names]
    status = {v["variable"]: v["status"] for v in mapped.variables}
    assert status["apsiii"] == "not in source variant" and status["admission_age"] == "mapped"
    np.testing.assert_array_equal(mapped.frame["admission_age"].to_numpy(float), eicu["age"].to_numpy(float))


def test_out_of_range_after_mapping_names_the_column():
    p12 = pd.DataFrame({"stay_id": [1, 2], "age": [45.0, 16.0], "gender": ["Male", "Female"],
                        "hospital_expire_flag": [0, 1]})
    with pytest.raises(AlfiaError, match=r"row 1 \(stay_id=2\), column 'age' \(mapped to 'admission_age'\): 16 is "
                                         r"outside mimic's valid range \[18, 120\] years"):
        map_cohort(p12, "physionet2012", "mimic")
    same = pd.DataFrame({"stay_id": [7], "weight": [900.0]})
    with pytest.raises(AlfiaError, match=r"column 'weight': 900 is outside eicu's valid range"):
        map_cohort(same, "eicu", "eicu")


def test_untranslatable_category_names_the_column():
    df = pd.DataFrame({"stay_id": [1], "unittype": ["Burn ICU"]})
    with pytest.raises(AlfiaError, match=r"column 'unittype' \(mapped to 'careunit'\): 'Burn ICU' has no translation"):
        map_cohort(df, "eicu", "mimic")


def test_imputation_uses_training_mode_and_median_and_reports_every_variable(eicu, mimic):
    ext = eicu.copy()
    ext.loc[ext.index[:8], "gender"] = "Unknown"  # -> missing; training never lacks gender
    ext.loc[ext.index[:20], "sapsii"] = np.nan
    mapped = map_cohort(ext, "eicu", "mimic")
    train = mimic[mimic["split"] == "train"]
    features, report = impute(mapped, fit_imputation(train, get_schema("mimic")))
    by_var = {r["variable"]: r for r in report}
    unmapped = {v for v, why in get_mapping("eicu", "mimic").not_mapped.items()}
    assert unmapped <= set(by_var)
    for v in unmapped:
        assert by_var[v]["share_of_stays"] == 1.0 and by_var[v]["reason"] == "not in source variant"
    assert by_var["gender"]["n_stays"] == 8 and by_var["gender"]["share_of_stays"] == pytest.approx(8 / len(ext))
    assert by_var["gender"]["fill"] == train["gender"].value_counts().idxmax()
    assert by_var["sapsii"]["fill"] == pytest.approx(float(train["sapsii"].median()))
    assert by_var["apsiii"]["fill_rule"] == "training median"
    assert by_var["marital_status"]["fill"] == train["marital_status"].value_counts().idxmax()
    assert not features[get_schema("mimic").predictor_names].isna().any().any()
    orig = map_cohort(eicu, "eicu", "mimic").features
    natural = {c for c in orig.columns if orig[c].isna().any()} - unmapped  # 'Unknown' smoker, CCU-CTICU
    assert natural == {"smoker", "careunit"}
    assert set(by_var) == unmapped | natural | {"gender", "sapsii"}  # nothing else was touched


def test_to_variant_leaves_a_cohort_of_the_same_variant_alone(mimic, eicu):
    assert to_variant(mimic, "mimic") is mimic
    assert list(to_variant(eicu, "mimic").columns)[:3] == ["stay_id", "gender", "admission_age"]
