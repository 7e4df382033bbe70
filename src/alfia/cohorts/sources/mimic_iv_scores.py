"""MIMIC-IV step 4, scores: every score and dynamic computed from the raw tables (with
:mod:`alfia.cohorts.scores`), or read from the mimiciv_derived concept tables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from alfia.cohorts import scores
from alfia.cohorts.sources.duck import SourceTables
from alfia.cohorts.sources.extraction import Progress
from alfia.cohorts.sources.mimic_iv_admissions import join_admission_category, join_comorbidities, stay_context
from alfia.cohorts.sources.mimic_iv_common import (
    VASOPRESSORS, WINDOW_END_H, WINDOW_START_H, hour_bucket, integrity_counts, sql_hours, sql_in_window,
)
from alfia.cohorts.sources.mimic_iv_labs import (
    blood_gases, join_blood_gas_worst, join_vital_and_lab_extremes, stage_labevents, take_worse_glucose,
)
from alfia.cohorts.sources.mimic_iv_vitals import (
    flag_support_over_window, gcs_assessments, interval_integrity, stage_intervals, stage_urine, urine_output,
)

DERIVED_FIRST_DAY = ("apsiii", "sapsii", "sirs", "lods", "meld", "oasis")


def gather_inputs(t: SourceTables, progress: Progress) -> tuple[pd.DataFrame, pd.DataFrame,
                                                               pd.DataFrame, dict]:
    """Per-stay score inputs, per-stay-hour SOFA inputs, GCS assessments, facts for the manifest."""
    facts: dict[str, Any] = {}
    progress("labevents")
    stage_labevents(t)
    progress("outputevents / inputevents / procedureevents")
    stage_urine(t)
    intervals = stage_intervals(t)

    wide = stay_context(t)
    wide = join_vital_and_lab_extremes(t, wide)
    take_worse_glucose(wide)
    wide = wide.join(urine_output(t), how="left")
    flag_support_over_window(wide, intervals)
    bg = blood_gases(t, intervals)
    wide = join_blood_gas_worst(wide, bg)
    facts["arterial_blood_gases_used"] = int(len(bg))
    wide = join_comorbidities(t, wide)
    wide = join_admission_category(t, wide)
    wide["arf"] = ((wide.get("creatinine_max", np.nan) >= 1.5) & (wide["urine_output"] < 410)
                   & (wide["esrd"] == 0)).astype(int)

    progress("GCS")
    assessments = gcs_assessments(t, intervals, facts)
    wide = wide.join(scores.gcs_worst(assessments), how="left")

    progress("hourly SOFA")
    hourly = _hourly_inputs(t, intervals, assessments, bg)
    facts["interval_integrity"] = interval_integrity(t, intervals)
    return wide, hourly, assessments, facts


def _hourly_inputs(t: SourceTables, intervals: pd.DataFrame, assessments: pd.DataFrame,
                   bg: pd.DataFrame) -> pd.DataFrame:
    hb = f"greatest(CAST(ceil(hours) AS INTEGER) - 1, {int(WINDOW_START_H)})"
    parts = [
        t.df(f"SELECT stay_id, {hb} AS hr, min(value) AS mbp_min FROM chart_win "
             f"WHERE concept = 'mbp' GROUP BY 1, 2"),
        t.df(f"""SELECT stay_id, {hb} AS hr,
                    max(value) FILTER (WHERE concept = 'bilirubin') AS bilirubin_max,
                    max(value) FILTER (WHERE concept = 'creatinine') AS creatinine_max,
                    min(value) FILTER (WHERE concept = 'platelet') AS platelet_min
                 FROM lab_win WHERE concept IN ('bilirubin', 'creatinine', 'platelet') GROUP BY 1, 2"""),
        t.df(f"SELECT stay_id, {hb} AS hr, sum(value) AS urine_output FROM urine_rel "
             f"WHERE {sql_in_window('hours')} GROUP BY 1, 2"),
    ]
    if not assessments.empty:
        a = assessments.assign(hr=hour_bucket(assessments["hours"]))
        parts.append(a.groupby(["stay_id", "hr"], as_index=False)["gcs"].min()
                     .rename(columns={"gcs": "gcs_min"}))
    if not bg.empty:
        b = bg.assign(hr=hour_bucket(bg["hours"]))
        b["pf_vent"] = b["pao2fio2"].where(b["vent"])
        b["pf_novent"] = b["pao2fio2"].where(~b["vent"])
        parts.append(b.groupby(["stay_id", "hr"], as_index=False)
                     .agg(pao2fio2_vent_min=("pf_vent", "min"),
                          pao2fio2_novent_min=("pf_novent", "min")))
    # vasopressor rate running at the end of each hour (mimic-code: starttime < end <= endtime)
    rates = ", ".join(f"max(v.rate) FILTER (WHERE v.itemid = {i}) AS rate_{d}"
                      for i, d in VASOPRESSORS.items())
    parts.append(t.df(f"""
        SELECT v.stay_id, h.hr, {rates}
        FROM vaso_rel v JOIN range({int(WINDOW_START_H)}, {int(WINDOW_END_H)}) h(hr)
          ON v.start_h < h.hr + 1 AND h.hr + 1 <= v.end_h
        GROUP BY 1, 2"""))
    hourly = None
    for p in parts:
        if p is None or p.empty:
            continue
        p = p.astype({"hr": int})
        hourly = p if hourly is None else hourly.merge(p, on=["stay_id", "hr"], how="outer")
    if hourly is None:
        return pd.DataFrame(columns=["stay_id", "hr"])
    return hourly


def compute_scores(wide: pd.DataFrame, hourly: pd.DataFrame,
                   assessments: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """CW-24 score columns per stay from raw inputs, plus the hourly SOFA table."""
    out = pd.DataFrame(index=wide.index)
    out["apsiii"] = scores.apsiii(wide)["apsiii"]
    out["sapsii"] = scores.sapsii(wide)["sapsii"]
    out["sirs"] = scores.sirs(wide)["sirs"]
    out["lods"] = scores.lods(wide)["lods"]
    out["meld"] = scores.meld(wide)["meld"]
    out["oasis"] = scores.oasis(wide)["oasis"]
    sofa = scores.sofa_hourly(hourly)
    out = out.join(scores.gcs_dynamics(assessments), how="left")
    out = out.join(scores.sofa_dynamics(sofa), how="left")
    return out, sofa


def read_derived(t: SourceTables, derived_dir: str) -> tuple[pd.DataFrame, dict]:
    """Scores and dynamics from mimiciv_derived concept tables in ``derived_dir``."""
    d = SourceTables(Path(derived_dir), "mimiciv_derived", t.con)
    for name in DERIVED_FIRST_DAY:
        d.register(name, columns=("stay_id", name))
    d.register("sofa", columns=("stay_id", "hr", "sofa_24hours"))
    d.register("gcs", columns=("stay_id", "charttime", "gcs"))
    out = t.df("SELECT stay_id FROM cohort").set_index("stay_id")
    for name in DERIVED_FIRST_DAY:
        s = d.df(f'SELECT s.stay_id, s."{name}" FROM "{name}" s JOIN cohort c ON s.stay_id = c.stay_id',
                 (name,)).drop_duplicates("stay_id").set_index("stay_id")
        out = out.join(s, how="left")
    sofa = d.df(f"""SELECT s.stay_id, s.hr, s.sofa_24hours FROM sofa s JOIN cohort c ON s.stay_id = c.stay_id
                    WHERE s.hr >= 0 AND s.hr < {int(WINDOW_END_H)}""", ("sofa",))
    t.execute(f"""CREATE OR REPLACE TABLE gcs_rel AS
                  SELECT g.stay_id, {sql_hours('g.charttime')} AS hours, g.gcs AS value
                  FROM gcs g JOIN cohort c ON g.stay_id = c.stay_id""", ("gcs",))
    gcs = t.df(f"SELECT stay_id, hours, value AS gcs FROM gcs_rel "
               f"WHERE value IS NOT NULL AND {sql_in_window('hours')}")
    out = out.join(scores.gcs_dynamics(gcs), how="left")
    out = out.join(scores.sofa_dynamics(sofa), how="left")
    report = integrity_counts(t, "gcs_rel", "'gcs'", "value IS NOT NULL")
    report["derived.sofa_hours"] = {"used": int(len(sofa)), "excluded_out_of_window": 0,
                                    "first_used_h": 0.0 if len(sofa) else None,
                                    "last_used_h": float(WINDOW_END_H) if len(sofa) else None}
    return out, report


def derived_scores(t: SourceTables, derived_dir: str,
                   integrity: dict[str, dict]) -> tuple[pd.DataFrame, dict[str, Any], str]:
    """Score columns from the mimiciv_derived concept tables; their counts go into ``integrity``."""
    score_cols, derived_report = read_derived(t, derived_dir)
    integrity.update(derived_report)
    return score_cols, {}, f"mimiciv_derived concept tables in {derived_dir}"


def raw_scores(t: SourceTables, say: Progress,
               integrity: dict[str, dict]) -> tuple[pd.DataFrame, dict[str, Any], str]:
    """Score columns computed from the raw tables; their counts go into ``integrity``, the rest into the
    returned facts."""
    wide, hourly, assessments, facts = gather_inputs(t, say)
    integrity.update(integrity_counts(t, "lab_rel", "concept", "(value IS NOT NULL OR text IS NOT NULL)"))
    integrity.update(integrity_counts(t, "urine_rel", "'urine_output'", "value IS NOT NULL"))
    say("scores")
    score_cols, sofa = compute_scores(wide, hourly, assessments)
    facts["hourly_sofa_rows"] = int(len(sofa))
    facts["gcs_assessments_used"] = int(len(assessments))
    return score_cols, facts, "computed from raw tables (alfia.cohorts.scores, mimic-code logic)"
