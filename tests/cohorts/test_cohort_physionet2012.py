"""PhysioNet 2012: window cut, missing values, descriptors, combining sets, reports, bad input, and the
real challenge files."""

from __future__ import annotations

import numpy as np
import pytest

from alfia.cohorts.schema import PHYSIONET2012
from alfia.cohorts.sources.physionet2012 import build_physionet2012
from alfia.cohorts.validate import validate_cohort
from alfia.errors import AlfiaError
from cohort_testkit import (
    record_text, shared_dataset, write_outcomes, write_set, write_tar,
)

SERIES_A = [("00:10", "GCS", 7), ("03:00", "GCS", 9), ("23:59", "GCS", 11), ("24:00", "GCS", 12),
            ("24:01", "GCS", 3), ("30:00", "GCS", 3), ("01:00", "HR", 80), ("02:00", "HR", -1),
            ("02:00", "HR", 100), ("05:00", "SysABP", 0), ("40:00", "Lactate", 9.0)]


@pytest.fixture
def two_sets(tmp_path):
    a = write_set(tmp_path / "set-a", {
        101: record_text(101, series=SERIES_A),
        102: record_text(102, gender=0, height=-1, icu=2, weight=-1,
                         series=[("04:00", "Weight", 70.5), ("05:00", "Weight", 71.5)]),
        103: record_text(103, icu=1),  # descriptors only
    })
    b = write_tar(tmp_path / "set-b.tar.gz", {
        "201.txt": record_text(201, icu=4, series=[("00:30", "Temp", 38.2)]),
        "202.txt": record_text(202, series=[("00:30", "Temp", 37.0)]),  # no outcome
    }, top="set-b")
    oa = write_outcomes(tmp_path / "Outcomes-a.txt", [
        (101, 20, 8, 30, 12, 1), (102, 10, 2, 5, -1, 0), (103, -1, -1, 4, -1, 0)])
    ob = write_outcomes(tmp_path / "Outcomes-b.txt", [
        (201, 12, 4, 7, -1, 0), (299, 15, 5, 9, -1, 1)])  # 299 has no record
    return [a, b], [oa, ob]


@pytest.fixture
def built(two_sets):
    return build_physionet2012(*two_sets, hours=24, aggregates="full")


def test_columns_follow_the_schema_and_leakage_is_not_loaded(built):
    df, _ = built
    assert list(df.columns) == PHYSIONET2012.columns
    assert not {"Length_of_stay", "Survival", "length_of_stay"} & set(df.columns)
    assert validate_cohort(df, "physionet2012", source="t").ok


def test_sets_combine_and_unmatched_are_reported(built):
    df, report = built
    assert sorted(df["stay_id"]) == [101, 102, 103, 201]
    assert report["records_without_outcome"] == {"count": 1, "record_ids": [202]}
    assert report["outcomes_without_record"] == {"count": 1, "record_ids": [299]}
    assert report["n_records_descriptors_only"] == 1


def test_window_keeps_measurements_at_or_before_its_end(built):
    row = built[0].set_index("stay_id").loc[101]
    assert row["gcs_dynamic_first"] == 7 and row["gcs_dynamic_last"] == 12  # 24:00 kept
    assert row["gcs_dynamic_min"] == 7 and row["gcs_dynamic_max"] == 12  # 24:01 and later dropped
    assert row["gcs_count"] == 4
    assert row["gcs_dynamic_avg"] == pytest.approx(np.mean([7, 9, 11, 12]))
    assert row["gcs_dynamic_stddev"] == pytest.approx(np.std([7, 9, 11, 12], ddof=1))
    assert np.isnan(row["lactate_first"]) and row["lactate_count"] == 0  # 40:00 is after 24 h


def test_shorter_window(two_sets):
    df, _ = build_physionet2012(*two_sets, hours=3, aggregates="full")
    row = df.set_index("stay_id").loc[101]
    assert row["gcs_dynamic_last"] == 9 and row["gcs_count"] == 2


