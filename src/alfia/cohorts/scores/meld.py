"""Model for End-Stage Liver Disease (MELD), with the 2016 UNOS/OPTN serum-sodium update.

Definition: Kamath PS, Wiesner RH, Malinchoc M, et al. A model to predict survival in patients with
end-stage liver disease. Hepatology 2001;33(2):464-470; sodium update per OPTN policy 9.1.D (2016),
as implemented by the MIT-LCP mimic-code ``meld`` concept:

    MELD(i) = 0.957 ln(creatinine) + 0.378 ln(bilirubin) + 1.120 ln(INR) + 0.643
    values below 1.0 are set to 1.0; creatinine above 4.0, or any dialysis, is set to 4.0;
    MELD(i) is rounded to one decimal and multiplied by 10 (capped at 40);
    if MELD(i) > 11: MELD = MELD(i) + 1.32 (137 - Na) - 0.033 MELD(i) (137 - Na), Na bounded to 125..137.

A missing laboratory value is taken as 1.0 (normal), as in mimic-code; with none of creatinine,
bilirubin and INR observed the score is missing rather than the floor value 6.0.

INPUTS (one row per stay): creatinine_max, bilirubin_max, inr_max (highest in the window),
sodium_min (lowest), rrt (0/1: dialysis in the window).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from alfia.cohorts.scores._bands import col


def meld(df: pd.DataFrame) -> pd.DataFrame:
    cr, bili, inr = col(df, "creatinine_max"), col(df, "bilirubin_max"), col(df, "inr_max")
    na, rrt = col(df, "sodium_min"), col(df, "rrt").fillna(0)
    cr_used = cr.clip(lower=1.0).where((cr <= 4.0) | cr.isna(), 4.0).fillna(1.0)
    cr_used = cr_used.where(rrt != 1, 4.0)
    creatinine_score = 0.957 * np.log(cr_used)
    bilirubin_score = 0.378 * np.log(bili.clip(lower=1.0).fillna(1.0))
    inr_score = 1.120 * np.log(inr.clip(lower=1.0).fillna(1.0)) + 0.643
    raw = creatinine_score + bilirubin_score + inr_score
    # round(.., 1) * 10 as published; +1e-9 guards half-way cases against binary float error.
    meld_initial = pd.Series(np.where(raw > 4, 40.0, np.round(raw + 1e-9, 1) * 10), index=df.index)
    sodium_score = (137.0 - na.clip(lower=125.0, upper=137.0)).fillna(0.0)
    adjusted = meld_initial + 1.32 * sodium_score - 0.033 * meld_initial * sodium_score
    value = adjusted.where(meld_initial > 11, meld_initial)
    observed = cr.notna() | bili.notna() | inr.notna() | (rrt == 1)
    return pd.DataFrame({
        "creatinine_score": creatinine_score, "bilirubin_score": bilirubin_score,
        "inr_score": inr_score, "sodium_score": sodium_score, "meld_initial": meld_initial,
        "meld": value.where(observed).round(4),
    })
