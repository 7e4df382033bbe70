"""What every database extraction (MIMIC-IV, eICU) shares: its result, category mapping, window checks,
the manifest's summaries, and writing the cohort out.

A source module (:mod:`~alfia.cohorts.sources.mimic_iv`, :mod:`~alfia.cohorts.sources.eicu`) reads its
own tables and returns an :class:`ExtractionResult`; :func:`write_extraction` splits, validates and
writes it. The helpers here keep the two sources' cohorts and manifests alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from alfia.cohorts.schema import CohortSchema
from alfia.cohorts.sources.duck import SourceTables
from alfia.errors import AlfiaError

Progress = Callable[[str], None]
Mapper = Callable[[str], "str | None"]  # source value -> schema category, None when unknown


@dataclass
class ExtractionResult:
    """The cohort rows (schema predictors + ids + outcome) and the facts that go to the manifest."""

    df: pd.DataFrame
    extra: dict[str, Any] = field(default_factory=dict)


# --- source vocabularies -> schema categories -------------------------------------------------------

def map_category(values: pd.Series, mapping: Mapper, allowed: tuple[str, ...],
                 unknown_fallback: str | None, null_fallback: str | None
                 ) -> tuple[pd.Series, dict[str, int]]:
    """Map source strings to schema categories; count what fell back and to what.

    ``mapping`` returns the category for a source value or None. Values that map outside ``allowed``
    become ``unknown_fallback`` (missing if None); nulls become ``null_fallback``.
    """
    counts: dict[str, int] = {}
    out = []
    for v in values.tolist():
        if v is None or (isinstance(v, float) and np.isnan(v)) or (isinstance(v, str) and not v.strip()):
            out.append(null_fallback)
            counts["null"] = counts.get("null", 0) + 1
            continue
        cat = mapping(str(v).strip())
        if cat in allowed:
            out.append(cat)
        else:
            out.append(unknown_fallback)
            key = f"unknown:{v}"
            counts[key] = counts.get(key, 0) + 1
    return pd.Series(out, index=values.index, dtype=object), counts


def map_and_record(values: pd.Series, mapping: Mapper, allowed: tuple[str, ...],
                   unknown_fallback: str | None, null_fallback: str | None,
                   fallbacks: dict[str, dict], var: str) -> pd.Series:
    """:func:`map_category`, recording under ``fallbacks[var]`` (the manifest's ``category_fallbacks``)
    what fell back, when anything did."""
    mapped, counts = map_category(values, mapping, allowed, unknown_fallback, null_fallback)
    if counts:
        fallbacks[var] = {"counts": counts, "unknown_to": unknown_fallback, "null_to": null_fallback}
    return mapped


def case_insensitive(allowed: tuple[str, ...]) -> Mapper:
    """A mapper that finds a source value among ``allowed`` whatever its case."""
    lookup = {c.lower(): c for c in allowed}
    return lambda v: lookup.get(v.lower())


# --- the record window ------------------------------------------------------------------------------

def assert_in_window(report: dict[str, dict], window: tuple[float, float]) -> None:
    """Every used value lies in the window; raise otherwise (a bug, never a data problem)."""
    lo, hi = window
    for name, r in report.items():
        if r["used"] == 0:
            continue
        first, last = r.get("first_used_h"), r.get("last_used_h")
        if first is None or last is None or first < lo - 1e-9 or last > hi + 1e-9:
            raise AlfiaError(f"temporal integrity violated: {name} uses values from {first} h to "
                             f"{last} h, outside the record window {lo} h..{hi} h")


def window_counts(t: SourceTables, table: str, name: str, value_ok: str, in_window: str,
                  hours: str) -> dict[str, dict]:
    """Per variable of a staged relation: values used (``value_ok`` and ``in_window``), excluded out of
    the window, excluded as implausible (not ``value_ok``), and the first and last hour used.

    ``name``: SQL for the variable's key in the report; ``hours``: SQL for a value's time in hours.
    """
    rows = t.df(f"""
        SELECT {name} AS name,
               count(*) FILTER (WHERE {value_ok} AND {in_window}) AS used,
               count(*) FILTER (WHERE {value_ok} AND NOT {in_window}) AS out_of_window,
               count(*) FILTER (WHERE NOT ({value_ok})) AS implausible,
               min({hours}) FILTER (WHERE {value_ok} AND {in_window}) AS lo,
               max({hours}) FILTER (WHERE {value_ok} AND {in_window}) AS hi
        FROM {table} GROUP BY 1 ORDER BY 1""")
    return {r.name: {"used": int(r.used), "excluded_out_of_window": int(r.out_of_window),
                     "excluded_implausible": int(r.implausible),
                     "first_used_h": None if pd.isna(r.lo) else round(float(r.lo), 3),
                     "last_used_h": None if pd.isna(r.hi) else round(float(r.hi), 3)}
            for r in rows.itertuples(index=False)}


def temporal_integrity(by_variable: dict[str, dict]) -> dict[str, Any]:
    """The manifest's ``temporal_integrity``: totals over the per-variable counts, and the counts."""
    return {"values_used": sum(r.get("used", 0) for r in by_variable.values()),
            "values_excluded_out_of_window": sum(r.get("excluded_out_of_window", 0)
                                                 for r in by_variable.values()),
            "all_used_values_in_window": True, "by_variable": by_variable}


# --- the cohort table ---------------------------------------------------------------------------------

def coerce_predictors(df: pd.DataFrame, schema: CohortSchema) -> pd.DataFrame:
    """Give the schema's integer predictors the nullable Int64 dtype, its continuous ones float (in place)."""
    for v in schema.predictors:
        if v.kind == "integer" and v.name in df:
            df[v.name] = pd.to_numeric(df[v.name], errors="coerce").round().astype("Int64")
        elif v.kind == "continuous" and v.name in df:
            df[v.name] = pd.to_numeric(df[v.name], errors="coerce").astype(float)
    return df


def missing_fraction(df: pd.DataFrame, schema: CohortSchema) -> dict[str, float]:
    return {v: round(float(df[v].isna().mean()), 4) for v in schema.predictor_names if v in df}


# --- validation and writing ---------------------------------------------------------------------------

def validate_extraction(df: pd.DataFrame, *, variant: str, source: str) -> str:
    """The cohort check of ``alfia.cohorts.validate`` (schema, ranges, labels, splits, leakage guard), once;
    it raises AlfiaError (LeakageError for a leaking column). Returns the manifest's line on it."""
    from alfia.cohorts.validate import check_cohort

    report = check_cohort(df, variant, source=source)
    return "passed check_cohort (schema, leakage guard)" + (f"; warnings: {'; '.join(report.warnings)}"
                                                            if report.warnings else "")


def write_extraction(result: ExtractionResult, out: str | Path, *, source: str, variant: str,
                     seed: int = 42, task: str = "mortality", los_days: pd.Series | None = None):
    """Split (grouped by patient, on mortality), derive the ``task``'s label (``alfia.cohorts.tasks``; ``los_days``
    by stay_id for a LOS task), validate and write the cohort atomically with its manifest."""
    from alfia.cohorts.io import write_cohort
    from alfia.cohorts.schema import ID_COLUMN, SPLIT_COLUMN
    from alfia.cohorts.splits import assign_splits

    # DuckDB's parallel scans return rows in no fixed order: sorted by stay, the same database gives the
    # same file (and manifest hash) on every run.
    df = result.df.sort_values(ID_COLUMN, kind="mergesort").reset_index(drop=True)
    if df.empty:
        raise AlfiaError(f"{source}: no ICU stay passed the inclusion criteria "
                         f"(attrition: {result.extra.get('attrition')})")
    df[SPLIT_COLUMN] = assign_splits(df, seed=seed)
    from alfia.cohorts.tasks import apply_task

    df, result.extra["task"] = apply_task(df, task, los_days, source=source)
    result.extra["validation"] = validate_extraction(df, variant=variant, source=source)
    result.extra["split_seed"] = seed
    return write_cohort(df, out, source=source, variant=variant, extra=result.extra)
