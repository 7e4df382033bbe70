"""Templates for PhysioNet/CinC Challenge 2012 cohort rows: the compact chart aggregates (the default
cohort, ``physionet2012_compact``) and all 37 series x 7 statistics (``physionet2012``).

Compact rows read like a first-day chart summary: ``heart rate 72-118 bpm (mean 94.25)``, ``sodium
135-141 mmol/L``, ``GCS lowest 8, last 11``, ``urine output 1850 mL in total``, ``on mechanical
ventilation``; a range whose ends are equal is written once (``sodium 139 mmol/L``).

For the full rows:

Every series is written as compactly as a lossless rendering allows. With ``d`` = the series' values
as written (see :mod:`alfia.text.numbers`), the forms are, from shortest:

- no reading (count 0 or missing): the series is left out (or listed as "not recorded");
- one reading: ``sodium 139 mmol/L`` -- the value is the first, last, lowest, highest and mean; the
  standard deviation of one reading is undefined (0 or missing in the cohort);
- two readings: ``sodium 139 then 141 mmol/L`` -- first, then last; lowest and highest are the smaller
  and larger, the mean is their average, the SD is |first - last| / sqrt(2) (sample SD, ddof=1);
- n >= 2 equal readings: ``temperature 37 °C in all 3 readings`` (SD 0);
- otherwise: ``heart rate 88 to 92 bpm (29 readings, range 80-101, mean 89.42, SD 8.21)``;
- any statistic missing where the others are present: every value labelled.

A short form is used only when the values it implies, rounded as the text rounds them, equal the
cohort's own, so the text always gives back every number of the row at its stated precision.
"""

from __future__ import annotations

import math

from alfia.cohorts.schema import PHYSIONET2012, PHYSIONET2012_COMPACT, PHYSIONET_SERIES, compact_stats, series_column
from alfia.text.abbreviations import Abbreviations, PlainAbbreviations
from alfia.text.numbers import CONTINUOUS_DECIMALS, format_number
from alfia.text.templates.common import (
    NOUN, PRONOUN, body_sentence, not_recorded, scores_sentence, subject_phrase, trajectory,
)

VERSION = "1.0"
COMPACT_VERSION = "1.0"

# stem -> (name, abbreviation or None, unit as written). A name with "{}" takes the abbreviation,
# expanded on first mention.
SERIES_TEXT: dict[str, tuple[str, str | None, str | None]] = {
    "gcs": ("{}", "GCS", "points"),
    "heart_rate": ("heart rate", None, "bpm"),
    "invasive_systolic_bp": ("invasive systolic blood pressure", None, "mmHg"),
    "invasive_diastolic_bp": ("invasive diastolic blood pressure", None, "mmHg"),
    "invasive_mean_bp": ("invasive {}", "MAP", "mmHg"),
    "noninvasive_systolic_bp": ("non-invasive systolic blood pressure", None, "mmHg"),
    "noninvasive_diastolic_bp": ("non-invasive diastolic blood pressure", None, "mmHg"),
    "noninvasive_mean_bp": ("non-invasive {}", "MAP", "mmHg"),
    "respiratory_rate": ("respiratory rate", None, "breaths/min"),
    "temperature": ("temperature", None, "°C"),
    "urine_output": ("urine output", None, "mL"),
    "weight_series": ("charted weight", None, "kg"),
    "mechanical_ventilation": ("mechanical ventilation flag", None, None),
    "fio2": ("{}", "FiO2", None),
    "sao2": ("{}", "SaO2", "%"),
    "pao2": ("{}", "PaO2", "mmHg"),
    "paco2": ("{}", "PaCO2", "mmHg"),
    "ph": ("arterial pH", None, None),
    "bicarbonate": ("bicarbonate", None, "mmol/L"),
    "lactate": ("lactate", None, "mmol/L"),
    "sodium": ("sodium", None, "mmol/L"),
    "potassium": ("potassium", None, "mmol/L"),
    "magnesium": ("magnesium", None, "mmol/L"),
    "glucose": ("glucose", None, "mg/dL"),
    "blood_urea_nitrogen": ("{}", "BUN", "mg/dL"),
    "creatinine": ("creatinine", None, "mg/dL"),
    "hematocrit": ("hematocrit", None, "%"),
    "white_cell_count": ("{}", "WBC", "K/uL"),
    "platelets": ("platelets", None, "K/uL"),
    "albumin": ("albumin", None, "g/dL"),
    "bilirubin": ("bilirubin", None, "mg/dL"),
    "alkaline_phosphatase": ("{}", "ALP", "IU/L"),
    "alanine_aminotransferase": ("{}", "ALT", "IU/L"),
    "aspartate_aminotransferase": ("{}", "AST", "IU/L"),
    "cholesterol": ("cholesterol", None, "mg/dL"),
    "troponin_i": ("troponin I", None, "ng/mL"),
    "troponin_t": ("troponin T", None, "ng/mL"),
}
assert set(SERIES_TEXT) == {p.stem for p in PHYSIONET_SERIES}

