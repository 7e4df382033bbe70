"""Simplified Acute Physiology Score II (SAPS II), worst values of the window.

Definition: Le Gall JR, Lemeshow S, Saulnier F. A new Simplified Acute Physiology Score (SAPS II) based
on a European/North American multicenter study. JAMA 1993;270(24):2957-2963.
Point tables as in the paper and in the MIT-LCP mimic-code ``sapsii`` concept; a missing component
counts as normal (0).

INPUTS (one row per stay): age; heart_rate_min/max; sbp_min/max; temperature_min/max (degC);
pao2fio2_vent_min (lowest PaO2/FiO2 while on mechanical ventilation or CPAP; missing otherwise);
urine_output (mL over the window); bun_min/max (mg/dL); wbc_min/max (10^3/uL); potassium_min/max,
sodium_min/max, bicarbonate_min/max (mmol/L); bilirubin_max (mg/dL); gcs_min; aids, hem (hematologic
malignancy), mets (metastatic cancer) as 0/1; admission_category in {"ScheduledSurgical",
"UnscheduledSurgical", "Medical"}.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from alfia.cohorts.scores._bands import cases, col, total

ADMISSION_POINTS = {"ScheduledSurgical": 0, "Medical": 6, "UnscheduledSurgical": 8}


def sapsii(df: pd.DataFrame) -> pd.DataFrame:
    i = df.index
    age = col(df, "age")
    hrmin, hrmax = col(df, "heart_rate_min"), col(df, "heart_rate_max")
    sbpmin, sbpmax = col(df, "sbp_min"), col(df, "sbp_max")
    tmin, tmax = col(df, "temperature_min"), col(df, "temperature_max")
    pf = col(df, "pao2fio2_vent_min")
    uo = col(df, "urine_output")
    bunmax = col(df, "bun_max")
    wmin, wmax = col(df, "wbc_min"), col(df, "wbc_max")
    kmin, kmax = col(df, "potassium_min"), col(df, "potassium_max")
    namin, namax = col(df, "sodium_min"), col(df, "sodium_max")
    hco3min, hco3max = col(df, "bicarbonate_min"), col(df, "bicarbonate_max")
    bili = col(df, "bilirubin_max")
    gcs = col(df, "gcs_min")
    aids, hem, mets = col(df, "aids"), col(df, "hem"), col(df, "mets")
    category = df["admission_category"] if "admission_category" in df else pd.Series(None, index=i)

    comp = pd.DataFrame(index=i)
    comp["age_score"] = cases(i, [(age.isna(), np.nan), (age < 40, 0), (age < 60, 7), (age < 70, 12),
                                  (age < 75, 15), (age < 80, 16), (age >= 80, 18)])
    comp["hr_score"] = cases(i, [(hrmax.isna(), np.nan), (hrmin < 40, 11), (hrmax >= 160, 7),
                                 (hrmax >= 120, 4), (hrmin < 70, 2),
                                 ((hrmax >= 70) & (hrmax < 120) & (hrmin >= 70) & (hrmin < 120), 0)])
    comp["sysbp_score"] = cases(i, [(sbpmin.isna(), np.nan), (sbpmin < 70, 13), (sbpmin < 100, 5),
                                    (sbpmax >= 200, 2),
                                    ((sbpmax >= 100) & (sbpmax < 200) & (sbpmin >= 100) & (sbpmin < 200),
                                     0)])
    comp["temp_score"] = cases(i, [(tmax.isna(), np.nan), (tmax >= 39.0, 3), (tmin < 39.0, 0)])
    comp["pao2fio2_score"] = cases(i, [(pf.isna(), np.nan), (pf < 100, 11), (pf < 200, 9),
                                       (pf >= 200, 6)])
    comp["uo_score"] = cases(i, [(uo.isna(), np.nan), (uo < 500.0, 11), (uo < 1000.0, 4),
                                 (uo >= 1000.0, 0)])
    comp["bun_score"] = cases(i, [(bunmax.isna(), np.nan), (bunmax < 28.0, 0), (bunmax < 84.0, 6),
                                  (bunmax >= 84.0, 10)])
    comp["wbc_score"] = cases(i, [(wmax.isna(), np.nan), (wmin < 1.0, 12), (wmax >= 20.0, 3),
                                  ((wmax >= 1.0) & (wmax < 20.0) & (wmin >= 1.0) & (wmin < 20.0), 0)])
    comp["potassium_score"] = cases(i, [(kmax.isna(), np.nan), (kmin < 3.0, 3), (kmax >= 5.0, 3),
                                        ((kmax >= 3.0) & (kmax < 5.0) & (kmin >= 3.0) & (kmin < 5.0), 0)])
    comp["sodium_score"] = cases(i, [(namax.isna(), np.nan), (namin < 125, 5), (namax >= 145, 1),
                                     ((namax >= 125) & (namax < 145) & (namin >= 125) & (namin < 145),
                                      0)])
    comp["bicarbonate_score"] = cases(i, [(hco3max.isna(), np.nan), (hco3min < 15.0, 6),
                                          (hco3min < 20.0, 3), ((hco3max >= 20.0) & (hco3min >= 20.0),
                                                                0)])
    comp["bilirubin_score"] = cases(i, [(bili.isna(), np.nan), (bili < 4.0, 0), (bili < 6.0, 4),
                                        (bili >= 6.0, 9)])
    # GCS below 3 is a charting error; left unscored as in mimic-code.
    comp["gcs_score"] = cases(i, [(gcs.isna(), np.nan), (gcs < 3, np.nan), (gcs < 6, 26), (gcs < 9, 13),
                                  (gcs < 11, 7), (gcs < 14, 5), ((gcs >= 14) & (gcs <= 15), 0)])
    comp["comorbidity_score"] = cases(i, [(aids == 1, 17), (hem == 1, 10), (mets == 1, 9)], default=0)
    comp["admissiontype_score"] = pd.to_numeric(category.map(ADMISSION_POINTS), errors="coerce")
    # Comorbidity points are 0 when no code is documented, so they do not count as "observed".
    comp["sapsii"] = total(comp.drop(columns=["comorbidity_score"])) + comp["comorbidity_score"]
    return comp
