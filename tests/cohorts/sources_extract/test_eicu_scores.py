"""SAPS II, OASIS and hourly SOFA from eICU tables, on synthetic stays with hand-computed answers.

The tables are written as .csv.gz with the real eICU-CRD 2.0 column names. Expected values were worked
out by hand from the published point tables (Le Gall 1993, Johnson 2013, Vincent 1996) and the hourly
rules documented in alfia.cohorts.scores.sofa; each number is derived in a comment.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alfia.cohorts.sources.eicu import EicuConfig, extract_eicu

URINE = "flowsheet|Flowsheet Cell Labels|I&O|Output (ml)|Urine"


def _write(folder: Path, name: str, rows: list[dict]) -> None:
    pd.DataFrame(rows).to_csv(folder / f"{name}.csv.gz", index=False)


def build_eicu(folder: Path, skip: tuple[str, ...] = ()) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    base = dict(gender="Male", ethnicity="Caucasian", hospitalid=1, unittype="Med-Surg ICU",
                unitvisitnumber=1, admissionheight=175.0, admissionweight=80.0,
                hospitaldischargestatus="Alive")
    tables = {
        "patient": [
            {**base, "patientunitstayid": 1, "uniquepid": "001-1", "age": "65",
             "hospitaladmitoffset": -120, "unitadmitsource": "Emergency Department"},
            {**base, "patientunitstayid": 2, "uniquepid": "001-2", "age": "45",
             "hospitaladmitoffset": -5, "unitadmitsource": "Operating Room"},
            {**base, "patientunitstayid": 3, "uniquepid": "001-3", "age": "> 89",
             "hospitaladmitoffset": -2000, "unitadmitsource": "Emergency Department",
             "hospitaldischargestatus": "Expired"},
            {**base, "patientunitstayid": 4, "uniquepid": "001-4", "age": "15",  # excluded: child
             "hospitaladmitoffset": 0, "unitadmitsource": "Emergency Department"},
        ],
        "hospital": [{"hospitalid": 1, "region": "Midwest"}],
        "apachePredVar": [
            {"patientunitstayid": s, "electivesurgery": e, "aids": 0, "lymphoma": 0, "leukemia": 0,
             "metastaticcancer": m} for s, e, m in ((1, 0, 0), (2, 1, 0), (3, 0, 1), (4, 0, 0))],
        "vitalPeriodic": [
            {"patientunitstayid": 1, "observationoffset": 60, "heartrate": 80, "systemicsystolic": 110,
             "systemicmean": 75, "respiration": 18, "temperature": 37.0},
            {"patientunitstayid": 1, "observationoffset": 300, "heartrate": 130, "systemicsystolic": 90,
             "systemicmean": 65, "respiration": 25, "temperature": 38.5},
            # planted out of the window (+25 h): HR 200 would raise SAPS II HR points from 4 to 7
            {"patientunitstayid": 1, "observationoffset": 1500, "heartrate": 200},
            {"patientunitstayid": 2, "observationoffset": 60, "heartrate": 100},
        ],
        "nurseCharting": [
            {"patientunitstayid": 1, "nursingchartoffset": 30, "nursingchartcelltypevalname": "GCS Total",
             "nursingchartvalue": "15"},
            {"patientunitstayid": 1, "nursingchartoffset": 600, "nursingchartcelltypevalname": "GCS Total",
             "nursingchartvalue": "13"},
            {"patientunitstayid": 3, "nursingchartoffset": 100,
             "nursingchartcelltypevalname": "Temperature (F)", "nursingchartvalue": "104"},  # 40 degC
        ],
        "lab": [
            *({"patientunitstayid": 1, "labresultoffset": 120, "labname": n, "labresult": v}
              for n, v in (("BUN", 30), ("WBC x 1000", 12), ("potassium", 4.0), ("sodium", 140),
                           ("bicarbonate", 22), ("total bilirubin", 1.5), ("creatinine", 1.3),
                           ("platelets x 1000", 140))),
            {"patientunitstayid": 1, "labresultoffset": 200, "labname": "paO2", "labresult": 80},
            {"patientunitstayid": 1, "labresultoffset": 200, "labname": "FiO2", "labresult": 50},
            {"patientunitstayid": 3, "labresultoffset": -300, "labname": "creatinine", "labresult": 5.5},
            # planted before the window (-6 h 40 min): creatinine 9 must not count
            {"patientunitstayid": 3, "labresultoffset": -400, "labname": "creatinine", "labresult": 9.0},
        ],
        "intakeOutput": [
            {"patientunitstayid": 1, "intakeoutputoffset": 120, "cellpath": URINE, "cellvaluenumeric": 400},
            {"patientunitstayid": 1, "intakeoutputoffset": 720, "cellpath": URINE, "cellvaluenumeric": 400},
        ],
        "respiratoryCharting": [
            {"patientunitstayid": 1, "respchartoffset": 100, "respchartvaluelabel": "Vent Rate",
             "respchartvalue": "14"}],
        "infusiondrug": [
            {"patientunitstayid": 1, "infusionoffset": 300, "drugname": "Norepinephrine (mcg/kg/min)",
             "drugrate": "0.05", "patientweight": ""},
            {"patientunitstayid": 3, "infusionoffset": 90, "drugname": "Norepinephrine (mcg/min)",
             "drugrate": "16", "patientweight": ""},  # 16 / 80 kg = 0.2 mcg/kg/min
            {"patientunitstayid": 3, "infusionoffset": 95, "drugname": "Norepinephrine (ml/hr)",
             "drugrate": "10", "patientweight": ""},  # no concentration: unconvertible, not used
        ],
    }
    for name, rows in tables.items():
        if name not in skip:
            _write(folder, name, rows)
    return folder


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    root = build_eicu(tmp_path_factory.mktemp("eicu_syn") / "eicu")
    return extract_eicu(EicuConfig(str(root)))


def test_cohort_and_inclusion(synthetic):
    assert list(synthetic.df["stay_id"]) == [1, 2, 3]  # stay 4 (age 15) excluded
    assert synthetic.df.set_index("stay_id").loc[3, "age"] == 90


def test_sapsii_hand_computed(synthetic):
    s = synthetic.df.set_index("stay_id")["sapsii"]
    # stay 1: age 65 -> 12; HR max 130 -> 4; SBP min 90 -> 5; temp 38.5 -> 0; ventilated PaO2/FiO2
    # 80/0.50 = 160 -> 9; urine 800 mL -> 4; BUN 30 -> 6; WBC 12, K 4, Na 140, HCO3 22, bili 1.5 -> 0;
    # GCS min 13 -> 5; no comorbidity; Medical -> 6.  Total 51.
    assert s.loc[1] == 51
    # stay 2: age 45 -> 7; HR 100 -> 0; elective surgery from the OR -> ScheduledSurgical 0; rest
    # missing (normal).  Total 7.
    assert s.loc[2] == 7
    # stay 3: age 90 -> 18; temperature 104 F = 40 C -> 3; metastatic cancer -> 9; Medical -> 6.
    assert s.loc[3] == 36


def test_oasis_hand_computed(synthetic):
    s = synthetic.df.set_index("stay_id")["oasis"]
    # stay 1: pre-ICU 120 min -> 3; age 65 -> 6; GCS 13 -> 4; HR max 130 -> 6; MBP 65..75 -> 0;
    # RR max 25 -> 1; temp max 38.5 -> 2; urine 800 -> 5; ventilated -> 9; not elective -> 6.  42.
    assert s.loc[1] == 42
    # stay 2: pre-ICU 5 min -> 5; age 45 -> 3; HR 100 -> 1; not ventilated -> 0; elective -> 0.  9.
    assert s.loc[2] == 9
    # stay 3: pre-ICU 2000 min -> 2; age 90 -> 7; temp 40 C -> 6; not ventilated 0; not elective 6. 21.
    assert s.loc[3] == 21


def test_hourly_sofa_dynamics_hand_computed(synthetic):
    d = synthetic.df.set_index("stay_id")
    # stay 1 hourly SOFA (hr 0..23): hr0 MAP 75, GCS 15 -> 0; hr1 platelets 140, bilirubin 1.5,
    # creatinine 1.3 -> 3; hr3 ventilated P/F 160 -> +3 = 6; hr4 norepinephrine 0.05 -> cardio 3 = 9;
    # hr9 GCS 13 -> +1 = 10 until hr23 (urine 800 mL/24 h is >= 500: no renal points).
    s1 = np.array([0, 3, 3, 6] + [9] * 5 + [10] * 15, dtype=float)
    # stay 3: creatinine 5.5 at -5 h (hr -6) -> renal 4 in the look-back of hr0..17; norepinephrine
    # 16 mcg/min / 80 kg = 0.2 mcg/kg/min at hr1 -> cardio 4; from hr18 the creatinine has left the
    # 24-hour look-back (truncated at -6 h).  The planted creatinine 9 at -6 h 40 min never counts.
    s3 = np.array([4] + [8] * 17 + [4] * 6, dtype=float)
    for stay, series in ((1, s1), (3, s3)):
        row = d.loc[stay]
        assert row["sofa_dynamic_max"] == series.max()
        assert row["sofa_dynamic_min"] == series.min()
        assert row["sofa_dynamic_first"] == series[0]
        assert row["sofa_dynamic_last"] == series[-1]
        assert row["sofa_dynamic_avg"] == pytest.approx(series.mean())
        assert row["sofa_dynamic_stddev"] == pytest.approx(series.std(ddof=1))
    # stay 2 has no SOFA input at all: missing, never an invented 0
    assert d.loc[2, ["sofa_dynamic_max", "sofa_dynamic_avg"]].isna().all()


def test_out_of_window_values_excluded_and_counted(synthetic):
    ti = synthetic.extra["temporal_integrity"]
    hr = ti["by_variable"]["vitalPeriodic.heart_rate"]
    assert hr["used"] == 3 and hr["excluded_out_of_window"] == 1
    cr = ti["by_variable"]["lab.creatinine"]
    assert cr["used"] == 2 and cr["excluded_out_of_window"] == 1
    assert ti["values_excluded_out_of_window"] >= 2
    for name, r in ti["by_variable"].items():
        if r.get("first_used_h") is not None:
            assert -6 <= r["first_used_h"] and r["last_used_h"] <= 24, name
    # the ml/hr norepinephrine rate cannot be converted: counted, not used
    assert ti["by_variable"]["infusiondrug.rate_norepinephrine"]["excluded_implausible"] == 1
    assert not synthetic.extra["missing_variables"].keys() & {"sapsii", "oasis", "sofa_dynamic_*"}


def test_absent_table_leaves_exactly_its_scores_missing(tmp_path):
    root = build_eicu(tmp_path / "eicu", skip=("infusiondrug",))
    res = extract_eicu(EicuConfig(str(root)))
    missing = res.extra["missing_variables"]
    assert "infusiondrug" in missing["sofa_dynamic_*"] and "absent" in missing["sofa_dynamic_*"]
    assert "sapsii" not in missing and "oasis" not in missing
    d = res.df.set_index("stay_id")
    assert d["sofa_dynamic_max"].isna().all()
    assert d.loc[1, "sapsii"] == 51 and d.loc[1, "oasis"] == 42  # unaffected by the absent table

    root = build_eicu(tmp_path / "eicu2", skip=("intakeOutput",))
    res = extract_eicu(EicuConfig(str(root)))
    missing = res.extra["missing_variables"]
    for var in ("sapsii", "oasis", "sofa_dynamic_*"):
        assert "intakeOutput" in missing[var], var
    assert res.df[["sapsii", "oasis", "sofa_dynamic_max"]].isna().all().all()
    assert res.df["gcs_dynamic_min"].notna().any()  # GCS does not need intakeOutput
