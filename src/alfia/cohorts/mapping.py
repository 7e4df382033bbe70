"""Variable mapping between CW-24 variants, as data, and its application to an external cohort.

A model trained on one variant (say MIMIC-IV) scores a cohort of another (eICU, PhysioNet 2012) only
through these tables: each :class:`VariableMap` says which source column carries the same quantity as
a target predictor, in which unit on each side, and how categories translate (``None`` = the source
value says "not recorded", which becomes missing). A target predictor with no source is listed in
``not_mapped`` with the reason; the tabular models get it imputed with the training split's mode or
median (:func:`fit_imputation`, :func:`impute`), the text models see it as absent, because the text
shows only what the source really measured.

After mapping, every numeric value must lie in the target schema's valid range: a value outside it
means a unit or coding mismatch, and :func:`map_cohort` raises an AlfiaError naming the column.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from alfia.cohorts.schema import (
    ID_COLUMN, MIMIC_RACES, OUTCOME_COLUMN, CohortSchema, get_schema,
)
from alfia.cohorts.validate import row_name
from alfia.errors import AlfiaError


@dataclass(frozen=True)
class VariableMap:
    """One target predictor taken from one source column.

    ``source_unit`` / ``target_unit`` are declared here and checked against the two schemas
    (:func:`check_mapping`), so a schema whose unit changes cannot silently keep a stale mapping.
    """

    target: str
    source: str
    source_unit: str | None = None
    target_unit: str | None = None
    categories: dict[str, str | None] | None = None  # source category -> target category / None
    note: str = ""


@dataclass(frozen=True)
class VariantMapping:
    source: str  # variant of the external cohort
    target: str  # variant the model was trained on
    variables: tuple[VariableMap, ...]
    not_mapped: dict[str, str] = field(default_factory=dict)  # target predictor -> why


# Unit conversions a mapping may use: (from, to) -> function. Same unit needs no entry.
UNIT_CONVERSIONS: dict[tuple[str, str], Callable[[np.ndarray], np.ndarray]] = {
    ("in", "cm"): lambda x: x * 2.54,
    ("lb", "kg"): lambda x: x * 0.45359237,
    ("°F", "°C"): lambda x: (x - 32.0) * 5.0 / 9.0,
}


def _same(names, unit: str | None = None, note: str = "") -> tuple[VariableMap, ...]:
    return tuple(VariableMap(n, n, unit, unit, note=note) for n in names)


def _dynamic(score: str) -> tuple[str, ...]:
    return tuple(f"{score}_dynamic_{a}" for a in ("max", "min", "first", "last", "avg", "stddev"))


def _identity_categories(values) -> dict[str, str]:
    return {v: v for v in values}


# --- eICU CW-24 <-> MIMIC-IV CW-24 --------------------------------------------------------------

_EICU_TO_MIMIC_ETHNICITY = {
    "African American": "BLACK/AFRICAN AMERICAN", "Asian": "ASIAN", "Caucasian": "WHITE",
    "Hispanic": "HISPANIC OR LATINO", "Native American": "AMERICAN INDIAN/ALASKA NATIVE",
    "Other/Unknown": "OTHER", "Unknown": "UNKNOWN",
}
_EICU_TO_MIMIC_UNIT = {
    "MICU": "Medical Intensive Care Unit (MICU)", "SICU": "Surgical Intensive Care Unit (SICU)",
    "Med-Surg ICU": "Medical/Surgical Intensive Care Unit (MICU/SICU)",
    "Cardiac ICU": "Coronary Care Unit (CCU)",
    "CSICU": "Cardiac Vascular Intensive Care Unit (CVICU)",
    "CTICU": "Cardiac Vascular Intensive Care Unit (CVICU)",
    "Neuro ICU": "Neuro Surgical Intensive Care Unit (Neuro SICU)",
    "CCU-CTICU": None,  # a mixed coronary / cardiothoracic unit has no single MIMIC counterpart
}


def _mimic_race_to_ethnicity(race: str) -> str:
    if race.startswith("WHITE") or race == "PORTUGUESE":
        return "Caucasian"
    if race.startswith("BLACK"):
        return "African American"
    if race.startswith("ASIAN"):
        return "Asian"
    if race.startswith("HISPANIC") or race == "SOUTH AMERICAN":
        return "Hispanic"
    if race == "AMERICAN INDIAN/ALASKA NATIVE":
        return "Native American"
    if race in ("UNKNOWN", "PATIENT DECLINED TO ANSWER", "UNABLE TO OBTAIN"):
        return "Unknown"
    return "Other/Unknown"  # OTHER, MULTIPLE RACE/ETHNICITY, NATIVE HAWAIIAN OR OTHER PACIFIC ISLANDER


_MIMIC_TO_EICU_UNIT = {
    "Medical Intensive Care Unit (MICU)": "MICU", "Surgical Intensive Care Unit (SICU)": "SICU",
    "Trauma SICU (TSICU)": "SICU", "Medical/Surgical Intensive Care Unit (MICU/SICU)": "Med-Surg ICU",
    "Coronary Care Unit (CCU)": "Cardiac ICU",
    "Cardiac Vascular Intensive Care Unit (CVICU)": "CSICU",
    "Neuro Surgical Intensive Care Unit (Neuro SICU)": "Neuro ICU",
    "Neuro Intermediate": None, "Neuro Stepdown": None,  # step-down beds, not an eICU ICU type
}
_APACHE_NOTE = ("APACHE III's acute physiology score (apsiii, MIMIC) and the APACHE IV total score "
                "(apacheiv, eICU: physiology + age + chronic health) are different quantities")

EICU_TO_MIMIC = VariantMapping(
    source="eicu", target="mimic",
    variables=(
        VariableMap("gender", "gender", categories={"Female": "Female", "Male": "Male", "Unknown": None}),
        VariableMap("admission_age", "age", "years", "years",
                    note="eICU: age at ICU admission; MIMIC-IV: at hospital admission"),
        VariableMap("race", "ethnicity", categories=_EICU_TO_MIMIC_ETHNICITY,
                    note="eICU's coarse groups to MIMIC-IV's main category of each"),
        VariableMap("careunit", "unittype", categories=_EICU_TO_MIMIC_UNIT),
        *_same(("height",), "cm"), *_same(("weight",), "kg"),
        VariableMap("smoker", "smoker", categories={"No": "No", "Yes": "Yes", "Unknown": None}),
        VariableMap("alcohol_abuse", "alcohol_abuse", categories=_identity_categories(("No", "Yes"))),
        *_same(("sapsii", "oasis"), "points"),
        *_same(_dynamic("gcs") + _dynamic("sofa"), "points"),
    ),
    not_mapped={
        "marital_status": "not recorded in eICU CW-24", "insurance": "not recorded in eICU CW-24",
        "language": "not recorded in eICU CW-24", "admission_type": "not recorded in eICU CW-24",
        "admission_location": "not recorded in eICU CW-24",
        "apsiii": _APACHE_NOTE, "sirs": "not in eICU CW-24", "lods": "not in eICU CW-24",
        "meld": "not in eICU CW-24",
    },
)

MIMIC_TO_EICU = VariantMapping(
    source="mimic", target="eicu",
    variables=(
        VariableMap("gender", "gender", categories=_identity_categories(("Female", "Male"))),
        VariableMap("age", "admission_age", "years", "years",
                    note="MIMIC-IV: age at hospital admission; eICU: at ICU admission"),
        VariableMap("ethnicity", "race", categories={r: _mimic_race_to_ethnicity(r) for r in MIMIC_RACES}),
        VariableMap("unittype", "careunit", categories=_MIMIC_TO_EICU_UNIT),
        *_same(("height",), "cm"), *_same(("weight",), "kg"),
        VariableMap("smoker", "smoker", categories=_identity_categories(("No", "Yes"))),
        VariableMap("alcohol_abuse", "alcohol_abuse", categories=_identity_categories(("No", "Yes"))),
        *_same(("sapsii", "oasis"), "points"),
        *_same(_dynamic("gcs") + _dynamic("sofa"), "points"),
    ),
    not_mapped={
        "region": "MIMIC-IV is one hospital; no eICU region", "drug_abuse": "not in MIMIC-IV CW-24",
        "obesity": "not in MIMIC-IV CW-24 (eICU's flag is a documented diagnosis, not measured BMI)",
        "apacheiv": _APACHE_NOTE,
    },
)

# --- PhysioNet 2012 -> MIMIC-IV / eICU ----------------------------------------------------------

_P12_GCS_NOTE = ("PhysioNet 2012 aggregates GCS over 0 h to +24 h; CW-24 over -6 h to +24 h")
_P12_NOT_SAME = ("PhysioNet 2012 gives SAPS-I and a single SOFA, not SAPS II nor the SOFA aggregates")
_P12_GCS = tuple(VariableMap(n, n, "points", "points", note=_P12_GCS_NOTE) for n in _dynamic("gcs"))

PHYSIONET2012_TO_MIMIC = VariantMapping(
    source="physionet2012", target="mimic",
    variables=(
        VariableMap("gender", "gender", categories=_identity_categories(("Female", "Male"))),
        VariableMap("admission_age", "age", "years", "years"),
        VariableMap("careunit", "icu_type", categories={
            "Coronary Care Unit": "Coronary Care Unit (CCU)",
            "Cardiac Surgery Recovery Unit": "Cardiac Vascular Intensive Care Unit (CVICU)",
            "Medical ICU": "Medical Intensive Care Unit (MICU)",
            "Surgical ICU": "Surgical Intensive Care Unit (SICU)"}),
        *_same(("height",), "cm"), *_same(("weight",), "kg"),
        *_P12_GCS,
    ),
    not_mapped={
        **{n: "not recorded in PhysioNet 2012" for n in (
            "marital_status", "race", "insurance", "language", "admission_type", "admission_location",
            "smoker", "alcohol_abuse", "apsiii", "sirs", "lods", "meld", "oasis")},
        "sapsii": _P12_NOT_SAME, **{n: _P12_NOT_SAME for n in _dynamic("sofa")},
    },
)

PHYSIONET2012_TO_EICU = VariantMapping(
    source="physionet2012", target="eicu",
    variables=(
        VariableMap("gender", "gender", categories=_identity_categories(("Female", "Male"))),
        VariableMap("age", "age", "years", "years"),
        VariableMap("unittype", "icu_type", categories={
            "Coronary Care Unit": "Cardiac ICU", "Cardiac Surgery Recovery Unit": "CSICU",
            "Medical ICU": "MICU", "Surgical ICU": "SICU"}),
        *_same(("height",), "cm"), *_same(("weight",), "kg"),
        *_P12_GCS,
    ),
    not_mapped={
        **{n: "not recorded in PhysioNet 2012" for n in (
            "region", "ethnicity", "smoker", "alcohol_abuse", "drug_abuse", "obesity", "apacheiv",
            "oasis")},
        "sapsii": _P12_NOT_SAME, **{n: _P12_NOT_SAME for n in _dynamic("sofa")},
    },
)

def _from_compact(mapping: VariantMapping) -> VariantMapping:
    """The same mapping from the compact PhysioNet 2012 cohort, which keeps only the lowest and last GCS."""
    compact = get_schema("physionet2012_compact")
    kept = tuple(v for v in mapping.variables if v.source in compact)
    dropped = {v.target: "the compact PhysioNet 2012 cohort keeps only the lowest and last GCS"
               for v in mapping.variables if v.source not in compact}
    return replace(mapping, source="physionet2012_compact", variables=kept,
                   not_mapped={**mapping.not_mapped, **dropped})


MAPPINGS: dict[tuple[str, str], VariantMapping] = {
    (m.source, m.target): m
    for m in (EICU_TO_MIMIC, MIMIC_TO_EICU, PHYSIONET2012_TO_MIMIC, PHYSIONET2012_TO_EICU,
              _from_compact(PHYSIONET2012_TO_MIMIC), _from_compact(PHYSIONET2012_TO_EICU))
}


def identity_mapping(variant: str) -> VariantMapping:
    """Same variant on both sides: every predictor to itself (ranges are still checked)."""
    schema = get_schema(variant)
    return VariantMapping(variant, variant, tuple(
        VariableMap(v.name, v.name, v.unit, v.unit,
                    _identity_categories(v.categories) if v.categories else None)
        for v in schema.predictors))


def get_mapping(source: str, target: str) -> VariantMapping:
    if source == target:
        return identity_mapping(source)
    try:
        return MAPPINGS[(source, target)]
    except KeyError:
        known = ", ".join(f"{s} -> {t}" for s, t in MAPPINGS)
        raise AlfiaError(f"no variable mapping from the {source} variant to {target}; "
                         f"known mappings: {known} (and any variant to itself)") from None


def check_mapping(mapping: VariantMapping) -> None:
    """The mapping against both schemas: names, kinds, units (with a known conversion), categories.

    Every target predictor is either mapped once or listed in ``not_mapped``.
    """
    src, tgt = get_schema(mapping.source), get_schema(mapping.target)
    where = f"mapping {mapping.source} -> {mapping.target}"
    seen: set[str] = set()
    for m in mapping.variables:
        if m.target not in tgt or m.source not in src:
            raise AlfiaError(f"{where}: {m.source!r} -> {m.target!r} names a variable outside the schemas")
        if m.target in seen:
            raise AlfiaError(f"{where}: {m.target!r} is mapped twice")
        seen.add(m.target)
        s, t = src[m.source], tgt[m.target]
        if s.is_categorical != t.is_categorical:
            raise AlfiaError(f"{where}: {m.source!r} and {m.target!r} differ in kind")
        if (m.source_unit, m.target_unit) != (s.unit, t.unit):
            raise AlfiaError(f"{where}: {m.target!r} declares units {m.source_unit!r} -> {m.target_unit!r}, "
                             f"but the schemas record {s.unit!r} -> {t.unit!r}")
        if s.unit != t.unit and (s.unit, t.unit) not in UNIT_CONVERSIONS:
            raise AlfiaError(f"{where}: no conversion from {s.unit!r} to {t.unit!r} for {m.target!r}")
        if t.is_categorical:
            cats = m.categories or {}
            if set(cats) != set(s.categories or ()):
                raise AlfiaError(f"{where}: the categories of {m.source!r} are not all mapped "
                                 f"(missing: {sorted(set(s.categories or ()) - set(cats))})")
            bad = [v for v in cats.values() if v is not None and v not in (t.categories or ())]
            if bad:
                raise AlfiaError(f"{where}: {m.target!r} has no category {bad[0]!r}")
    left = [n for n in tgt.predictor_names if n not in seen and n not in mapping.not_mapped]
    if left:
        raise AlfiaError(f"{where}: target predictor(s) neither mapped nor explained: {', '.join(left)}")


@dataclass
class MappedCohort:
    """An external cohort in the target variant's columns, before any imputation.

    ``frame`` holds ``stay_id``, every target predictor (NaN where the source has no value) and the
    outcome column when the source had one; the split column is dropped (external cohorts are scored
    whole). ``variables`` describes each target predictor: its source column and status.
    """

    frame: pd.DataFrame
    source_variant: str
    target_variant: str
    variables: list[dict]

    @property
    def features(self) -> pd.DataFrame:
        """stay_id and the predictors only: what a model may see before it has scored."""
        return self.frame.drop(columns=[OUTCOME_COLUMN], errors="ignore")


def map_cohort(df: pd.DataFrame, source_variant: str, target_variant: str, *,
               source: str = "external cohort") -> MappedCohort:
    """Translate ``df`` (a ``source_variant`` cohort) into ``target_variant``'s predictors.

    Raises AlfiaError naming the column when a source value has no declared translation, is not a
    number where one belongs, or falls outside the target's valid range after mapping.
    """
    mapping = get_mapping(source_variant, target_variant)
    target = get_schema(target_variant)
    src_schema = get_schema(source_variant)
    if ID_COLUMN not in df.columns:
        raise AlfiaError(f"{source}: no {ID_COLUMN!r} column")
    by_target = {m.target: m for m in mapping.variables}
    out = {ID_COLUMN: df[ID_COLUMN].to_numpy()}
    variables = []
    for var in target.predictors:
        m = by_target.get(var.name)
        info = {"variable": var.name, "source_column": m.source if m else None,
                "note": (m.note if m else mapping.not_mapped.get(var.name, ""))}
        if m is None:
            out[var.name] = np.full(len(df), np.nan) if not var.is_categorical else [None] * len(df)
            variables.append(info | {"status": "not in source variant"})
            continue
        if m.source not in df.columns:
            out[var.name] = np.full(len(df), np.nan) if not var.is_categorical else [None] * len(df)
            variables.append(info | {"status": "source column absent"})
            continue
        col = df[m.source]
        label = (f"column {m.source!r}" if m.source == var.name
                 else f"column {m.source!r} (mapped to {var.name!r})")
        if var.is_categorical:
            cats = m.categories or {}
            values = [None if pd.isna(v) else str(v) for v in col.tolist()]
            unknown = [i for i, v in enumerate(values) if v is not None and v not in cats]
            if unknown:
                i = unknown[0]
                raise AlfiaError(f"{source}: {row_name(df, i)}, {label}: {values[i]!r} has no "
                                 f"translation to {target_variant}; known values: "
                                 f"{', '.join(map(repr, cats))} ({len(unknown)} row(s) in all)")
            out[var.name] = [None if v is None else cats[v] for v in values]
        else:
            numeric = pd.to_numeric(col, errors="coerce")
            bad = numeric.isna() & col.notna()
            if bad.any():
                i = int(np.flatnonzero(bad.to_numpy())[0])
                raise AlfiaError(f"{source}: {row_name(df, i)}, {label}: {col.iloc[i]!r} is not a number")
            values = numeric.to_numpy(dtype=float)
            s_unit = src_schema[m.source].unit
            if s_unit != var.unit:
                values = UNIT_CONVERSIONS[(s_unit, var.unit)](values)
            outside = var.outside_range(values)
            if outside.any():
                i = int(np.flatnonzero(outside)[0])
                raise AlfiaError(f"{source}: {row_name(df, i)}, {label}: {values[i]:g} is outside {target_variant}'s "
                                 f"valid range {var.range_text} after mapping ({int(outside.sum())} row(s) in all)")
            out[var.name] = values
        variables.append(info | {"status": "mapped"})
    if OUTCOME_COLUMN in df.columns:
        out[OUTCOME_COLUMN] = df[OUTCOME_COLUMN].to_numpy()
    frame = pd.DataFrame(out, index=df.index)
    for var in target.predictors:
        if var.is_categorical:
            frame[var.name] = frame[var.name].astype(object)
    return MappedCohort(frame, source_variant, target_variant, variables)


def fit_imputation(train: pd.DataFrame, schema: CohortSchema) -> dict[str, dict]:
    """Per predictor, from the training rows: the fill value (mode or median) and its missing share."""
    stats = {}
    for var in schema.predictors:
        col = train[var.name] if var.name in train.columns else pd.Series(dtype=float)
        observed = col.dropna()
        if var.is_categorical:
            fill = str(observed.astype(str).value_counts().sort_index().idxmax()) if len(observed) else None
            how = "mode"
        else:
            fill = float(pd.to_numeric(observed).median()) if len(observed) else None
            how = "median"
        stats[var.name] = {"fill": fill, "how": how,
                           "train_missing_share": float(col.isna().mean()) if len(col) else 1.0}
    return stats


def impute(mapped: MappedCohort, stats: dict[str, dict]) -> tuple[pd.DataFrame, list[dict]]:
    """The mapped features with training fills where the paper imputes; and one record per imputed variable.

    A variable is imputed where the external cohort lacks it (not in the source variant, column
    absent, or no value at all), and where a stay lacks a value the training data never lacked (the
    model never learned what missing means there). Missing values of variables that were also missing
    in training are left for the models' own missing-value handling.
    """
    features = mapped.features.copy()
    status = {v["variable"]: v["status"] for v in mapped.variables}
    records = []
    n = len(features)
    for name, s in stats.items():
        missing = features[name].isna()
        if not missing.any():
            continue
        if status[name] != "mapped":
            reason = status[name]
        elif missing.all():
            reason = "no value in the external cohort"
        elif s["train_missing_share"] == 0.0:
            reason = "missing for some stays; never missing in training"
        else:
            continue
        if s["fill"] is None:
            continue  # nothing to fill with: the models see missing, as in training
        features.loc[missing, name] = s["fill"]
        records.append({"variable": name, "reason": reason, "fill": s["fill"], "fill_rule": f"training {s['how']}",
                        "n_stays": int(missing.sum()), "share_of_stays": float(missing.sum()) / n})
    return features, records


def to_variant(df: pd.DataFrame, target_variant: str, *, source_variant: str | None = None,
               source: str = "cohort") -> pd.DataFrame:
    """``df`` in ``target_variant``'s columns: unchanged when it already is one, else mapped (no
    imputation, split dropped). The text encoders use this, so text shows only what was measured."""
    from alfia.cohorts.io import infer_variant

    try:
        own = source_variant or infer_variant(df, None, source)
    except AlfiaError:
        return df  # a partial table of no recognisable variant: the template reports what it lacks
    if own == target_variant:
        return df
    return map_cohort(df, own, target_variant, source=source).frame
