"""Test helpers for alfia.text: random schema-valid cohorts and an independent text -> numbers parser.

The parser is written from the *phrasing* of the text, not from the templates' code: it knows that
'weighs 72.5 kg' is the weight and 'heart rate 88 then 92 bpm' two heart-rate readings, and it blanks
out every number it reads, so a number left over afterwards is one the text invented.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd

from alfia.cohorts.schema import (
    ID_COLUMN, OUTCOME_COLUMN, PHYSIONET_SERIES, SPLIT_COLUMN, get_schema, series_column,
)

from shared_data import shared_dataset  # noqa: F401  (re-exported for the round-trip tests)

NUM = r"(\d+(?:\.\d+)?)"
NUMBER_RE = re.compile(r"(?<![A-Za-z0-9.])\d+(?:\.\d+)?")

# --- precision the text promises (README 'text' section) -----------------------------------------


def stated_decimals(variable) -> int:
    if variable.kind == "integer":
        return 0
    if variable.name in ("age", "admission_age"):
        return 1
    return 2


# --- random schema-valid cohorts (used until/besides the cohort generators) ------------------------


def _aggregates(readings: np.ndarray) -> dict[str, float]:
    return {
        "first": float(readings[0]), "last": float(readings[-1]), "min": float(readings.min()),
        "max": float(readings.max()), "mean": float(readings.mean()),
        "std": float(readings.std(ddof=1)) if len(readings) > 1 else float("nan"),
    }


def random_cohort(variant: str, n: int, seed: int, missing_rate: float = 0.1) -> pd.DataFrame:
    """Random rows valid under the schema: ranges, categories, integer kinds, consistent aggregates."""
    if variant == "physionet2012_compact":
        return compact_from_full(random_cohort("physionet2012", n, seed, missing_rate))
    rng = np.random.default_rng(seed)
    schema = get_schema(variant)
    rows = []
    for i in range(n):
        row: dict = {ID_COLUMN: 1000 + i}
        for var in schema.predictors:
            if var.is_categorical:
                row[var.name] = str(rng.choice(var.categories))
            elif var.name.startswith(("gcs_dynamic", "sofa_dynamic")) or var.group in ("vitals", "labs"):
                continue  # filled from simulated readings below
            elif var.name.endswith("_count"):
                continue
            else:
                lo, hi = var.valid_range
                if var.kind == "integer":
                    row[var.name] = int(rng.integers(int(lo), int(hi) + 1))
                else:
                    lo2, hi2 = (lo, min(hi, lo + 3 * (hi - lo) / 4))
                    row[var.name] = round(float(rng.uniform(lo2, hi2)), int(rng.integers(0, 3)))
        if variant == "physionet2012":
            for p in PHYSIONET_SERIES:
                _physionet_series(rng, p, row)
        else:
            for score, (lo, hi) in (("gcs", (3, 15)), ("sofa", (0, 24))):
                k = int(rng.integers(1, 12))
                readings = rng.integers(lo, hi + 1, size=k).astype(float)
                if rng.random() < 0.2:
                    readings[:] = readings[0]
                agg = _aggregates(readings)
                if k == 1:
                    agg["std"] = 0.0 if rng.random() < 0.5 else float("nan")
                names = {"first": "first", "last": "last", "min": "min", "max": "max",
                         "mean": "avg", "std": "stddev"}
                for stat, value in agg.items():
                    row[f"{score}_dynamic_{names[stat]}"] = min(value, 12.0) if stat == "std" else value
        rows.append(row)
    df = pd.DataFrame(rows)
    # Missing values: single cells, and sometimes a whole dynamic block / series.
    for var in schema.predictors:
        if var.name in df and not var.name.endswith("_count"):
            mask = rng.random(n) < missing_rate / 3
            df.loc[mask, var.name] = np.nan if not var.is_categorical else None
    df[OUTCOME_COLUMN] = rng.integers(0, 2, size=n)
    df[SPLIT_COLUMN] = rng.choice(["train", "val", "test"], size=n)
    return df


def _physionet_series(rng, p, row) -> None:
    lo, hi = p.valid_range
    u = rng.random()
    k = 0 if u < 0.15 else 1 if u < 0.35 else 2 if u < 0.55 else int(rng.integers(3, 40))
    cols = {s: series_column(p, s) for s in ("first", "last", "min", "max", "mean", "std", "count")}
    if k == 0:
        for s, c in cols.items():
            row[c] = 0 if s == "count" else float("nan")
        return
    if p.stem in ("gcs",):
        readings = rng.integers(int(lo), int(hi) + 1, size=k).astype(float)
    elif p.stem == "mechanical_ventilation":
        readings = np.ones(k)
    else:
        decimals = int(rng.integers(0, 3))
        span_hi = lo + (hi - lo) / 3
        readings = np.round(rng.uniform(lo, span_hi, size=k), decimals)
        readings = np.clip(readings, lo, hi)
    if k >= 2 and rng.random() < 0.1:
        readings[:] = readings[0]
    agg = _aggregates(readings)
    if k == 1 and rng.random() < 0.5:
        agg["std"] = 0.0
    for s, value in agg.items():
        row[cols[s]] = value
    row[cols["count"]] = k


# --- parsing text back into numbers --------------------------------------------------------------


class Reader:
    """Reads numbers out of a text, blanking each one it reads so leftovers can be found."""

    def __init__(self, text: str):
        self.text = text
        self.masked = list(text)
        self.values: dict[str, float] = {}

    def take(self, column: str, value: float) -> None:
        assert column not in self.values, f"{column} read twice in: {self.text}"
        self.values[column] = value

    def blank(self, start: int, end: int) -> None:
        for j in range(start, end):
            self.masked[j] = "#"

    def find(self, pattern: str, columns: tuple[str, ...], text_start: int = 0,
             text_end: int | None = None) -> re.Match | None:
        regex = re.compile(pattern)
        end = len(self.text) if text_end is None else text_end
        matches = list(regex.finditer(self.text, text_start, end))
        assert len(matches) <= 1, f"pattern {pattern!r} matched {len(matches)} times in: {self.text}"
        if not matches:
            return None
        m = matches[0]
        for k, column in enumerate(columns, 1):
            if m.group(k) is not None and column:
                self.take(column, float(m.group(k)))
                self.blank(m.start(k), m.end(k))
        return m

    def leftover_numbers(self) -> list[str]:
        return NUMBER_RE.findall("".join(self.masked))


def _abbr(abbreviation: str) -> str:
    """Regex, anchored where a name starts: an abbreviation with or without its expansion before it."""
    a = re.escape(abbreviation)
    return rf"(?:[A-Za-z][A-Za-z/ -]*? \({a}\)|(?<![\w-]){a})"


def _abbr_end(abbreviation: str) -> str:
    """Regex for searching: the end of a mention, '(GCS)' after its expansion or a plain 'GCS'."""
    a = re.escape(abbreviation)
    return rf"(?:\({a}\)|(?<![\w(-]){a})"


def _trajectory(reader: Reader, segment_start: int, segment_end: int, columns: dict[str, str],
                unit: str | None, lead: str = "") -> None:
    """Positional or labelled series phrase between the name and the segment end."""
    seg = reader.text[segment_start:segment_end]
    u = " points?" if unit == "points" else rf" {re.escape(unit)}" if unit else ""
    sd = r"(?:standard deviation \(SD\)|SD)"
    positional = (rf"^{lead}{NUM} to {NUM}{u} \((?:{NUM} readings, )?range {NUM}-{NUM}, mean {NUM}, "
                  rf"{sd} {NUM}\)$")
    m = re.match(positional, seg)
    if m:
        order = ("first", "last", "count", "min", "max", "mean", "std")
        for k, stat in enumerate(order, 1):
            if m.group(k) is not None:
                reader.take(columns[stat], float(m.group(k)))
                reader.blank(segment_start + m.start(k), segment_start + m.end(k))
        return
    unit_part = rf" in {re.escape(unit)}" if unit else ""
    assert seg.startswith(f"{unit_part}: "), f"unparsed series phrase {seg!r}"
    labels = {"first": "first", "last": "last", "lowest": "min", "highest": "max", "mean": "mean",
              "SD": "std", "standard deviation (SD)": "std"}
    offset = segment_start + len(unit_part) + 2
    for item in seg[len(unit_part) + 2:].split(", "):
        m = re.fullmatch(rf"{NUM} readings", item)
        if m:
            reader.take(columns["count"], float(m.group(1)))
        else:
            m = re.fullmatch(rf"(first|last|lowest|highest|mean|SD|standard deviation \(SD\)) "
                             rf"(?:{NUM}|not recorded)", item)
            assert m, f"unparsed labelled item {item!r} in {seg!r}"
            if m.group(2) is not None:
                reader.take(columns[labels[m.group(1)]], float(m.group(2)))
        reader.blank(offset, offset + len(item))
        offset += len(item) + 2


BODY = (
    (r"is " + NUM + r" cm tall", ("height",)),
    (r"weighs " + NUM + r" kg", ("weight",)),
    (_abbr_end("BMI") + r" of " + NUM + r" kg/m²", ("bmi",)),
)


def _common(reader: Reader, age_column: str, scores: dict[str, str]) -> None:
    reader.find(r"(?:^|\b)An? " + NUM + r"-year-old", (age_column,))
    for pattern, columns in BODY:
        reader.find(pattern, columns)
    for abbreviation, column in scores.items():
        suffix = " score" if abbreviation == "SIRS" else ""
        reader.find(_abbr_end(abbreviation) + suffix + " " + NUM + r"(?=[,.]| and )", (column,))


def _cw24_dynamic(reader: Reader) -> None:
    text = reader.text
    start = text.find("Over the first day, ")
    if start < 0:
        return
    start += len("Over the first day, ")
    end = text.index(".", start)
    while end + 1 < len(text) and text[end + 1].isdigit():
        end = text.index(".", end + 1)
    names = {"gcs": r"the " + _abbr("GCS"), "sofa": r"the " + _abbr("SOFA") + " score"}
    pos = start
    for segment in text[start:end].split("; "):
        for stem, name in names.items():
            m = re.match(name, segment)
            if m:
                cols = {s: f"{stem}_dynamic_{a}" for s, a in zip(
                    ("first", "last", "min", "max", "mean", "std"),
                    ("first", "last", "min", "max", "avg", "stddev"))}
                cols["count"] = None
                rest = segment[m.end():]
                stayed = re.fullmatch(rf" stayed at {NUM} points?", rest)
                if stayed:
                    x = float(stayed.group(1))
                    for stat in ("first", "last", "min", "max", "mean"):
                        reader.take(cols[stat], x)
                    reader.take(cols["std"], 0.0)
                    reader.blank(pos + m.end() + stayed.start(1), pos + m.end() + stayed.end(1))
                    break
                lead = " went from " if segment[m.end():].startswith(" went from ") else ""
                if lead:
                    _trajectory(reader, pos + m.end() + 1, pos + len(segment), cols, "points",
                                lead="went from ")
                else:
                    _trajectory(reader, pos + m.end(), pos + len(segment), cols, "points")
                break
        else:
            raise AssertionError(f"unknown dynamic segment {segment!r}")
        pos += len(segment) + 2


def parse_cw24(text: str, variant: str) -> Reader:
    reader = Reader(text)
    if variant == "mimic":
        _common(reader, "admission_age", {"APACHE III": "apsiii", "SAPS II": "sapsii", "SIRS": "sirs",
                                          "LODS": "lods", "MELD": "meld", "OASIS": "oasis"})
    else:
        _common(reader, "age", {"APACHE IV": "apacheiv", "SAPS II": "sapsii", "OASIS": "oasis"})
    _cw24_dynamic(reader)
    return reader


# PhysioNet 2012: series phrase names and units, written out here independently of the template.
PHYSIONET_NAMES = {
    "gcs": (_abbr("GCS"), "points"),
    "heart_rate": ("heart rate", "bpm"),
    "invasive_systolic_bp": ("invasive systolic blood pressure", "mmHg"),
    "invasive_diastolic_bp": ("invasive diastolic blood pressure", "mmHg"),
    "invasive_mean_bp": ("invasive " + _abbr("MAP"), "mmHg"),
    "noninvasive_systolic_bp": ("non-invasive systolic blood pressure", "mmHg"),
    "noninvasive_diastolic_bp": ("non-invasive diastolic blood pressure", "mmHg"),
    "noninvasive_mean_bp": ("non-invasive " + _abbr("MAP"), "mmHg"),
    "respiratory_rate": ("respiratory rate", "breaths/min"),
    "temperature": ("temperature", "°C"),
    "urine_output": ("urine output", "mL"),
    "weight_series": ("charted weight", "kg"),
    "mechanical_ventilation": ("mechanical ventilation flag", None),
    "fio2": (_abbr("FiO2"), None),
    "sao2": (_abbr("SaO2"), "%"),
    "pao2": (_abbr("PaO2"), "mmHg"),
    "paco2": (_abbr("PaCO2"), "mmHg"),
    "ph": ("arterial pH", None),
    "bicarbonate": ("bicarbonate", "mmol/L"),
    "lactate": ("lactate", "mmol/L"),
    "sodium": ("sodium", "mmol/L"),
    "potassium": ("potassium", "mmol/L"),
    "magnesium": ("magnesium", "mmol/L"),
    "glucose": ("glucose", "mg/dL"),
    "blood_urea_nitrogen": (_abbr("BUN"), "mg/dL"),
    "creatinine": ("creatinine", "mg/dL"),
    "hematocrit": ("hematocrit", "%"),
    "white_cell_count": (_abbr("WBC"), "K/uL"),
    "platelets": ("platelets", "K/uL"),
    "albumin": ("albumin", "g/dL"),
    "bilirubin": ("bilirubin", "mg/dL"),
    "alkaline_phosphatase": (_abbr("ALP"), "IU/L"),
    "alanine_aminotransferase": (_abbr("ALT"), "IU/L"),
    "aspartate_aminotransferase": (_abbr("AST"), "IU/L"),
    "cholesterol": ("cholesterol", "mg/dL"),
    "troponin_i": ("troponin I", "ng/mL"),
    "troponin_t": ("troponin T", "ng/mL"),
}
_PARAM = {p.stem: p for p in PHYSIONET_SERIES}
_SERIES_NAME_RE = re.compile(
    "|".join(f"(?P<{stem}>{name})(?= |:)" for stem, (name, _) in PHYSIONET_NAMES.items()))


def _series_segment(reader: Reader, start: int, segment: str, seen: set) -> None:
    if segment.startswith("on mechanical ventilation"):
        stem, name_end, unit = "mechanical_ventilation", len("on mechanical ventilation"), None
        value_text = "1"
        implicit_value = True
    else:
        implicit_value = False
        m = _SERIES_NAME_RE.match(segment)
        assert m, f"unknown series segment {segment!r}"
        stem, name_end = m.lastgroup, m.end()
        unit = PHYSIONET_NAMES[stem][1]
    assert stem not in seen, f"series {stem} written twice"
    seen.add(stem)
    p = _PARAM[stem]
    cols = {s: series_column(p, s) for s in ("first", "last", "min", "max", "mean", "std", "count")}
    rest = segment[name_end:]
    u = rf" {re.escape(unit)}" if unit else ""
    # one reading / all equal / two readings
    if implicit_value:
        m = re.fullmatch(rf"(?: in all {NUM} readings)?", rest)
        assert m, f"unparsed {segment!r}"
        x, count = 1.0, float(m.group(1)) if m.group(1) else 1.0
        if m.group(1):
            reader.blank(start + name_end + m.start(1), start + name_end + m.end(1))
        _constant(reader, cols, x, count)
        return
    m = re.fullmatch(rf" {NUM}{u}", rest)
    if m:
        _constant(reader, cols, float(m.group(1)), 1.0)
        reader.blank(start + name_end + m.start(1), start + name_end + m.end(1))
        return
    m = re.fullmatch(rf" {NUM}{u} in all {NUM} readings", rest)
    if m:
        _constant(reader, cols, float(m.group(1)), float(m.group(2)))
        for k in (1, 2):
            reader.blank(start + name_end + m.start(k), start + name_end + m.end(k))
        return
    m = re.fullmatch(rf" {NUM} then {NUM}{u}", rest)
    if m:
        x, y = float(m.group(1)), float(m.group(2))
        for column, value in (("first", x), ("last", y), ("min", min(x, y)), ("max", max(x, y)),
                              ("mean", round((x + y) / 2, 2)),
                              ("std", round(abs(x - y) / math.sqrt(2), 2)), ("count", 2.0)):
            reader.take(cols[column], value)
        for k in (1, 2):
            reader.blank(start + name_end + m.start(k), start + name_end + m.end(k))
        return
    skip_space = 1 if rest.startswith(" ") and not rest.startswith(" in ") else 0
    _trajectory(reader, start + name_end + skip_space, start + len(segment), cols, unit)


def _constant(reader: Reader, cols: dict, x: float, count: float) -> None:
    for column in ("first", "last", "min", "max", "mean"):
        reader.take(cols[column], x)
    reader.take(cols["count"], count)
    if count > 1:
        reader.take(cols["std"], 0.0)
    else:
        reader.values[cols["std"]] = "zero-or-missing"  # SD of one reading: 0 or undefined


SECTION_HEADS = ("Over the first day: ", "Vital signs: ", "Laboratory results: ")


def parse_physionet2012(text: str) -> Reader:
    reader = Reader(text)
    _common(reader, "age", {"SAPS-I": "saps_i", "SOFA": "sofa"})
    seen: set = set()
    for head in SECTION_HEADS:
        start = text.find(head)
        if start < 0:
            continue
        start += len(head)
        end = start
        while True:  # the section ends at a '.' not inside a number
            end = text.index(".", end)
            if end + 1 >= len(text) or not text[end + 1].isdigit():
                break
            end += 1
        pos = start
        for segment in text[start:end].split("; "):
            _series_segment(reader, pos, segment, seen)
            pos += len(segment) + 2
    return reader


# --- the compact PhysioNet 2012 text ("heart rate 71-91; in mmHg: arterial systolic 73-152, ...") ----

COMPACT_NAMES = {
    "gcs": "GCS", "heart_rate": "heart rate", "invasive_systolic_bp": "arterial systolic",
    "invasive_mean_bp": "arterial mean", "noninvasive_systolic_bp": "cuff systolic",
    "noninvasive_mean_bp": "cuff mean", "respiratory_rate": "respiratory rate", "temperature": "temperature",
    "urine_output": "urine output", "fio2": "FiO2", "sao2": "SaO2", "pao2": "PaO2", "paco2": "PaCO2",
    "ph": "arterial pH", **{stem: name for stem, (name, _) in PHYSIONET_NAMES.items() if stem in (
        "bicarbonate", "lactate", "sodium", "potassium", "magnesium", "glucose", "creatinine", "hematocrit",
        "platelets", "albumin", "bilirubin", "cholesterol", "troponin_i", "troponin_t")},
    "blood_urea_nitrogen": "BUN", "white_cell_count": "WBC", "alkaline_phosphatase": "ALP",
    "alanine_aminotransferase": "ALT", "aspartate_aminotransferase": "AST",
}
_SEGMENT_START = r"(?:(?<=: )|(?<=, )|(?<=; )|(?<=Labs ))"
_UNIT = r"(?: [^\s,;.]+)?"  # a unit written after the value (only outside unit groups)


def parse_physionet2012_compact(text: str) -> Reader:
    reader = Reader(text)
    _common(reader, "age", {"SAPS-I": "saps_i", "SOFA": "sofa"})
    reader.find(r"(?<!not )on mechanical ventilation", ())
    if re.search(r"(?<!not )on mechanical ventilation", text):
        reader.take("mechanical_ventilation_max", 1.0)
    elif "not on mechanical ventilation" in text:
        reader.take("mechanical_ventilation_max", 0.0)
    for stem, name in COMPACT_NAMES.items():
        p = _PARAM[stem]
        col = {s: series_column(p, s) for s in ("min", "max", "last", "total")}
        n = re.escape(name)
        if stem == "urine_output":
            reader.find(_SEGMENT_START + n + " " + NUM + r" mL in total", (col["total"],))
            continue
        if stem == "gcs":
            m = re.search(_SEGMENT_START + n + " " + NUM + r"(?=\.)", text)  # lowest = last: "GCS 15."
            if m:
                reader.take(col["min"], float(m.group(1)))
                reader.take(col["last"], float(m.group(1)))
                reader.blank(m.start(1), m.end(1))
                continue
            reader.find(_SEGMENT_START + n + r" lowest " + NUM, (col["min"],))
            reader.find(_SEGMENT_START + n + r"(?: lowest [\d.#]+,)? last " + NUM, (col["last"],))
            continue
        m = re.search(_SEGMENT_START + n + " " + NUM + "-" + NUM + _UNIT + r"(?=[.;,]|$)", text)
        if m:
            reader.take(col["min"], float(m.group(1)))
            reader.take(col["max"], float(m.group(2)))
            reader.blank(m.start(1), m.end(1))
            reader.blank(m.start(2), m.end(2))
            continue
        m = re.search(_SEGMENT_START + n + " " + NUM + _UNIT + r"(?=[.;,]|$)", text)
        if m:
            reader.take(col["min"], float(m.group(1)))
            reader.take(col["max"], float(m.group(1)))
            reader.blank(m.start(1), m.end(1))
            continue
        m = re.search(_SEGMENT_START + n + r"(?: in [^:]+)?: ((?:(?:lowest|highest) [\d.]+(?:, )?)+)", text)
        if m:
            for label, column in (("lowest", "min"), ("highest", "max")):
                k = re.search(label + " " + NUM, m.group(1))
                if k:
                    reader.take(col[column], float(k.group(1)))
                    reader.blank(m.start(1) + k.start(1), m.start(1) + k.end(1))
    return reader


def parse_text(text: str, variant: str) -> Reader:
    if variant == "physionet2012_compact":
        return parse_physionet2012_compact(text)
    return parse_physionet2012(text) if variant == "physionet2012" else parse_cw24(text, variant)


def compact_from_full(full: pd.DataFrame) -> pd.DataFrame:
    """The compact cohort of random full rows: the same readings, aggregated and rounded as the builder does."""
    from alfia.cohorts.schema import COMPACT_DECIMALS, compact_stats, get_schema

    out = full.copy()
    for p in PHYSIONET_SERIES:
        count = out[series_column(p, "count")]
        if p.stem == "urine_output":
            out[series_column(p, "total")] = (out[series_column(p, "mean")] * count).where(count > 0)
        if p.stem == "mechanical_ventilation":
            out[series_column(p, "max")] = out[series_column(p, "max")].where(count > 0)
            continue
        for stat in compact_stats(p):
            out[series_column(p, stat)] = out[series_column(p, stat)].round(COMPACT_DECIMALS.get(p.stem, 0))
    return out[get_schema("physionet2012_compact").columns]


def check_round_trip(df: pd.DataFrame, texts: list[str], variant: str) -> int:
    """Assert every number of every row is read back from its text at stated precision.

    Returns the number of values checked.
    """
    schema = get_schema(variant)
    numeric = [v for v in schema.predictors if not v.is_categorical]
    records = df.to_dict("records")
    checked = 0
    for i, text in enumerate(texts):
        reader = parse_text(text, variant)
        leftovers = reader.leftover_numbers()
        assert not leftovers, f"row {i}: numbers {leftovers} are not any variable's: {text}"
        got = dict(reader.values)
        row = records[i]
        for var in numeric:
            source = row.get(var.name, np.nan)
            source = float(source) if source is not None and not pd.isna(source) else math.nan
            value = got.pop(var.name, None)
            if value == "zero-or-missing":
                assert math.isnan(source) or source == 0, f"row {i} {var.name}: {source} vs 1 reading"
                continue
            if value is None:
                ok = math.isnan(source) or (var.name.endswith("_count") and source == 0)
                assert ok, f"row {i}: {var.name}={source} lost from: {text}"
                continue
            assert not math.isnan(source), f"row {i}: {var.name}={value} invented in: {text}"
            expected = round(source, stated_decimals(var))
            assert abs(value - expected) < 1e-9, (
                f"row {i}: {var.name} reads {value}, source {source} (expected {expected}): {text}")
            checked += 1
        bmi = got.pop("bmi", None)
        h, w = row.get("height", np.nan), row.get("weight", np.nan)
        if variant == "physionet2012_compact":  # the compact text writes no derived BMI
            assert bmi is None, f"row {i}: compact text wrote a BMI: {text}"
        elif pd.notna(h) and pd.notna(w):
            assert bmi is not None and abs(bmi - round(w / (h / 100) ** 2, 1)) < 1e-9, (i, bmi, text)
            checked += 1
        else:
            assert bmi is None, f"row {i}: BMI without height and weight: {text}"
        assert not got, f"row {i}: values of unknown columns {got}"
    return checked