ICU_TYPE = {
    "Coronary Care Unit": "CCU", "Cardiac Surgery Recovery Unit": "CSRU", "Medical ICU": "MICU",
    "Surgical ICU": "SICU",
}
CATEGORY_PHRASES = {"icu_type": {k: f"the {a}" for k, a in ICU_TYPE.items()}}

# Column names of each series' statistics in trajectory order + count, precomputed once.
_STATS = ("first", "last", "min", "max", "mean", "std")
SERIES_COLUMNS = {
    p.stem: (tuple(series_column(p, s) for s in _STATS), series_column(p, "count"))
    for p in PHYSIONET_SERIES
}
SECTIONS = (
    ("Over the first day", ("dynamic_gcs",)),
    ("Vital signs", ("vitals",)),
    ("Laboratory results", ("labs",)),
)
_SQRT2 = math.sqrt(2.0)


def _name(stem: str, abbr: Abbreviations) -> str:
    pattern, abbreviation, _ = SERIES_TEXT[stem]
    return pattern.format(abbr(abbreviation)) if abbreviation else pattern


def series_phrase(stem: str, v: dict, abbr: Abbreviations, state: bool) -> str | None:
    """One series in the shortest lossless form (module docstring); None when it has no reading."""
    columns, count_column = SERIES_COLUMNS[stem]
    count = v[count_column]
    first = v[columns[0]]
    if (count is None or count == "0") and first is None:
        if all(v[c] is None for c in columns):
            return None
    stats = [first, v[columns[1]], v[columns[2]], v[columns[3]], v[columns[4]], v[columns[5]]]
    _, last, lowest, highest, mean, sd = stats
    name_pattern, abbreviation, unit = SERIES_TEXT[stem]
    name = name_pattern.format(abbr(abbreviation)) if abbreviation else name_pattern
    unit_text = f" {unit}" if unit else ""
    constant = first is not None and first == last == lowest == highest == mean and (
        sd == "0" or (sd is None and count == "1"))
    if constant and count is not None and count != "0":
        if stem == "mechanical_ventilation" and first == "1":
            return "on mechanical ventilation" + ("" if count == "1" else f" in all {count} readings")
        if count == "1":
            return f"{name} {first}{unit_text}"
        if count != "2":
            return f"{name} {first}{unit_text} in all {count} readings"
    if count == "2" and None not in stats:
        x, y = float(first), float(last)
        if (lowest == (first if x <= y else last) and highest == (last if x <= y else first)
                and mean == format_number((x + y) / 2, CONTINUOUS_DECIMALS)
                and sd == format_number(abs(x - y) / _SQRT2, CONTINUOUS_DECIMALS)):
            return f"{name} {first} then {last}{unit_text}"
    return trajectory(name, unit, stats, abbr, state, count=count)