def test_minus_one_is_missing_and_implausible_values_are_dropped(built):
    df, report = built
    row = df.set_index("stay_id").loc[101]
    assert row["heart_rate_count"] == 2 and row["heart_rate_min"] == 80  # -1 ignored
    assert row["invasive_systolic_bp_count"] == 0  # a zero pressure is a recording error
    assert report["dropped_implausible"]["SysABP"] == 1


def test_descriptors(built):
    df = built[0].set_index("stay_id")
    assert df.loc[101, "gender"] == "Male" and df.loc[102, "gender"] == "Female"
    assert df.loc[101, "icu_type"] == "Medical ICU" and df.loc[103, "icu_type"] == "Coronary Care Unit"
    assert df.loc[102, "icu_type"] == "Cardiac Surgery Recovery Unit"
    assert np.isnan(df.loc[102, "height"])
    assert df.loc[102, "weight"] == 70.5  # no admission weight: first measured weight
    assert df.loc[101, "saps_i"] == 20 and df.loc[101, "sofa"] == 8
    assert np.isnan(df.loc[103, "saps_i"])  # -1 in the outcomes file
    assert df.loc[103, "heart_rate_count"] == 0 and np.isnan(df.loc[103, "heart_rate_mean"])
    assert list(df["hospital_expire_flag"]) == [1, 0, 0, 0]


def test_malformed_lines_are_reported_as_file_and_line(tmp_path):
    text = record_text(1, series=[("01:00", "HR", 80)]) + "01:30,HR\n02:00,HR,abc\n\n3:00,HR,90\n"
    folder = write_set(tmp_path / "s", {1: text})
    out = write_outcomes(tmp_path / "o.txt", [(1, 1, 1, 1, -1, 0)])
    df, report = build_physionet2012([folder], [out], aggregates="full")
    name = str(folder / "1.txt")
    assert report["malformed_lines"] == {"count": 2, "first": [f"{name}:9", f"{name}:10"]}
    assert df.loc[0, "heart_rate_count"] == 2


def test_tar_member_that_is_not_a_record(tmp_path):
    tar = write_tar(tmp_path / "set.tar.gz", {"1.txt": record_text(1), "README": "hello"})
    out = write_outcomes(tmp_path / "o.txt", [(1, 1, 1, 1, -1, 0)])
    with pytest.raises(AlfiaError, match=r"set\.tar\.gz:set-x/README: not a PhysioNet 2012 record"):
        build_physionet2012([tar], [out])


def test_record_with_wrong_header(tmp_path):
    tar = write_tar(tmp_path / "set.tar.gz", {"1.txt": "a,b,c\n1,2,3\n"})
    out = write_outcomes(tmp_path / "o.txt", [(1, 1, 1, 1, -1, 0)])
    with pytest.raises(AlfiaError, match="set-x/1.txt: not a PhysioNet 2012 record .line 1"):
        build_physionet2012([tar], [out])


def test_empty_files(tmp_path):
    folder = write_set(tmp_path / "s", {1: record_text(1)})
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(AlfiaError, match="empty.txt: file is empty"):
        build_physionet2012([folder], [empty])
    (folder / "2.txt").write_text("")
    out = write_outcomes(tmp_path / "o.txt", [(1, 1, 1, 1, -1, 0)])
    with pytest.raises(AlfiaError, match="2.txt: empty file"):
        build_physionet2012([folder], [out])


def test_duplicated_record_ids_in_outcomes(tmp_path):
    folder = write_set(tmp_path / "s", {1: record_text(1)})
    out = write_outcomes(tmp_path / "o.txt", [(1, 1, 1, 1, -1, 0), (2, 1, 1, 1, -1, 0),
                                               (1, 3, 3, 3, -1, 1)])
    with pytest.raises(AlfiaError, match=r"duplicated RecordID in outcomes: RecordID 1 at "
                                         r".*o\.txt:2, .*o\.txt:4"):
        build_physionet2012([folder], [out])


def test_duplicated_record_ids_across_outcome_files(tmp_path):
    folder = write_set(tmp_path / "s", {1: record_text(1)})
    o1 = write_outcomes(tmp_path / "o1.txt", [(1, 1, 1, 1, -1, 0)])
    o2 = write_outcomes(tmp_path / "o2.txt", [(1, 1, 1, 1, -1, 0)])
    with pytest.raises(AlfiaError, match="o1.txt:2, .*o2.txt:2"):
        build_physionet2012([folder], [o1, o2])


