"""Sequential Organ Failure Assessment (SOFA), computed for every hour.

Definition: Vincent JL, Moreno R, Takala J, et al. The SOFA (Sepsis-related Organ Failure Assessment)
score to describe organ dysfunction/failure. Intensive Care Med 1996;22(7):707-710.

Hourly logic mirrors the MIT-LCP mimic-code ``sofa`` concept (mimic-iv/concepts/score/sofa.sql):
each hour gets the worst value of each input charted in that hour; each organ system is scored per
hour; the SOFA at the end of hour ``hr`` sums, over the six systems, the worst system score of the
last 24 hourly rows (a missing system counts as normal, 0).

CW-24 restricts every source value to -6 h..+24 h of ICU admission, so the hourly rows run from
hr = -6 (values in (-6 h, -5 h]) to hr = 23 (values in (23 h, 24 h]); SOFA is reported for the ICU
hours hr = 0..23 and its 24-hour look-back is truncated at -6 h. A stay-hour whose look-back holds no
observation at all has no SOFA (missing, never an invented 0).

Urine output enters as a 24-hour rate, as in mimic-code ``urine_output_rate``: it is scored only once
at least 22 hours of ICU urine charting are covered (that is, at hr >= 21), and scaled to 24 h.

Input frame ``hourly`` (one row per stay and hour, missing inputs as NaN): stay_id, hr,
mbp_min, rate_dopamine, rate_dobutamine, rate_epinephrine, rate_norepinephrine (mcg/kg/min),
pao2fio2_novent_min, pao2fio2_vent_min, platelet_min (10^3/uL), bilirubin_max (mg/dL),
creatinine_max (mg/dL), gcs_min, urine_output (mL charted in that hour).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from alfia.cohorts.scores._bands import cases, col
from alfia.cohorts.scores.gcs import window_dynamics

SYSTEMS = ("respiration", "coagulation", "liver", "cardiovascular", "cns", "renal")
LOOKBACK_HOURS = 24
UO_MIN_COVERED_HOURS = 22
FIRST_HOUR, LAST_HOUR = -6, 23


def respiration(df: pd.DataFrame) -> pd.Series:
    vent, novent = col(df, "pao2fio2_vent_min"), col(df, "pao2fio2_novent_min")
    return cases(df.index, [
        (vent < 100, 4), (vent < 200, 3), (novent < 300, 2), (vent < 300, 2),
        (novent < 400, 1), (vent < 400, 1), (vent.isna() & novent.isna(), np.nan),
    ], default=0)


def coagulation(df: pd.DataFrame) -> pd.Series:
    plt = col(df, "platelet_min")
    return cases(df.index, [(plt < 20, 4), (plt < 50, 3), (plt < 100, 2), (plt < 150, 1),
                            (plt.isna(), np.nan)], default=0)


def liver(df: pd.DataFrame) -> pd.Series:
    bili = col(df, "bilirubin_max")
    return cases(df.index, [(bili >= 12.0, 4), (bili >= 6.0, 3), (bili >= 2.0, 2), (bili >= 1.2, 1),
                            (bili.isna(), np.nan)], default=0)


def cardiovascular(df: pd.DataFrame) -> pd.Series:
    dop, dob = col(df, "rate_dopamine"), col(df, "rate_dobutamine")
    epi, nor = col(df, "rate_epinephrine"), col(df, "rate_norepinephrine")
    mbp = col(df, "mbp_min")
    none = mbp.isna() & dop.isna() & dob.isna() & epi.isna() & nor.isna()
    return cases(df.index, [
        ((dop > 15) | (epi > 0.1) | (nor > 0.1), 4),
        ((dop > 5) | (epi <= 0.1) | (nor <= 0.1), 3),
        ((dop > 0) | (dob > 0), 2),
        (mbp < 70, 1),
        (none, np.nan),
    ], default=0)


def cns(df: pd.DataFrame) -> pd.Series:
    g = col(df, "gcs_min")
    return cases(df.index, [((g >= 13) & (g <= 14), 1), ((g >= 10) & (g <= 12), 2),
                            ((g >= 6) & (g <= 9), 3), (g < 6, 4), (g.isna(), np.nan)], default=0)


def renal(df: pd.DataFrame) -> pd.Series:
    cr, uo = col(df, "creatinine_max"), col(df, "uo_24hr")
    return cases(df.index, [
        (cr >= 5.0, 4), (uo < 200, 4), ((cr >= 3.5) & (cr < 5.0), 3), (uo < 500, 3),
        ((cr >= 2.0) & (cr < 3.5), 2), ((cr >= 1.2) & (cr < 2.0), 1),
        (cr.isna() & uo.isna(), np.nan),
    ], default=0)


def _complete_hours(hourly: pd.DataFrame) -> pd.DataFrame:
    """One row for every stay and hour -6..23 (hours without data get NaN inputs)."""
    stays = pd.unique(hourly["stay_id"])
    grid = pd.MultiIndex.from_product([stays, range(FIRST_HOUR, LAST_HOUR + 1)],
                                      names=["stay_id", "hr"])
    h = hourly.copy()
    h["hr"] = h["hr"].astype(int)
    h = h.groupby(["stay_id", "hr"], sort=False).first()  # inputs are already one row per hour
    return h.reindex(grid).reset_index()


def sofa_hourly(hourly: pd.DataFrame) -> pd.DataFrame:
    """Hourly SOFA for hr = 0..23: columns stay_id, hr, the six ``<system>_24hours`` and ``sofa_24hours``."""
    out_cols = ["stay_id", "hr", *[f"{s}_24hours" for s in SYSTEMS], "sofa_24hours"]
    if hourly.empty:
        return pd.DataFrame(columns=out_cols)
    h = _complete_hours(hourly).sort_values(["stay_id", "hr"], kind="mergesort").reset_index(drop=True)
    # 24-hour urine-output rate from ICU hours only (urine before admission is not charted per stay).
    uo = col(h, "urine_output").where(h["hr"] >= 0)
    g = h.groupby("stay_id", sort=False)
    uo_sum = uo.groupby(h["stay_id"]).transform(
        lambda s: s.rolling(LOOKBACK_HOURS, min_periods=1).sum())
    any_uo = uo.notna().astype(float).groupby(h["stay_id"]).transform(
        lambda s: s.rolling(LOOKBACK_HOURS, min_periods=1).max())
    covered = (h["hr"] + 1).clip(upper=LOOKBACK_HOURS).astype(float)
    h["uo_24hr"] = np.where((covered >= UO_MIN_COVERED_HOURS) & (any_uo > 0),
                            uo_sum / covered * 24.0, np.nan)
    scores = pd.DataFrame({name: fn(h) for name, fn in (
        ("respiration", respiration), ("coagulation", coagulation), ("liver", liver),
        ("cardiovascular", cardiovascular), ("cns", cns), ("renal", renal))})
    del g
    rolled = scores.groupby(h["stay_id"]).transform(
        lambda s: s.rolling(LOOKBACK_HOURS, min_periods=1).max())
    observed = rolled.notna().any(axis=1)
    out = pd.DataFrame({"stay_id": h["stay_id"], "hr": h["hr"]})
    for s in SYSTEMS:
        out[f"{s}_24hours"] = rolled[s].fillna(0)
    out["sofa_24hours"] = rolled.fillna(0).sum(axis=1).where(observed)
    out.loc[~observed, [f"{s}_24hours" for s in SYSTEMS]] = np.nan
    out = out[out["hr"] >= 0].reset_index(drop=True)
    return out[out_cols]


def sofa_dynamics(hourly_sofa: pd.DataFrame) -> pd.DataFrame:
    """CW-24 ``sofa_dynamic_*`` columns from hourly SOFA (output of sofa_hourly)."""
    s = hourly_sofa.rename(columns={"hr": "hours"})
    return window_dynamics(s, "sofa_24hours", "sofa_dynamic")
