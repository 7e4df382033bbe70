"""Template for PhysioNet/CinC Challenge 2012 cohort rows (37 series x 7 statistics).

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

from alfia.cohorts.schema import PHYSIONET2012, PHYSIONET_SERIES, series_column
from alfia.text.abbreviations import Abbreviations
from alfia.text.numbers import CONTINUOUS_DECIMALS, format_number
from alfia.text.templates.common import (
    NOUN, PRONOUN, body_sentence, not_recorded, scores_sentence, subject_phrase, trajectory,
)

VERSION = "1.0"

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


_SERIES_BY_GROUP = {
    group: tuple(p.stem for p in PHYSIONET_SERIES if p.group == group)
    for group in ("dynamic_gcs", "vitals", "labs")
}


def render(v: dict, state: bool) -> str:
    abbr = Abbreviations()
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
    out += body_sentence(v, PRONOUN.get(sex, "The patient"), abbr, state)
    out += scores_sentence([(lambda: abbr("SAPS-I"), v["saps_i"]),
                            (lambda: abbr("SOFA"), v["sofa"])], state)
    for heading, groups in SECTIONS:
        phrases, absent = [], []
        for group in groups:
            for stem in _SERIES_BY_GROUP[group]:
                phrase = series_phrase(stem, v, abbr, state)
                if phrase is not None:
                    phrases.append(phrase)
                elif state:
                    absent.append(stem)
        if phrases:
            out.append(f"{heading}: {'; '.join(phrases)}.")
        if absent:  # named only now, so an abbreviation is expanded where the text first shows it
            out.append(not_recorded([_name(stem, abbr) for stem in absent]))
    return " ".join(out)


TEMPLATE_ARGS = dict(name="physionet2012", version=VERSION, schema=PHYSIONET2012, render=render,
                     category_phrases=CATEGORY_PHRASES)
