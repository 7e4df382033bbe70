"""Logistic Organ Dysfunction System (LODS), worst values of the window.

Definition: Le Gall JR, Klar J, Lemeshow S, et al. The Logistic Organ Dysfunction system. A new way to
assess organ dysfunction in the intensive care unit. ICU Scoring Group. JAMA 1996;276(10):802-810.
Six organ systems (neurologic, cardiovascular, renal, pulmonary, hematologic, hepatic); point rules as
in the MIT-LCP mimic-code ``lods`` concept, including its reference prothrombin time of 12 s
(PT > 15 s or < 3 s scores 1). Pulmonary points apply only to ventilated/CPAP patients; others score 0.

INPUTS (one row per stay): gcs_min, heart_rate_min/max, sbp_min/max, bun_max, creatinine_max,
urine_output (mL), pao2fio2_vent_min, wbc_min/max, platelet_min, bilirubin_max, pt_min/max.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from alfia.cohorts.scores._bands import cases, col, total

STANDARD_PT_SECONDS = 12.0


def lods(df: pd.DataFrame) -> pd.DataFrame:
    i = df.index
    gcs = col(df, "gcs_min")
    hrmin, hrmax = col(df, "heart_rate_min"), col(df, "heart_rate_max")
    sbpmin, sbpmax = col(df, "sbp_min"), col(df, "sbp_max")
    bun, cr, uo = col(df, "bun_max"), col(df, "creatinine_max"), col(df, "urine_output")
    pf = col(df, "pao2fio2_vent_min")
    wmin, wmax, plt = col(df, "wbc_min"), col(df, "wbc_max"), col(df, "platelet_min")
    bili, ptmin, ptmax = col(df, "bilirubin_max"), col(df, "pt_min"), col(df, "pt_max")
    comp = pd.DataFrame(index=i)
    comp["neurologic"] = cases(i, [(gcs.isna(), np.nan), (gcs < 3, np.nan), (gcs <= 5, 5),
                                   (gcs <= 8, 3), (gcs <= 13, 1)], default=0)
    comp["cardiovascular"] = cases(i, [
        (hrmax.isna() & sbpmin.isna(), np.nan), (hrmin < 30, 5), (sbpmin < 40, 5), (sbpmin < 70, 3),
        (sbpmax >= 270, 3), (hrmax >= 140, 1), (sbpmax >= 240, 1), (sbpmin < 90, 1)], default=0)
    comp["renal"] = cases(i, [
        (bun.isna() | uo.isna() | cr.isna(), np.nan), (uo < 500.0, 5), (bun >= 56.0, 5),
        (cr >= 1.60, 3), (uo < 750.0, 3), (bun >= 28.0, 3), (uo >= 10000.0, 3), (cr >= 1.20, 1),
        (bun >= 17.0, 1), (bun >= 7.50, 1)], default=0)
    comp["pulmonary"] = cases(i, [(pf.isna(), 0), (pf >= 150, 1), (pf < 150, 3)])
    comp["hematologic"] = cases(i, [
        (wmax.isna() & plt.isna(), np.nan), (wmin < 1.0, 3), (wmin < 2.5, 1), (plt < 50.0, 1),
        (wmax >= 50.0, 1)], default=0)
    comp["hepatic"] = cases(i, [
        (ptmax.isna() & bili.isna(), np.nan), (bili >= 2.0, 1), (ptmax > STANDARD_PT_SECONDS + 3, 1),
        (ptmin < STANDARD_PT_SECONDS * 0.25, 1)], default=0)
    # Pulmonary is 0 (not missing) without a ventilated blood gas; it must not make a stay "observed".
    comp["lods"] = total(comp.drop(columns=["pulmonary"])) + comp["pulmonary"]
    return comp
