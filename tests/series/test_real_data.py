"""The hourly builders on the real data in ../shared/data (skipped without it): same stays and split as
the CW-24 cohort of the source, nothing after the window."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shared_data import shared_dataset

pytestmark = pytest.mark.integration


def test_physionet_set_a_matches_the_cohort():
    from alfia.cohorts.sources.physionet2012 import build_physionet2012
    from alfia.series.sources import build_physionet2012_hourly

    root = shared_dataset("physionet2012")
    args = ([root / "set-a.tar.gz"], [root / "Outcomes-a.txt"])
    frame, variables, report = build_physionet2012_hourly(*args, 24)
    cohort, _ = build_physionet2012(*args, 24.0, aggregates="full")  # heart_rate_count
    per_stay = frame.drop_duplicates("stay_id").set_index("stay_id")
    assert len(per_stay) == len(cohort) == 4000 and len(frame) == 4000 * 24
    assert (per_stay.loc[cohort["stay_id"], "split"].to_numpy() == cohort["split"].to_numpy()).all()
    assert report["excluded_after_window"] > 0  # the records run to 48 h
    # Counts agree with the cohort's in-window counts (heart rate: one count per measurement; the
    # table keeps one value per hour, so it holds at most as many).
    measured_hours = frame.groupby("stay_id")["heart_rate__mask"].sum()
    assert (measured_hours.loc[cohort["stay_id"]].to_numpy() <= cohort["heart_rate_count"].to_numpy()).all()


def test_yaib_eicu_keeps_only_the_first_24_hours():
    from alfia.series.sources import build_yaib_eicu_hourly

    root = shared_dataset("yaib-eicu-demo-mortality24")
    frame, variables, report = build_yaib_eicu_hourly(root, 24)
    dyn = pd.read_parquet(root / "dyn.parquet")
    inside = dyn[dyn["time"] < pd.Timedelta(hours=24)].drop(columns=["stay_id", "time"])
    dynamic = [c for c in frame.columns if c.endswith("__mask") and c.removesuffix("__mask")
               not in ("age", "sex_male", "height", "weight")]
    assert int(frame[dynamic].to_numpy().sum()) == int(inside.notna().to_numpy().sum())
    assert report["excluded_after_window"] == int(dyn[dyn["time"] >= pd.Timedelta(hours=24)]
                                                  .drop(columns=["stay_id", "time"]).notna().to_numpy().sum())
    assert frame["stay_id"].nunique() == 1367 and frame["hour"].max() == 24


def test_mimic_iv_demo_matches_the_cohort():
    from alfia.cohorts.sources.mimic_iv import MimicConfig, extract_mimic_iv
    from alfia.cohorts.splits import assign_splits
    from alfia.series.sources import build_mimic_iv_hourly

    root = shared_dataset("mimic-iv-demo")
    frame, variables, report = build_mimic_iv_hourly(root, 24)
    cohort = extract_mimic_iv(MimicConfig(str(root))).df
    cohort["split"] = assign_splits(cohort)  # as `alfia cohort mimic-iv` (write_extraction)
    per_stay = frame.drop_duplicates("stay_id").set_index("stay_id")
    assert sorted(per_stay.index) == sorted(cohort["stay_id"])
    assert (per_stay.loc[cohort["stay_id"], "split"].to_numpy() == cohort["split"].to_numpy()).all()
    names = {v.name for v in variables}
    assert {"norepinephrine", "urine_output", "mechanical_ventilation", "heart_rate", "creatinine"} <= names
    assert np.isin(frame["mechanical_ventilation"].unique(), [0.0, 1.0]).all()
