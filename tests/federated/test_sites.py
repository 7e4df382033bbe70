"""Sites of a federated run: hospitals of their own, small ones grouped or skipped; hospitalid is an identifier."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alfia.cohorts.schema import SITE_COLUMN
from alfia.cohorts.sources.synthetic import generate_synthetic
from alfia.cohorts.validate import find_leakage, validate_cohort
from alfia.errors import AlfiaError
from alfia.federated.sites import plan_sites


def _rows(counts: dict, deaths: dict, region: dict | None = None) -> pd.DataFrame:
    """Training rows per hospital (counts), the first ``deaths[h]`` of them deaths; one val row each."""
    rows = []
    for h, n in counts.items():
        for i in range(n):
            rows.append({"stay_id": len(rows), "hospitalid": h, "split": "train",
                         "hospital_expire_flag": int(i < deaths[h]), "region": (region or {}).get(h, "")})
        rows.append({"stay_id": len(rows), "hospitalid": h, "split": "val", "hospital_expire_flag": 0,
                     "region": (region or {}).get(h, "")})
    return pd.DataFrame(rows)


def test_big_hospitals_stand_alone_and_small_ones_are_pooled_to_the_minimums():
    df = _rows({1: 50, 2: 8, 3: 8, 4: 8, 5: 8, 6: 3}, {1: 5, 2: 1, 3: 1, 4: 0, 5: 1, 6: 1})
    plan = plan_sites(df, "hospitalid", min_stays=15, min_deaths=2)
    assert [s.name for s in plan.sites] == ["hospitalid-1", "group-1", "group-2"]
    # 2+3 reach 16 stays and 2 deaths; 4+5 reach 16 and 1 death, so 6 joins them: 19 stays, 2 deaths
    assert [s.members for s in plan.sites] == [(1,), (2, 3), (4, 5, 6)]
    assert [s.rows["train"] for s in plan.sites] == [50, 16, 19]
    assert [s.deaths["train"] for s in plan.sites] == [5, 2, 2]
    assert plan.skipped == () and (plan.row_site >= 0).all()
    site_of = dict(zip(df["hospitalid"], plan.row_site))
    assert site_of == {1: 0, 2: 1, 3: 1, 4: 2, 5: 2, 6: 2}  # every row of a hospital trains at its site
    assert any("group-1: 2 hospitalid value(s) pooled (2, 3): 16 training stays, 2 deaths" in m for m in plan.messages)


def test_without_grouping_small_hospitals_are_skipped_with_a_message():
    df = _rows({1: 50, 2: 40, 3: 8, 4: 0}, {1: 5, 2: 0, 3: 1, 4: 0})  # 2 is big but has no deaths
    with pytest.raises(AlfiaError, match="1 site"):
        plan_sites(df, "hospitalid", min_stays=15, min_deaths=2, group_small=False)
    df = _rows({1: 50, 2: 40, 3: 8, 5: 30}, {1: 5, 2: 0, 3: 1, 5: 3})
    plan = plan_sites(df, "hospitalid", min_stays=15, min_deaths=2, group_small=False)
    assert [s.members for s in plan.sites] == [(1,), (5,)] and plan.skipped == (2, 3)
    assert (plan.row_site[df["hospitalid"].isin([2, 3]).to_numpy()] == -1).all()
    message = plan.messages[-1]
    assert message.startswith("skipped 2 hospitalid value(s) (2, 3;") and "48 training stays, 1 deaths" in message
    assert "their rows leave the run" in message


def test_grouping_within_a_column_keeps_regions_apart():
    counts = {1: 8, 2: 8, 3: 8, 4: 8}
    df = _rows(counts, {h: 1 for h in counts}, region={1: "West", 2: "East", 3: "West", 4: "East"})
    plan = plan_sites(df, "hospitalid", min_stays=15, min_deaths=2, group_by="region")
    assert [s.members for s in plan.sites] == [(2, 4), (1, 3)]  # East first (sorted), each region its own group
    assert "(region East)" in plan.messages[1]


def test_site_column_errors_name_the_column_and_row():
    df = _rows({1: 20, 2: 20}, {1: 2, 2: 2})
    with pytest.raises(AlfiaError, match="text.parquet: no column 'icu' to take the sites from"):
        plan_sites(df, "icu", source="text.parquet")
    df.loc[3, "hospitalid"] = np.nan
    with pytest.raises(AlfiaError, match=r"text.parquet: row 3 \(stay_id=3\): column 'hospitalid' is empty"):
        plan_sites(df, "hospitalid", source="text.parquet")


def test_hospitalid_is_an_identifier_never_a_predictor():
    from alfia.baselines.preprocessing import FeatureSpec
    from alfia.text.encode import encode_cohort

    cohort = generate_synthetic("eicu", 60, seed=2)
    cohort[SITE_COLUMN] = np.arange(len(cohort)) % 3 + 100
    assert find_leakage(cohort.columns, "eicu") == []
    report = validate_cohort(cohort, "eicu")
    assert report.ok and not any(SITE_COLUMN in w for w in report.warnings)  # not an "unknown column" either
    assert SITE_COLUMN not in FeatureSpec.from_schema("eicu", cohort).columns  # the zoo never sees it
    text = encode_cohort(cohort, "eicu")
    assert text[SITE_COLUMN].tolist() == cohort[SITE_COLUMN].tolist()  # it travels with the text
    assert not text["text"].str.contains("hospital id|hospitalid", case=False).any()  # never rendered
