"""The one check of labels and splits that every model's training table passes (ALFIA, the zoo, boost)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alfia.cohorts.validate import check_labels, split_for_training
from alfia.errors import AlfiaError


def test_nan_label_is_named():
    df = pd.DataFrame({"stay_id": [1, 2], "hospital_expire_flag": [0, np.nan]})
    with pytest.raises(AlfiaError, match=r"t\.parquet: column 'hospital_expire_flag' has a missing \(NaN\).*row 1 \(stay_id=2\)"):
        check_labels(df, "t.parquet")


def test_label_outside_zero_one_is_named():
    df = pd.DataFrame({"stay_id": [1, 2, 3], "hospital_expire_flag": [0, 1, 2]})
    with pytest.raises(AlfiaError, match=r"must be 0 or 1, got 2 at row 2 \(stay_id=3\)"):
        check_labels(df, "t.parquet")
    assert check_labels(df.iloc[:2], "t.parquet").tolist() == [0, 1]


def _table(n: int = 12) -> pd.DataFrame:
    return pd.DataFrame({"stay_id": np.arange(100, 100 + n), "hospital_expire_flag": [0, 1] * (n // 2),
                         "split": ["train"] * (n // 2) + ["val"] * (n // 4) + ["test"] * (n - n // 2 - n // 4)})


def test_split_for_training_returns_each_split_in_row_order():
    df = _table().sample(frac=1.0, random_state=0)
    parts = split_for_training(df, "t.parquet")
    for name, part in parts.items():
        expected = df.loc[df.split == name, "stay_id"].tolist()
        assert part["stay_id"].tolist() == expected
        assert part.index.tolist() == df.index[df.split == name].tolist()  # messages name the table's rows


@pytest.mark.parametrize("corrupt, message", [
    (lambda df: df.drop(columns="split"), r"t\.parquet: no 'split' column"),
    (lambda df: df.assign(split=df.split.where(df.index != 3, "holdout")),
     r"column 'split' holds 'holdout' at row 3 \(stay_id=103\), which is not one of train, val, test"),
    (lambda df: df.assign(stay_id=df.stay_id.where(df.index != 5, 100)), r"column 'stay_id' repeats stay 100 at row 5"),
    (lambda df: df.assign(hospital_expire_flag=df.hospital_expire_flag.where(df.split != "val", 0)),
     r"split 'val' holds only label 0 \(every 'val' row has hospital_expire_flag=0\)"),
    (lambda df: df[df.split != "test"], r"split 'test' has no rows"),
])
def test_split_for_training_names_what_is_wrong(corrupt, message):
    with pytest.raises(AlfiaError, match=message):
        split_for_training(corrupt(_table()), "t.parquet")


def test_split_for_training_may_go_without_test_rows():
    df = _table()
    parts = split_for_training(df[df.split != "test"], "t.parquet", need_test=False)
    assert parts["test"].empty and len(parts["train"]) == 6
