"""The task setting (alfia.cohorts.tasks): LOS labels derived at build time, the split fixed by mortality, and
the length of stay never a predictor."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alfia.cohorts.schema import ID_COLUMN, OUTCOME_COLUMN, SPLIT_COLUMN
from alfia.cohorts.sources.physionet2012 import build_physionet2012
from alfia.cohorts.tasks import TASKS, apply_task, task_of_manifest
from alfia.cohorts.validate import check_cohort
from alfia.errors import AlfiaError, LeakageError
from cohort_testkit import record_text, write_outcomes, write_set

# RecordID, LOS in days (-1: unknown), death
STAYS = [(100 + i, los, death) for i, (los, death) in enumerate(
    [(2, 0), (3, 0), (4, 0), (8, 1), (1, 1), (12, 0), (-1, 0), (5, 0), (3, 1), (9, 0), (7, 0), (2, 0),
     (6, 1), (15, 0), (4, 0), (3, 0)])]


@pytest.fixture
def physionet(tmp_path):
    records = write_set(tmp_path / "set-a", {rid: record_text(rid, series=[("00:30", "HR", 80 + rid % 7)])
                                             for rid, _, _ in STAYS})
    outcomes = write_outcomes(tmp_path / "Outcomes-a.txt", [(rid, 10, 2, los, -1, d) for rid, los, d in STAYS])
    return records, outcomes


@pytest.mark.parametrize("task", ["los3", "los7"])
def test_los_label_is_derived_and_the_split_is_mortalitys(physionet, task):
    mortality, _ = build_physionet2012(*physionet)
    los, report = build_physionet2012(*physionet, task=task)
    threshold = TASKS[task].los_days_over
    expected = {rid: int(days > threshold) for rid, days, _ in STAYS if days >= 0}
    assert dict(zip(los[ID_COLUMN], los[OUTCOME_COLUMN])) == expected
    assert 106 not in set(los[ID_COLUMN]) and report["task"]["n_without_los"] == 1  # LOS -1: no label
    split = mortality.set_index(ID_COLUMN)[SPLIT_COLUMN]
    assert (los.set_index(ID_COLUMN)[SPLIT_COLUMN] == split.loc[los[ID_COLUMN]]).all()  # the fixed split
    assert not any("los" in c.lower() or "length" in c.lower() for c in los.columns)  # never a predictor
    assert report["task"]["name"] == task and report["task"]["label_column"] == OUTCOME_COLUMN


def test_mortality_is_the_default_and_unknown_tasks_are_refused(physionet):
    df, report = build_physionet2012(*physionet)
    assert dict(zip(df[ID_COLUMN], df[OUTCOME_COLUMN])) == {rid: d for rid, _, d in STAYS}
    assert report["task"]["name"] == "mortality"
    with pytest.raises(AlfiaError, match="unknown task 'los5'.*mortality, los3, los7"):
        build_physionet2012(*physionet, task="los5")
    assert task_of_manifest(None) == "mortality"


@pytest.mark.parametrize("column", ["los", "los_days", "Length_of_stay", "icu_length_of_stay"])
def test_the_leakage_guard_refuses_los_as_a_feature_of_a_los_cohort(physionet, column):
    df, report = build_physionet2012(*physionet, task="los3")
    check_cohort(df, report["variant"])  # the cohort as built passes
    leaking = df.assign(**{column: np.arange(len(df), dtype=float)})
    with pytest.raises(LeakageError, match=f"column '{column}' is refused: length of stay"):
        check_cohort(leaking, report["variant"])


def test_apply_task_needs_a_length_of_stay():
    df = pd.DataFrame({ID_COLUMN: [1, 2], OUTCOME_COLUMN: [0, 1], SPLIT_COLUMN: ["train", "val"]})
    with pytest.raises(AlfiaError, match="needs the ICU length of stay"):
        apply_task(df, "los3", None, source="yaib")
    with pytest.raises(AlfiaError, match="no stay has a known ICU length of stay"):
        apply_task(df, "los3", pd.Series([np.nan, np.nan], index=[1, 2]))
    out, _ = apply_task(df, "los7", pd.Series([7.5, 7.0], index=[1, 2]))
    assert out[OUTCOME_COLUMN].tolist() == [1, 0]  # > 7 days, not >=


@pytest.mark.integration
def test_the_demo_extractions_carry_icu_los():
    """The sources' own LOS fields: MIMIC-IV icustays (outtime - intime) and eICU unitdischargeoffset."""
    from alfia.cohorts.tasks import eicu_los, mimic_iv_los, physionet2012_los
    from shared_data import shared_dataset

    mimic = mimic_iv_los(shared_dataset("mimic-iv-demo"))
    icustays = pd.read_csv(shared_dataset("mimic-iv-demo") / "icu" / "icustays.csv.gz", usecols=["stay_id", "los"])
    assert len(mimic) == 140 and np.allclose(mimic.loc[icustays["stay_id"]].to_numpy(), icustays["los"], atol=1e-6)
    eicu = eicu_los(shared_dataset("eicu-demo"))
    assert len(eicu) == 2520 and eicu.min() >= 0
    p12 = physionet2012_los([shared_dataset("physionet2012") / "Outcomes-a.txt"])
    assert len(p12) == 4000 and p12.isna().sum() == 60 and (p12.dropna() > 3).mean() > 0.9
