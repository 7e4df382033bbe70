"""Cohort validation and the leakage guard.

:func:`validate_cohort` checks a cohort table against its :mod:`alfia.cohorts.schema` variant and
returns every problem it finds; :func:`check_cohort` raises them as one :class:`AlfiaError`.

* Column-wise checks (ranges, allowed categories, integer values, label in {0, 1}, split names, unique
  ``stay_id``) run as a pandera schema built from the cohort schema, so the schema stays the single
  source of truth.
* Non-numeric values in numeric columns, the internal consistency of window aggregates
  (min <= first, last, mean <= max; SD >= 0) and the leakage guard are ours, hand-written.

Every message names the column and the rows (with their ``stay_id``) at fault.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from alfia.cohorts.schema import (
    ID_COLUMN, IDENTIFIER_COLUMNS, OUTCOME_COLUMN, PHYSIONET_SERIES, SPLIT_COLUMN, SPLITS,
    CohortSchema, get_schema, series_column,
)
from alfia.errors import AlfiaError, LeakageError

if TYPE_CHECKING:
    import pandera.pandas as pa

_MAX_ROWS_SHOWN = 5

# --- leakage guard ------------------------------------------------------------------------------

# (pattern on the normalised column name, why the column is refused). Names are lower-cased with
# every non-alphanumeric run turned into "_", so "Length of stay", "LOS_days" and "los" all match.
_LEAKAGE_PATTERNS: tuple[tuple[re.Pattern, str], ...] = tuple(
    (re.compile(p), why) for p, why in (
        (r"(^|_)los($|_)|length_?of_?stay|lengthofstay|(^|_)stay_?length",
         "length of stay is only known at discharge"),
        (r"surviv", "survival time is outcome information"),
        (r"discharg|dischtime|(^|_)disch($|_)", "discharge status, location or time is only known "
                                                "at the end of the stay"),
        (r"death|deceased|(^|_)died($|_)|(^|_)dod($|_)|(^|_)dead($|_)",
         "death time or status is outcome information"),
        (r"expire", "duplicates the outcome (hospital_expire_flag)"),
        (r"mort", "duplicates or predicts the outcome (mortality)"),
        (r"(^|_)outtime($|_)|(^|_)out_?time($|_)", "ICU or hospital out-time is after the window"),
        (r"(^|_)(outcome|label|target)($|_)", "looks like an outcome label"),
    )
)
_HOURS = re.compile(r"(?:^|_)(\d+(?:\.\d+)?)_?h(?:ours?|rs?)?(?:$|_)")
_ALLOWED = {*IDENTIFIER_COLUMNS, OUTCOME_COLUMN, SPLIT_COLUMN}  # identifiers: never predictors


def _normalise(name: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", str(name).lower()).strip("_")


def find_leakage(columns: Iterable[str], variant: str,
                 hours: float | None = None) -> list[tuple[str, str]]:
    """(column, reason) for every column that carries outcome or post-window information."""
    schema = _schema(variant)
    hours = schema.window_hours if hours is None else hours
    found = []
    for col in columns:
        if col in _ALLOWED:
            continue
        if col in schema:
            window = schema[col].window
            if window.ends_after(hours):
                found.append((col, f"its record window ({window.label}) ends after {hours:g} h"))
            continue
        norm = _normalise(col)
        for pattern, why in _LEAKAGE_PATTERNS:
            if pattern.search(norm):
                found.append((col, why))
                break
        else:
            m = _HOURS.search(norm)
            if m and float(m.group(1)) > hours:
                found.append((col, f"its name says {m.group(1)} h, after the {hours:g} h window"))
    return found


def leakage_guard(columns: Iterable[str], variant: str, *, source: str = "<cohort>",
                  hours: float | None = None) -> None:
    """Raise :class:`LeakageError` naming every outcome-derived or post-window column."""
    found = find_leakage(columns, variant, hours)
    if found:
        lines = [f"column {c!r} is refused: {why}" for c, why in found]
        raise LeakageError(_join(source, lines, what="leaking column"))


# --- report ------------------------------------------------------------------------------------

@dataclass
class ValidationReport:
    source: str
    variant: str
    n_rows: int = 0
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    leaking_columns: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def raise_for_errors(self) -> None:
        if self.errors:
            cls = LeakageError if self.leaking_columns else AlfiaError
            raise cls(_join(self.source, self.errors, what="problem"))


def _join(source: str, lines: Sequence[str], *, what: str) -> str:
    if len(lines) == 1:
        return f"{source}: {lines[0]}"
    return f"{source}: {len(lines)} {what}s\n" + "\n".join(f"  - {line}" for line in lines)


def _schema(variant: str) -> CohortSchema:
    try:
        return get_schema(variant)
    except ValueError as e:
        raise AlfiaError(str(e)) from None


def _rows(df: pd.DataFrame, index: Sequence) -> str:
    """'row 3 (stay_id=123), row 9 (stay_id=456) and 12 more' for the given index labels: 0-based row
    positions, as every message of the toolkit counts them (:func:`row_name`)."""
    index = list(index)
    shown = []
    for label in index[:_MAX_ROWS_SHOWN]:
        pos = df.index.get_loc(label)
        shown.append(row_name(df, int(pos)) if isinstance(pos, (int, np.integer)) else f"row {label}")
    more = len(index) - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def _values(values: Sequence, quote: bool = True) -> str:
    vals = list(dict.fromkeys(str(v) for v in values))
    text = ", ".join(repr(v) if quote else v for v in vals[:_MAX_ROWS_SHOWN])
    return text + (f" and {len(vals) - _MAX_ROWS_SHOWN} more" if len(vals) > _MAX_ROWS_SHOWN else "")


# --- the pandera schema ------------------------------------------------------------------------

def _integer_valued(s: pd.Series) -> pd.Series:
    return s == np.round(s)


def pandera_schema(variant: str, *, require_split: bool = True) -> pa.DataFrameSchema:
    """The column checks of a cohort variant as a pandera schema (values already numeric)."""
    import pandera.pandas as pa  # here, not at import: the label and split checks below need no pandera

    schema = _schema(variant)
    columns: dict[str, pa.Column] = {
        ID_COLUMN: pa.Column(checks=[pa.Check(_integer_valued, name="integer_valued")],
                             nullable=False, unique=True),
        OUTCOME_COLUMN: pa.Column(checks=[pa.Check.isin([0, 1])],
                                  nullable=False),
    }
    if require_split:
        columns[SPLIT_COLUMN] = pa.Column(checks=[pa.Check.isin(list(SPLITS))],
                                          nullable=False)
    for v in schema.predictors:
        checks = []
        if v.is_categorical:
            checks.append(pa.Check.isin(list(v.categories)))
        else:
            if v.valid_range is not None:
                checks.append(pa.Check.in_range(*v.valid_range))
            if v.kind == "integer":
                checks.append(pa.Check(_integer_valued, name="integer_valued"))
        columns[v.name] = pa.Column(checks=checks, nullable=True)
    return pa.DataFrameSchema(columns, strict=False, name=f"cohort[{variant}]")


def _describe_failure(schema: CohortSchema, column: str, check: str, values: Sequence,
                      rows: str) -> str:
    # pandera names built-in checks after themselves ("isin([...])", "in_range(a, b)").
    if "uniqueness" in check or "unique" in check:
        return f"column {column!r}: duplicated {column} {_values(values, quote=False)} at {rows}"
    if "not_nullable" in check:
        return f"column {column!r}: missing value at {rows}"
    if check.startswith("integer_valued"):
        return f"column {column!r}: non-integer value {_values(values, quote=False)} at {rows}"
    if column == OUTCOME_COLUMN:
        return f"column {column!r}: label {_values(values, quote=False)} is not 0 or 1 at {rows}"
    if column == SPLIT_COLUMN:
        return f"column {column!r}: split {_values(values)} is not one of {', '.join(SPLITS)} at {rows}"
    if column in schema and schema[column].is_categorical:
        allowed = ", ".join(schema[column].categories)
        return (f"column {column!r}: unknown category {_values(values)} at {rows} "
                f"(allowed: {allowed})")
    if column in schema and check.startswith("in_range"):
        lo, hi = schema[column].valid_range
        unit = f" {schema[column].unit}" if schema[column].unit else ""
        return (f"column {column!r}: value {_values(values, quote=False)} outside "
                f"{lo:g}-{hi:g}{unit} at {rows}")
    return f"column {column!r}: check {check} failed for {_values(values)} at {rows}"


# --- validation --------------------------------------------------------------------------------

def _aggregate_families(schema: CohortSchema) -> list[dict[str, str]]:
    """Groups of window-aggregate columns: {"min": col, "max": col, "first": ..., "std": ...}."""
    families = []
    for score in ("gcs", "sofa"):
        fam = {k: f"{score}_dynamic_{a}" for k, a in (("min", "min"), ("max", "max"),
                                                        ("first", "first"), ("last", "last"),
                                                        ("mean", "avg"), ("std", "stddev"))}
        if all(c in schema for c in fam.values()):
            families.append(fam)
    for p in PHYSIONET_SERIES:
        # The compact cohort keeps only some statistics of a series: check those it has.
        fam = {stat: series_column(p, stat) for stat in ("min", "max", "first", "last", "mean",
                                                         "std")}
        fam = {stat: c for stat, c in fam.items() if c in schema}
        if "min" in fam and "max" in fam and fam not in families:
            families.append(fam)
    return families


def _to_numeric(df: pd.DataFrame, columns: Iterable[str], report: ValidationReport) -> None:
    """Make ``columns`` numeric in place; report values that are not numbers."""
    for col in columns:
        s = df[col]
        if pd.api.types.is_bool_dtype(s):
            df[col] = s.astype(float)
            continue
        if pd.api.types.is_numeric_dtype(s):
            continue
        as_num = pd.to_numeric(s, errors="coerce")
        bad = as_num.isna() & s.notna() & (s.astype(str).str.strip() != "")
        if bad.any():
            report.errors.append(f"column {col!r}: non-numeric value {_values(s[bad])} at "
                                 f"{_rows(df, s.index[bad])}")
        df[col] = as_num


def _consistency(df: pd.DataFrame, schema: CohortSchema, report: ValidationReport) -> None:
    for fam in _aggregate_families(schema):
        if not all(c in df.columns for c in fam.values()):
            continue
        lo, hi = df[fam["min"]], df[fam["max"]]
        tol = 1e-6 * np.maximum(1.0, np.abs(hi.to_numpy(dtype=float, na_value=np.nan)))
        bad = lo > hi + tol
        if bad.any():
            report.errors.append(f"column {fam['min']!r}: minimum above {fam['max']!r} at"
                                 f" {_rows(df, df.index[bad])}")
        for stat in ("first", "last", "mean"):
            if stat not in fam:
                continue
            col = df[fam[stat]]
            bad = (col < lo - tol) | (col > hi + tol)
            if bad.any():
                report.errors.append(
                    f"column {fam[stat]!r}: value outside [{fam['min']}, {fam['max']}] at "
                    f"{_rows(df, df.index[bad])}")
        bad = df[fam["std"]] < 0 if "std" in fam else pd.Series(False, index=df.index)
        if bad.any():
            report.errors.append(f"column {fam['std']!r}: negative standard deviation at "
                                 f"{_rows(df, df.index[bad])}")


def validate_cohort(df: pd.DataFrame, variant: str, *, source: str = "<cohort>",
                    require_split: bool = True) -> ValidationReport:
    """Check ``df`` against the ``variant`` schema; return every problem found (never raises for
    bad data). ``require_split=False`` validates a table before splits are assigned."""
    schema = _schema(variant)
    report = ValidationReport(source=source, variant=variant, n_rows=int(len(df)))
    if len(df) == 0:
        report.errors.append("table has no rows")
        return report
    dup = df.columns[df.columns.duplicated()].unique()
    if len(dup):
        report.errors.append(f"duplicated column names: {_values(dup)}")
        return report

    for col, why in find_leakage(df.columns, variant):
        report.errors.append(f"column {col!r} is refused: {why}")
        report.leaking_columns.append(col)

    required = [ID_COLUMN, *schema.predictor_names, OUTCOME_COLUMN]
    if require_split:
        required.append(SPLIT_COLUMN)
    missing = [c for c in required if c not in df.columns]
    for col in missing:
        report.errors.append(f"missing required column {col!r}")
    extra = [c for c in df.columns if c not in schema.columns and c not in _ALLOWED
             and c not in report.leaking_columns]
    if extra:
        report.warnings.append(f"columns not in the {variant} schema (ignored downstream): "
                               f"{_values(extra)}")

    present = [c for c in required if c in df.columns]
    work = df[present].copy()
    work.index = df.index
    numeric = [c for c in present if c == ID_COLUMN or c == OUTCOME_COLUMN
               or (c in schema and not schema[c].is_categorical)]
    _to_numeric(work, numeric, report)
    for v in schema.predictors:
        if v.is_categorical and v.name in work.columns:
            s = work[v.name]
            work[v.name] = s.where(s.isna(), s.astype(str))

    from pandera.errors import SchemaErrors

    pschema = pandera_schema(variant, require_split=require_split)
    pschema = pschema.remove_columns([c for c in pschema.columns if c not in work.columns])
    try:
        pschema.validate(work, lazy=True)
    except SchemaErrors as e:
        fc = e.failure_cases
        fc = fc[fc["column"].isin(work.columns)]
        for (column, check), part in fc.groupby(["column", "check"], sort=False):
            idx = part["index"].dropna().tolist()
            report.errors.append(_describe_failure(schema, column, check, part["failure_case"],
                                                   _rows(work, idx) if idx else "some rows"))

    _consistency(work, schema, report)

    if OUTCOME_COLUMN in work.columns and report.ok:
        n_dead = int(work[OUTCOME_COLUMN].sum())
        if n_dead in (0, len(work)):
            report.warnings.append(f"all {len(work)} stays have the same outcome "
                                   f"({OUTCOME_COLUMN} = {int(n_dead > 0)})")
    empty = [v.name for v in schema.predictors if v.name in work and work[v.name].isna().all()]
    if empty:
        report.warnings.append(f"predictors with no value in any row: {_values(empty)}")
    return report


def check_cohort(df: pd.DataFrame, variant: str, *, source: str = "<cohort>",
                 require_split: bool = True) -> ValidationReport:
    """:func:`validate_cohort`, raising :class:`AlfiaError` (or :class:`LeakageError` when a column
    leaks) that lists every problem. Returns the report (with its warnings) when the table is valid."""
    report = validate_cohort(df, variant, source=source, require_split=require_split)
    report.raise_for_errors()
    return report


# --- labels and splits: what every model trains on ------------------------------------------------
# One check per kind, run once where a table enters a command: the cohort schema above (``alfia cohort
# validate``, the cohort builders), and the labels and splits below (``alfia train``, ``alfia baselines``,
# ``alfia boost``, ``alfia predict`` with labels, external cohorts).

def row_name(df: pd.DataFrame, position: int) -> str:
    """'row 9 (stay_id=1009)': a 0-based row position with the stay it holds."""
    if ID_COLUMN in df.columns:
        return f"row {position} ({ID_COLUMN}={df[ID_COLUMN].iloc[position]})"
    return f"row {position}"


def check_labels(df: pd.DataFrame, source: str, column: str = OUTCOME_COLUMN) -> np.ndarray:
    """Labels must be present and exactly 0 or 1; returns them as int8."""
    if column not in df.columns:
        raise AlfiaError(f"{source}: no label column '{column}'")
    values = pd.to_numeric(df[column], errors="coerce").to_numpy(dtype=float)
    nan = np.isnan(values)
    if nan.any():
        position = int(np.flatnonzero(nan)[0])
        raise AlfiaError(f"{source}: column '{column}' has a missing (NaN) or non-numeric label at "
                         f"{row_name(df, position)}")
    outside = ~np.isin(values, (0.0, 1.0))
    if outside.any():
        position = int(np.flatnonzero(outside)[0])
        raise AlfiaError(f"{source}: column '{column}' must be 0 or 1, got {values[position]:g} at "
                         f"{row_name(df, position)} ({int(outside.sum())} bad row(s))")
    return values.astype(np.int8)


def check_integer_ids(df: pd.DataFrame, source: str) -> None:
    """A cohort's ``stay_id`` holds integers (the CW-24 schema), so every model's predictions of it name the
    same stays and ``alfia compare`` can pair them."""
    ids = df[ID_COLUMN]
    numeric = pd.to_numeric(ids, errors="coerce")
    bad = (numeric.isna() | (numeric != np.round(numeric))).to_numpy()
    if bad.any() or ids.dtype == object:
        position = int(np.flatnonzero(bad)[0]) if bad.any() else 0
        raise AlfiaError(f"{source}: column '{ID_COLUMN}' must hold integers (the CW-24 schema), got "
                         f"{ids.iloc[position]!r} ({ids.dtype}) at {row_name(df, position)}")


def split_for_training(df: pd.DataFrame, source: str, *, need_test: bool = True) -> dict[str, pd.DataFrame]:
    """The train/val/test parts of a labelled table, checked: unique ``stay_id``, labels 0 or 1, a
    ``split`` column of train/val/test only, and deaths and survivors in both train (the loss) and val
    (the AUPRC that early stopping and model selection read). ``need_test``: the test split must have
    rows too (the zoo scores it; ALFIA may train without one). Parts keep the table's row order and
    index, so later messages name the table's own rows."""
    if ID_COLUMN not in df.columns:
        raise AlfiaError(f"{source}: no '{ID_COLUMN}' column")
    duplicated = df[ID_COLUMN].duplicated()
    if duplicated.any():
        position = int(np.flatnonzero(duplicated.to_numpy())[0])
        raise AlfiaError(f"{source}: column '{ID_COLUMN}' repeats stay {df[ID_COLUMN].iloc[position]} at "
                         f"{row_name(df, position)}")
    labels = check_labels(df, source)
    if SPLIT_COLUMN not in df.columns:
        raise AlfiaError(f"{source}: no '{SPLIT_COLUMN}' column; models train on the cohort's own train/val/test "
                         f"split (assign one with `alfia cohort split` or alfia.cohorts.splits.assign_splits)")
    split = df[SPLIT_COLUMN].astype(str)
    unknown = ~split.isin(SPLITS)
    if unknown.any():
        position = int(np.flatnonzero(unknown.to_numpy())[0])
        raise AlfiaError(f"{source}: column '{SPLIT_COLUMN}' holds {split.iloc[position]!r} at "
                         f"{row_name(df, position)}, which is not one of {', '.join(SPLITS)}")
    parts = {}
    for name in SPLITS:
        rows = (split == name).to_numpy()
        if not rows.any() and (name != "test" or need_test):
            raise AlfiaError(f"{source}: split '{name}' has no rows")
        present = np.unique(labels[rows])
        if name != "test" and len(present) == 1:
            raise AlfiaError(f"{source}: split '{name}' holds only label {present[0]} (every '{name}' row has "
                             f"{OUTCOME_COLUMN}={present[0]}); training and validation AUPRC need deaths and "
                             f"survivors")
        parts[name] = df.loc[rows]
    return parts
