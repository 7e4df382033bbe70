"""CW-24 MIMIC-IV cohort from the credentialed ``hosp/`` and ``icu/`` tables (or the open demo).

Inclusion (paper Figure 1A): ICU stays of adults (age >= 18) on their first hospitalization with an ICU
stay, first ICU stay of that hospitalization (as mimic-code ``icustay_detail``: ``first_hosp_stay`` and
``first_icu_stay``). One row per patient results.

Every time-stamped source value is read relative to ICU admission (``intime``) and used only inside
its variable's record window (:data:`EXTRACTION_WINDOWS`); the values outside are excluded and counted.
Big tables are only scanned by DuckDB: per-stay (and per-stay-hour) aggregates come back to pandas.

Scores: with ``derived_dir`` the community's mimiciv_derived concept tables are read (``apsiii``,
``sapsii``, ``sirs``, ``lods``, ``meld``, ``oasis`` first-day tables, hourly ``sofa``, ``gcs``);
otherwise every score is computed from raw tables with :mod:`alfia.cohorts.scores`.

Documented substitutions (the raw tables offer no better source, or the demo copy lacks a column):
- mechanical ventilation and CPAP/NIV come from ``procedureevents`` (225792 invasive ventilation,
  225794 non-invasive ventilation) instead of mimic-code's charted-ventilator-settings concept;
- dialysis (MELD) from ``procedureevents`` dialysis items;
- when ``chartevents`` lacks the text ``value`` column (the demo's reconstruction), "No Response-ETT"
  cannot be read; a verbal score of 1 charted while invasive ventilation is running is then taken as
  the intubated code (counted in the manifest).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from alfia.cohorts import scores
from alfia.cohorts.scores.apsiii import acid_base_points
from alfia.cohorts.schema import (
    ID_COLUMN, MIMIC_IV, OUTCOME_COLUMN, PATIENT_ID_COLUMN, SCORE_WINDOW,
)
from alfia.cohorts.sources.duck import DuckSettings, SourceTables, close, connect
from alfia.cohorts.sources.extraction import (
    ExtractionResult, Mapper, Progress, assert_in_window, case_insensitive, coerce_predictors, map_and_record,
    missing_fraction, temporal_integrity, window_counts,
)
from alfia.errors import AlfiaError

log = logging.getLogger(__name__)

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

# --- source vocabularies -> schema categories -------------------------------------------------------

GENDER_MAP = {"F": "Female", "M": "Male"}
MARITAL_MAP = {"DIVORCED": "Divorced", "MARRIED": "Married", "SINGLE": "Single", "WIDOWED": "Widowed"}
INSURANCE_MAP = {"medicaid": "Medicaid", "medicare": "Medicare", "no charge": "No Charge",
                 "other": "Other", "private": "Private"}
# (source value -> category, fallback for a value the schema does not know, fallback for null)
CATEGORY_FALLBACKS = {
    "gender": (None, None),
    "marital_status": ("Unknown", "Unknown"),
    "race": ("UNKNOWN", "UNKNOWN"),
    "insurance": ("Other", "Unknown"),
    "language": ("Other", "Unknown"),
    "admission_type": (None, None),
    "admission_location": ("Unknown", "Unknown"),
    "careunit": (None, None),
}

# Smoking and alcohol abuse from the hospitalization's ICD diagnoses (prefix match, codes without dots).
SMOKER_CODES = {
    9: ("3051", "V1582"),  # tobacco use disorder; personal history of tobacco use
    10: ("F17", "Z720", "Z87891"),  # nicotine dependence; tobacco use; history of nicotine dependence
}
ALCOHOL_CODES = {
    9: ("291", "303", "3050", "V113"),  # alcohol-induced mental disorders; dependence; abuse; history
    10: ("F10",),  # alcohol-related disorders
}
# SAPS II chronic diseases (mimic-code sapsii comorbidities) and chronic dialysis (APS III ARF rule).
ESRD_CODES = {9: ("5854", "5855", "5856"), 10: ("N184", "N185", "N186")}

# chartevents: concept, itemids, scale, shift, plausible raw range (exclusive), as mimic-code vitalsign
CHART_CONCEPTS: list[tuple[str, tuple[int, ...], float, float, float, float]] = [
    ("heart_rate", (220045,), 1, 0, 0, 300),
    ("sbp", (220050, 220179, 225309), 1, 0, 0, 400),
    ("mbp", (220052, 220181, 225312), 1, 0, 0, 300),
    ("resp_rate", (220210, 224690), 1, 0, 0, 70),
    ("temperature", (223762,), 1, 0, 10, 50),
    ("temperature", (223761,), 1 / 1.8, -32 / 1.8, 70, 120),  # Fahrenheit -> Celsius
    ("glucose", (225664, 220621, 226537), 1, 0, 0, 10000),
    ("fio2", (223835,), 1, 0, 0, 101),  # percent or fraction; normalised in SQL
    ("gcs_motor", (223901,), 1, 0, 0, 7),
    ("gcs_verbal", (223900,), 1, 0, 0, 6),
    ("gcs_eyes", (220739,), 1, 0, 0, 5),
    ("height", (226730,), 1, 0, 120, 230),
    ("height", (226707,), 2.54, 0, 120 / 2.54, 230 / 2.54),  # inches -> cm
    ("weight", (226512, 224639), 1, 0, 0, 700),
    ("weight", (226531,), 0.45359237, 0, 0, 1500),  # pounds -> kg
]
# labevents (hosp): concept, itemids, plausible range (as mimic-code chemistry / cbc / coagulation)
LAB_CONCEPTS: list[tuple[str, tuple[int, ...], float, float]] = [
    ("creatinine", (50912,), 0, 150), ("bun", (51006,), 0, 300), ("sodium", (50983,), 0, 200),
    ("potassium", (50971,), 0, 30), ("bicarbonate", (50882,), 0, 10000),
    ("bilirubin", (50885,), 0, 150), ("albumin", (50862,), 0, 10), ("glucose_lab", (50931,), 0, 10000),
    ("wbc", (51300, 51301), 0, 1000), ("hematocrit", (51221,), 0, 100),
    ("platelet", (51265,), 0, 10000), ("inr", (51237,), 0, 50), ("pt", (51274,), 0, 150),
    ("bands", (51144,), -0.001, 100),
    # blood gas (mimic-code bg)
    ("bg_po2", (50821,), 0, 800), ("bg_pco2", (50818,), 0, 200), ("bg_ph", (50820,), 6.0, 8.0),
    ("bg_fio2", (50816,), 0, 101), ("bg_aado2", (50801,), -100, 1000),
]
SPECIMEN_ITEMID = 52033
URINE_ITEMIDS = (226559, 226560, 226561, 226584, 226563, 226564, 226565, 226567, 226557, 226558,
                 227488, 227489)
GU_IRRIGANT_IN = 227488  # irrigant volume instilled: subtracted (mimic-code urine_output)
VASOPRESSORS = {221906: "norepinephrine", 221289: "epinephrine", 221662: "dopamine",
                221653: "dobutamine"}
INVASIVE_VENT, NONINVASIVE_VENT = 225792, 225794
DIALYSIS_ITEMIDS = (225441, 225802, 225803, 225805, 225809, 225955)

DERIVED_FIRST_DAY = ("apsiii", "sapsii", "sirs", "lods", "meld", "oasis")

REQUIRED_COLUMNS = {
    "patients": ("subject_id", "gender", "anchor_age", "anchor_year"),
    "admissions": ("subject_id", "hadm_id", "admittime", "admission_type", "admission_location",
                   "insurance", "language", "marital_status", "race", "hospital_expire_flag"),
    "icustays": ("subject_id", "hadm_id", "stay_id", "first_careunit", "intime", "outtime"),
    "diagnoses_icd": ("hadm_id", "icd_code", "icd_version"),
    "services": ("hadm_id", "transfertime", "curr_service"),
    "chartevents": ("stay_id", "charttime", "itemid", "valuenum"),
    "labevents": ("subject_id", "itemid", "charttime", "valuenum", "value", "specimen_id"),
    "outputevents": ("stay_id", "charttime", "itemid", "value"),
    "inputevents": ("stay_id", "starttime", "endtime", "itemid", "rate", "rateuom"),
    "procedureevents": ("stay_id", "starttime", "endtime", "itemid"),
}
TABLE_DIRS = {"patients": "hosp", "admissions": "hosp", "diagnoses_icd": "hosp", "services": "hosp",
              "labevents": "hosp", "icustays": "icu", "chartevents": "icu", "outputevents": "icu",
              "inputevents": "icu", "procedureevents": "icu"}


@dataclass
class MimicConfig:
    """Settings of one MIMIC-IV extraction (saved in the manifest)."""

    mimic_dir: str
    derived_dir: str | None = None
    min_age: float = 18.0
    duck: DuckSettings = field(default_factory=DuckSettings)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _in_list(values) -> str:
    return ", ".join(str(int(v)) for v in values)


def _prefix_sql(codes: dict[int, tuple[str, ...]]) -> str:
    parts = []
    for version, prefixes in codes.items():
        likes = " OR ".join(f"icd_code LIKE '{p}%'" for p in prefixes)
        parts.append(f"(icd_version = {version} AND ({likes}))")
    return " OR ".join(parts)


def _language(v: str) -> str | None:
    if v in ("?", "UNKNOWN", "Unknown"):
        return "Unknown"
    lookup = {c.lower(): c for c in MIMIC_IV["language"].categories}
    return lookup.get(v.lower(), "Other")


CATEGORY_MAPPERS: dict[str, Mapper] = {
    "gender": lambda v: GENDER_MAP.get(v.upper()),
    "marital_status": lambda v: MARITAL_MAP.get(v.upper()),
    "race": case_insensitive(MIMIC_IV["race"].categories),
    "insurance": lambda v: INSURANCE_MAP.get(v.lower(), None) or ("Other" if v else None),
    "language": _language,
    "admission_type": case_insensitive(MIMIC_IV["admission_type"].categories),
    "admission_location": case_insensitive(MIMIC_IV["admission_location"].categories),
    "careunit": case_insensitive(MIMIC_IV["careunit"].categories),
}


# --- table registration ---------------------------------------------------------------------------

def open_tables(cfg: MimicConfig) -> SourceTables:
    root = Path(cfg.mimic_dir)
    con = connect(cfg.duck)
    try:
        tables = SourceTables(root, "MIMIC-IV", con)
        if not (root / "hosp").is_dir() and not (root / "icu").is_dir():
            if tables.find("icustays", ("",)) is None:
                raise AlfiaError(f"{root}: not a MIMIC-IV directory (no hosp/ or icu/ folder and no "
                                 f"icustays table); point --mimic-dir at the folder holding hosp/ and icu/")
        needed = dict(REQUIRED_COLUMNS)
        if cfg.derived_dir:
            # Scores come from the concept tables; only the inputs of baseline variables stay required.
            for t in ("labevents", "outputevents", "inputevents", "procedureevents"):
                needed.pop(t)
        for name, cols in needed.items():
            tables.register(name, (TABLE_DIRS[name], ""), columns=cols)
    except BaseException:
        close(con)  # delete the scratch database
        raise
    return tables


# --- SQL stages -----------------------------------------------------------------------------------

def build_cohort(t: SourceTables, min_age: float) -> dict[str, int]:
    """Create temp table ``cohort`` (one row per included stay); return attrition counts."""
    t.execute("""
        CREATE OR REPLACE TABLE all_stays AS
        SELECT ie.subject_id, ie.hadm_id, ie.stay_id, ie.intime, ie.outtime, ie.first_careunit,
               a.admittime, a.admission_type, a.admission_location, a.insurance, a.language,
               a.marital_status, a.race, a.hospital_expire_flag, p.gender,
               p.anchor_age + (year(a.admittime) - p.anchor_year) AS admission_age,
               DENSE_RANK() OVER (PARTITION BY ie.subject_id ORDER BY a.admittime, ie.hadm_id)
                   AS hosp_seq,
               ROW_NUMBER() OVER (PARTITION BY ie.hadm_id ORDER BY ie.intime, ie.stay_id) AS icu_seq
        FROM icustays ie
        JOIN admissions a ON ie.hadm_id = a.hadm_id
        JOIN patients p ON ie.subject_id = p.subject_id
    """, ("icustays", "admissions", "patients"))
    counts = t.df(f"""
        SELECT (SELECT count(*) FROM icustays) AS icu_stays,
               count(*) AS with_admission_and_patient,
               count(*) FILTER (WHERE admission_age >= {min_age}) AS adult,
               count(*) FILTER (WHERE admission_age >= {min_age} AND hosp_seq = 1)
                   AS first_hospitalization,
               count(*) FILTER (WHERE admission_age >= {min_age} AND hosp_seq = 1 AND icu_seq = 1)
                   AS first_icu_stay
        FROM all_stays
    """, ("icustays",)).iloc[0]
    t.execute(f"""
        CREATE OR REPLACE TABLE cohort AS
        SELECT * FROM all_stays WHERE admission_age >= {min_age} AND hosp_seq = 1 AND icu_seq = 1
    """)
    return {
        "icu_stays": int(counts["icu_stays"]),
        "with_admission_and_patient_records": int(counts["with_admission_and_patient"]),
        f"age_at_least_{int(min_age)}": int(counts["adult"]),
        "first_hospitalization": int(counts["first_hospitalization"]),
        "first_icu_stay": int(counts["first_icu_stay"]),
    }


def _hours(ts: str, ref: str = "c.intime") -> str:
    return f"(epoch({ts}) - epoch({ref})) / 3600.0"


def _in_window(h: str) -> str:
    return f"({h} >= {WINDOW_START_H} AND {h} <= {WINDOW_END_H})"


def stage_chartevents(t: SourceTables) -> None:
    rows = [(i, c, s, sh, lo, hi) for c, ids, s, sh, lo, hi in CHART_CONCEPTS for i in ids]
    values = ", ".join(f"({i}, '{c}', {s!r}, {sh!r}, {lo!r}, {hi!r})" for i, c, s, sh, lo, hi in rows)
    t.execute(f"CREATE OR REPLACE TABLE chart_map AS SELECT * FROM (VALUES {values}) "
              f"v(itemid, concept, scale, shift, lo, hi)")
    ett = ("(ce.itemid = 223900 AND ce.value = 'No Response-ETT')"
           if t.has_column("chartevents", "value") else "NULL::BOOLEAN")
    t.execute(f"""
        CREATE OR REPLACE TABLE chart_rel AS
        SELECT c.stay_id, m.concept, {_hours('ce.charttime')} AS hours,
               CASE WHEN m.concept = 'fio2' THEN
                        CASE WHEN ce.valuenum > 0.2 AND ce.valuenum <= 1 THEN ce.valuenum * 100
                             WHEN ce.valuenum >= 20 AND ce.valuenum <= 100 THEN ce.valuenum END
                    WHEN ce.valuenum > m.lo AND ce.valuenum < m.hi
                        THEN ce.valuenum * m.scale + m.shift END AS value,
               {ett} AS verbal_ett
        FROM chartevents ce
        JOIN cohort c ON CAST(ce.stay_id AS BIGINT) = c.stay_id
        JOIN chart_map m ON ce.itemid = m.itemid
    """, ("chartevents",))
    t.execute(f"CREATE OR REPLACE VIEW chart_win AS SELECT * FROM chart_rel "
              f"WHERE value IS NOT NULL AND {_in_window('hours')}")


def stage_labevents(t: SourceTables) -> None:
    rows = [(i, c, lo, hi) for c, ids, lo, hi in LAB_CONCEPTS for i in ids]
    values = ", ".join(f"({i}, '{c}', {lo!r}, {hi!r})" for i, c, lo, hi in rows)
    values += f", ({SPECIMEN_ITEMID}, 'bg_specimen', 0, 0)"
    t.execute(f"CREATE OR REPLACE TABLE lab_map AS SELECT * FROM (VALUES {values}) "
              f"v(itemid, concept, lo, hi)")
    # Labs follow the patient (mimic-code first_day_lab joins on subject_id): a sample drawn in the
    # emergency department before the ICU, or before hadm_id is assigned, still counts in the window.
    t.execute(f"""
        CREATE OR REPLACE TABLE lab_rel AS
        SELECT c.stay_id, m.concept, l.specimen_id, {_hours('l.charttime')} AS hours,
               CASE WHEN m.concept = 'bg_specimen' THEN NULL
                    WHEN l.valuenum > m.lo AND l.valuenum < m.hi THEN l.valuenum END AS value,
               CASE WHEN m.concept = 'bg_specimen' THEN l.value END AS text
        FROM labevents l
        JOIN cohort c ON l.subject_id = c.subject_id
        JOIN lab_map m ON l.itemid = m.itemid
    """, ("labevents",))
    t.execute(f"CREATE OR REPLACE VIEW lab_win AS SELECT * FROM lab_rel "
              f"WHERE (value IS NOT NULL OR text IS NOT NULL) AND {_in_window('hours')}")


def stage_intervals(t: SourceTables) -> pd.DataFrame:
    """Ventilation / dialysis intervals of cohort stays (all times; checked later) as a frame; vasopressor
    intervals as DuckDB table ``vaso_rel``."""
    proc_ids = (INVASIVE_VENT, NONINVASIVE_VENT, *DIALYSIS_ITEMIDS)
    proc = t.df(f"""
        SELECT c.stay_id, p.itemid, {_hours('p.starttime')} AS start_h, {_hours('p.endtime')} AS end_h,
               NULL::DOUBLE AS rate
        FROM procedureevents p JOIN cohort c ON p.stay_id = c.stay_id
        WHERE p.itemid IN ({_in_list(proc_ids)})
    """, ("procedureevents",))
    # Vasopressor intervals stay in DuckDB: their per-hour expansion would grow with the table size.
    t.execute(f"""
        CREATE OR REPLACE TABLE vaso_rel AS
        SELECT c.stay_id, i.itemid, {_hours('i.starttime')} AS start_h, {_hours('i.endtime')} AS end_h,
               CASE WHEN i.rateuom = 'mg/kg/min' THEN i.rate * 1000 ELSE i.rate END AS rate
        FROM inputevents i JOIN cohort c ON i.stay_id = c.stay_id
        WHERE i.itemid IN ({_in_list(VASOPRESSORS)}) AND i.rate IS NOT NULL
          AND i.rateuom IN ('mcg/kg/min', 'mg/kg/min')
    """, ("inputevents",))
    return proc


def stage_urine(t: SourceTables) -> None:
    t.execute(f"""
        CREATE OR REPLACE TABLE urine_rel AS
        SELECT c.stay_id, {_hours('o.charttime')} AS hours,
               CASE WHEN o.itemid = {GU_IRRIGANT_IN} THEN -o.value ELSE o.value END AS value
        FROM outputevents o JOIN cohort c ON o.stay_id = c.stay_id
        WHERE o.itemid IN ({_in_list(URINE_ITEMIDS)}) AND o.value IS NOT NULL
    """, ("outputevents",))


# --- temporal integrity -----------------------------------------------------------------------------

def _integrity(t: SourceTables, table: str, group: str, value_ok: str) -> dict[str, dict]:
    """Integrity counts of a staged ``*_rel`` table, keyed ``<table without _rel>.<group>``."""
    return window_counts(t, table, f"'{table.removesuffix('_rel')}.' || {group}", value_ok,
                         _in_window("hours"), "hours")


# --- per-stay inputs -----------------------------------------------------------------------------

def _pivot_minmax(long: pd.DataFrame) -> pd.DataFrame:
    wide = long.pivot(index="stay_id", columns="concept", values=["vmin", "vmax"])
    wide.columns = [f"{c}_{'min' if s == 'vmin' else 'max'}" for s, c in wide.columns]
    return wide


def _active_at(intervals: pd.DataFrame, times: pd.DataFrame, itemids) -> pd.Series:
    """For rows of ``times`` (stay_id, hours), whether an interval of ``itemids`` covers the time."""
    iv = intervals[intervals["itemid"].isin(list(itemids))][["stay_id", "start_h", "end_h"]]
    if iv.empty or times.empty:
        return pd.Series(False, index=times.index)
    m = times[["stay_id", "hours"]].reset_index().merge(iv, on="stay_id", how="inner")
    hit = m[(m["hours"] >= m["start_h"]) & (m["hours"] <= m["end_h"])]["index"].unique()
    return pd.Series(times.index.isin(hit), index=times.index)


def _overlaps_window(iv: pd.DataFrame) -> pd.Series:
    return (iv["end_h"] >= WINDOW_START_H) & (iv["start_h"] <= WINDOW_END_H)


def blood_gases(t: SourceTables, intervals: pd.DataFrame) -> pd.DataFrame:
    """Arterial blood gases in the window with FiO2 (lab, else charted within 4 h before), flags."""
    bg = t.df("""
        WITH g AS (
            SELECT stay_id, specimen_id, min(hours) AS hours,
                   max(value) FILTER (WHERE concept = 'bg_po2') AS po2,
                   max(value) FILTER (WHERE concept = 'bg_pco2') AS pco2,
                   max(value) FILTER (WHERE concept = 'bg_ph') AS ph,
                   max(value) FILTER (WHERE concept = 'bg_fio2') AS fio2_lab,
                   max(value) FILTER (WHERE concept = 'bg_aado2') AS aado2_lab,
                   max(text) FILTER (WHERE concept = 'bg_specimen') AS specimen
            FROM lab_win WHERE concept LIKE 'bg_%' GROUP BY stay_id, specimen_id
        ), f AS (SELECT stay_id, hours, value AS fio2 FROM chart_win WHERE concept = 'fio2')
        SELECT g.*, f.fio2 AS fio2_chart, g.hours - f.hours AS fio2_chart_age_h
        FROM g ASOF LEFT JOIN f ON g.stay_id = f.stay_id AND g.hours >= f.hours
        WHERE g.specimen = 'ART.'
    """)
    if bg.empty:
        return bg
    fio2_lab = bg["fio2_lab"].where(bg["fio2_lab"] > 1, bg["fio2_lab"] * 100)
    fio2_lab = fio2_lab.where((fio2_lab >= 20) & (fio2_lab <= 100))
    chart = bg["fio2_chart"].where(bg["fio2_chart_age_h"] <= 4)
    bg["fio2"] = fio2_lab.fillna(chart)
    bg["pao2fio2"] = bg["po2"] / (bg["fio2"] / 100.0)
    calc = (bg["fio2"] / 100.0) * (760 - 47) - bg["pco2"] / 0.8 - bg["po2"]
    bg["aado2"] = bg["aado2_lab"].fillna(calc)
    bg["vent"] = _active_at(intervals, bg, [INVASIVE_VENT]).to_numpy()
    bg["cpap"] = _active_at(intervals, bg, [NONINVASIVE_VENT]).to_numpy()
    bg["acidbase_score"] = acid_base_points(bg["ph"], bg["pco2"])
    return bg


def hour_bucket(hours: pd.Series) -> pd.Series:
    """Hourly row of a value: (hr, hr+1] -> hr, with the window start -6 h in hr -6."""
    return np.maximum(np.ceil(hours.to_numpy(dtype=float)) - 1, WINDOW_START_H).astype(int)


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


def stay_context(t: SourceTables) -> pd.DataFrame:
    """Per stay: age, pre-ICU length of stay (minutes) and admission type."""
    return t.df("""
        SELECT c.stay_id, c.admission_age AS age,
               (epoch(c.intime) - epoch(c.admittime)) / 60.0 AS preiculos, c.admission_type
        FROM cohort c
    """).set_index("stay_id")


def join_vital_and_lab_extremes(t: SourceTables, wide: pd.DataFrame) -> pd.DataFrame:
    """Per stay: the window's min and max of each charted vital and each laboratory value (``<concept>_min``,
    ``<concept>_max``; blood gases are read by :func:`blood_gases`)."""
    chart = t.df("SELECT stay_id, concept, min(value) AS vmin, max(value) AS vmax FROM chart_win "
                 "WHERE concept IN ('heart_rate','sbp','mbp','resp_rate','temperature','glucose') "
                 "GROUP BY ALL")
    labs = t.df("SELECT stay_id, concept, min(value) AS vmin, max(value) AS vmax FROM lab_win "
                "WHERE concept NOT LIKE 'bg_%' GROUP BY ALL")
    return wide.join(_pivot_minmax(chart), how="left").join(_pivot_minmax(labs), how="left")


def take_worse_glucose(wide: pd.DataFrame) -> None:
    """Glucose: the more extreme of charted (fingerstick) and laboratory values (mimic-code apsiii)."""
    for s in ("min", "max"):
        a, b = wide.get(f"glucose_{s}"), wide.get(f"glucose_lab_{s}")
        if a is None:
            a = pd.Series(np.nan, index=wide.index)
        if b is None:
            b = pd.Series(np.nan, index=wide.index)
        wide[f"glucose_{s}"] = np.fmin(a, b) if s == "min" else np.fmax(a, b)


def urine_output(t: SourceTables) -> pd.DataFrame:
    """Per stay: urine output summed over the window (ml)."""
    return t.df(f"SELECT stay_id, sum(value) AS urine_output FROM urine_rel "
                f"WHERE {_in_window('hours')} GROUP BY 1").set_index("stay_id")


def flag_support_over_window(wide: pd.DataFrame, intervals: pd.DataFrame) -> None:
    """Columns vent, cpap, rrt: 1 when an interval of invasive ventilation, non-invasive ventilation or
    dialysis overlaps the window."""
    iv = intervals[_overlaps_window(intervals)]
    for name, ids in (("vent", [INVASIVE_VENT]), ("cpap", [NONINVASIVE_VENT]),
                      ("rrt", list(DIALYSIS_ITEMIDS))):
        on = set(iv.loc[iv["itemid"].isin(ids), "stay_id"])
        wide[name] = wide.index.isin(on).astype(int)


def join_blood_gas_worst(wide: pd.DataFrame, bg: pd.DataFrame) -> pd.DataFrame:
    """The worst arterial blood-gas values per stay, as the scores read them."""
    if bg.empty:
        return wide
    g = bg.groupby("stay_id")
    vent_or_cpap = bg[bg["vent"] | bg["cpap"]]
    wide = wide.join(vent_or_cpap.groupby("stay_id")["pao2fio2"].min().rename("pao2fio2_vent_min"))
    off = bg[~bg["vent"] & (bg["fio2"].fillna(21) < 50) & bg["po2"].notna()]
    wide = wide.join(off.groupby("stay_id")["po2"].max().rename("pao2"))
    on = bg[bg["vent"] & (bg["fio2"] >= 50) & bg["aado2"].notna()]
    wide = wide.join(on.groupby("stay_id")["aado2"].max().rename("aado2"))
    return wide.join(g["acidbase_score"].max()).join(g["pco2"].min().rename("paco2_min"))


def join_comorbidities(t: SourceTables, wide: pd.DataFrame) -> pd.DataFrame:
    """Columns esrd, aids, hem, mets (0/1) from the hospitalization's ICD diagnoses."""
    dx = t.df(f"""
        SELECT c.stay_id,
               max(CASE WHEN {_prefix_sql(ESRD_CODES)} THEN 1 ELSE 0 END) AS esrd,
               max(CASE WHEN (icd_version = 9 AND substr(icd_code, 1, 3) BETWEEN '042' AND '044')
                          OR (icd_version = 10 AND (substr(icd_code, 1, 3) BETWEEN 'B20' AND 'B22'
                                                    OR substr(icd_code, 1, 3) = 'B24'))
                        THEN 1 ELSE 0 END) AS aids,
               max(CASE WHEN (icd_version = 9 AND (substr(icd_code, 1, 5) BETWEEN '20000' AND '20238'
                                OR substr(icd_code, 1, 5) BETWEEN '20240' AND '20248'
                                OR substr(icd_code, 1, 5) BETWEEN '20250' AND '20302'
                                OR substr(icd_code, 1, 5) BETWEEN '20310' AND '20312'
                                OR substr(icd_code, 1, 5) BETWEEN '20302' AND '20382'
                                OR substr(icd_code, 1, 5) BETWEEN '20400' AND '20522'
                                OR substr(icd_code, 1, 5) BETWEEN '20580' AND '20702'
                                OR substr(icd_code, 1, 5) BETWEEN '20720' AND '20892'
                                OR substr(icd_code, 1, 4) IN ('2386', '2733')))
                          OR (icd_version = 10 AND substr(icd_code, 1, 3) BETWEEN 'C81' AND 'C96')
                        THEN 1 ELSE 0 END) AS hem,
               max(CASE WHEN (icd_version = 9 AND (substr(icd_code, 1, 4) BETWEEN '1960' AND '1991'
                                OR substr(icd_code, 1, 5) BETWEEN '20970' AND '20975'
                                OR substr(icd_code, 1, 5) IN ('20979', '78951')))
                          OR (icd_version = 10 AND (substr(icd_code, 1, 3) BETWEEN 'C77' AND 'C79'
                                                    OR substr(icd_code, 1, 4) = 'C800'))
                        THEN 1 ELSE 0 END) AS mets
        FROM cohort c JOIN diagnoses_icd d ON c.hadm_id = d.hadm_id GROUP BY 1
    """, ("diagnoses_icd",)).set_index("stay_id")
    wide = wide.join(dx, how="left")
    for ccol in ("esrd", "aids", "hem", "mets"):
        wide[ccol] = wide[ccol].fillna(0)
    return wide


