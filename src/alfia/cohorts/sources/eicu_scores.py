"""Inputs of SAPS II, OASIS and hourly SOFA from eICU-CRD tables, gathered in DuckDB.

The sources and substitutions are documented in :mod:`alfia.cohorts.sources.eicu`. Every time-stamped
value lands in one long DuckDB table ``obs_rel`` (stay, concept, source, offset, value) for all offsets;
``obs_win`` keeps the values inside -360..+1440 min. Per-stay and per-stay-hour aggregates are computed
in SQL, so only one row per stay (or stay-hour) comes back to pandas however large the tables are.
The score formulas themselves are the pure functions of :mod:`alfia.cohorts.scores`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from alfia.cohorts import scores
from alfia.cohorts.schema import SCORE_WINDOW
from alfia.cohorts.schema import AGGREGATES
from alfia.cohorts.sources.duck import SourceTables
from alfia.cohorts.sources.extraction import window_counts

WINDOW_START_MIN, WINDOW_END_MIN = int(SCORE_WINDOW.start_h * 60), int(SCORE_WINDOW.end_h * 60)
FIO2_CHART_MAX_AGE_MIN = 240  # charted FiO2 counts for a blood gas up to 4 h after it was charted

# Required tables of each score: every group must have at least one of its tables present.
GCS_TABLES = ("nurseCharting", "physicalExam")
VITAL_TABLES = ("vitalPeriodic", "nurseCharting")
VENT_TABLES = ("apacheApsVar", "respiratoryCare", "respiratoryCharting")
SCORE_TABLES: dict[str, tuple[tuple[str, ...], ...]] = {
    "sapsii": (("lab",), VITAL_TABLES, ("intakeOutput",), GCS_TABLES, VENT_TABLES, ("apachePredVar",)),
    "oasis": (VITAL_TABLES, ("intakeOutput",), GCS_TABLES, VENT_TABLES, ("apachePredVar",)),
    "sofa_dynamic": (("lab",), ("vitalPeriodic", "vitalAperiodic", "nurseCharting"), ("intakeOutput",),
                     GCS_TABLES, VENT_TABLES, ("infusiondrug",)),
}

# vitalPeriodic / vitalAperiodic column -> (concept, plausible range, exclusive); temperature in degC
PERIODIC_COLUMNS = {"heartrate": ("heart_rate", 0, 300), "systemicsystolic": ("sbp", 0, 400),
                    "systemicmean": ("mbp", 0, 300), "respiration": ("resp_rate", 0, 70),
                    "temperature": ("temperature", 10, 50)}
APERIODIC_COLUMNS = {"noninvasivesystolic": ("sbp", 0, 400), "noninvasivemean": ("mbp", 0, 300)}
# nurseCharting nursingchartcelltypevalname -> (concept, scale, shift, lo, hi) as eicu-code pivoted-vital
NURSE_VITALS = {
    "Heart Rate": ("heart_rate", 1, 0, 0, 300),
    "Non-Invasive BP Systolic": ("sbp", 1, 0, 0, 400), "Invasive BP Systolic": ("sbp", 1, 0, 0, 400),
    "Non-Invasive BP Mean": ("mbp", 1, 0, 0, 300), "Invasive BP Mean": ("mbp", 1, 0, 0, 300),
    "Respiratory Rate": ("resp_rate", 1, 0, 0, 70),
    "Temperature (C)": ("temperature", 1, 0, 10, 50),
    "Temperature (F)": ("temperature", 1 / 1.8, -32 / 1.8, 70, 120),
}
# lab labname -> (concept, lo, hi) as eicu-code pivoted-lab (units: mg/dL, K/uL, mmol/L, mmHg, %)
LAB_NAMES = {
    "BUN": ("bun", 0, 300), "WBC x 1000": ("wbc", 0, 1000), "potassium": ("potassium", 0, 30),
    "sodium": ("sodium", 0, 200), "bicarbonate": ("bicarbonate", 0, 10000),
    "HCO3": ("bicarbonate", 0, 10000), "total bilirubin": ("bilirubin", 0, 150),
    "creatinine": ("creatinine", 0, 150), "platelets x 1000": ("platelet", 0, 10000),
    "paO2": ("pao2", 0, 800), "FiO2": ("fio2", 0, 101),
}
RESP_FIO2_LABELS = ("FiO2", "FIO2 (%)", "O2 Percentage")
RESP_VENT_LABELS = ("Tidal Volume (set)", "Vent Rate", "Plateau Pressure", "Set Vt (Servo,LTV)")
URINE_PATH_PREFIX = "flowsheet|Flowsheet Cell Labels|I&O|Output (ml)|"
URINE_WORDS = ("urin", "foley", "void", "nephrostomy", "condom", "straight cath", "suprapubic")
VASOPRESSOR_ORDER = ("norepinephrine", "epinephrine", "dopamine", "dobutamine")  # 'nor' before 'epi'
SURGICAL_SOURCES = ("Operating Room", "Recovery Room", "PACU")


def _values(rows) -> str:
    def lit(v):
        return "'" + str(v).replace("'", "''") + "'" if isinstance(v, str) else repr(float(v))
    return ", ".join("(" + ", ".join(lit(v) for v in r) + ")" for r in rows)


def _in_window(offs: str) -> str:
    return f"({offs} >= {WINDOW_START_MIN} AND {offs} <= {WINDOW_END_MIN})"


def _hour(offs: str) -> str:
    """Hourly row (hr, hr+1] -> hr with the window start in hr -6 (as mimic_iv.hour_bucket)."""
    return f"greatest(CAST(ceil({offs} / 60.0) AS INTEGER) - 1, {int(SCORE_WINDOW.start_h)})"


def unmet_tables(score: str, absent: list[str]) -> list[tuple[str, ...]]:
    """Required table groups of ``score`` with none of their tables present."""
    return [g for g in SCORE_TABLES[score] if all(n in absent for n in g)]


def stage_observations(t: SourceTables, absent: list[str]) -> list[str]:
    """Create ``obs_rel`` (every plausible or implausible value of cohort stays, all offsets).

    Column ``value`` is NULL for an implausible or unconvertible raw value (counted, never used).
    Returns the source tables that contributed.
    """
    parts, used = [], []
    if "vitalPeriodic" not in absent or "vitalAperiodic" not in absent:
        for table, colmap in (("vitalPeriodic", PERIODIC_COLUMNS), ("vitalAperiodic", APERIODIC_COLUMNS)):
            if table in absent:
                continue
            for column, (concept, lo, hi) in colmap.items():
                if not t.has_column(table, column):
                    continue
                parts.append(f"""
                    SELECT v.patientunitstayid AS stay_id, '{concept}' AS concept, '{table}' AS src,
                           v.observationoffset AS offs,
                           CASE WHEN v."{column}" > {lo} AND v."{column}" < {hi}
                                THEN CAST(v."{column}" AS DOUBLE) END AS value
                    FROM "{table}" v JOIN cohort c ON v.patientunitstayid = c.stay_id
                    WHERE v."{column}" IS NOT NULL""")
                used.append(table)
    if "nurseCharting" not in absent:
        t.execute(f"CREATE OR REPLACE TABLE nurse_map AS SELECT * FROM (VALUES "
                  f"{_values((k, *v) for k, v in NURSE_VITALS.items())}) "
                  f"m(name, concept, scale, shift, lo, hi)")
        parts.append("""
            SELECT n.patientunitstayid, m.concept, 'nurseCharting', n.nursingchartoffset,
                   CASE WHEN TRY_CAST(n.nursingchartvalue AS DOUBLE) > m.lo
                             AND TRY_CAST(n.nursingchartvalue AS DOUBLE) < m.hi
                        THEN TRY_CAST(n.nursingchartvalue AS DOUBLE) * m.scale + m.shift END
            FROM nurseCharting n JOIN cohort c ON n.patientunitstayid = c.stay_id
            JOIN nurse_map m ON n.nursingchartcelltypevalname = m.name""")
        used.append("nurseCharting")
    if "lab" not in absent:
        t.execute(f"CREATE OR REPLACE TABLE lab_map AS SELECT * FROM (VALUES "
                  f"{_values((k, *v) for k, v in LAB_NAMES.items())}) m(name, concept, lo, hi)")
        parts.append("""
            SELECT l.patientunitstayid, m.concept, 'lab', l.labresultoffset,
                   CASE WHEN m.concept = 'fio2' THEN
                            CASE WHEN TRY_CAST(l.labresult AS DOUBLE) > 0.2
                                      AND TRY_CAST(l.labresult AS DOUBLE) <= 1
                                     THEN TRY_CAST(l.labresult AS DOUBLE) * 100
                                 WHEN TRY_CAST(l.labresult AS DOUBLE) >= 20
                                      AND TRY_CAST(l.labresult AS DOUBLE) <= 100
                                     THEN TRY_CAST(l.labresult AS DOUBLE) END
                        WHEN TRY_CAST(l.labresult AS DOUBLE) > m.lo AND TRY_CAST(l.labresult AS DOUBLE) < m.hi
                            THEN TRY_CAST(l.labresult AS DOUBLE) END
            FROM lab l JOIN cohort c ON l.patientunitstayid = c.stay_id
            JOIN lab_map m ON l.labname = m.name""")
        used.append("lab")
    if "respiratoryCharting" not in absent:
        labels = ", ".join(f"'{x}'" for x in RESP_FIO2_LABELS)
        parts.append(f"""
            SELECT r.patientunitstayid, 'fio2', 'respiratoryCharting', r.respchartoffset,
                   CASE WHEN TRY_CAST(r.respchartvalue AS DOUBLE) > 0.2
                             AND TRY_CAST(r.respchartvalue AS DOUBLE) <= 1
                            THEN TRY_CAST(r.respchartvalue AS DOUBLE) * 100
                        WHEN TRY_CAST(r.respchartvalue AS DOUBLE) >= 20
                             AND TRY_CAST(r.respchartvalue AS DOUBLE) <= 100
                            THEN TRY_CAST(r.respchartvalue AS DOUBLE) END
            FROM respiratoryCharting r JOIN cohort c ON r.patientunitstayid = c.stay_id
            WHERE r.respchartvaluelabel IN ({labels})""")
        vlabels = ", ".join(f"'{x}'" for x in RESP_VENT_LABELS)
        parts.append(f"""
            SELECT r.patientunitstayid, 'vent_setting', 'respiratoryCharting', r.respchartoffset, 1.0
            FROM respiratoryCharting r JOIN cohort c ON r.patientunitstayid = c.stay_id
            WHERE r.respchartvaluelabel IN ({vlabels})""")
        used.append("respiratoryCharting")
    if "intakeOutput" not in absent:
        words = " OR ".join(f"lower(o.cellpath) LIKE '%{w}%'" for w in URINE_WORDS)
        parts.append(f"""
            SELECT o.patientunitstayid, 'urine_output', 'intakeOutput', o.intakeoutputoffset,
                   CASE WHEN o.cellvaluenumeric >= 0 AND o.cellvaluenumeric < 10000
                        THEN CAST(o.cellvaluenumeric AS DOUBLE) END
            FROM intakeOutput o JOIN cohort c ON o.patientunitstayid = c.stay_id
            WHERE o.cellpath LIKE '{URINE_PATH_PREFIX}%' AND ({words}) AND o.cellvaluenumeric IS NOT NULL""")
        used.append("intakeOutput")
    if "infusiondrug" not in absent:
        drug = "CASE " + " ".join(f"WHEN lower(d.drugname) LIKE '%{x}%' THEN 'rate_{x}'"
                                  for x in VASOPRESSOR_ORDER) + " END"
        weight = ("coalesce(CASE WHEN TRY_CAST(d.patientweight AS DOUBLE) BETWEEN 20 AND 400 "
                  "THEN TRY_CAST(d.patientweight AS DOUBLE) END, c.weight)"
                  if t.has_column("infusiondrug", "patientweight") else "c.weight")
        rate = "TRY_CAST(d.drugrate AS DOUBLE)"
        parts.append(f"""
            SELECT * FROM (
                SELECT d.patientunitstayid, {drug} AS concept, 'infusiondrug', d.infusionoffset,
                       CASE WHEN {rate} < 0 OR {rate} >= 1000 THEN NULL
                            WHEN d.drugname LIKE '%(mcg/kg/min)%' THEN {rate}
                            WHEN d.drugname LIKE '%(mg/kg/min)%' THEN {rate} * 1000
                            WHEN d.drugname LIKE '%(mcg/min)%' THEN {rate} / {weight} END
                FROM infusiondrug d JOIN cohort c ON d.patientunitstayid = c.stay_id
                WHERE d.drugrate IS NOT NULL)
            WHERE concept IS NOT NULL""")
        used.append("infusiondrug")
    body = " UNION ALL ".join(f"SELECT * FROM ({q}) AS part(stay_id, concept, src, offs, value)"
                              for q in parts) if parts else (
        "SELECT NULL::BIGINT AS stay_id, NULL::VARCHAR AS concept, NULL::VARCHAR AS src, "
        "NULL::DOUBLE AS offs, NULL::DOUBLE AS value WHERE false")
    t.execute(f"CREATE OR REPLACE TABLE obs_rel AS {body}", tuple(dict.fromkeys(used)))
    t.execute(f"CREATE OR REPLACE VIEW obs_win AS SELECT * FROM obs_rel "
              f"WHERE value IS NOT NULL AND {_in_window('offs')}")
    return list(dict.fromkeys(used))


def integrity_report(t: SourceTables) -> dict[str, dict]:
    """Used / out-of-window / implausible counts per source.concept (hours from unit admission)."""
    return window_counts(t, "obs_rel", "src || '.' || concept", "value IS NOT NULL", _in_window("offs"),
                         "offs / 60.0")


def ventilation(t: SourceTables, absent: list[str]) -> tuple[pd.Series | None, dict[str, int]]:
    """Per-stay 0/1 ventilation in the window (None when no ventilation source is present)."""
    sources, counts = [], {}
    if "apacheApsVar" not in absent:
        flags = [c for c in ("intubated", "vent") if t.has_column("apacheApsVar", c)]
        if flags:
            sources.append(f"SELECT patientunitstayid AS stay_id FROM apacheApsVar "
                           f"WHERE {' OR '.join(f'{c} = 1' for c in flags)}")
    if "respiratoryCare" not in absent and t.has_column("respiratoryCare", "ventstartoffset") \
            and t.has_column("respiratoryCare", "ventendoffset"):
        # eICU writes 0 for "not recorded": an interval needs end > start.
        sources.append(f"""SELECT patientunitstayid FROM respiratoryCare
                           WHERE ventendoffset > ventstartoffset AND ventendoffset >= {WINDOW_START_MIN}
                             AND ventstartoffset <= {WINDOW_END_MIN}""")
    if "respiratoryCharting" not in absent:
        sources.append("SELECT stay_id FROM obs_win WHERE concept = 'vent_setting'")
    if not sources:
        return None, counts
    on = t.df(f"SELECT DISTINCT c.stay_id FROM cohort c JOIN ({' UNION '.join(sources)}) v "
              f"ON c.stay_id = v.stay_id")
    stays = t.df("SELECT stay_id FROM cohort")["stay_id"]
    vent = pd.Series(stays.isin(set(on["stay_id"])).astype(int).to_numpy(), index=stays.to_numpy())
    counts["ventilated_stays"] = int(vent.sum())
    return vent, counts


def _stage_gases(t: SourceTables) -> None:
    """``gas_rel``: PaO2 per stay and offset with the FiO2 that applies (lab same offset, else charted)."""
    t.execute(f"""
        CREATE OR REPLACE TABLE gas_rel AS
        WITH p AS (SELECT stay_id, offs, max(value) AS pao2 FROM obs_win
                   WHERE concept = 'pao2' GROUP BY 1, 2),
             lf AS (SELECT stay_id, offs, max(value) AS fio2 FROM obs_win
                    WHERE concept = 'fio2' AND src = 'lab' GROUP BY 1, 2),
             cf AS (SELECT stay_id, offs, max(value) AS fio2 FROM obs_win
                    WHERE concept = 'fio2' AND src <> 'lab' GROUP BY 1, 2)
        SELECT p.stay_id, p.offs, p.pao2,
               coalesce(lf.fio2, CASE WHEN p.offs - cf.offs <= {FIO2_CHART_MAX_AGE_MIN} THEN cf.fio2 END)
                   AS fio2
        FROM p LEFT JOIN lf ON p.stay_id = lf.stay_id AND p.offs = lf.offs
        ASOF LEFT JOIN cf ON p.stay_id = cf.stay_id AND p.offs >= cf.offs""")


def per_stay_inputs(t: SourceTables, vent: pd.Series | None) -> pd.DataFrame:
    """Worst values of the window per stay (SAPS II / OASIS inputs), computed in DuckDB."""
    minmax = ("heart_rate", "sbp", "mbp", "resp_rate", "temperature", "bun", "wbc", "potassium",
              "sodium", "bicarbonate")
    sel = ", ".join(f"min(value) FILTER (WHERE concept = '{c}') AS {c}_min, "
                    f"max(value) FILTER (WHERE concept = '{c}') AS {c}_max" for c in minmax)
    wide = t.df(f"""SELECT c.stay_id, {sel},
                           max(value) FILTER (WHERE concept = 'bilirubin') AS bilirubin_max,
                           sum(value) FILTER (WHERE concept = 'urine_output') AS urine_output
                    FROM cohort c LEFT JOIN obs_win o ON c.stay_id = o.stay_id GROUP BY 1"""
                ).set_index("stay_id")
    pf = t.df("SELECT stay_id, min(pao2 / (fio2 / 100.0)) AS pf FROM gas_rel "
              "WHERE fio2 IS NOT NULL GROUP BY 1").set_index("stay_id")["pf"]
    if vent is not None:
        wide["vent"] = vent.reindex(wide.index)
        # SAPS II scores PaO2/FiO2 only under ventilation or CPAP (Le Gall 1993).
        wide["pao2fio2_vent_min"] = pf.reindex(wide.index).where(wide["vent"] == 1)
    return wide


def hourly_inputs(t: SourceTables, vent: pd.Series | None) -> pd.DataFrame:
    """Per stay-hour SOFA inputs (hr -6..23), computed in DuckDB."""
    hourly = t.df(f"""
        SELECT stay_id, {_hour('offs')} AS hr,
               min(value) FILTER (WHERE concept = 'mbp') AS mbp_min,
               min(value) FILTER (WHERE concept = 'platelet') AS platelet_min,
               max(value) FILTER (WHERE concept = 'bilirubin') AS bilirubin_max,
               max(value) FILTER (WHERE concept = 'creatinine') AS creatinine_max,
               sum(value) FILTER (WHERE concept = 'urine_output') AS urine_output,
               {", ".join(f"max(value) FILTER (WHERE concept = 'rate_{d}') AS rate_{d}"
                          for d in VASOPRESSOR_ORDER)}
        FROM obs_win
        WHERE concept IN ('mbp', 'platelet', 'bilirubin', 'creatinine', 'urine_output',
                          {", ".join(f"'rate_{d}'" for d in VASOPRESSOR_ORDER)})
        GROUP BY 1, 2""")
    gas = t.df(f"SELECT stay_id, {_hour('offs')} AS hr, min(pao2 / (fio2 / 100.0)) AS pf FROM gas_rel "
               f"WHERE fio2 IS NOT NULL GROUP BY 1, 2")
    if not gas.empty:
        on = gas["stay_id"].map(vent).fillna(0).eq(1) if vent is not None else pd.Series(False, gas.index)
        gas["pao2fio2_vent_min"] = gas["pf"].where(on)
        gas["pao2fio2_novent_min"] = gas["pf"].where(~on)
        hourly = hourly.merge(gas.drop(columns="pf"), on=["stay_id", "hr"], how="outer")
    return hourly


def compute(t: SourceTables, absent: list[str], stays: pd.DataFrame, assessments: pd.DataFrame | None
            ) -> tuple[pd.DataFrame, dict[str, str], dict[str, dict], dict[str, Any]]:
    """SAPS II, OASIS and sofa_dynamic_* per stay.

    ``stays``: index stay_id with columns age, preiculos, admission_category, elective_surgery, aids,
    hem, mets (from patient / apachePredVar). ``assessments``: GCS assessments in the window (or None).
    Returns (score columns, missing variables with reasons, integrity counts, facts).
    """
    out = pd.DataFrame(index=stays.index)
    missing: dict[str, str] = {}
    unmet = {s: unmet_tables(s, absent) for s in SCORE_TABLES}
    sofa_cols = [f"sofa_dynamic_{a}" for a in AGGREGATES]
    for s, groups in unmet.items():
        if groups:
            named = "; ".join(" or ".join(g) for g in groups)
            missing["sofa_dynamic_*" if s == "sofa_dynamic" else s] = (
                f"required table(s) absent from this copy: {named}")
    if all(unmet.values()):
        for c in ("sapsii", "oasis", *sofa_cols):
            out[c] = np.nan
        return out, missing, {}, {}
    used = stage_observations(t, absent)
    integrity = integrity_report(t)
    vent, facts = ventilation(t, absent)
    _stage_gases(t)
    facts["blood_gases_with_fio2_used"] = int(t.df("SELECT count(*) AS n FROM gas_rel "
                                                   "WHERE fio2 IS NOT NULL")["n"].iloc[0])
    facts["score_input_tables"] = used
    a = assessments if assessments is not None else pd.DataFrame(columns=["stay_id", "hours", "gcs"])
    wide = stays.join(per_stay_inputs(t, vent), how="left")
    gmin = a.groupby("stay_id")["gcs"].min() if len(a) else pd.Series(dtype=float)
    wide["gcs_min"] = gmin.reindex(wide.index)
    out["sapsii"] = np.nan if unmet["sapsii"] else scores.sapsii(wide)["sapsii"]
    out["oasis"] = np.nan if unmet["oasis"] else scores.oasis(wide)["oasis"]
    if unmet["sofa_dynamic"]:
        for c in sofa_cols:
            out[c] = np.nan
    else:
        hourly = hourly_inputs(t, vent)
        if len(a):
            hr = np.maximum(np.ceil(a["hours"].to_numpy(dtype=float)) - 1, SCORE_WINDOW.start_h).astype(int)
            g = (a.assign(hr=hr).groupby(["stay_id", "hr"], as_index=False)["gcs"].min()
                 .rename(columns={"gcs": "gcs_min"}))
            hourly = g if hourly.empty else hourly.merge(g, on=["stay_id", "hr"], how="outer")
        sofa = scores.sofa_hourly(hourly)
        facts["hourly_sofa_rows"] = int(len(sofa))
        out = out.join(scores.sofa_dynamics(sofa), how="left")
        for c in sofa_cols:
            if c not in out:
                out[c] = np.nan
    return out, missing, integrity, facts