def test_label_outside_0_1_in_outcomes(tmp_path):
    folder = write_set(tmp_path / "s", {1: record_text(1)})
    out = write_outcomes(tmp_path / "o.txt", [(1, 1, 1, 1, -1, 2)])
    with pytest.raises(AlfiaError, match=r"o\.txt:2: column 'In-hospital_death' is 2 for RecordID 1"):
        build_physionet2012([folder], [out])


def test_outcomes_missing_a_column(tmp_path):
    folder = write_set(tmp_path / "s", {1: record_text(1)})
    out = tmp_path / "o.txt"
    out.write_text("RecordID,SAPS-I,SOFA\n1,2,3\n")
    with pytest.raises(AlfiaError, match="missing required column 'In-hospital_death'"):
        build_physionet2012([folder], [out])


def test_same_record_in_two_sets(tmp_path):
    a = write_set(tmp_path / "a", {1: record_text(1)})
    b = write_set(tmp_path / "b", {1: record_text(1)})
    out = write_outcomes(tmp_path / "o.txt", [(1, 1, 1, 1, -1, 0)])
    with pytest.raises(AlfiaError, match="RecordID 1 also read from"):
        build_physionet2012([a, b], [out])


# --- the real challenge files ------------------------------------------------------------------

@pytest.fixture(scope="module")
def set_a():
    root = shared_dataset("physionet2012")
    return build_physionet2012([root / "set-a.tar.gz"], [root / "Outcomes-a.txt"], aggregates="full")


@pytest.mark.integration
def test_real_set_a(set_a):
    df, report = set_a
    assert len(df) == 4000 and df["stay_id"].is_unique
    assert abs(df["hospital_expire_flag"].mean() - 0.139) < 0.001  # 554 deaths: 13.9%
    assert report["records_without_outcome"]["count"] == 0
    assert report["outcomes_without_record"]["count"] == 0
    assert report["malformed_lines"]["count"] == 0
    assert validate_cohort(df, "physionet2012", source="set-a").ok
    assert df["split"].value_counts().to_dict() == {"train": 3000, "val": 500, "test": 500}
    # every stay has its static descriptors; GCS measured in most stays
    assert df["age"].notna().all() and df["icu_type"].notna().all()
    assert df["gcs_dynamic_min"].notna().mean() > 0.9


@pytest.mark.integration
def test_real_sets_a_and_b_combine():
    root = shared_dataset("physionet2012")
    df, report = build_physionet2012([root / "set-a.tar.gz", root / "set-b.tar.gz"],
                                     [root / "Outcomes-a.txt", root / "Outcomes-b.txt"])
    assert len(df) == 8000 and df["stay_id"].is_unique
    assert report["n_records_descriptors_only"] > 0  # kept, with their series missing
    assert 0.13 < df["hospital_expire_flag"].mean() < 0.15


def test_the_compact_cohort_keeps_chart_aggregates_rounded_and_valid(two_sets):
    from alfia.cohorts.schema import PHYSIONET2012_COMPACT

    full, _ = build_physionet2012(*two_sets, hours=24, aggregates="full")
    compact, report = build_physionet2012(*two_sets, hours=24)  # the default
    assert report["variant"] == "physionet2012_compact" and list(compact.columns) == PHYSIONET2012_COMPACT.columns
    assert validate_cohort(compact, "physionet2012_compact", source="t").ok
    assert "heart_rate_first" not in compact and "invasive_diastolic_bp_min" not in compact
    # same stays, same split; ranges are the full cohort's, rounded; the urine total is the sum
    assert (compact["stay_id"] == full["stay_id"]).all() and (compact["split"] == full["split"]).all()
    np.testing.assert_array_equal(compact["heart_rate_max"], full["heart_rate_max"].round(0))
    urine = (full["urine_output_mean"] * full["urine_output_count"]).where(full["urine_output_count"] > 0)
    np.testing.assert_allclose(compact["urine_output_total"], urine.round(0), equal_nan=True)