_PARAM = {p.stem: p for p in PHYSIONET_SERIES}
_SERIES_BY_GROUP = {
    group: tuple(p.stem for p in PHYSIONET_SERIES if p.group == group)
    for group in ("dynamic_gcs", "vitals", "labs")
}


# Shorter names where the compact text lists pressures together ("in mmHg: arterial systolic 78-145, ...").
COMPACT_NAMES = {"invasive_systolic_bp": "arterial systolic", "invasive_mean_bp": "arterial mean",
                 "noninvasive_systolic_bp": "cuff systolic", "noninvasive_mean_bp": "cuff mean",
                 "respiratory_rate": "respiratory rate", "urine_output": "urine output"}


def compact_series_phrase(stem: str, v: dict, abbr: Abbreviations, state: bool, *,
                          with_unit: bool = True) -> str | None:
    """One series of the compact cohort (module docstring); None when it has no reading."""
    p = _PARAM[stem]
    values = {stat: v[series_column(p, stat)] for stat in compact_stats(p)}
    if all(x is None for x in values.values()):
        return None
    name = COMPACT_NAMES.get(stem) or _name(stem, abbr)
    _, _, unit = SERIES_TEXT[stem]
    if not with_unit:
        unit = None
    unit_text = f" {unit}" if unit else ""
    if stem == "mechanical_ventilation":
        return "on mechanical ventilation" if values["max"] == "1" else "not on mechanical ventilation"
    if stem == "urine_output":
        return f"{name} {values['total']}{unit_text} in total"
    if stem == "gcs":
        lowest, last = values["min"], values["last"]
        if lowest is not None and lowest == last:
            return f"{name} {lowest}"
        items = [f"{label} {x}" for label, x in (("lowest", lowest), ("last", last)) if x is not None]
        return f"{name} {', '.join(items)}"
    lowest, highest, mean = values["min"], values["max"], values.get("mean")
    has_mean = "mean" in values
    if lowest is not None and highest is not None and (mean is not None or not has_mean):
        if lowest == highest and (not has_mean or mean == lowest):
            return f"{name} {lowest}{unit_text}"
        return f"{name} {lowest}-{highest}{unit_text}" + (f" (mean {mean})" if has_mean else "")
    items = [f"{label} {x}" for label, x in (("lowest", lowest), ("highest", highest), ("mean", mean))
             if x is not None]
    return f"{name}{f' in {unit}' if unit else ''}: {', '.join(items)}"


def _opening(v: dict, abbr: Abbreviations, state: bool, *, with_bmi: bool = True) -> list[str]:
    """Who the patient is, where they were admitted, body size and the severity scores."""
    sex = v["gender"]
    missing = []
    age = v["age"]
    if age is None and state:
        missing.append("age")
    if sex is None and state:
        missing.append("sex")
    # PhysioNet 2012 writes every age above 89 as 90.
    subject = subject_phrase(age, (), NOUN.get(sex, "patient"), (),
                             age_capped=age is not None and float(age) >= 90)
    unit = v["icu_type"]
    if unit is not None:
        sentence = f"{subject} was admitted to the {abbr(ICU_TYPE[unit])}."
    else:
        sentence = f"{subject} was admitted to intensive care."
        if state:
            missing.append("intensive care unit type")
    out = [sentence]
    if missing:
        out.append(not_recorded(missing))
    # The compact text leaves out the BMI: it is derived from height and weight, not a cohort value.
    out += body_sentence(v if with_bmi else {**v, "bmi": None}, PRONOUN.get(sex, "The patient"), abbr, state)
    out += scores_sentence([(lambda: abbr("SAPS-I"), v["saps_i"]),
                            (lambda: abbr("SOFA"), v["sofa"])], state)
    return out


