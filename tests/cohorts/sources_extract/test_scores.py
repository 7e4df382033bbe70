"""Each score on hand-computed patients from its published definition (boundary values included)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alfia.cohorts import scores
from alfia.cohorts.scores.apsiii import acid_base_points, gcs_points


def frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows)


def test_sirs_criteria_and_strict_boundaries():
    df = frame([
        # exactly at the thresholds: none is met (criteria are strict inequalities)
        dict(temperature_min=36.0, temperature_max=38.0, heart_rate_max=90, resp_rate_max=20,
             paco2_min=32, wbc_min=4.0, wbc_max=12.0, bands_max=10),
        # all four met
        dict(temperature_min=35.9, temperature_max=37, heart_rate_max=91, resp_rate_max=12,
             paco2_min=31.9, wbc_min=3.9, wbc_max=5, bands_max=0),
        # only bands > 10 % and fever
        dict(temperature_min=37, temperature_max=38.1, heart_rate_max=80, resp_rate_max=16,
             paco2_min=40, wbc_min=8, wbc_max=9, bands_max=11),
        # nothing observed: missing, not 0
        dict(),
    ])
    out = scores.sirs(df)
    assert out["sirs"].tolist()[:3] == [0, 4, 2]
    assert np.isnan(out["sirs"].iloc[3])


def test_sapsii_hand_computed():
    df = frame([
        # age 40 -> 7; HR 70..119 -> 0; SBP 100..199 -> 0; temp < 39 -> 0; no vent -> missing(0);
        # UO 1000 -> 0; BUN 28 -> 6; WBC 1..19.9 -> 0; K 3..4.9 -> 0; Na 125..144 -> 0; HCO3 20 -> 0;
        # bili 4.0 -> 4; GCS 14 -> 0; no comorbidity; medical -> 6. Total 23.
        dict(age=40, heart_rate_min=70, heart_rate_max=119, sbp_min=100, sbp_max=199,
             temperature_min=36.5, temperature_max=38.9, urine_output=1000, bun_max=28, wbc_min=1.0,
             wbc_max=19.9, potassium_min=3.0, potassium_max=4.9, sodium_min=125, sodium_max=144,
             bicarbonate_min=20, bicarbonate_max=25, bilirubin_max=4.0, gcs_min=14,
             aids=0, hem=0, mets=0, admission_category="Medical"),
        # age 80 -> 18; HR min 39 -> 11; SBP 69 -> 13; temp 39 -> 3; PF 99 on vent -> 11; UO 499 -> 11;
        # BUN 84 -> 10; WBC 0.9 -> 12; K 5.0 -> 3; Na 124 -> 5; HCO3 14.9 -> 6; bili 6 -> 9;
        # GCS 5 -> 26; AIDS -> 17; unscheduled surgical -> 8. Total 163 (the maximum).
        dict(age=80, heart_rate_min=39, heart_rate_max=130, sbp_min=69, sbp_max=150,
             temperature_min=37, temperature_max=39.0, pao2fio2_vent_min=99, urine_output=499,
             bun_max=84, wbc_min=0.9, wbc_max=10, potassium_min=4, potassium_max=5.0, sodium_min=124,
             sodium_max=140, bicarbonate_min=14.9, bicarbonate_max=22, bilirubin_max=6.0, gcs_min=5,
             aids=1, hem=1, mets=1, admission_category="UnscheduledSurgical"),
        # age 59 -> 7; HR max 160 -> 7; SBP max 200 -> 2; PF 200 -> 6; UO 999 -> 4; GCS 13 -> 5;
        # hematologic malignancy -> 10; scheduled surgical -> 0. Total 41.
        dict(age=59, heart_rate_min=80, heart_rate_max=160, sbp_min=120, sbp_max=200,
             pao2fio2_vent_min=200, urine_output=999, gcs_min=13, aids=0, hem=1, mets=1,
             admission_category="ScheduledSurgical"),
    ])
    assert scores.sapsii(df)["sapsii"].tolist() == [23, 163, 41]


def test_apsiii_worst_value_rules_and_components():
    df = frame([
        # HR 40..99 : min 40 -> 5 (|40-75|=35 > |99-75|=24); MBP 80..99 -> 0; temp 36..39.9 -> 0;
        # RR 14..24 -> 0; no gas; Hct 41..49.9 -> 0; WBC 3..19.9 -> 0; creat 0.5..1.49 -> 0;
        # UO 2000 -> 0; BUN 16 -> 0; Na 135..154 -> 0; albumin 2.5..4.4 -> 0; bili 1.9 -> 0;
        # glucose 60..199 -> 0; GCS 15 (eyes 4, verbal 5, motor 6) -> 0. Total 5.
        dict(heart_rate_min=40, heart_rate_max=99, mbp_min=80, mbp_max=99, temperature_min=36,
             temperature_max=39.9, resp_rate_min=14, resp_rate_max=24, hematocrit_min=41,
             hematocrit_max=49.9, wbc_min=3, wbc_max=19.9, creatinine_min=0.5, creatinine_max=1.49,
             urine_output=2000, bun_max=16, sodium_min=135, sodium_max=154, albumin_min=2.5,
             albumin_max=4.4, bilirubin_max=1.9, glucose_min=60, glucose_max=199, gcs_eyes=4,
             gcs_verbal=5, gcs_motor=6, gcs_unable=0, vent=0, arf=0),
        # ventilated, RR 10 -> 0 (vent rule); PaO2 49 off vent -> 15; ARF with creat 1.5 -> 10;
        # UO 399 -> 15; BUN 80 -> 12; acid-base pH 7.19/PaCO2 49 -> 12; intubated GCS -> 0. Total 64.
        dict(resp_rate_min=10, resp_rate_max=12, vent=1, pao2=49, creatinine_min=1.5,
             creatinine_max=1.5, arf=1, urine_output=399, bun_max=80, acidbase_score=12,
             gcs_eyes=1, gcs_verbal=0, gcs_motor=1, gcs_unable=1),
        # equidistant heart rates 50 (0 points) and 100 (1 point) -> the higher, 1; A-aDO2 500 -> 14;
        # eyes closed, verbal 1, motor 1 -> 48; glucose 350 -> 5. Total 68.
        dict(heart_rate_min=50, heart_rate_max=100, aado2=500, gcs_eyes=1, gcs_verbal=1,
             gcs_motor=1, gcs_unable=0, glucose_min=350, glucose_max=350),
    ])
    out = scores.apsiii(df)
    assert out["apsiii"].tolist() == [5, 64, 68]
    assert out.loc[2, "hr_score"] == 1


def test_apsiii_acid_base_and_gcs_grids():
    ph = pd.Series([7.19, 7.19, 7.25, 7.40, 7.47, 7.55, 7.60, 7.60])
    pc = pd.Series([49.9, 50, 35, 46, 44, 40, 24.9, 40])
    assert acid_base_points(ph, pc).tolist() == [12, 4, 6, 1, 2, 12, 0, 12]
    g = gcs_points(pd.Series([2, 2, 3, 1]), pd.Series([5, 4, 1, 4]), pd.Series([6, 5, 5, 6]),
                   pd.Series([0, 0, 0, 0]))
    assert g.tolist()[:3] == [0, 8, 15] and np.isnan(g.iloc[3])  # eyes closed + oriented: undefined


def test_lods_hand_computed():
    df = frame([
        # GCS 14 -> 0; HR 50..120, SBP 90..200 -> 0; BUN 7.4, creat 1.19, UO 750 -> 0; no vent -> 0;
        # WBC 2.5..49.9, platelets 50 -> 0; bili 1.9, PT 15 -> 0. Total 0.
        dict(gcs_min=14, heart_rate_min=50, heart_rate_max=120, sbp_min=90, sbp_max=200, bun_max=7.4,
             creatinine_max=1.19, urine_output=750, wbc_min=2.5, wbc_max=49.9, platelet_min=50,
             bilirubin_max=1.9, pt_min=11, pt_max=15),
        # GCS 5 -> 5; HR 29 -> 5; UO 499 -> 5; PF 149 vent -> 3; WBC 0.9 -> 3; bili 2 -> 1. Total 22 (max).
        dict(gcs_min=5, heart_rate_min=29, heart_rate_max=100, sbp_min=100, sbp_max=120, bun_max=10,
             creatinine_max=1.0, urine_output=499, pao2fio2_vent_min=149, wbc_min=0.9, wbc_max=5,
             platelet_min=200, bilirubin_max=2.0, pt_min=12, pt_max=13),
        # GCS 8 -> 3; SBP 240 -> 1; creat 1.6 -> 3; PF 150 -> 1; platelets 49 -> 1; PT 15.1 -> 1. Total 10.
        dict(gcs_min=8, heart_rate_min=60, heart_rate_max=100, sbp_min=95, sbp_max=240, bun_max=20,
             creatinine_max=1.6, urine_output=2000, pao2fio2_vent_min=150, wbc_min=5, wbc_max=8,
             platelet_min=49, bilirubin_max=1.0, pt_min=12, pt_max=15.1),
    ])
    assert scores.lods(df)["lods"].tolist() == [0, 22, 10]


def test_meld_hand_computed():
    df = frame([
        # all values below 1 -> set to 1: 0.643 -> round 0.6 -> 6.0 (floor of the scale)
        dict(creatinine_max=0.5, bilirubin_max=0.4, inr_max=0.9, sodium_min=140, rrt=0),
        # dialysis -> creatinine 4: 0.957 ln4 + 0.378 ln2 + 1.12 ln2 + 0.643 = 3.0080 -> 30.0;
        # Na 120 -> bounded to 125: 30.0 + 1.32*12 - 0.033*30.0*12 = 33.96
        dict(creatinine_max=1.0, bilirubin_max=2.0, inr_max=2.0, sodium_min=120, rrt=1),
        # raw > 4 -> capped at 40; sodium adjustment keeps 40 at Na 137
        dict(creatinine_max=10, bilirubin_max=50, inr_max=8, sodium_min=137, rrt=0),
        # nothing observed -> missing rather than the floor value
        dict(sodium_min=130),
    ])
    out = scores.meld(df)["meld"]
    assert out.iloc[0] == pytest.approx(6.0)
    assert out.iloc[1] == pytest.approx(33.96, abs=1e-4)
    assert out.iloc[2] == pytest.approx(40.0)
    assert np.isnan(out.iloc[3])


def test_oasis_hand_computed():
    df = frame([
        # pre-ICU 300 min -> 0... (297 <= 300 < 1440 -> 0); age 23 -> 0; GCS 15 -> 0; HR 88 -> 0;
        # MBP 61.33..143.44 -> 0; RR 13..22 -> 0; temp 36.40..36.88 -> 0; UO 2544.15 -> 0; no vent;
        # elective surgery -> 0. Total 0.
        dict(preiculos=300, age=23, gcs_min=15, heart_rate_min=60, heart_rate_max=88, mbp_min=61.33,
             mbp_max=143.44, resp_rate_min=13, resp_rate_max=22, temperature_min=36.4,
             temperature_max=36.88, urine_output=2544.15, vent=0, elective_surgery=1),
        # pre-ICU 10 min -> 5; age 90 -> 7; GCS 7 -> 10; HR 126 -> 6; MBP 20 -> 4; RR 5 -> 10;
        # temp 40 -> 6; UO 671 -> 10; vent -> 9; emergency -> 6. Total 73.
        dict(preiculos=10, age=90, gcs_min=7, heart_rate_min=80, heart_rate_max=126, mbp_min=20,
             mbp_max=90, resp_rate_min=5, resp_rate_max=20, temperature_min=37, temperature_max=40,
             urine_output=671, vent=1, elective_surgery=0),
        # pre-ICU 1440 -> 2; age 53 -> 3; GCS 14 -> 3; HR 107 -> 3; MBP 51 -> 2; RR 23 -> 1;
        # temp 36.0 -> 2; UO 1427 -> 1; no vent; elective unknown -> missing (0). Total 17.
        dict(preiculos=1440, age=53, gcs_min=14, heart_rate_min=70, heart_rate_max=107, mbp_min=51,
             mbp_max=100, resp_rate_min=14, resp_rate_max=23, temperature_min=36.0,
             temperature_max=36.8, urine_output=1427, vent=0),
    ])
    assert scores.oasis(df)["oasis"].tolist() == [0, 73, 17]


def test_gcs_components_intubation_and_carry_forward():
    comp = pd.DataFrame({
        "stay_id": [1, 1, 1, 2, 2, 3],
        "hours": [0.0, 2.0, 9.0, 0.0, 1.0, 0.0],
        "motor": [5, np.nan, np.nan, 6, 6, 6],
        "verbal": [3, np.nan, 4, np.nan, 4, 1],
        "eyes": [2, 3, np.nan, 4, 4, 4],
        "verbal_ett": [False, False, False, False, False, True],
    })
    a = scores.gcs_from_components(comp)
    # stay 1: 5+3+2=10; at 2 h motor/verbal carried from 0 h: 5+3+3=11; at 9 h nothing within 6 h:
    # 6+4+4=14. stay 2: 6+5+4 (verbal normal) = 15, then 14. stay 3: intubated -> 15, unable.
    assert a["gcs"].tolist() == [10, 11, 14, 15, 14, 15]
    assert a["unable"].tolist() == [0, 0, 0, 0, 0, 1]
    worst = scores.gcs_worst(a)
    assert worst.loc[1, "gcs_min"] == 10 and worst.loc[1, "gcs_eyes"] == 2
    dyn = scores.gcs_dynamics(a)
    assert dyn.loc[1].to_dict() == pytest.approx({
        "gcs_dynamic_max": 14, "gcs_dynamic_min": 10, "gcs_dynamic_first": 10, "gcs_dynamic_last": 14,
        "gcs_dynamic_avg": 35 / 3, "gcs_dynamic_stddev": float(np.std([10, 11, 14], ddof=1))})
    assert np.isnan(dyn.loc[3, "gcs_dynamic_stddev"])  # one assessment: spread undefined


def test_sofa_hourly_rolling_worst_and_boundaries():
    hourly = pd.DataFrame([
        # stay 1: MAP 69 at hr 0 (cardio 1), platelets 149 at hr 2 (coag 1), bilirubin 12 at hr 5 (liver 4)
        dict(stay_id=1, hr=0, mbp_min=69), dict(stay_id=1, hr=2, platelet_min=149),
        dict(stay_id=1, hr=5, bilirubin_max=12.0),
        # stay 2: pre-ICU noradrenaline 0.1 (cardio 3) at hr -6, in the 24-h look-back until hr 17;
        # GCS 6 at hr 3 (cns 3); creatinine 5.0 at hr 10 (renal 4)
        dict(stay_id=2, hr=-6, rate_norepinephrine=0.1), dict(stay_id=2, hr=3, gcs_min=6),
        dict(stay_id=2, hr=10, creatinine_max=5.0),
        # stay 3: ventilated PaO2/FiO2 99 (resp 4) at hr 1; low urine (100 mL in 22 h) scored from hr 21
        dict(stay_id=3, hr=1, pao2fio2_vent_min=99), dict(stay_id=3, hr=0, urine_output=100),
    ])
    s = scores.sofa_hourly(hourly).set_index(["stay_id", "hr"])["sofa_24hours"]
    assert s.loc[(1, 0)] == 1 and s.loc[(1, 1)] == 1 and s.loc[(1, 2)] == 2 and s.loc[(1, 5)] == 6
    assert s.loc[(1, 23)] == 6
    assert s.loc[(2, 0)] == 3 and s.loc[(2, 3)] == 6 and s.loc[(2, 10)] == 10
    # hr 0 holds only urine, not yet scorable (< 22 h covered): no SOFA rather than an invented 0
    assert np.isnan(s.loc[(3, 0)]) and s.loc[(3, 1)] == 4 and s.loc[(3, 20)] == 4
    assert s.loc[(3, 21)] == 8  # 100 mL over 22 h -> 109 mL/24 h < 200: renal 4
    dyn = scores.sofa_dynamics(scores.sofa_hourly(hourly))
    assert dyn.loc[1, "sofa_dynamic_first"] == 1 and dyn.loc[1, "sofa_dynamic_max"] == 6
    # the pre-ICU noradrenaline (hr -6) leaves the 24-hour look-back after hr 17
    assert s.loc[(2, 17)] == 10 and s.loc[(2, 18)] == 7
    assert dyn.loc[2, "sofa_dynamic_last"] == 7
