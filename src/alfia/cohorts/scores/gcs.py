"""Glasgow Coma Scale (GCS) from charted components, and its window dynamics.

Definition: Teasdale G, Jennett B. Assessment of coma and impaired consciousness. A practical scale.
Lancet 1974;2(7872):81-84. GCS = eyes (1-4) + verbal (1-5) + motor (1-6), range 3-15.

Charting rules follow the MIT-LCP mimic-code ``gcs`` concept (mimic-iv/concepts/measurement/gcs.sql):
- components charted at the same time form one assessment; a component not charted then is carried
  forward from the *previous* assessment if that one is less than 6 hours older, else taken as normal
  (motor 6, verbal 5, eyes 4);
- an intubated patient cannot speak: the verbal response "No Response-ETT" is coded 0, and such an
  assessment (or one without a verbal score that follows an intubated one) is scored 15, the
  "assume normal under sedation" convention of the original APACHE/SAPS studies;
- after extubation (previous verbal 0, current charted) previous components are not carried forward.

Input frame ``components``: columns ``stay_id``, ``hours`` (time since ICU admission), ``motor``,
``verbal``, ``eyes`` (NaN when not charted at that time) and optional boolean ``verbal_ett``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

CARRY_FORWARD_HOURS = 6.0


def gcs_from_components(components: pd.DataFrame) -> pd.DataFrame:
    """One GCS per assessment: columns stay_id, hours, gcs, motor, verbal, eyes, unable (0/1)."""
    if components.empty:
        return pd.DataFrame(columns=["stay_id", "hours", "gcs", "motor", "verbal", "eyes", "unable"])
    df = components.sort_values(["stay_id", "hours"], kind="mergesort").reset_index(drop=True)
    motor = pd.to_numeric(df["motor"], errors="coerce").astype(float)
    verbal = pd.to_numeric(df["verbal"], errors="coerce").astype(float)
    eyes = pd.to_numeric(df["eyes"], errors="coerce").astype(float)
    if "verbal_ett" in df:
        verbal = verbal.mask(df["verbal_ett"].fillna(False).astype(bool), 0.0)

    same_stay = df["stay_id"].eq(df["stay_id"].shift(1))
    recent = (df["hours"] - df["hours"].shift(1)) < CARRY_FORWARD_HOURS
    has_prev = (same_stay & recent).to_numpy()
    prev_m = motor.shift(1).where(has_prev)
    prev_v = verbal.shift(1).where(has_prev)
    prev_e = eyes.shift(1).where(has_prev)

    normal = motor.fillna(6) + verbal.fillna(5) + eyes.fillna(4)
    carried = (motor.fillna(prev_m).fillna(6) + verbal.fillna(prev_v).fillna(5)
               + eyes.fillna(prev_e).fillna(4))
    rules = [verbal.eq(0), verbal.isna() & prev_v.eq(0), prev_v.eq(0)]
    gcs = pd.Series(np.select([r.to_numpy() for r in rules],
                              [np.full(len(df), 15.0), np.full(len(df), 15.0), normal.to_numpy()],
                              default=carried.to_numpy()), index=df.index)

    out_verbal = verbal.fillna(prev_v)
    return pd.DataFrame({
        "stay_id": df["stay_id"].to_numpy(),
        "hours": df["hours"].to_numpy(dtype=float),
        "gcs": gcs.to_numpy(),
        "motor": motor.fillna(prev_m).to_numpy(),
        "verbal": out_verbal.to_numpy(),
        "eyes": eyes.fillna(prev_e).to_numpy(),
        "unable": out_verbal.eq(0).astype(int).to_numpy(),
    })


def gcs_worst(assessments: pd.DataFrame) -> pd.DataFrame:
    """Per stay: lowest GCS and the components of that assessment (mimic-code ``first_day_gcs``).

    Columns: gcs_min, gcs_motor, gcs_verbal, gcs_eyes, gcs_unable; index stay_id. Ties go to the
    earliest assessment.
    """
    cols = ["gcs_min", "gcs_motor", "gcs_verbal", "gcs_eyes", "gcs_unable"]
    if assessments.empty:
        return pd.DataFrame(columns=cols).rename_axis("stay_id")
    a = assessments.sort_values(["stay_id", "gcs", "hours"], kind="mergesort")
    worst = a.groupby("stay_id", sort=True).head(1).set_index("stay_id")
    return pd.DataFrame({"gcs_min": worst["gcs"], "gcs_motor": worst["motor"],
                         "gcs_verbal": worst["verbal"], "gcs_eyes": worst["eyes"],
                         "gcs_unable": worst["unable"]})


def window_dynamics(series: pd.DataFrame, value: str, prefix: str) -> pd.DataFrame:
    """max, min, first, last, mean and sample standard deviation of ``value`` per stay over time.

    The standard deviation of a single observation is undefined and stays missing (SQL STDDEV_SAMP).
    """
    s = series.dropna(subset=[value]).sort_values(["stay_id", "hours"], kind="mergesort")
    g = s.groupby("stay_id", sort=True)[value]
    out = pd.DataFrame({
        f"{prefix}_max": g.max(), f"{prefix}_min": g.min(), f"{prefix}_first": g.first(),
        f"{prefix}_last": g.last(), f"{prefix}_avg": g.mean(), f"{prefix}_stddev": g.std(ddof=1),
    })
    out.index.name = "stay_id"
    return out


def gcs_dynamics(assessments: pd.DataFrame) -> pd.DataFrame:
    """CW-24 ``gcs_dynamic_*`` columns from per-assessment GCS (output of gcs_from_components)."""
    return window_dynamics(assessments, "gcs", "gcs_dynamic")
