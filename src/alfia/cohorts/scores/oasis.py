"""Oxford Acute Severity of Illness Score (OASIS), worst values of the window.

Definition: Johnson AEW, Kramer AA, Clifford GD. A new severity of illness scale using a subset of
Acute Physiology And Chronic Health Evaluation data elements shows comparable predictive accuracy.
Crit Care Med 2013;41(7):1711-1718. Point rules as in the MIT-LCP mimic-code ``oasis`` concept.

INPUTS (one row per stay): preiculos (minutes from hospital to ICU admission), age, gcs_min,
heart_rate_min/max, mbp_min/max, resp_rate_min/max, temperature_min/max (degC), urine_output (mL),
vent (0/1, invasive ventilation in the window), elective_surgery (0/1; missing when unknown).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from alfia.cohorts.scores._bands import cases, col, total


def oasis(df: pd.DataFrame) -> pd.DataFrame:
    i = df.index
    los, age, gcs = col(df, "preiculos"), col(df, "age"), col(df, "gcs_min")
    hrmin, hrmax = col(df, "heart_rate_min"), col(df, "heart_rate_max")
    mmin, mmax = col(df, "mbp_min"), col(df, "mbp_max")
    rmin, rmax = col(df, "resp_rate_min"), col(df, "resp_rate_max")
    tmin, tmax = col(df, "temperature_min"), col(df, "temperature_max")
    uo, vent, elective = col(df, "urine_output"), col(df, "vent"), col(df, "elective_surgery")
    comp = pd.DataFrame(index=i)
    comp["preiculos_score"] = cases(i, [(los.isna(), np.nan), (los < 10.2, 5), (los < 297, 3),
                                        (los < 1440, 0), (los < 18708, 2)], default=1)
    comp["age_score"] = cases(i, [(age.isna(), np.nan), (age < 24, 0), (age <= 53, 3), (age <= 77, 6),
                                  (age <= 89, 9), (age >= 90, 7)], default=0)
    comp["gcs_score"] = cases(i, [(gcs.isna(), np.nan), (gcs <= 7, 10), (gcs < 14, 4), (gcs == 14, 3)],
                              default=0)
    comp["heart_rate_score"] = cases(i, [
        (hrmax.isna(), np.nan), (hrmax > 125, 6), (hrmin < 33, 4), ((hrmax >= 107) & (hrmax <= 125), 3),
        ((hrmax >= 89) & (hrmax <= 106), 1)], default=0)
    comp["mbp_score"] = cases(i, [
        (mmin.isna(), np.nan), (mmin < 20.65, 4), (mmin < 51, 3), (mmax > 143.44, 3),
        ((mmin >= 51) & (mmin < 61.33), 2)], default=0)
    comp["resp_rate_score"] = cases(i, [
        (rmin.isna(), np.nan), (rmin < 6, 10), (rmax > 44, 9), (rmax > 30, 6), (rmax > 22, 1),
        (rmin < 13, 1)], default=0)
    comp["temp_score"] = cases(i, [
        (tmax.isna(), np.nan), (tmax > 39.88, 6), ((tmin >= 33.22) & (tmin <= 35.93), 4),
        ((tmax >= 33.22) & (tmax <= 35.93), 4), (tmin < 33.22, 3), ((tmin > 35.93) & (tmin <= 36.39), 2),
        ((tmax >= 36.89) & (tmax <= 39.88), 2)], default=0)
    comp["urineoutput_score"] = cases(i, [
        (uo.isna(), np.nan), (uo < 671.09, 10), (uo > 6896.80, 8), ((uo >= 671.09) & (uo <= 1426.99), 5),
        ((uo >= 1427.00) & (uo <= 2544.14), 1)], default=0)
    comp["mechvent_score"] = cases(i, [(vent.isna(), np.nan), (vent == 1, 9)], default=0)
    comp["electivesurgery_score"] = cases(i, [(elective.isna(), np.nan), (elective == 1, 0)], default=6)
    comp["oasis"] = total(comp)
    return comp