def join_admission_category(t: SourceTables, wide: pd.DataFrame) -> pd.DataFrame:
    """admission_category (SAPS II) and elective_surgery (OASIS) from the hospitalization's services."""
    svc = t.df("""
        SELECT c.stay_id,
               arg_min(upper(s.curr_service), s.transfertime) LIKE '%SURG%' AS first_service_surgical,
               bool_or((upper(s.curr_service) LIKE '%SURG%' OR upper(s.curr_service) = 'ORTHO')
                       AND s.transfertime < c.intime + INTERVAL 24 HOUR) AS surgical_by_24h
        FROM cohort c JOIN services s ON c.hadm_id = s.hadm_id GROUP BY 1
    """, ("services",)).set_index("stay_id")
    wide = wide.join(svc, how="left")
    elective = wide["admission_type"].astype(str).str.upper().eq("ELECTIVE")
    surg = wide["first_service_surgical"].fillna(False).astype(bool)
    wide["admission_category"] = np.where(surg & elective, "ScheduledSurgical",
                                          np.where(surg, "UnscheduledSurgical", "Medical"))
    wide["elective_surgery"] = np.where(wide["surgical_by_24h"].isna(), np.nan,
                                        (elective & wide["surgical_by_24h"].fillna(False).astype(bool)
                                         ).astype(float))
    return wide


