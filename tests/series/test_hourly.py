"""The hourly table: hour placement, aggregation, masks, time since last, the window cut (a planted late
value never enters), the cohort's stays and split, Parquet + manifest round trip."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alfia.cohorts.sources.physionet2012 import build_physionet2012
from alfia.errors import AlfiaError
from alfia.series.hourly import (
    arrays_from_frame, hour_of_minute, hourly_from_long, read_hourly, time_since_last, write_hourly,
)
from alfia.series.sources import build_physionet2012_hourly, build_yaib_eicu_hourly
from alfia.series.variables import SeriesVariable
from series_testkit import write_physionet, write_yaib


def test_hour_of_minute_boundaries():
    assert hour_of_minute(np.array([0, 1, 60, 61, 1439, 1440])).tolist() == [1, 1, 1, 2, 24, 24]


def test_aggregation_mask_and_time_since_last():
    variables = [SeriesVariable("hr", "bpm", "mean", ""), SeriesVariable("urine", "mL", "sum", ""),
                 SeriesVariable("gcs", None, "last", "")]
    long = pd.DataFrame({"stay_id": [1, 1, 1, 1, 1, 2], "hour": [1, 1, 2, 2, 3, 2],
                         "variable": ["hr", "hr", "urine", "urine", "gcs", "gcs"],
                         "value": [80, 100, 30, 20, 9, 15]})
    stays = pd.DataFrame({"stay_id": [2, 1], "hospital_expire_flag": [0, 1], "split": ["val", "train"]})
    df = hourly_from_long(long, stays, variables, 4)
    assert len(df) == 8 and df["stay_id"].tolist() == [1] * 4 + [2] * 4
    s1 = df[df["stay_id"] == 1]
    assert s1["hr"].tolist()[0] == 90 and np.isnan(s1["hr"].tolist()[1])
    assert s1["urine"].tolist()[1] == 50
    assert s1["hr__mask"].tolist() == [1, 0, 0, 0]
    assert s1["hr__tsl"].tolist() == [0, 1, 2, 3]
    assert s1["gcs__tsl"].tolist() == [1, 2, 0, 1]  # never measured before hour 3: hours since admission
    assert df.loc[df["stay_id"] == 2, "hospital_expire_flag"].tolist() == [0] * 4


def test_time_since_last_known_answer():
    measured = np.array([[[False], [True], [False], [False], [True]]])
    assert time_since_last(measured)[0, :, 0].tolist() == [1, 0, 1, 2, 0]


def test_measurement_outside_the_window_is_refused():
    long = pd.DataFrame({"stay_id": [1], "hour": [25], "variable": ["hr"], "value": [1.0]})
    stays = pd.DataFrame({"stay_id": [1], "hospital_expire_flag": [0], "split": ["train"]})
    with pytest.raises(AlfiaError, match="outside the window"):
        hourly_from_long(long, stays, [SeriesVariable("hr", "bpm", "mean", "")], 24)


@pytest.fixture(scope="module")
def physionet(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("physionet")
    records = {
        1: [("00:30", "HR", 80), ("01:30", "HR", 90), ("24:00", "HR", 70), ("24:01", "HR", 333),
            ("30:00", "HR", 299), ("01:30", "Urine", 40), ("02:00", "Urine", 60), ("03:00", "FiO2", 0.5),
            ("04:00", "SysABP", 120), ("04:00", "NISysABP", 100), ("05:00", "NISysABP", 110),
            ("30:00", "Lactate", 9.9), ("06:00", "Weight", 82)],
        **{r: [("01:00", "HR", 70 + r)] for r in range(2, 17)},
    }
    return write_physionet(tmp_path / "set", records, {r: int(r % 4 == 0) for r in records})


@pytest.fixture(scope="module")
def physionet_hourly(physionet):
    return build_physionet2012_hourly([physionet[0]], [physionet[1]], 24)


def test_physionet_late_values_never_enter(physionet_hourly):
    frame, variables, report = physionet_hourly
    s1 = frame[frame["stay_id"] == 1].set_index("hour")
    assert s1.loc[24, "heart_rate"] == 70  # 24:00 is inside the window
    assert frame["heart_rate"].max() < 299  # 24:01 and 30:00 are not
    assert frame["lactate"].isna().all() and frame["lactate__mask"].sum() == 0
    assert report["excluded_after_window"] == 3
    assert s1.loc[2, "urine_output"] == 100 and s1.loc[3, "fio2"] == 50  # summed; fraction -> %
    assert s1.loc[4, "systolic_bp"] == 120 and s1.loc[5, "systolic_bp"] == 110  # invasive first
    assert s1.loc[1, "weight"] == 80 and s1.loc[6, "weight"] == 82 and np.isnan(s1.loc[5, "weight"])
    assert s1.loc[1, "age"] == 60 and s1.loc[1, "sex_male"] == 1 and np.isnan(s1.loc[2, "age"])
    names = [v.name for v in variables]
    assert len(names) == len(set(names)) and {"mechanical_ventilation", "urine_output", "systolic_bp"} <= set(names)


def test_physionet_same_stays_and_split_as_the_cohort(physionet, physionet_hourly):
    frame, _, _ = physionet_hourly
    cohort, _ = build_physionet2012([physionet[0]], [physionet[1]], 24.0)
    per_stay = frame.drop_duplicates("stay_id").set_index("stay_id")
    c = cohort.set_index("stay_id")
    assert sorted(per_stay.index) == sorted(c.index)
    assert (per_stay["split"] == c.loc[per_stay.index, "split"]).all()
    assert (per_stay["hospital_expire_flag"] == c.loc[per_stay.index, "hospital_expire_flag"]).all()


def test_round_trip_with_manifest(physionet_hourly, tmp_path):
    frame, variables, report = physionet_hourly
    path = tmp_path / "h.parquet"
    manifest = write_hourly(frame, path, source="physionet2012", variables=variables, hours=24,
                            extra={"report": report})
    assert (tmp_path / "h.manifest.json").exists() and manifest.kind == "hourly"
    assert manifest.splits["all"]["n"] == 16  # stays, not stay-hours
    arrays = read_hourly(path)
    assert arrays.values.shape == (16, 24, len(variables)) and arrays.variables == variables
    assert {v.name: v.unit for v in arrays.variables}["fio2"] == "%"
    back = arrays.to_frame()
    pd.testing.assert_frame_equal(back, frame.sort_values(["stay_id", "hour"]).reset_index(drop=True),
                                  check_dtype=False)


def test_cohort_file_is_not_an_hourly_table(tmp_path):
    from alfia.cohorts.io import write_cohort
    from alfia.cohorts.sources.synthetic import generate_synthetic

    write_cohort(generate_synthetic("mimic", 20, 0), tmp_path / "c.parquet", source="synthetic", variant="mimic")
    with pytest.raises(AlfiaError, match="not an hourly table"):
        read_hourly(tmp_path / "c.parquet")


def test_a_missing_hour_is_named(arrays):
    frame = arrays.to_frame()
    with pytest.raises(AlfiaError, match="stay 1000 does not have exactly one row"):
        arrays_from_frame(frame.drop(index=2))


def test_yaib_export_drops_hour_after_window_and_maps_names(tmp_path):
    frame, variables, report = build_yaib_eicu_hourly(write_yaib(tmp_path / "y"), 24)
    assert frame["hour"].max() == 24 and len(frame) == 24 * 24
    assert frame["fio2"].isna().all()  # only measured at t = 24, i.e. after the window
    assert report["excluded_after_window"] == 24 * 3  # hr, bicar and fio2 at t = 24, 24 stays
    s = frame[frame["stay_id"] == 1].set_index("hour")
    assert s.loc[4, "magnesium"] == 2.0  # ricu t = 3 covers [3, 4) h -> hour 4
    units = {v.name: v.unit for v in variables}
    assert units["magnesium"] == "mg/dL" and units["heart_rate"] == "bpm"
    assert set(frame["split"]) == {"train", "val", "test"}
