"""Canonical CW-24 cohort schemas, as data.

One :class:`CohortSchema` per variant. The two published variants (``mimic``, ``eicu``) follow the
CW-24 variable tables (``shared/seeds/cw24-*-variables.txt``): 31 predictors for MIMIC-IV and 26 for
eICU. ``physionet2012`` is the open PhysioNet/CinC Challenge 2012 cohort, mapped to CW-24 names where
the concept matches (age, gender, height, weight, GCS dynamics) and given clear names otherwise.

Every other stage reads these objects: validation checks types, ranges and categories against them,
the text templates render them, and the baselines take their categorical/continuous split from them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

SCHEMA_VERSION = "1.0"

ID_COLUMN = "stay_id"
OUTCOME_COLUMN = "hospital_expire_flag"
SPLIT_COLUMN = "split"
PATIENT_ID_COLUMN = "subject_id"  # optional; keeps one patient's stays inside one split
# Optional: the hospital a stay belongs to (eICU's hospitalid). It says where a row lives (the sites of
# `alfia federated train`), so it travels with the rows but is never a predictor.
SITE_COLUMN = "hospitalid"
IDENTIFIER_COLUMNS = (ID_COLUMN, PATIENT_ID_COLUMN, SITE_COLUMN)  # carried through every table, never predictors
SPLITS = ("train", "val", "test")

VariableKind = Literal["continuous", "integer", "categorical"]
Group = Literal[
    "demographics", "admission", "body", "lifestyle", "severity", "dynamic_gcs", "dynamic_sofa",
    "vitals", "labs",
]


@dataclass(frozen=True)
class RecordWindow:
    """Hours relative to ICU admission in which a variable's source values may lie.

    ``start_h=None`` means "any time before" (baseline facts known at admission);
    ``end_h=None`` means no upper bound, which only the outcome may have.
    """

    start_h: float | None
    end_h: float | None
    label: str

    def ends_after(self, hours: float) -> bool:
        return self.end_h is None or self.end_h > hours


BASELINE = RecordWindow(None, 0.0, "admission (baseline)")
SCORE_WINDOW = RecordWindow(-6.0, 24.0, "-6 h to +24 h of ICU admission")
FIRST_24H = RecordWindow(0.0, 24.0, "0 h to +24 h of ICU admission")
WHOLE_STAY = RecordWindow(None, None, "entire hospitalization (outcome label)")


@dataclass(frozen=True)
class Variable:
    name: str
    kind: VariableKind
    description: str
    group: Group
    window: RecordWindow
    unit: str | None = None
    valid_range: tuple[float, float] | None = None
    categories: tuple[str, ...] | None = None
    abbreviation: str | None = None  # e.g. "GCS"; the text encoder expands it once

    @property
    def is_categorical(self) -> bool:
        return self.kind == "categorical"

    def outside_range(self, values: np.ndarray) -> np.ndarray:
        """Where ``values`` (NaN = missing) leave ``valid_range``; infinities always do."""
        lo, hi = self.valid_range if self.valid_range is not None else (-np.inf, np.inf)
        with np.errstate(invalid="ignore"):
            return (values < lo) | (values > hi) | np.isinf(values)

    @property
    def range_text(self) -> str:
        """'[3, 15] points': the valid range as messages show it."""
        lo, hi = self.valid_range if self.valid_range is not None else (-np.inf, np.inf)
        return f"[{lo:g}, {hi:g}]{f' {self.unit}' if self.unit else ''}"


@dataclass(frozen=True)
class CohortSchema:
    variant: str
    source_description: str
    predictors: tuple[Variable, ...]
    outcome_source_name: str
    mortality_rate: float | None = None  # published rate for the variant, if any
    window_hours: float = 24.0
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def predictor_names(self) -> list[str]:
        return [v.name for v in self.predictors]

    @property
    def categorical(self) -> list[str]:
        return [v.name for v in self.predictors if v.is_categorical]

    @property
    def numeric(self) -> list[str]:
        return [v.name for v in self.predictors if not v.is_categorical]

    @property
    def columns(self) -> list[str]:
        """Column order of a cohort Parquet file."""
        return [ID_COLUMN, *self.predictor_names, OUTCOME_COLUMN, SPLIT_COLUMN]

    def __getitem__(self, name: str) -> Variable:
        for v in self.predictors:
            if v.name == name:
                return v
        raise KeyError(f"variable {name!r} is not in the {self.variant} schema")

    def __contains__(self, name: object) -> bool:
        return any(v.name == name for v in self.predictors)


# --- shared building blocks -------------------------------------------------------------------

YES_NO = ("No", "Yes")
GCS_RANGE = (3.0, 15.0)
SOFA_RANGE = (0.0, 24.0)
AGGREGATES = ("max", "min", "first", "last", "avg", "stddev")
_AGG_WORDS = {
    "max": "Maximum", "min": "Minimum", "first": "First", "last": "Last", "avg": "Mean",
    "stddev": "Standard deviation of",
}


def dynamic_variables(score: Literal["gcs", "sofa"]) -> tuple[Variable, ...]:
    """The six window aggregates of GCS or SOFA (CW-24 'Dynamic Clinical Assessments')."""
    full = "Glasgow Coma Scale" if score == "gcs" else "Sequential Organ Failure Assessment"
    rng = GCS_RANGE if score == "gcs" else SOFA_RANGE
    out = []
    for agg in AGGREGATES:
        is_std = agg == "stddev"
        # min/max/first/last of GCS are observed scores, hence integers; avg and stddev are not.
        kind: VariableKind = "integer" if agg in ("max", "min", "first", "last") else "continuous"
        out.append(
            Variable(
                name=f"{score}_dynamic_{agg}",
                kind=kind,
                description=f"{_AGG_WORDS[agg]} {full} in the window",
                group="dynamic_gcs" if score == "gcs" else "dynamic_sofa",
                window=SCORE_WINDOW,
                unit="points",
                valid_range=(0.0, 12.0) if is_std else rng,
                abbreviation=score.upper(),
            )
        )
    return tuple(out)


def _score(name, description, rng, abbreviation, kind: VariableKind = "integer") -> Variable:
    return Variable(name, kind, description, "severity", SCORE_WINDOW, "points", rng,
                    abbreviation=abbreviation)


HEIGHT = Variable("height", "continuous", "Patient height", "body", BASELINE, "cm", (50.0, 250.0))
WEIGHT = Variable("weight", "continuous", "Patient weight", "body", BASELINE, "kg", (10.0, 700.0))

# --- MIMIC-IV ---------------------------------------------------------------------------------

MIMIC_RACES = (
    "AMERICAN INDIAN/ALASKA NATIVE", "ASIAN", "ASIAN - ASIAN INDIAN", "ASIAN - CHINESE",
    "ASIAN - KOREAN", "ASIAN - SOUTH EAST ASIAN", "BLACK/AFRICAN", "BLACK/AFRICAN AMERICAN",
    "BLACK/CAPE VERDEAN", "BLACK/CARIBBEAN ISLAND", "HISPANIC OR LATINO",
    "HISPANIC/LATINO - CENTRAL AMERICAN", "HISPANIC/LATINO - COLUMBIAN", "HISPANIC/LATINO - CUBAN",
    "HISPANIC/LATINO - DOMINICAN", "HISPANIC/LATINO - GUATEMALAN", "HISPANIC/LATINO - HONDURAN",
    "HISPANIC/LATINO - MEXICAN", "HISPANIC/LATINO - PUERTO RICAN", "HISPANIC/LATINO - SALVADORAN",
    "MULTIPLE RACE/ETHNICITY", "NATIVE HAWAIIAN OR OTHER PACIFIC ISLANDER", "OTHER",
    "PATIENT DECLINED TO ANSWER", "PORTUGUESE", "SOUTH AMERICAN", "UNABLE TO OBTAIN", "UNKNOWN",
    "WHITE", "WHITE - BRAZILIAN", "WHITE - EASTERN EUROPEAN", "WHITE - OTHER EUROPEAN",
    "WHITE - RUSSIAN",
)
# MIMIC-IV 2.x writes 'ENGLISH' or '?'; 3.x writes language names. Extraction maps both to these.
MIMIC_LANGUAGES = (
    "American Sign Language", "Amharic", "Arabic", "Armenian", "Bengali", "Chinese", "English",
    "Farsi", "French", "Greek", "Haitian", "Hindi", "Italian", "Japanese", "Kabuverdianu", "Khmer",
    "Korean", "Polish", "Portuguese", "Russian", "Somali", "Spanish", "Thai", "Vietnamese", "Other",
    "Unknown",
)
MIMIC_ADMISSION_TYPES = (
    "AMBULATORY OBSERVATION", "DIRECT EMER.", "DIRECT OBSERVATION", "ELECTIVE", "EU OBSERVATION",
    "EW EMER.", "OBSERVATION ADMIT", "SURGICAL SAME DAY ADMISSION", "URGENT",
)
MIMIC_ADMISSION_LOCATIONS = (
    "AMBULATORY SURGERY TRANSFER", "CLINIC REFERRAL", "EMERGENCY ROOM", "INFORMATION NOT AVAILABLE",
    "INTERNAL TRANSFER TO OR FROM PSYCH", "PACU", "PHYSICIAN REFERRAL", "PROCEDURE SITE",
    "TRANSFER FROM HOSPITAL", "TRANSFER FROM SKILLED NURSING FACILITY", "WALK-IN/SELF REFERRAL",
    "Unknown",
)
MIMIC_CAREUNITS = (
    "Cardiac Vascular Intensive Care Unit (CVICU)", "Coronary Care Unit (CCU)",
    "Medical Intensive Care Unit (MICU)", "Medical/Surgical Intensive Care Unit (MICU/SICU)",
    "Neuro Intermediate", "Neuro Stepdown", "Neuro Surgical Intensive Care Unit (Neuro SICU)",
    "Surgical Intensive Care Unit (SICU)", "Trauma SICU (TSICU)",
)

MIMIC_IV = CohortSchema(
    variant="mimic",
    source_description="CW-24 MIMIC-IV subset (first ICU stay of adults on their first admission)",
    outcome_source_name="hospital_expire_flag",
    mortality_rate=0.1084,
    predictors=(
        Variable("gender", "categorical", "Biological sex", "demographics", BASELINE,
                 categories=("Female", "Male")),
        Variable("admission_age", "continuous", "Age at hospital admission", "demographics",
                 BASELINE, "years", (18.0, 120.0)),
        Variable("marital_status", "categorical", "Marital status at admission", "demographics",
                 BASELINE, categories=("Divorced", "Married", "Single", "Widowed", "Unknown")),
        Variable("race", "categorical", "Self-reported race or ethnicity", "demographics",
                 BASELINE, categories=MIMIC_RACES),
        Variable("insurance", "categorical", "Primary insurance / payer", "demographics", BASELINE,
                 categories=("Medicaid", "Medicare", "No Charge", "Other", "Private", "Unknown")),
        Variable("language", "categorical", "Primary language", "demographics", BASELINE,
                 categories=MIMIC_LANGUAGES),
        Variable("admission_type", "categorical", "Admission category", "admission", BASELINE,
                 categories=MIMIC_ADMISSION_TYPES),
        Variable("admission_location", "categorical", "Location the patient was admitted from",
                 "admission", BASELINE, categories=MIMIC_ADMISSION_LOCATIONS),
        Variable("careunit", "categorical", "First ICU care unit of the stay", "admission",
                 BASELINE, categories=MIMIC_CAREUNITS),
        HEIGHT,
        WEIGHT,
        Variable("smoker", "categorical", "Documented current or past smoking", "lifestyle",
                 BASELINE, categories=YES_NO),
        Variable("alcohol_abuse", "categorical", "Documented history of alcohol abuse",
                 "lifestyle", BASELINE, categories=YES_NO),
        _score("apsiii", "APACHE III score", (0.0, 299.0), "APACHE"),
        _score("sapsii", "Simplified Acute Physiology Score II", (0.0, 163.0), "SAPS II"),
        _score("sirs", "Systemic Inflammatory Response Syndrome criteria met", (0.0, 4.0), "SIRS"),
        _score("lods", "Logistic Organ Dysfunction System score", (0.0, 22.0), "LODS"),
        _score("meld", "Model for End-Stage Liver Disease score", (6.0, 40.0), "MELD",
               kind="continuous"),
        _score("oasis", "Oxford Acute Severity of Illness Score", (0.0, 90.0), "OASIS"),
        *dynamic_variables("gcs"),
        *dynamic_variables("sofa"),
    ),
)

# --- eICU -------------------------------------------------------------------------------------

EICU = CohortSchema(
    variant="eicu",
    source_description="CW-24 eICU-CRD subset (unit stays of adults)",
    outcome_source_name="hosp_mort",
    mortality_rate=0.0877,
    predictors=(
        Variable("region", "categorical", "Geographic region of the hospital", "admission",
                 BASELINE, categories=("Midwest", "Northeast", "South", "West", "Unknown")),
        Variable("ethnicity", "categorical", "Recorded ethnicity", "demographics", BASELINE,
                 categories=("African American", "Asian", "Caucasian", "Hispanic",
                             "Native American", "Other/Unknown", "Unknown")),
        Variable("unittype", "categorical", "Type of ICU", "admission", BASELINE,
                 categories=("CCU-CTICU", "CSICU", "CTICU", "Cardiac ICU", "MICU", "Med-Surg ICU",
                             "Neuro ICU", "SICU")),
        Variable("gender", "categorical", "Biological sex", "demographics", BASELINE,
                 categories=("Female", "Male", "Unknown")),
        Variable("age", "continuous", "Age at ICU admission (90 means 90 or older)",
                 "demographics", BASELINE, "years", (18.0, 120.0)),
        HEIGHT,
        WEIGHT,
        Variable("smoker", "categorical", "Documented current or past smoking", "lifestyle",
                 BASELINE, categories=("No", "Yes", "Unknown")),
        Variable("alcohol_abuse", "categorical", "Documented history of alcohol abuse",
                 "lifestyle", BASELINE, categories=YES_NO),
        Variable("drug_abuse", "categorical", "Documented history of illicit drug abuse",
                 "lifestyle", BASELINE, categories=YES_NO),
        Variable("obesity", "categorical", "Obesity (BMI of 30 or more)", "lifestyle", BASELINE,
                 categories=YES_NO),
        _score("apacheiv", "APACHE IV score", (0.0, 286.0), "APACHE"),
        _score("sapsii", "Simplified Acute Physiology Score II", (0.0, 163.0), "SAPS II"),
        _score("oasis", "Oxford Acute Severity of Illness Score", (0.0, 90.0), "OASIS"),
        *dynamic_variables("gcs"),
        *dynamic_variables("sofa"),
    ),
)

# --- PhysioNet 2012 ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SeriesParameter:
    """One PhysioNet 2012 time-series parameter and the column stem it maps to."""

    parameter: str  # name in the record files
    stem: str  # column stem in the cohort
    description: str
    group: Group
    unit: str | None
    valid_range: tuple[float, float]
    abbreviation: str | None = None


# Plausible physiological ranges: a measurement outside them is a recording error in the source
# (PhysioNet 2012 holds e.g. zero blood pressures from flushed lines) and is dropped, and counted.
PHYSIONET_SERIES: tuple[SeriesParameter, ...] = (
    SeriesParameter("GCS", "gcs", "Glasgow Coma Scale", "dynamic_gcs", "points", GCS_RANGE, "GCS"),
    SeriesParameter("HR", "heart_rate", "Heart rate", "vitals", "bpm", (1, 300)),
    SeriesParameter("SysABP", "invasive_systolic_bp", "Invasive systolic arterial blood pressure",
                    "vitals", "mmHg", (1, 300)),
    SeriesParameter("DiasABP", "invasive_diastolic_bp",
                    "Invasive diastolic arterial blood pressure", "vitals", "mmHg", (1, 250)),
    SeriesParameter("MAP", "invasive_mean_bp", "Invasive mean arterial pressure", "vitals",
                    "mmHg", (1, 300), "MAP"),
    SeriesParameter("NISysABP", "noninvasive_systolic_bp", "Non-invasive systolic blood pressure",
                    "vitals", "mmHg", (1, 300)),
    SeriesParameter("NIDiasABP", "noninvasive_diastolic_bp",
                    "Non-invasive diastolic blood pressure", "vitals", "mmHg", (1, 250)),
    SeriesParameter("NIMAP", "noninvasive_mean_bp", "Non-invasive mean arterial pressure",
                    "vitals", "mmHg", (1, 300)),
    SeriesParameter("RespRate", "respiratory_rate", "Respiratory rate", "vitals", "breaths/min",
                    (1, 100)),
    SeriesParameter("Temp", "temperature", "Body temperature", "vitals", "°C", (25, 45)),
    SeriesParameter("Urine", "urine_output", "Urine output per measurement", "vitals", "mL",
                    (0, 5000)),
    SeriesParameter("Weight", "weight_series", "Body weight (repeated measurements)", "vitals",
                    "kg", (10, 700)),
    SeriesParameter("MechVent", "mechanical_ventilation", "Mechanical ventilation in use (1 = yes)",
                    "vitals", None, (0, 1)),
    SeriesParameter("FiO2", "fio2", "Fraction of inspired oxygen", "labs", "fraction",
                    (0.21, 1.0), "FiO2"),
    SeriesParameter("SaO2", "sao2", "Arterial oxygen saturation", "labs", "%", (20, 100), "SaO2"),
    SeriesParameter("PaO2", "pao2", "Partial pressure of arterial oxygen", "labs", "mmHg",
                    (10, 800), "PaO2"),
    SeriesParameter("PaCO2", "paco2", "Partial pressure of arterial carbon dioxide", "labs",
                    "mmHg", (5, 200), "PaCO2"),
    SeriesParameter("pH", "ph", "Arterial pH", "labs", None, (6.5, 8.0)),
    SeriesParameter("HCO3", "bicarbonate", "Serum bicarbonate", "labs", "mmol/L", (1, 60)),
    SeriesParameter("Lactate", "lactate", "Lactate", "labs", "mmol/L", (0.1, 40)),
    SeriesParameter("Na", "sodium", "Serum sodium", "labs", "mmol/L", (90, 200)),
    SeriesParameter("K", "potassium", "Serum potassium", "labs", "mmol/L", (0.5, 15)),
    SeriesParameter("Mg", "magnesium", "Serum magnesium", "labs", "mmol/L", (0.1, 15)),
    SeriesParameter("Glucose", "glucose", "Serum glucose", "labs", "mg/dL", (1, 2000)),
    SeriesParameter("BUN", "blood_urea_nitrogen", "Blood urea nitrogen", "labs", "mg/dL",
                    (0, 300), "BUN"),
    SeriesParameter("Creatinine", "creatinine", "Serum creatinine", "labs", "mg/dL", (0.05, 30)),
    SeriesParameter("HCT", "hematocrit", "Hematocrit", "labs", "%", (5, 80)),
    SeriesParameter("WBC", "white_cell_count", "White blood cell count", "labs", "10^3/uL",
                    (0.1, 500), "WBC"),
    SeriesParameter("Platelets", "platelets", "Platelet count", "labs", "10^3/uL", (1, 2000)),
    SeriesParameter("Albumin", "albumin", "Serum albumin", "labs", "g/dL", (0.5, 10)),
    SeriesParameter("Bilirubin", "bilirubin", "Total bilirubin", "labs", "mg/dL", (0, 60)),
    SeriesParameter("ALP", "alkaline_phosphatase", "Alkaline phosphatase", "labs", "IU/L",
                    (1, 5000), "ALP"),
    SeriesParameter("ALT", "alanine_aminotransferase", "Alanine aminotransferase", "labs", "IU/L",
                    (1, 20000), "ALT"),
    SeriesParameter("AST", "aspartate_aminotransferase", "Aspartate aminotransferase", "labs",
                    "IU/L", (1, 30000), "AST"),
    SeriesParameter("Cholesterol", "cholesterol", "Total cholesterol", "labs", "mg/dL", (10, 1000)),
    SeriesParameter("TroponinI", "troponin_i", "Troponin I", "labs", "ng/mL", (0, 100)),
    SeriesParameter("TroponinT", "troponin_t", "Troponin T", "labs", "ng/mL", (0, 50)),
)
SERIES_STATS = ("first", "last", "min", "max", "mean", "std", "count")
# The compact PhysioNet 2012 cohort keeps the aggregates a clinician reads on a first-day chart, as the
# CW-24 MIMIC-IV variant does: the worst and last GCS, the range of each vital sign (systolic and mean
# pressures) and of each lab, the day's urine total and whether the patient was ventilated. Its text runs p95 <= 256 MiniLM
# tokens instead of ~950 for all seven statistics of all 37 series (BENCHMARKS.md, text section).
COMPACT_STATS: dict[str, tuple[str, ...]] = {
    "gcs": ("min", "last"),
    # Systolic and mean pressure carry what the diastolic adds; a chart reads them first.
    "invasive_diastolic_bp": (),
    "noninvasive_diastolic_bp": (),
    "urine_output": ("total",),
    "weight_series": (),  # the admission weight is a predictor of its own
    "mechanical_ventilation": ("max",),
}
COMPACT_LAB_STATS = ("min", "max")  # every series not named above: its range
# Decimals the compact cohort keeps: the precision a chart shows (mean arterial pressure 58.67 -> 59).
COMPACT_DECIMALS: dict[str, int] = {
    "temperature": 1, "fio2": 2, "ph": 2, "potassium": 1, "magnesium": 1, "creatinine": 1,
    "lactate": 1, "albumin": 1, "bilirubin": 1, "white_cell_count": 1, "hematocrit": 1,
    "troponin_i": 2, "troponin_t": 2,
}  # every other series: whole numbers
# GCS keeps the CW-24 names for the aggregates both sources share.
_GCS_STAT_NAMES = {"first": "first", "last": "last", "min": "min", "max": "max", "mean": "avg",
                   "std": "stddev"}
ICU_TYPES = ("Coronary Care Unit", "Cardiac Surgery Recovery Unit", "Medical ICU", "Surgical ICU")


def compact_stats(param: SeriesParameter) -> tuple[str, ...]:
    """The statistics of one series that the compact PhysioNet 2012 cohort keeps."""
    return COMPACT_STATS.get(param.stem, COMPACT_LAB_STATS)


def series_column(param: SeriesParameter, stat: str) -> str:
    """Cohort column of one statistic of one PhysioNet 2012 series."""
    if param.stem == "gcs" and stat in _GCS_STAT_NAMES:
        return f"gcs_dynamic_{_GCS_STAT_NAMES[stat]}"
    return f"{param.stem}_{stat}"


def _series_variables(compact: bool = False) -> tuple[Variable, ...]:
    out = []
    for p in PHYSIONET_SERIES:
        for stat in (compact_stats(p) if compact else SERIES_STATS):
            if stat == "total":
                kind, unit, rng = "continuous", p.unit, (0.0, 50_000.0)
            elif stat == "count":
                kind, unit, rng = "integer", "measurements", (0.0, 10_000.0)
            elif stat == "std":
                lo, hi = p.valid_range
                kind, unit, rng = "continuous", p.unit, (0.0, float(hi - lo))
            else:
                integer = p.stem == "gcs" and stat != "mean"
                kind, unit, rng = ("integer" if integer else "continuous"), p.unit, p.valid_range
                if compact:  # values are rounded to COMPACT_DECIMALS: widen the range to the rounded ends
                    scale = 10 ** COMPACT_DECIMALS.get(p.stem, 0)
                    rng = (math.floor(rng[0] * scale) / scale, math.ceil(rng[1] * scale) / scale)
            description = "total over the window" if stat == "total" else stat
            out.append(Variable(series_column(p, stat), kind, f"{p.description}: {description}", p.group,
                                FIRST_24H, unit, (float(rng[0]), float(rng[1])),
                                abbreviation=p.abbreviation))
    return tuple(out)


_PHYSIONET_STATIC = (
    Variable("age", "continuous", "Age (90 means 90 or older)", "demographics", BASELINE,
             "years", (15.0, 120.0)),
    Variable("gender", "categorical", "Biological sex", "demographics", BASELINE,
             categories=("Female", "Male")),
    Variable("icu_type", "categorical", "ICU type", "admission", BASELINE,
             categories=ICU_TYPES),
    HEIGHT,
    WEIGHT,
    _score("saps_i", "Simplified Acute Physiology Score I", (0.0, 163.0), "SAPS-I"),
    _score("sofa", "Sequential Organ Failure Assessment score", SOFA_RANGE, "SOFA"),
)
# All seven statistics of all 37 series (266 predictors): `alfia cohort physionet2012 --aggregates full`.
PHYSIONET2012 = CohortSchema(
    variant="physionet2012",
    source_description="PhysioNet/CinC Challenge 2012 (MIMIC-II ICU stays), first 24 hours, all aggregates",
    outcome_source_name="In-hospital_death",
    mortality_rate=None,
    predictors=(*_PHYSIONET_STATIC, *_series_variables()),
)
# The default PhysioNet 2012 cohort: the aggregates of COMPACT_STATS.
PHYSIONET2012_COMPACT = CohortSchema(
    variant="physionet2012_compact",
    source_description="PhysioNet/CinC Challenge 2012 (MIMIC-II ICU stays), first 24 hours, chart aggregates",
    outcome_source_name="In-hospital_death",
    mortality_rate=None,
    predictors=(*_PHYSIONET_STATIC, *_series_variables(compact=True)),
)
PHYSIONET_AGGREGATES = {"compact": PHYSIONET2012_COMPACT, "full": PHYSIONET2012}

SCHEMAS: dict[str, CohortSchema] = {s.variant: s for s in (MIMIC_IV, EICU, PHYSIONET2012,
                                                           PHYSIONET2012_COMPACT)}


def get_schema(variant: str) -> CohortSchema:
    try:
        return SCHEMAS[variant]
    except KeyError:
        raise ValueError(
            f"unknown cohort variant {variant!r}; known variants: {', '.join(SCHEMAS)}"
        ) from None
