"""Acute Physiology Score III (APS III, the physiology part of APACHE III), worst values of the window.

Definition: Knaus WA, Wagner DP, Draper EA, et al. The APACHE III prognostic system. Risk prediction of
hospital mortality for critically ill hospitalized adults. Chest 1991;100(6):1619-1636.
Point tables and "worst value" rules as in the MIT-LCP mimic-code ``apsiii`` concept: for most
variables the worst of the window's minimum and maximum is the one furthest from a reference normal
(heart rate 75, mean BP 90, temperature 38, respiratory rate 19, hematocrit 45.5, WBC 11.5,
creatinine 1, sodium 145.5, albumin 3.5, glucose 130), ties going to the higher score; BUN and
bilirubin score their maximum; acid-base points come from pH and PaCO2 of the same blood gas (worst
gas); oxygenation scores PaO2 unless the patient is ventilated with FiO2 >= 0.5, when A-aDO2 is
scored; acute renal failure (creatinine >= 1.5 mg/dL, urine < 410 mL/day, no chronic dialysis)
changes the creatinine points; an intubated patient's GCS is scored as normal (0).

INPUTS (one row per stay): heart_rate_min/max, mbp_min/max, temperature_min/max (degC),
resp_rate_min/max, vent (0/1), pao2 (highest PaO2 off the ventilator with FiO2 < 0.5),
aado2 (highest A-aDO2 on the ventilator with FiO2 >= 0.5), acidbase_score (see acid_base_points),
hematocrit_min/max, wbc_min/max, creatinine_min/max, arf (0/1), urine_output (mL), bun_max,
sodium_min/max, albumin_min/max, bilirubin_max, glucose_min/max, gcs_motor, gcs_verbal, gcs_eyes,
gcs_unable (components of the worst GCS).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from alfia.cohorts.scores._bands import cases, col, total


def _band(x: pd.Series, edges: list[float], points: list[float]) -> pd.Series:
    """points[k] for the first edge with x < edges[k]; points[-1] for x >= edges[-1]."""
    rules = [(x.isna(), np.nan)] + [(x < e, p) for e, p in zip(edges, points[:-1])]
    rules.append((x >= edges[-1], points[-1]))
    return cases(x.index, rules)


def _worst_series(vmin, vmax, smin, smax, normal: float) -> pd.Series:
    dmax, dmin = (vmax - normal).abs(), (vmin - normal).abs()
    out = pd.Series(np.where(dmax > dmin, smax, np.where(dmax < dmin, smin, np.fmax(smax, smin))),
                    index=vmax.index)
    return out.where(vmax.notna())


HR = ([40, 50, 100, 110, 120, 140, 155], [8, 5, 0, 1, 5, 7, 13, 17])
MBP = ([40, 60, 70, 80, 100, 120, 130, 140], [23, 15, 7, 6, 0, 4, 7, 9, 10])
TEMP = ([33.0, 33.5, 34.0, 35.0, 36.0, 40.0], [20, 16, 13, 8, 2, 0, 4])
RR = ([6, 12, 14, 25, 35, 40, 50], [17, 8, 7, 0, 6, 9, 11, 18])
HCT = ([41.0, 50.0], [3, 0, 3])
WBC = ([1.0, 3.0, 20.0, 25.0], [19, 5, 0, 1, 5])
CREAT = ([0.5, 1.5, 1.95], [3, 0, 4, 7])
BUN = ([17.0, 20.0, 40.0, 80.0], [0, 2, 7, 11, 12])
SODIUM = ([120, 135, 155], [3, 2, 0, 4])
ALBUMIN = ([2.0, 2.5, 4.5], [11, 6, 0, 4])
BILI = ([2.0, 3.0, 5.0, 8.0], [0, 5, 6, 8, 16])
GLUCOSE = ([40, 60, 200, 350], [8, 9, 0, 3, 5])
URINE = ([400, 600, 900, 1500, 2000, 4000], [15, 8, 7, 5, 4, 0, 1])


def acid_base_points(ph: pd.Series, paco2: pd.Series) -> pd.Series:
    """APS III acid-base points of one blood gas from its pH and PaCO2 (Knaus 1991, acid-base grid)."""
    ph, pc = ph.astype(float), paco2.astype(float)
    i = ph.index
    return cases(i, [
        (ph.isna() | pc.isna(), np.nan),
        ((ph < 7.20) & (pc < 50), 12), (ph < 7.20, 4),
        ((ph < 7.30) & (pc < 30), 9), ((ph < 7.30) & (pc < 40), 6), ((ph < 7.30) & (pc < 50), 3),
        (ph < 7.30, 2),
        ((ph < 7.35) & (pc < 30), 9), ((ph < 7.35) & (pc < 45), 0), (ph < 7.35, 1),
        ((ph < 7.45) & (pc < 30), 5), ((ph < 7.45) & (pc < 45), 0), (ph < 7.45, 1),
        ((ph < 7.50) & (pc < 30), 5), ((ph < 7.50) & (pc < 35), 0), ((ph < 7.50) & (pc < 45), 2),
        (ph < 7.50, 12),
        ((ph < 7.60) & (pc < 40), 3), (ph < 7.60, 12),
        (pc < 25, 0), (pc < 40, 3),
    ], default=12)


def gcs_points(eyes: pd.Series, verbal: pd.Series, motor: pd.Series, unable: pd.Series) -> pd.Series:
    """APS III neurological points from the GCS components (Knaus 1991, eyes x verbal x motor grid)."""
    e, v, m = eyes.astype(float), verbal.astype(float), motor.astype(float)
    i = e.index
    m12, m34, m56 = m.isin([1, 2]), m.isin([3, 4]), m.isin([5, 6])
    v1, v23 = v.eq(1), v.isin([2, 3])
    closed = e.eq(1)
    opened = e > 1
    return cases(i, [
        (unable.astype(float).eq(1), 0),  # intubated: verbal not assessable, scored as normal
        (closed & v1 & m12, 48), (closed & v1 & m34, 33), (closed & v1 & m56, 16),
        (closed & v23 & m12, 29), (closed & v23 & m34, 24), (closed, np.nan),
        (opened & v1 & m12, 29), (opened & v1 & m34, 24), (opened & v1 & m56, 15),
        (opened & v23 & m12, 29), (opened & v23 & m34, 24), (opened & v23 & m.eq(5), 13),
        (opened & v23 & m.eq(6), 10),
        (opened & v.eq(4) & m.isin([1, 2, 3, 4]), 13), (opened & v.eq(4) & m.eq(5), 8),
        (opened & v.eq(4) & m.eq(6), 3),
        (opened & v.eq(5) & m.isin([1, 2, 3, 4, 5]), 3), (opened & v.eq(5) & m.eq(6), 0),
    ])


def apsiii(df: pd.DataFrame) -> pd.DataFrame:
    i = df.index
    vent = col(df, "vent").fillna(0)
    arf = col(df, "arf").fillna(0)
    comp = pd.DataFrame(index=i)

    def worst(name: str, table, normal: float) -> pd.Series:
        vmin, vmax = col(df, f"{name}_min"), col(df, f"{name}_max")
        return _worst_series(vmin, vmax, _band(vmin, *table), _band(vmax, *table), normal)

    comp["hr_score"] = worst("heart_rate", HR, 75)
    comp["mbp_score"] = worst("mbp", MBP, 90)
    comp["temp_score"] = worst("temperature", TEMP, 38)
    rmin, rmax = col(df, "resp_rate_min"), col(df, "resp_rate_max")
    # A ventilated patient with a low respiratory rate is not penalised.
    rr_min = _band(rmin, *RR).mask((vent == 1) & (rmin < 14), 0)
    rr_max = _band(rmax, *RR).mask((vent == 1) & (rmax < 14), 0)
    comp["resp_rate_score"] = _worst_series(rmin, rmax, rr_min, rr_max, 19)
    comp["hematocrit_score"] = worst("hematocrit", HCT, 45.5)
    comp["wbc_score"] = worst("wbc", WBC, 11.5)
    cmin, cmax = col(df, "creatinine_min"), col(df, "creatinine_max")
    cr_arf = cases(i, [(cmax.isna(), np.nan), (cmax < 1.5, 0)], default=10)
    comp["creatinine_score"] = _worst_series(cmin, cmax, _band(cmin, *CREAT), _band(cmax, *CREAT), 1)
    comp["creatinine_score"] = comp["creatinine_score"].where(arf != 1, cr_arf)
    comp["uo_score"] = _band(col(df, "urine_output"), *URINE)
    comp["bun_score"] = _band(col(df, "bun_max"), *BUN)
    comp["sodium_score"] = worst("sodium", SODIUM, 145.5)
    comp["albumin_score"] = worst("albumin", ALBUMIN, 3.5)
    comp["bilirubin_score"] = _band(col(df, "bilirubin_max"), *BILI)
    comp["glucose_score"] = worst("glucose", GLUCOSE, 130)
    comp["acidbase_score"] = col(df, "acidbase_score")
    comp["gcs_score"] = gcs_points(col(df, "gcs_eyes"), col(df, "gcs_verbal"), col(df, "gcs_motor"),
                                   col(df, "gcs_unable"))
    pao2, aado2 = col(df, "pao2"), col(df, "aado2")
    comp["pao2_aado2_score"] = cases(i, [
        (pao2.isna() & aado2.isna(), np.nan),
        (pao2.notna() & (pao2 < 50), 15), (pao2.notna() & (pao2 < 70), 5), (pao2.notna() & (pao2 < 80), 2),
        (pao2.notna(), 0),
        (aado2 < 100, 0), (aado2 < 250, 7), (aado2 < 350, 9), (aado2 < 500, 11), (aado2 >= 500, 14),
    ])
    comp["apsiii"] = total(comp)
    return comp