def gcs_assessments(t: SourceTables, intervals: pd.DataFrame, facts: dict[str, Any]) -> pd.DataFrame:
    """GCS assessments in the window (one row per stay and charting time), from the charted components.

    Without the text ``value`` column, a verbal score of 1 during invasive ventilation is taken as the
    intubated code (counted in ``facts``).
    """
    comp = t.df("""
        SELECT stay_id, hours,
               max(value) FILTER (WHERE concept = 'gcs_motor') AS motor,
               max(value) FILTER (WHERE concept = 'gcs_verbal') AS verbal,
               max(value) FILTER (WHERE concept = 'gcs_eyes') AS eyes,
               bool_or(verbal_ett) AS verbal_ett
        FROM chart_win WHERE concept IN ('gcs_motor', 'gcs_verbal', 'gcs_eyes') GROUP BY 1, 2
    """)
    if not t.has_column("chartevents", "value") and not comp.empty:
        inferred = comp["verbal"].eq(1) & _active_at(intervals, comp, [INVASIVE_VENT])
        comp["verbal_ett"] = inferred
        facts["gcs_verbal_ett_inferred_from_ventilation"] = int(inferred.sum())
    return scores.gcs_from_components(comp)


def interval_integrity(t: SourceTables, intervals: pd.DataFrame) -> dict[str, dict]:
    """Intervals used (overlapping the window) and excluded, per kind of intervention."""
    iv_report = {}
    names = {INVASIVE_VENT: "invasive_ventilation", NONINVASIVE_VENT: "noninvasive_ventilation",
             **{i: "dialysis" for i in DIALYSIS_ITEMIDS}, **VASOPRESSORS}
    for itemid_name, part in intervals.assign(name=intervals["itemid"].map(names)).groupby("name"):
        ok = _overlaps_window(part)
        iv_report[f"intervals.{itemid_name}"] = {"used": int(ok.sum()),
                                                 "excluded_out_of_window": int((~ok).sum())}
    overlaps = f"(end_h >= {WINDOW_START_H} AND start_h <= {WINDOW_END_H})"
    vaso_counts = t.df(f"""SELECT itemid, count(*) FILTER (WHERE {overlaps}) AS used,
                                  count(*) FILTER (WHERE NOT {overlaps}) AS excluded
                           FROM vaso_rel GROUP BY 1""")
    for r in vaso_counts.itertuples(index=False):
        iv_report[f"intervals.{names[int(r.itemid)]}"] = {"used": int(r.used),
                                                          "excluded_out_of_window": int(r.excluded)}
    return iv_report


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
             f"WHERE {_in_window('hours')} GROUP BY 1, 2"),
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