def _render(v: dict, state: bool, phrase_of, stems_by_group) -> str:
    abbr = Abbreviations()
    out = _opening(v, abbr, state)
    for heading, groups in SECTIONS:
        phrases, absent = [], []
        for group in groups:
            for stem in stems_by_group[group]:
                phrase = phrase_of(stem, v, abbr, state)
                if phrase is not None:
                    phrases.append(phrase)
                elif state:
                    absent.append(stem)
        if phrases:
            out.append(f"{heading}: {'; '.join(phrases)}.")
        if absent:  # named only now, so an abbreviation is expanded where the text first shows it
            out.append(not_recorded([_name(stem, abbr) for stem in absent]))
    return " ".join(out)


def render(v: dict, state: bool) -> str:
    return _render(v, state, series_phrase, _SERIES_BY_GROUP)


_COMPACT_SERIES_BY_GROUP = {group: tuple(stem for stem in stems if compact_stats(_PARAM[stem]))
                            for group, stems in _SERIES_BY_GROUP.items()}


# Labs are grouped by unit, which is written once per group: "Labs in mmol/L: sodium 137-141, ...".
_COMPACT_LAB_UNITS: dict[str | None, tuple[str, ...]] = {}
for _stem in _COMPACT_SERIES_BY_GROUP["labs"]:
    _COMPACT_LAB_UNITS.setdefault(SERIES_TEXT[_stem][2], ())
    _COMPACT_LAB_UNITS[SERIES_TEXT[_stem][2]] += (_stem,)


_COMPACT_PRESSURES = ("invasive_systolic_bp", "invasive_mean_bp", "noninvasive_systolic_bp", "noninvasive_mean_bp")
_COMPACT_VITALS: dict[str | None, tuple[str, ...]] = {"bpm": ("heart_rate",), "mmHg": _COMPACT_PRESSURES}
_COMPACT_VITALS.update({None: tuple(stem for stem in _COMPACT_SERIES_BY_GROUP["vitals"]
                                    if stem not in ("heart_rate", *_COMPACT_PRESSURES))})


def _unit_groups(v: dict, abbr: Abbreviations, state: bool, groups: dict, absent: list) -> list[str]:
    """'in mmol/L: sodium 137-141, potassium 3.8-5.1' per unit; a group without a unit names its own."""
    out = []
    for unit, stems in groups.items():
        phrases = []
        for stem in stems:
            phrase = compact_series_phrase(stem, v, abbr, state, with_unit=unit is None)
            if phrase is not None:
                phrases.append(phrase)
            elif state:
                absent.append(stem)
        if phrases:
            out.append((f"in {unit}: " if unit else "") + ", ".join(phrases))
    return out


def render_compact(v: dict, state: bool) -> str:
    abbr = PlainAbbreviations()
    out = _opening(v, abbr, state, with_bmi=False)
    absent = []
    gcs = compact_series_phrase("gcs", v, abbr, state)
    if gcs is not None:
        out.append(f"Over the first day: {gcs}.")
    elif state:
        absent.append("gcs")
    for heading, groups in (("Vital signs", _COMPACT_VITALS), ("Labs", _COMPACT_LAB_UNITS)):
        parts = _unit_groups(v, abbr, state, groups, absent)
        if parts:  # "Vital signs in bpm: heart rate 71-91; ..." or "Vital signs: temperature ..."
            out.append(f"{heading}{' ' if parts[0].startswith('in ') else ': '}{'; '.join(parts)}.")
    if absent:
        out.append(not_recorded([_name(stem, abbr) for stem in absent]))
    return " ".join(out)


TEMPLATE_ARGS = dict(name="physionet2012", version=VERSION, schema=PHYSIONET2012, render=render,
                     category_phrases=CATEGORY_PHRASES)
COMPACT_TEMPLATE_ARGS = dict(name="physionet2012_compact", version=COMPACT_VERSION, schema=PHYSIONET2012_COMPACT,
                             render=render_compact, category_phrases=CATEGORY_PHRASES)
