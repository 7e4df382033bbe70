"""What every step of the MIMIC-IV extraction shares: the score window, the item ids of interventions, and the
SQL snippets that read a time relative to ICU admission (``intime``) and test it against the window."""

from __future__ import annotations

import numpy as np
import pandas as pd

from alfia.cohorts.schema import SCORE_WINDOW
from alfia.cohorts.sources.duck import SourceTables
from alfia.cohorts.sources.extraction import window_counts

SOURCE = "mimic-iv"
VARIANT = "mimic"
WINDOW_START_H, WINDOW_END_H = SCORE_WINDOW.start_h, SCORE_WINDOW.end_h  # -6, +24

# Record window of each time-stamped input, in hours from ICU admission. Height and weight are
# "the first values charted in the window" (issue 6): admission measurements charted during the
# first day describe the patient at admission. Everything else uses the CW-24 score window.
EXTRACTION_WINDOWS = {
    "height": (WINDOW_START_H, WINDOW_END_H),
    "weight": (WINDOW_START_H, WINDOW_END_H),
    "scores and dynamics": (WINDOW_START_H, WINDOW_END_H),
}
URINE_ITEMIDS = (226559, 226560, 226561, 226584, 226563, 226564, 226565, 226567, 226557, 226558,
                 227488, 227489)
GU_IRRIGANT_IN = 227488  # irrigant volume instilled: subtracted (mimic-code urine_output)
VASOPRESSORS = {221906: "norepinephrine", 221289: "epinephrine", 221662: "dopamine",
                221653: "dobutamine"}
INVASIVE_VENT, NONINVASIVE_VENT = 225792, 225794
DIALYSIS_ITEMIDS = (225441, 225802, 225803, 225805, 225809, 225955)


def sql_in_list(values) -> str:
    return ", ".join(str(int(v)) for v in values)


def sql_hours(ts: str, ref: str = "c.intime") -> str:
    return f"(epoch({ts}) - epoch({ref})) / 3600.0"


def sql_in_window(h: str) -> str:
    return f"({h} >= {WINDOW_START_H} AND {h} <= {WINDOW_END_H})"


def integrity_counts(t: SourceTables, table: str, group: str, value_ok: str) -> dict[str, dict]:
    """Integrity counts of a staged ``*_rel`` table, keyed ``<table without _rel>.<group>``."""
    return window_counts(t, table, f"'{table.removesuffix('_rel')}.' || {group}", value_ok,
                         sql_in_window("hours"), "hours")


def active_at(intervals: pd.DataFrame, times: pd.DataFrame, itemids) -> pd.Series:
    """For rows of ``times`` (stay_id, hours), whether an interval of ``itemids`` covers the time."""
    iv = intervals[intervals["itemid"].isin(list(itemids))][["stay_id", "start_h", "end_h"]]
    if iv.empty or times.empty:
        return pd.Series(False, index=times.index)
    m = times[["stay_id", "hours"]].reset_index().merge(iv, on="stay_id", how="inner")
    hit = m[(m["hours"] >= m["start_h"]) & (m["hours"] <= m["end_h"])]["index"].unique()
    return pd.Series(times.index.isin(hit), index=times.index)


def overlaps_window(iv: pd.DataFrame) -> pd.Series:
    return (iv["end_h"] >= WINDOW_START_H) & (iv["start_h"] <= WINDOW_END_H)


def hour_bucket(hours: pd.Series) -> pd.Series:
    """Hourly row of a value: (hr, hr+1] -> hr, with the window start -6 h in hr -6."""
    return np.maximum(np.ceil(hours.to_numpy(dtype=float)) - 1, WINDOW_START_H).astype(int)
