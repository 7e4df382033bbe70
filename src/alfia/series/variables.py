"""The hourly variables: one shared vocabulary of names and units, and how each source maps onto it.

Every hourly table names its variables from :data:`VOCABULARY`, in the unit given there, so a model
trained on one source can read another source's table by name and unit (:func:`align_variables`).
A source column whose unit differs is converted when it is built (``scale``); a variable a source does
not have is simply absent from its table, and a model reading that table sees it as never measured.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

from alfia.cohorts.schema import PHYSIONET_SERIES
from alfia.errors import AlfiaError

# How the measurements of one hour become the hour's value.
Aggregate = Literal["mean", "sum", "max", "last"]


@dataclass(frozen=True)
class SeriesVariable:
    name: str
    unit: str | None
    aggregate: Aggregate
    description: str

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "SeriesVariable":
        return cls(name=d["name"], unit=d.get("unit"), aggregate=d.get("aggregate", "mean"),
                   description=d.get("description", ""))


def _v(name, unit, aggregate, description) -> SeriesVariable:
    return SeriesVariable(name, unit, aggregate, description)


# Static descriptors enter as measurements of hour 1 (known at admission) and are carried forward.
STATIC = (
    _v("age", "years", "last", "Age at admission"),
    _v("sex_male", None, "last", "Sex (1 = male, 0 = female)"),
    _v("height", "cm", "last", "Height"),
    _v("weight", "kg", "last", "Body weight"),
)

# The PhysioNet 2012 series keep their cohort stems (alfia.cohorts.schema.PHYSIONET_SERIES); FiO2 is
# stored in % like the other sources. Weight joins the static weight. Urine is summed per hour (hourly
# urine output); mechanical ventilation takes the hour's maximum.
_PHYSIONET_OVERRIDES = {"FiO2": ("%", 100.0), "Weight": ("kg", 1.0)}
_PHYSIONET_NAME = {"Weight": "weight"}
_PHYSIONET_AGGREGATE = {"Urine": "sum", "MechVent": "max"}

PHYSIONET_VARIABLES: dict[str, tuple[str, float]] = {}  # record parameter -> (variable, scale)
_series_vars = []
for _p in PHYSIONET_SERIES:
    _name = _PHYSIONET_NAME.get(_p.parameter, _p.stem)
    _unit, _scale = _PHYSIONET_OVERRIDES.get(_p.parameter, (_p.unit, 1.0))
    PHYSIONET_VARIABLES[_p.parameter] = (_name, _scale)
    if _name != "weight":
        _series_vars.append(_v(_name, _unit, _PHYSIONET_AGGREGATE.get(_p.parameter, "mean"),
                               _p.description))

# Blood pressure by any method (invasive when measured that hour, else non-invasive), as MIMIC-IV's
# and ricu's concepts define it: these are the names other sources share.
COMBINED_BP = (
    _v("systolic_bp", "mmHg", "mean", "Systolic blood pressure (invasive, else non-invasive)"),
    _v("diastolic_bp", "mmHg", "mean", "Diastolic blood pressure (invasive, else non-invasive)"),
    _v("mean_bp", "mmHg", "mean", "Mean arterial pressure (invasive, else non-invasive)"),
)
PHYSIONET_COMBINED_BP = {"systolic_bp": ("invasive_systolic_bp", "noninvasive_systolic_bp"),
                         "diastolic_bp": ("invasive_diastolic_bp", "noninvasive_diastolic_bp"),
                         "mean_bp": ("invasive_mean_bp", "noninvasive_mean_bp")}

OTHER = (
    _v("spo2", "%", "mean", "Peripheral oxygen saturation (pulse oximetry)"),
    _v("hemoglobin", "g/dL", "mean", "Hemoglobin"),
    _v("chloride", "mmol/L", "mean", "Serum chloride"),
    _v("calcium", "mg/dL", "mean", "Serum calcium"),
    _v("ionized_calcium", "mmol/L", "mean", "Ionized calcium"),
    _v("phosphate", "mg/dL", "mean", "Serum phosphate"),
    _v("base_excess", "mmol/L", "mean", "Base excess"),
    _v("direct_bilirubin", "mg/dL", "mean", "Direct bilirubin"),
    _v("bands", "%", "mean", "Band neutrophils"),
    _v("neutrophils", "%", "mean", "Neutrophils"),
    _v("lymphocytes", "%", "mean", "Lymphocytes"),
    _v("creatine_kinase", "IU/L", "mean", "Creatine kinase"),
    _v("ck_mb", "ng/mL", "mean", "Creatine kinase MB"),
    _v("crp", "mg/L", "mean", "C-reactive protein"),
    _v("fibrinogen", "mg/dL", "mean", "Fibrinogen"),
    _v("inr", None, "mean", "International normalised ratio"),
    _v("pt", "s", "mean", "Prothrombin time"),
    _v("ptt", "s", "mean", "Partial thromboplastin time"),
    _v("mch", "pg", "mean", "Mean corpuscular hemoglobin"),
    _v("mchc", "%", "mean", "Mean corpuscular hemoglobin concentration"),
    _v("mcv", "fL", "mean", "Mean corpuscular volume"),
    _v("methemoglobin", "%", "mean", "Methemoglobin"),
    _v("gcs_motor", "points", "last", "GCS motor response"),
    _v("gcs_verbal", "points", "last", "GCS verbal response"),
    _v("gcs_eyes", "points", "last", "GCS eye opening"),
    _v("norepinephrine", "mcg/kg/min", "max", "Norepinephrine infusion rate (0 when none runs)"),
    _v("epinephrine", "mcg/kg/min", "max", "Epinephrine infusion rate (0 when none runs)"),
    _v("dopamine", "mcg/kg/min", "max", "Dopamine infusion rate (0 when none runs)"),
    _v("dobutamine", "mcg/kg/min", "max", "Dobutamine infusion rate (0 when none runs)"),
    _v("noninvasive_ventilation", None, "max", "Non-invasive ventilation running (1 = yes, 0 = no)"),
)

VOCABULARY: dict[str, SeriesVariable] = {v.name: v for v in (*STATIC, *_series_vars, *COMBINED_BP,
                                                              *OTHER)}
PHYSIONET_NAMES = tuple(v.name for v in (*STATIC, *_series_vars, *COMBINED_BP))

# ricu's concept names in YAIB's hourly eICU export -> (variable, scale to our unit). ricu's units
# (ricu concept dictionary): electrolytes in mEq/L = mmol/L for the monovalent ions listed, FiO2 in %,
# magnesium in mg/dL (PhysioNet's magnesium is declared in mmol/L, so the two do not match by unit).
YAIB_VARIABLES: dict[str, tuple[str, str | None, float]] = {  # column -> (variable, source unit, scale)
    "alb": ("albumin", "g/dL", 1.0), "alp": ("alkaline_phosphatase", "IU/L", 1.0),
    "alt": ("alanine_aminotransferase", "IU/L", 1.0), "ast": ("aspartate_aminotransferase", "IU/L", 1.0),
    "be": ("base_excess", "mmol/L", 1.0), "bicar": ("bicarbonate", "mmol/L", 1.0),
    "bili": ("bilirubin", "mg/dL", 1.0), "bili_dir": ("direct_bilirubin", "mg/dL", 1.0),
    "bnd": ("bands", "%", 1.0), "bun": ("blood_urea_nitrogen", "mg/dL", 1.0),
    "ca": ("calcium", "mg/dL", 1.0), "cai": ("ionized_calcium", "mmol/L", 1.0),
    "ck": ("creatine_kinase", "IU/L", 1.0), "ckmb": ("ck_mb", "ng/mL", 1.0),
    "cl": ("chloride", "mmol/L", 1.0), "crea": ("creatinine", "mg/dL", 1.0), "crp": ("crp", "mg/L", 1.0),
    "dbp": ("diastolic_bp", "mmHg", 1.0), "fgn": ("fibrinogen", "mg/dL", 1.0), "fio2": ("fio2", "%", 1.0),
    "glu": ("glucose", "mg/dL", 1.0), "hgb": ("hemoglobin", "g/dL", 1.0), "hr": ("heart_rate", "bpm", 1.0),
    "inr_pt": ("inr", None, 1.0), "k": ("potassium", "mmol/L", 1.0), "lact": ("lactate", "mmol/L", 1.0),
    "lymph": ("lymphocytes", "%", 1.0), "map": ("mean_bp", "mmHg", 1.0), "mch": ("mch", "pg", 1.0),
    "mchc": ("mchc", "%", 1.0), "mcv": ("mcv", "fL", 1.0), "methb": ("methemoglobin", "%", 1.0),
    "mg": ("magnesium", "mg/dL", 1.0), "na": ("sodium", "mmol/L", 1.0), "neut": ("neutrophils", "%", 1.0),
    "o2sat": ("spo2", "%", 1.0), "pco2": ("paco2", "mmHg", 1.0), "ph": ("ph", None, 1.0),
    "phos": ("phosphate", "mg/dL", 1.0), "plt": ("platelets", "10^3/uL", 1.0), "po2": ("pao2", "mmHg", 1.0),
    "ptt": ("ptt", "s", 1.0), "resp": ("respiratory_rate", "breaths/min", 1.0),
    "sbp": ("systolic_bp", "mmHg", 1.0), "temp": ("temperature", "°C", 1.0),
    "tnt": ("troponin_t", "ng/mL", 1.0), "urine": ("urine_output", "mL", 1.0),
    "wbc": ("white_cell_count", "10^3/uL", 1.0),
}
YAIB_STATIC = {"age": "age", "height": "height", "weight": "weight"}  # sex is mapped to sex_male


def variable_of(name: str, unit: str | None = None) -> SeriesVariable:
    """The vocabulary entry in the unit the source gives (never relabelled: a model trained on another
    unit then finds no match, see :func:`align_variables`); a source-only variable gets its own entry."""
    known = VOCABULARY.get(name)
    if known is None:
        return SeriesVariable(name, unit, "mean", name)
    return known if unit == known.unit else SeriesVariable(name, unit, known.aggregate, known.description)


# Unit pairs that name the same scale, and conversions between scales (from, to) -> factor.
_SAME_UNIT = {frozenset({"mEq/L", "mmol/L"})}
_CONVERT = {("fraction", "%"): 100.0, ("%", "fraction"): 0.01}


def unit_factor(source: str | None, target: str | None) -> float | None:
    """Factor that turns a value in ``source`` units into ``target`` units, or None when unknown."""
    if source == target or frozenset({source, target}) in _SAME_UNIT:
        return 1.0
    return _CONVERT.get((source, target))


@dataclass(frozen=True)
class Alignment:
    """How a model's variables are found in a table: matched (with a unit factor), or absent and why."""

    matched: dict[str, float]   # model variable -> factor applied to the table's values
    absent: dict[str, str]      # model variable -> reason (masked as never measured)

    def to_dict(self) -> dict:
        return {"matched": dict(self.matched), "absent": dict(self.absent)}


def align_variables(model_vars: list[SeriesVariable], table_vars: list[SeriesVariable]) -> Alignment:
    """Map the variables a model was trained on onto a table's variables by name and unit.

    A variable missing from the table, or present in a unit with no known conversion, is absent: the
    model sees it as never measured (mask 0), never as a silent zero.
    """
    by_name = {v.name: v for v in table_vars}
    matched, absent = {}, {}
    for v in model_vars:
        t = by_name.get(v.name)
        if t is None:
            absent[v.name] = "not in the table"
            continue
        factor = unit_factor(t.unit, v.unit)
        if factor is None:
            absent[v.name] = f"unit {t.unit!r} in the table, {v.unit!r} in the model, no known conversion"
        else:
            matched[v.name] = factor
    if not matched:
        raise AlfiaError("no variable of the model is in the table (by name and unit): nothing to predict from")
    return Alignment(matched, absent)
