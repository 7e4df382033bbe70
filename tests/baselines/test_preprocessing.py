"""Per-family preprocessing: fitted on train only; a category unseen in training is handled at test time."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alfia.baselines.preprocessing import (
    UNKNOWN_TOKEN, FeatureSpec, NativeCategoricals, TokenizerInputs, make_dense_preprocessor,
)

from .conftest import UNSEEN


@pytest.fixture(scope="module")
def parts(cohort):
    spec = FeatureSpec.from_schema("mimic", cohort)
    train = cohort[cohort["split"] == "train"]
    test = cohort[cohort["split"] == "test"].copy()
    test["careunit"] = UNSEEN
    return spec, train, test


def test_spec_takes_categorical_numeric_split_from_schema(cohort):
    from alfia.cohorts.schema import MIMIC_IV

    spec = FeatureSpec.from_schema("mimic", cohort)
    assert list(spec.categorical) == MIMIC_IV.categorical
    assert list(spec.numeric) == MIMIC_IV.numeric
    assert "stay_id" not in spec.columns and "hospital_expire_flag" not in spec.columns


def test_native_categoricals_map_unseen_to_missing(parts):
    spec, train, test = parts
    enc = NativeCategoricals(spec.categorical, spec.numeric).fit(train)
    assert UNSEEN not in enc.categories_["careunit"]
    out = enc.transform(test)
    assert isinstance(out["careunit"].dtype, pd.CategoricalDtype)
    assert list(out["careunit"].cat.categories) == enc.categories_["careunit"]
    assert out["careunit"].isna().all()
    assert out["gender"].notna().all()  # seen values keep their category


def test_catboost_mode_maps_unseen_to_unknown_token(parts):
    spec, train, test = parts
    enc = NativeCategoricals(spec.categorical, spec.numeric, mode="catboost").fit(train)
    assert (enc.transform(test)["careunit"] == UNKNOWN_TOKEN).all()


def test_one_hot_ignores_unseen_category(parts):
    spec, train, test = parts
    pre = make_dense_preprocessor(spec).fit(train)
    names = list(pre.get_feature_names_out())
    careunit_cols = [i for i, n in enumerate(names) if n.startswith("careunit_")]
    x = pre.transform(test)
    assert x[:, careunit_cols].sum() == 0  # unseen -> all-zero one-hot block
    assert np.isfinite(x).all()
    assert x.shape[1] == pre.transform(train.iloc[:5]).shape[1]


def test_preprocessing_learns_from_train_only(parts):
    """Scaling statistics come from the training rows: changing test rows changes nothing learned."""
    spec, train, test = parts
    a = make_dense_preprocessor(spec).fit(train)
    shifted = train.copy()
    shifted["apsiii"] = shifted["apsiii"] + 1000.0
    b = make_dense_preprocessor(spec).fit(shifted)
    col = list(a.get_feature_names_out()).index("apsiii")
    assert a.transform(test)[:, col] != pytest.approx(b.transform(test)[:, col])


def test_tokenizer_codes_reserve_zero_for_unseen(parts):
    spec, train, test = parts
    tok = TokenizerInputs(spec.categorical, spec.numeric).fit(train)
    x_num, x_cat = tok.transform(test)
    j = list(spec.categorical).index("careunit")
    assert (x_cat[:, j] == 0).all()
    assert (x_cat < np.asarray(tok.cardinalities_)).all()
    _, train_codes = tok.transform(train)
    assert (train_codes[:, j] >= 1).all()
    assert x_num.shape[1] == tok.n_numeric_ and np.isfinite(x_num).all()


def test_non_numeric_value_in_numeric_column_names_column_and_row(cohort, tmp_path):
    from alfia.baselines.runner import run_baselines
    from alfia.errors import AlfiaError

    df = cohort.copy()
    df["apsiii"] = df["apsiii"].astype(object)
    df.loc[df.index[3], "apsiii"] = "high"
    with pytest.raises(AlfiaError, match=r"'apsiii'.*row 3.*'high'"):
        run_baselines(df, "mimic", tmp_path, models=["LightGBM"], profile="fast", n_boot=5)
