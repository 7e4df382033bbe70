"""Systemic Inflammatory Response Syndrome (SIRS) criteria met in the window (0-4).

Definition: Bone RC, Balk RA, Cerra FB, et al. Definitions for sepsis and organ failure and guidelines
for the use of innovative therapies in sepsis. ACCP/SCCM Consensus Conference Committee. Chest
1992;101(6):1644-1655 (also Crit Care Med 1992;20(6):864-874).
Criteria: temperature > 38 or < 36 degC; heart rate > 90/min; respiratory rate > 20/min or PaCO2 < 32
mmHg; WBC > 12 or < 4 x10^3/uL or > 10 % immature (band) forms. Logic as mimic-code ``sirs``.

INPUTS (one row per stay): temperature_min, temperature_max, heart_rate_max, resp_rate_max, paco2_min,
wbc_min, wbc_max, bands_max.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from alfia.cohorts.scores._bands import cases, col, total

INPUTS = ("temperature_min", "temperature_max", "heart_rate_max", "resp_rate_max", "paco2_min",
          "wbc_min", "wbc_max", "bands_max")


def sirs(df: pd.DataFrame) -> pd.DataFrame:
    """Components (temp_score, heart_rate_score, resp_score, wbc_score) and ``sirs``."""
    tmin, tmax = col(df, "temperature_min"), col(df, "temperature_max")
    hr, rr, pco2 = col(df, "heart_rate_max"), col(df, "resp_rate_max"), col(df, "paco2_min")
    wmin, wmax, bands = col(df, "wbc_min"), col(df, "wbc_max"), col(df, "bands_max")
    comp = pd.DataFrame({
        "temp_score": cases(df.index, [(tmin < 36.0, 1), (tmax > 38.0, 1),
                                       (tmin.isna() & tmax.isna(), np.nan)], default=0),
        "heart_rate_score": cases(df.index, [(hr > 90.0, 1), (hr.isna(), np.nan)], default=0),
        "resp_score": cases(df.index, [(rr > 20.0, 1), (pco2 < 32.0, 1),
                                       (rr.isna() & pco2.isna(), np.nan)], default=0),
        "wbc_score": cases(df.index, [(wmin < 4.0, 1), (wmax > 12.0, 1), (bands > 10, 1),
                                      (wmin.isna() & wmax.isna() & bands.isna(), np.nan)], default=0),
    })
    comp["sirs"] = total(comp)
    return comp