# --- derived concept tables -------------------------------------------------------------------------

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
                  SELECT g.stay_id, {_hours('g.charttime')} AS hours, g.gcs AS value
                  FROM gcs g JOIN cohort c ON g.stay_id = c.stay_id""", ("gcs",))
    gcs = t.df(f"SELECT stay_id, hours, value AS gcs FROM gcs_rel "
               f"WHERE value IS NOT NULL AND {_in_window('hours')}")
    out = out.join(scores.gcs_dynamics(gcs), how="left")
    out = out.join(scores.sofa_dynamics(sofa), how="left")
    report = _integrity(t, "gcs_rel", "'gcs'", "value IS NOT NULL")
    report["derived.sofa_hours"] = {"used": int(len(sofa)), "excluded_out_of_window": 0,
                                    "first_used_h": 0.0 if len(sofa) else None,
                                    "last_used_h": float(WINDOW_END_H) if len(sofa) else None}
    return out, report


# --- baseline variables -----------------------------------------------------------------------------

def baseline(t: SourceTables) -> tuple[pd.DataFrame, dict]:
    base = t.df("""
        SELECT stay_id, subject_id, hadm_id, gender, admission_age, marital_status, race, insurance,
               language, admission_type, admission_location, first_careunit AS careunit,
               hospital_expire_flag
        FROM cohort
    """).set_index("stay_id")
    fallbacks: dict[str, dict] = {}
    for var, (unknown_fb, null_fb) in CATEGORY_FALLBACKS.items():
        base[var] = map_and_record(base[var], CATEGORY_MAPPERS[var], MIMIC_IV[var].categories,
                                   unknown_fb, null_fb, fallbacks, var)
    hw = t.df("""
        SELECT stay_id, concept, arg_min(value, hours) AS first_value
        FROM chart_win WHERE concept IN ('height', 'weight') GROUP BY 1, 2
    """)
    if not hw.empty:
        base = base.join(hw.pivot(index="stay_id", columns="concept", values="first_value"), how="left")
    for c in ("height", "weight"):
        if c not in base:
            base[c] = np.nan
    life = t.df(f"""
        SELECT c.stay_id,
               max(CASE WHEN {_prefix_sql(SMOKER_CODES)} THEN 1 ELSE 0 END) AS smoker,
               max(CASE WHEN {_prefix_sql(ALCOHOL_CODES)} THEN 1 ELSE 0 END) AS alcohol_abuse
        FROM cohort c LEFT JOIN diagnoses_icd d ON c.hadm_id = d.hadm_id GROUP BY 1
    """).set_index("stay_id")
    base = base.join(life, how="left")
    for c in ("smoker", "alcohol_abuse"):
        base[c] = np.where(base[c].fillna(0) == 1, "Yes", "No")
    return base, fallbacks


# --- the whole extraction -------------------------------------------------------------------------

def extract_mimic_iv(cfg: MimicConfig, progress: Progress | None = None) -> ExtractionResult:
    """Build the CW-24 MIMIC-IV cohort (no split, not yet validated or written)."""
    say = progress or (lambda msg: log.info(msg))
    say("registering tables")
    with open_tables(cfg) as t:  # closing deletes the scratch database, also on error
        return _extract(t, cfg, say)


def _extract(t: SourceTables, cfg: MimicConfig, say: Progress) -> ExtractionResult:
    say("inclusion")
    attrition = build_cohort(t, cfg.min_age)
    say("chartevents")
    stage_chartevents(t)
    integrity = _integrity(t, "chart_rel", "concept", "value IS NOT NULL")
    base, fallbacks = baseline(t)
    if cfg.derived_dir:
        say("derived concept tables")
        score_cols, facts, score_source = derived_scores(t, cfg.derived_dir, integrity)
    else:
        score_cols, facts, score_source = raw_scores(t, say, integrity)
    assert_in_window(integrity, (WINDOW_START_H, WINDOW_END_H))
    interval_report = facts.pop("interval_integrity", {})
    for name, r in interval_report.items():
        integrity[name] = r

    df = cohort_table(base, score_cols)
    missing = {v: "no source value in the window for any stay" for v in MIMIC_IV.predictor_names
               if v in df and df[v].isna().all()}
    extra = {
        "extraction": {"config": cfg.to_dict(), "record_windows_h": EXTRACTION_WINDOWS,
                       "score_source": score_source},
        "attrition": attrition,
        "temporal_integrity": temporal_integrity(integrity),
        "category_fallbacks": fallbacks,
        "lifestyle_codes": {"smoker": {f"icd{k}": list(v) for k, v in SMOKER_CODES.items()},
                            "alcohol_abuse": {f"icd{k}": list(v) for k, v in ALCOHOL_CODES.items()},
                            "rule": "Yes if any diagnosis of the hospitalization starts with a code "
                                    "listed (codes without dots), else No"},
        "missing_variables": missing,
        "missing_fraction": missing_fraction(df, MIMIC_IV),
        **facts,
    }
    return ExtractionResult(df=df, extra=extra)


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
    integrity.update(_integrity(t, "lab_rel", "concept", "(value IS NOT NULL OR text IS NOT NULL)"))
    integrity.update(_integrity(t, "urine_rel", "'urine_output'", "value IS NOT NULL"))
    say("scores")
    score_cols, sofa = compute_scores(wide, hourly, assessments)
    facts["hourly_sofa_rows"] = int(len(sofa))
    facts["gcs_assessments_used"] = int(len(assessments))
    return score_cols, facts, "computed from raw tables (alfia.cohorts.scores, mimic-code logic)"


def cohort_table(base: pd.DataFrame, score_cols: pd.DataFrame) -> pd.DataFrame:
    """Ids, the schema's predictors (typed, in schema order) and the outcome, one row per stay."""
    df = base.join(score_cols, how="left").reset_index()
    df = df.rename(columns={"stay_id": ID_COLUMN})
    df[OUTCOME_COLUMN] = df["hospital_expire_flag"].astype(int)
    coerce_predictors(df, MIMIC_IV)
    keep = [ID_COLUMN, PATIENT_ID_COLUMN, *MIMIC_IV.predictor_names, OUTCOME_COLUMN]
    return df[[c for c in keep if c in df.columns]]
