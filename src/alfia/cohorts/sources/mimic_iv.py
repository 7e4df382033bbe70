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

The extraction runs in steps, one module each: ``mimic_iv_admissions`` (inclusion, demographics, diagnoses),
``mimic_iv_vitals`` (charted vitals, GCS, urine, interventions), ``mimic_iv_labs`` (laboratory values, blood
gases), ``mimic_iv_scores`` (the scores, raw or derived); ``mimic_iv_common`` holds what they share. This module
registers the tables, runs the steps and assembles the cohort table and its manifest facts.

The extraction runs in steps, one module each: ``mimic_iv_admissions`` (inclusion, demographics, diagnoses),
``mimic_iv_vitals`` (charted vitals, GCS, urine, interventions), ``mimic_iv_labs`` (laboratory values, blood
gases), ``mimic_iv_scores`` (the scores, raw or derived); ``mimic_iv_common`` holds what they share. This module
registers the tables, runs the steps and assembles the cohort table and its manifest facts.

The extraction runs in steps, one module each: ``mimic_iv_admissions`` (inclusion, demographics, diagnoses),
``mimic_iv_vitals`` (charted vitals, GCS, urine, interventions), ``mimic_iv_labs`` (laboratory values, blood
gases), ``mimic_iv_scores`` (the scores, raw or derived); ``mimic_iv_common`` holds what they share. This module
registers the tables, runs the steps and assembles the cohort table and its manifest facts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from alfia.cohorts.schema import ID_COLUMN, MIMIC_IV, OUTCOME_COLUMN, PATIENT_ID_COLUMN
from alfia.cohorts.sources.duck import DuckSettings, SourceTables, close, connect
from alfia.cohorts.sources.extraction import (
    ExtractionResult, Progress, assert_in_window, coerce_predictors, missing_fraction, temporal_integrity,
)
from alfia.cohorts.sources.mimic_iv_admissions import ALCOHOL_CODES, SMOKER_CODES, baseline, build_cohort
from alfia.cohorts.sources.mimic_iv_common import (  # noqa: F401  (re-exported: the extraction's item ids)
    EXTRACTION_WINDOWS, INVASIVE_VENT, NONINVASIVE_VENT, SOURCE, VARIANT, VASOPRESSORS, WINDOW_END_H, WINDOW_START_H,
    integrity_counts,
)
from alfia.cohorts.sources.mimic_iv_labs import stage_labevents  # noqa: F401  (re-exported for alfia.series)
from alfia.cohorts.sources.mimic_iv_scores import derived_scores, raw_scores
from alfia.cohorts.sources.mimic_iv_vitals import (  # noqa: F401  (re-exported for alfia.series)
    stage_chartevents, stage_intervals, stage_urine,
)
from alfia.config_base import JsonConfig
from alfia.errors import AlfiaError

log = logging.getLogger(__name__)
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
class MimicConfig(JsonConfig):
    """Settings of one MIMIC-IV extraction (saved in the manifest)."""

    config_name = "MIMIC-IV settings"

    mimic_dir: str
    derived_dir: str | None = None
    min_age: float = 18.0
    duck: DuckSettings = field(default_factory=DuckSettings)


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
    integrity = integrity_counts(t, "chart_rel", "concept", "value IS NOT NULL")
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


def cohort_table(base: pd.DataFrame, score_cols: pd.DataFrame) -> pd.DataFrame:
    """Ids, the schema's predictors (typed, in schema order) and the outcome, one row per stay."""
    df = base.join(score_cols, how="left").reset_index()
    df = df.rename(columns={"stay_id": ID_COLUMN})
    df[OUTCOME_COLUMN] = df["hospital_expire_flag"].astype(int)
    coerce_predictors(df, MIMIC_IV)
    keep = [ID_COLUMN, PATIENT_ID_COLUMN, *MIMIC_IV.predictor_names, OUTCOME_COLUMN]
    return df[[c for c in keep if c in df.columns]]
