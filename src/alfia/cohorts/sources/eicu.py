"""CW-24 eICU-CRD cohort from the eICU tables (or the open demo), built from whatever tables are present.

Time in eICU is minutes from unit admission (``*offset`` columns); the CW-24 windows become
-360..+1440 minutes. Inclusion: unit stays of adults (age >= 18; '> 89' is read as 90) that are the
first unit stay of their hospital stay (``unitvisitnumber = 1``) and have a known hospital discharge
status (the outcome). The outcome is ``hospitaldischargestatus = 'Expired'``; ``uniquepid`` becomes
``subject_id`` so that splits keep a patient's stays together; ``hospitalid`` is carried as an identifier
(never a predictor) for the sites of ``alfia federated train``.

APACHE IV: ``apachePatientResult`` holds two rows per stay, one per APACHE version ('IV' and 'IVa');
both share the same acute physiology and APACHE score, only the mortality equations differ. CW-24
reports the APACHE IV score, so the row with ``apacheversion = 'IV'`` is taken deliberately. A score of
-1 is eICU's "not computed" code and becomes missing. APACHE day 1 is the first 24 h of the unit stay,
inside the CW-24 score window.

GCS dynamics come from ``nurseCharting`` (GCS Total and components) when present; otherwise from the
structured neurological exam of ``physicalExam`` (GCS eyes/verbal/motor scores), which the demo has.

SAPS II, OASIS and the hourly SOFA dynamics are computed with the same pure score functions as MIMIC-IV
(:mod:`alfia.cohorts.scores`); this module only gathers their inputs in DuckDB (per stay and per stay-hour
aggregates; no per-measurement rows come back to pandas except GCS assessments) inside -360..+1440 min.
Input sources, following the MIT-LCP eicu-code pivoted concepts (pivoted-vital, pivoted-lab, pivoted-uo,
pivoted-gcs):
- vitals: ``vitalPeriodic`` (heartrate, systemicsystolic/mean, respiration, temperature in degC),
  ``vitalAperiodic`` (non-invasive systolic/mean) and the vital rows of ``nurseCharting``;
- labs: ``lab`` (BUN, WBC x 1000, potassium, sodium, bicarbonate/HCO3, total bilirubin, creatinine,
  platelets x 1000, paO2, FiO2);
- FiO2 of a blood gas: the ``lab`` FiO2 drawn at the same offset, else the last FiO2 charted in
  ``respiratoryCharting`` up to 4 h before (as the MIMIC side's charted FiO2);
- urine: ``intakeOutput`` rows under 'I&O|Output (ml)|' whose cell path names urine, Foley, void,
  nephrostomy, condom or straight/suprapubic catheter output;
- ventilation (stay level, the window): ``apacheApsVar`` intubated/vent on APACHE day 1, a
  ``respiratoryCare`` ventilation interval overlapping the window, or ventilator settings charted in
  ``respiratoryCharting`` in the window. eICU has no reliable time-resolved ventilation status, so a
  blood gas of a ventilated stay counts as "on ventilation" (documented substitution);
- vasopressors: ``infusiondrug`` rates of norepinephrine, epinephrine, dopamine, dobutamine charted in
  mcg/kg/min (as is), mg/kg/min (x1000) or mcg/min (/ weight); rates in ml/hr or without unit cannot be
  converted without the concentration and are excluded (counted as implausible);
- admission category and comorbidities (SAPS II) and elective surgery (OASIS): ``apachePredVar``
  (electivesurgery, aids, lymphoma, leukemia, metastaticcancer); a stay admitted from the operating or
  recovery room, or after elective surgery, is surgical; pre-ICU length of stay (OASIS) is
  ``-patient.hospitaladmitoffset``.
A score whose required tables are all present (:data:`SCORE_TABLES`, each group satisfied by any one of
its tables) is computed; a stay's missing component counts as normal, as on the MIMIC side, and a stay
without any input gets no score. A score with an absent required table stays missing for every stay and
the manifest names the tables. No value is ever imputed for a missing variable.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from alfia.cohorts import scores
from alfia.cohorts.schema import (
    AGGREGATES, EICU, ID_COLUMN, OUTCOME_COLUMN, PATIENT_ID_COLUMN, SCORE_WINDOW, SITE_COLUMN,
)
from alfia.cohorts.sources import eicu_scores
from alfia.cohorts.sources.duck import DuckSettings, SourceTables, close, connect
from alfia.cohorts.sources.extraction import (
    ExtractionResult, Progress, assert_in_window, case_insensitive, coerce_predictors, map_and_record,
    missing_fraction, temporal_integrity,
)
from alfia.config_base import JsonConfig
from alfia.errors import AlfiaError

log = logging.getLogger(__name__)

SOURCE = "eicu"
VARIANT = "eicu"
WINDOW_START_MIN, WINDOW_END_MIN = SCORE_WINDOW.start_h * 60, SCORE_WINDOW.end_h * 60
APACHE_VERSION = "IV"

REQUIRED_COLUMNS = {
    "patient": ("patientunitstayid", "uniquepid", "gender", "age", "ethnicity", "hospitalid",
                "unittype", "unitvisitnumber", "admissionheight", "admissionweight",
                "hospitaldischargestatus"),
    "hospital": ("hospitalid", "region"),
}
OPTIONAL_COLUMNS = {
    "apachePatientResult": ("patientunitstayid", "apacheversion", "apachescore"),
    "pastHistory": ("patientunitstayid", "pasthistoryoffset", "pasthistorypath"),
    "diagnosis": ("patientunitstayid", "diagnosisoffset", "diagnosisstring"),
    "carePlanGeneral": ("patientunitstayid", "cplitemoffset", "cplitemvalue"),
    "nurseCharting": ("patientunitstayid", "nursingchartoffset", "nursingchartcelltypevalname",
                      "nursingchartvalue"),
    "physicalExam": ("patientunitstayid", "physicalexamoffset", "physicalexampath"),
    "lab": ("patientunitstayid", "labresultoffset", "labname", "labresult"),
    "vitalPeriodic": ("patientunitstayid", "observationoffset"),
    "vitalAperiodic": ("patientunitstayid", "observationoffset"),
    "intakeOutput": ("patientunitstayid", "intakeoutputoffset", "cellpath", "cellvaluenumeric"),
    "respiratoryCharting": ("patientunitstayid", "respchartoffset", "respchartvaluelabel",
                            "respchartvalue"),
    "respiratoryCare": ("patientunitstayid",),
    "apacheApsVar": ("patientunitstayid",),
    "apachePredVar": ("patientunitstayid", "electivesurgery"),
    "infusiondrug": ("patientunitstayid", "infusionoffset", "drugname", "drugrate"),
}
SCORE_TABLES = eicu_scores.SCORE_TABLES  # required table groups of SAPS II, OASIS, SOFA

ETHNICITY_CATEGORIES = EICU["ethnicity"].categories
# Free-text documentation used for the lifestyle variables (case-insensitive substrings of
# pastHistory paths, diagnosis strings and care-plan items, within the first 24 h of the unit stay).
SMOKER_YES = ("smok", "tobacco", "nicotine", "cigarette")
SMOKER_NO = ("non-smoker", "nonsmoker", "never smoked", "non smoker")
ALCOHOL_YES = ("alcohol", "etoh")
DRUG_YES = ("drug abuse", "substance abuse", "illicit drug", "iv drug", "cocaine", "heroin", "opioid abuse",
            "drug withdrawal")
OBESITY_YES = ("obes",)
BASELINE_DOC_MAX_MIN = WINDOW_END_MIN  # documentation entered within the first 24 h


@dataclass
class EicuConfig(JsonConfig):
    """Settings of one eICU extraction (saved in the manifest)."""

    config_name = "eICU settings"

    eicu_dir: str
    min_age: float = 18.0
    duck: DuckSettings = field(default_factory=DuckSettings)


def parse_age(values: pd.Series) -> pd.Series:
    """eICU age strings: '> 89' -> 90, '' -> missing, digits -> number."""
    s = values.astype("string").str.strip()
    out = pd.to_numeric(s.where(s != "> 89", "90"), errors="coerce")
    return out.astype(float)


def _like_any(column: str, needles: tuple[str, ...]) -> str:
    return "(" + " OR ".join(f"lower({column}) LIKE '%{n}%'" for n in needles) + ")"


def open_tables(cfg: EicuConfig) -> tuple[SourceTables, list[str]]:
    con = connect(cfg.duck)
    try:
        t = SourceTables(Path(cfg.eicu_dir), "eICU", con)
        if t.find("patient") is None:
            raise AlfiaError(f"{cfg.eicu_dir}: not an eICU directory: required table 'patient' not found "
                             f"(looked for patient.csv.gz, patient.csv, patient.parquet)")
        for name, cols in REQUIRED_COLUMNS.items():
            t.register(name, columns=cols)
        absent = []
        for name, cols in OPTIONAL_COLUMNS.items():
            if not t.register(name, required=False, columns=cols):
                absent.append(name)
    except BaseException:
        close(con)  # delete the scratch database
        raise
    return t, absent


def score_context(t: SourceTables, absent: list[str], co: pd.DataFrame, age: pd.Series) -> pd.DataFrame:
    """Per-stay non-physiology inputs of SAPS II and OASIS (age, pre-ICU stay, admission, comorbidity)."""
    ctx = pd.DataFrame(index=co.index)
    ctx["age"] = age
    # OASIS pre-ICU length of stay: minutes from hospital to unit admission (offset is negative).
    ctx["preiculos"] = -pd.to_numeric(co["hospitaladmitoffset"], errors="coerce").astype(float)
    if "apachePredVar" in absent:
        return ctx
    cols = [c for c in ("aids", "lymphoma", "leukemia", "metastaticcancer")
            if t.has_column("apachePredVar", c)]
    pv = t.df(f"""SELECT a.patientunitstayid AS stay_id, max(a.electivesurgery) AS electivesurgery
                         {''.join(f', max(a.{c}) AS {c}' for c in cols)}
                  FROM apachePredVar a JOIN cohort c ON a.patientunitstayid = c.stay_id GROUP BY 1""",
              ("apachePredVar",)).set_index("stay_id").reindex(ctx.index)
    elective = pd.to_numeric(pv["electivesurgery"], errors="coerce").astype(float)
    ctx["elective_surgery"] = elective.where(elective.isin([0, 1]))
    is_elective = ctx["elective_surgery"].eq(1).to_numpy(dtype=bool)
    surgical = co["unitadmitsource"].isin(eicu_scores.SURGICAL_SOURCES).to_numpy(dtype=bool) | is_elective
    ctx["admission_category"] = np.where(surgical & is_elective, "ScheduledSurgical",
                                         np.where(surgical, "UnscheduledSurgical", "Medical"))
    flag = lambda c: (pd.to_numeric(pv[c], errors="coerce").astype(float).eq(1)  # noqa: E731
                      if c in pv else pd.Series(False, ctx.index))
    ctx["aids"] = flag("aids").astype(int)
    ctx["hem"] = (flag("lymphoma") | flag("leukemia")).astype(int)
    ctx["mets"] = flag("metastaticcancer").astype(int)
    return ctx


def extract_eicu(cfg: EicuConfig, progress: Progress | None = None) -> ExtractionResult:
    say = progress or (lambda m: log.info(m))
    say("registering tables")
    t, absent = open_tables(cfg)
    with t:  # closing deletes the scratch database, also on error
        return _extract(t, absent, cfg, say)


def _extract(t: SourceTables, absent: list[str], cfg: EicuConfig,
             say: Progress) -> ExtractionResult:
    say("inclusion")
    co, attrition = include_stays(read_stays(t), cfg.min_age)
    register_cohort(t, co)
    df, fallbacks, implausible = demographics(co)
    integrity: dict[str, dict] = {}
    missing: dict[str, str] = {}

    say("lifestyle documentation")
    life, life_integrity, life_missing = lifestyle(t, absent, df.index)
    df = df.join(life, how="left")
    df["apacheiv"], apache_integrity, apache_missing = apache_iv(t, absent, df.index)
    integrity.update(life_integrity | apache_integrity)
    missing.update(life_missing | apache_missing)

    say("GCS")
    gcs_src, assessed, gcs_integrity = gcs_assessments(t, absent)
    if assessed is not None:
        df = df.join(scores.gcs_dynamics(assessed), how="left")
        integrity.update(gcs_integrity)
    else:
        for agg in AGGREGATES:
            df[f"gcs_dynamic_{agg}"] = np.nan
        missing["gcs_dynamic_*"] = "tables nurseCharting and physicalExam are both absent"

    say("SAPS II, OASIS, hourly SOFA")
    stays = score_context(t, absent, co, df["age"])
    score_cols, score_missing, score_integrity, score_facts = eicu_scores.compute(
        t, absent, stays, assessed)
    df = df.join(score_cols, how="left")
    missing.update(score_missing)
    integrity.update(score_integrity)

    assert_in_window({k: v for k, v in integrity.items() if "first_used_h" in v},
                     (SCORE_WINDOW.start_h, SCORE_WINDOW.end_h))
    for var, why in missing.items():
        log.warning("eICU: %s missing: %s", var, why)
    df[OUTCOME_COLUMN] = co["died"].to_numpy()
    df = cohort_table(df)
    extra = {
        "extraction": {"config": cfg.to_dict(), "apache_version": APACHE_VERSION,
                       "gcs_source": gcs_src, "tables_absent": absent,
                       "record_window_min": [WINDOW_START_MIN, WINDOW_END_MIN]},
        "attrition": attrition,
        "temporal_integrity": temporal_integrity(integrity),
        "category_fallbacks": fallbacks,
        "implausible_values_dropped": implausible,
        "lifestyle_codes": {"smoker_yes": SMOKER_YES, "smoker_no": SMOKER_NO, "alcohol": ALCOHOL_YES,
                            "drug": DRUG_YES, "obesity": OBESITY_YES,
                            "rule": "case-insensitive substrings of pastHistory paths, diagnosis strings "
                                    "and care-plan items documented in the first 24 h; smoker is "
                                    "Unknown without any smoking documentation"},
        "missing_variables": missing,
        "score_inputs": score_facts,
        "missing_fraction": missing_fraction(df, EICU),
    }
    return ExtractionResult(df=df, extra=extra)


def read_stays(t: SourceTables) -> pd.DataFrame:
    """Every unit stay with its patient, hospital region and parsed age (``age_years``)."""
    patient_extra = ", ".join(
        f"p.{c}" if t.has_column("patient", c) else f"NULL AS {c}"
        for c in ("hospitaladmitoffset", "unitadmitsource"))
    pat = t.df(f"""
        SELECT p.patientunitstayid AS stay_id, p.uniquepid AS subject_id, p.hospitalid, p.gender, p.age,
               p.ethnicity, p.unittype, p.unitvisitnumber, p.admissionheight, p.admissionweight,
               p.hospitaldischargestatus, h.region, {patient_extra}
        FROM patient p LEFT JOIN hospital h ON p.hospitalid = h.hospitalid
    """, ("patient", "hospital"))
    pat["age_years"] = parse_age(pat["age"])
    return pat


def include_stays(pat: pd.DataFrame, min_age: float) -> tuple[pd.DataFrame, dict[str, int]]:
    """The included stays (indexed by stay_id, with the outcome in ``died``) and the attrition counts."""
    attrition = {"unit_stays": int(len(pat))}
    keep = pat["age_years"] >= min_age
    attrition[f"age_at_least_{int(min_age)}"] = int(keep.sum())
    keep &= pd.to_numeric(pat["unitvisitnumber"], errors="coerce").eq(1)
    attrition["first_unit_stay_of_hospitalization"] = int(keep.sum())
    status = pat["hospitaldischargestatus"].astype("string").str.strip()
    keep &= status.isin(["Alive", "Expired"]).fillna(False)
    attrition["known_hospital_discharge_status"] = int(keep.sum())
    co = pat[keep].copy().set_index("stay_id")
    co["died"] = (status[keep].to_numpy() == "Expired").astype(int)
    return co, attrition


def register_cohort(t: SourceTables, co: pd.DataFrame) -> None:
    """DuckDB table ``cohort`` (stay_id, plausible admission weight) that every later query joins."""
    con = t.con
    w = pd.to_numeric(co["admissionweight"], errors="coerce")
    con.register("cohort_df", pd.DataFrame({"stay_id": co.index.to_numpy(),
                                            "weight": w.where(w.between(20, 400)).to_numpy()}))
    t.execute("CREATE OR REPLACE TABLE cohort AS SELECT stay_id, weight FROM cohort_df")
    con.unregister("cohort_df")


def demographics(co: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, dict], dict[str, int]]:
    """Patient id, categories, age, height and weight per stay; the category fallbacks and the count of
    implausible heights and weights dropped."""
    df = pd.DataFrame(index=co.index)
    df[PATIENT_ID_COLUMN] = co["subject_id"].astype(str)
    df[SITE_COLUMN] = pd.to_numeric(co["hospitalid"], errors="coerce").astype("Int64")  # identifier, not a predictor
    fallbacks: dict[str, dict] = {}
    for var, allowed, unknown_fb, null_fb in (
            ("region", EICU["region"].categories, "Unknown", "Unknown"),
            ("ethnicity", ETHNICITY_CATEGORIES, "Other/Unknown", "Unknown"),
            ("unittype", EICU["unittype"].categories, None, None),
            ("gender", ("Female", "Male"), "Unknown", "Unknown")):
        df[var] = map_and_record(co[var], case_insensitive(allowed), EICU[var].categories, unknown_fb,
                                 null_fb, fallbacks, var)
    df["age"] = co["age_years"]
    height = pd.to_numeric(co["admissionheight"], errors="coerce")
    weight = pd.to_numeric(co["admissionweight"], errors="coerce")
    h_lo, h_hi = EICU["height"].valid_range
    w_lo, w_hi = EICU["weight"].valid_range
    df["height"] = height.where(height.between(h_lo, h_hi))
    df["weight"] = weight.where(weight.between(w_lo, w_hi))
    implausible = {"height": int((height.notna() & df["height"].isna()).sum()),
                   "weight": int((weight.notna() & df["weight"].isna()).sum())}
    return df, fallbacks, implausible


def lifestyle(t: SourceTables, absent: list[str], index: pd.Index
              ) -> tuple[pd.DataFrame, dict[str, dict], dict[str, str]]:
    """smoker, alcohol_abuse, drug_abuse, obesity from documentation of the first 24 h; its integrity
    counts; the variables missing because every documentation table is absent."""
    out = pd.DataFrame(index=index)
    integrity: dict[str, dict] = {}
    docs = []
    if "pastHistory" not in absent:
        docs.append("SELECT patientunitstayid AS stay_id, pasthistoryoffset AS offs, "
                    "pasthistorypath AS txt, 'pastHistory' AS src FROM pastHistory")
    if "diagnosis" not in absent:
        docs.append("SELECT patientunitstayid, diagnosisoffset, diagnosisstring, 'diagnosis' FROM diagnosis")
    if "carePlanGeneral" not in absent:
        docs.append("SELECT patientunitstayid, cplitemoffset, cplitemvalue, 'carePlanGeneral' "
                    "FROM carePlanGeneral")
    if not docs:
        for var in ("smoker", "alcohol_abuse", "drug_abuse", "obesity"):
            out[var] = np.nan
        why = "tables pastHistory, diagnosis and carePlanGeneral are all absent"
        return out, integrity, {var: why for var in out.columns}
    t.execute(f"""CREATE OR REPLACE TABLE doc_rel AS
                  SELECT d.* FROM ({' UNION ALL '.join(docs)}) d JOIN cohort c USING (stay_id)
                  WHERE {_like_any('d.txt', SMOKER_YES + ALCOHOL_YES + DRUG_YES + OBESITY_YES)}""",
              tuple(n for n in ("pastHistory", "diagnosis", "carePlanGeneral") if n not in absent))
    life = t.df(f"""
        SELECT stay_id,
               bool_or({_like_any('txt', SMOKER_NO)}) AS smoker_no,
               bool_or({_like_any('txt', SMOKER_YES)} AND NOT {_like_any('txt', SMOKER_NO)}) AS smoker_yes,
               bool_or({_like_any('txt', ALCOHOL_YES)}) AS alcohol,
               bool_or({_like_any('txt', DRUG_YES)}) AS drug,
               bool_or({_like_any('txt', OBESITY_YES)}) AS obesity
        FROM doc_rel WHERE offs <= {BASELINE_DOC_MAX_MIN} GROUP BY 1
    """).set_index("stay_id").reindex(index)
    counts = t.df(f"""SELECT src, count(*) FILTER (WHERE offs <= {BASELINE_DOC_MAX_MIN}) AS used,
                             count(*) FILTER (WHERE offs > {BASELINE_DOC_MAX_MIN}) AS later
                      FROM doc_rel GROUP BY 1""")
    for r in counts.itertuples(index=False):
        integrity[f"{r.src}.lifestyle"] = {"used": int(r.used), "excluded_out_of_window": int(r.later)}
    yes = life["smoker_yes"].fillna(False).astype(bool)
    no = life["smoker_no"].fillna(False).astype(bool)
    out["smoker"] = np.where(yes, "Yes", np.where(no, "No", "Unknown"))
    for var, c in (("alcohol_abuse", "alcohol"), ("drug_abuse", "drug"), ("obesity", "obesity")):
        out[var] = np.where(life[c].fillna(False).astype(bool), "Yes", "No")
    return out, integrity, {}


def apache_iv(t: SourceTables, absent: list[str], index: pd.Index
              ) -> tuple[pd.Series, dict[str, dict], dict[str, str]]:
    """The APACHE IV score per stay (see the module docstring for the version), its integrity count, and
    why it is missing when its table is absent."""
    if "apachePatientResult" in absent:
        return (pd.Series(np.nan, index=index), {},
                {"apacheiv": "table apachePatientResult is absent"})
    ap = t.df(f"""SELECT a.patientunitstayid AS stay_id, max(a.apachescore) AS apacheiv
                  FROM apachePatientResult a JOIN cohort c ON a.patientunitstayid = c.stay_id
                  WHERE a.apacheversion = '{APACHE_VERSION}' GROUP BY 1""").set_index("stay_id")
    s = pd.to_numeric(ap["apacheiv"], errors="coerce")
    score = s.where(s >= 0).reindex(index)
    return score, {"apachePatientResult.apachescore": {
        "used": int(score.notna().sum()), "excluded_out_of_window": 0,
        "note": "APACHE day-1 score: first 24 h of the unit stay"}}, {}


def gcs_assessments(t: SourceTables, absent: list[str]
                    ) -> tuple[str | None, pd.DataFrame | None, dict[str, dict]]:
    """GCS assessments in the window from nurseCharting, else physicalExam: (source table, assessments,
    integrity counts); (None, None, {}) when both tables are absent."""
    if "nurseCharting" not in absent:
        gcs_src = "nurseCharting"
        t.execute("""CREATE OR REPLACE TABLE gcs_rel AS
            SELECT n.patientunitstayid AS stay_id, n.nursingchartoffset / 60.0 AS hours,
                   max(CASE WHEN n.nursingchartcelltypevalname = 'GCS Total'
                            THEN TRY_CAST(n.nursingchartvalue AS DOUBLE) END) AS total,
                   max(CASE WHEN n.nursingchartcelltypevalname = 'Motor'
                            THEN TRY_CAST(n.nursingchartvalue AS DOUBLE) END) AS motor,
                   max(CASE WHEN n.nursingchartcelltypevalname = 'Verbal'
                            THEN TRY_CAST(n.nursingchartvalue AS DOUBLE) END) AS verbal,
                   max(CASE WHEN n.nursingchartcelltypevalname = 'Eyes'
                            THEN TRY_CAST(n.nursingchartvalue AS DOUBLE) END) AS eyes
            FROM nurseCharting n JOIN cohort c ON n.patientunitstayid = c.stay_id
            WHERE n.nursingchartcelltypevalname IN ('GCS Total', 'Motor', 'Verbal', 'Eyes')
            GROUP BY 1, 2""", ("nurseCharting",))
    elif "physicalExam" not in absent:
        gcs_src = "physicalExam"
        t.execute("""CREATE OR REPLACE TABLE gcs_rel AS
            SELECT e.patientunitstayid AS stay_id, e.physicalexamoffset / 60.0 AS hours,
                   NULL::DOUBLE AS total,
                   max(CASE WHEN e.physicalexampath LIKE '%/GCS/Motor Score/%'
                            THEN TRY_CAST(regexp_extract(e.physicalexampath, '/(\\d)$', 1) AS DOUBLE) END)
                       AS motor,
                   max(CASE WHEN e.physicalexampath LIKE '%/GCS/Verbal Score/%'
                            THEN TRY_CAST(regexp_extract(e.physicalexampath, '/(\\d)$', 1) AS DOUBLE) END)
                       AS verbal,
                   max(CASE WHEN e.physicalexampath LIKE '%/GCS/Eyes Score/%'
                            THEN TRY_CAST(regexp_extract(e.physicalexampath, '/(\\d)$', 1) AS DOUBLE) END)
                       AS eyes
            FROM physicalExam e JOIN cohort c ON e.patientunitstayid = c.stay_id
            WHERE e.physicalexampath LIKE '%/Neurologic/GCS/%Score/%'
            GROUP BY 1, 2""", ("physicalExam",))
    else:
        return None, None, {}
    valid = ("(coalesce(total, 0) BETWEEN 3 AND 15 OR total IS NULL) AND "
             "(motor IS NOT NULL OR verbal IS NOT NULL OR eyes IS NOT NULL OR total IS NOT NULL)")
    win = f"hours >= {SCORE_WINDOW.start_h} AND hours <= {SCORE_WINDOW.end_h}"
    rows = t.df(f"SELECT * FROM gcs_rel WHERE {valid} AND {win}")
    cnt = t.df(f"""SELECT count(*) FILTER (WHERE {valid} AND {win}) AS used,
                          count(*) FILTER (WHERE {valid} AND NOT ({win})) AS out_of_window,
                          min(hours) FILTER (WHERE {valid} AND {win}) AS lo,
                          max(hours) FILTER (WHERE {valid} AND {win}) AS hi FROM gcs_rel""").iloc[0]
    integrity = {f"{gcs_src}.gcs": {
        "used": int(cnt["used"]), "excluded_out_of_window": int(cnt["out_of_window"]),
        "first_used_h": None if pd.isna(cnt["lo"]) else float(cnt["lo"]),
        "last_used_h": None if pd.isna(cnt["hi"]) else float(cnt["hi"])}}
    assessed = scores.gcs_from_components(rows[["stay_id", "hours", "motor", "verbal", "eyes"]])
    # A charted total (nurseCharting) wins over the sum of components at the same time.
    if rows["total"].notna().any():
        tot = rows.set_index(["stay_id", "hours"])["total"]
        key = pd.MultiIndex.from_frame(assessed[["stay_id", "hours"]])
        assessed["gcs"] = tot.reindex(key).to_numpy()
        assessed["gcs"] = assessed["gcs"].fillna(
            scores.gcs_from_components(rows[["stay_id", "hours", "motor", "verbal", "eyes"]])["gcs"])
    return gcs_src, assessed, integrity


def cohort_table(df: pd.DataFrame) -> pd.DataFrame:
    """Ids (stay, patient, hospital), the schema's predictors (typed, in schema order) and the outcome, one row
    per stay."""
    df = df.reset_index().rename(columns={"stay_id": ID_COLUMN})
    coerce_predictors(df, EICU)
    return df[[ID_COLUMN, PATIENT_ID_COLUMN, SITE_COLUMN, *EICU.predictor_names, OUTCOME_COLUMN]]
