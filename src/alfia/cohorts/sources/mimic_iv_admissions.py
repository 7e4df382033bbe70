"""MIMIC-IV step 1, admissions: inclusion (the ``cohort`` table), demographics and their category mapping,
lifestyle and comorbidity codes from the ICD diagnoses, and the admission category from the services."""

from __future__ import annotations

import numpy as np
import pandas as pd

from alfia.cohorts.schema import MIMIC_IV
from alfia.cohorts.sources.duck import SourceTables
from alfia.cohorts.sources.extraction import Mapper, case_insensitive, map_and_record

GENDER_MAP = {"F": "Female", "M": "Male"}
MARITAL_MAP = {"DIVORCED": "Divorced", "MARRIED": "Married", "SINGLE": "Single", "WIDOWED": "Widowed"}
INSURANCE_MAP = {"medicaid": "Medicaid", "medicare": "Medicare", "no charge": "No Charge",
                 "other": "Other", "private": "Private"}
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
ESRD_CODES = {9: ("5854", "5855", "5856"), 10: ("N184", "N185", "N186")}


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


def stay_context(t: SourceTables) -> pd.DataFrame:
    """Per stay: age, pre-ICU length of stay (minutes) and admission type."""
    return t.df("""
        SELECT c.stay_id, c.admission_age AS age,
               (epoch(c.intime) - epoch(c.admittime)) / 60.0 AS preiculos, c.admission_type
        FROM cohort c
    """).set_index("stay_id")


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
