"""Cohort table -> text table: validation, formatting, rendering, and the text file on disk.

The row loop is the hot path (eICU has about 158k stays). Each column is validated and formatted once,
vectorised over the whole table; the loop then only zips ready-made strings into a dict per row and calls
the template, so there is no per-row pandas work.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from alfia.atomic import sha256_file
from alfia.cohorts.io import (
    Manifest, infer_variant, mortality_by_split, read_table, write_table,
)
from alfia.cohorts.schema import (
    ID_COLUMN, IDENTIFIER_COLUMNS, OUTCOME_COLUMN, SPLIT_COLUMN, CohortSchema, Variable,
)
from alfia.cohorts.validate import check_labels, row_name
from alfia.errors import AlfiaError
from alfia.text.numbers import BMI_DECIMALS, body_mass_index, decimals_for, format_column
from alfia.text.table import TEXT_COLUMN
from alfia.text.templates import TEMPLATES, Template

MissingMode = Literal["omit", "state"]
MISSING_MODES = ("omit", "state")
# Columns a cohort may carry besides its predictors; they are passed through, not rendered.
PASSTHROUGH = (*IDENTIFIER_COLUMNS, OUTCOME_COLUMN, SPLIT_COLUMN)
_CHUNK = 10_000


class TextEncodingWarning(UserWarning):
    """Something in the cohort the template ignores (unknown or absent columns)."""


def get_template(name: str, *, source: str = "<cohort>") -> Template:
    try:
        return TEMPLATES[name]
    except KeyError:
        raise AlfiaError(
            f"{source}: no text template for cohort variant {name!r}; "
            f"known templates: {', '.join(TEMPLATES)}"
        ) from None


def resolve_template(template: str, df: pd.DataFrame, source: str) -> Template:
    """``auto`` -> the template of the schema the columns match best (the CLI passes the manifest's)."""
    if template == "auto":
        template = infer_variant(df, None, source)
    return get_template(template, source=source)


def _numeric_values(df: pd.DataFrame, var: Variable, source: str) -> np.ndarray:
    col = df[var.name]
    if pd.api.types.is_bool_dtype(col) or not pd.api.types.is_numeric_dtype(col):
        converted = pd.to_numeric(col, errors="coerce")
        bad = converted.isna() & col.notna()
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise AlfiaError(f"{source}: {row_name(df, i)}, column {var.name!r}: "
                             f"{col.iloc[i]!r} is not a number")
        col = converted
    values = col.to_numpy(dtype=float, na_value=np.nan)
    outside = var.outside_range(values)
    if outside.any():
        i = int(np.flatnonzero(outside)[0])
        raise AlfiaError(f"{source}: {row_name(df, i)}, column {var.name!r}: value {values[i]:g} is outside "
                         f"the schema's range {var.range_text} ({int(outside.sum())} row(s) in all)")
    if var.kind == "integer":
        with np.errstate(invalid="ignore"):
            fractional = np.isfinite(values) & (values != np.round(values))
        if fractional.any():
            i = int(np.flatnonzero(fractional)[0])
            raise AlfiaError(f"{source}: {row_name(df, i)}, column {var.name!r}: value "
                             f"{values[i]:g} is not an integer, but the schema records it as one")
    return values


def _category_values(df: pd.DataFrame, var: Variable, source: str) -> list[str | None]:
    col = df[var.name]
    present = col.notna().to_numpy()
    strings = [str(x) if p else None for x, p in zip(col.tolist(), present)]
    allowed = set(var.categories or ())
    unknown = {value for value in set(strings) if value is not None and value not in allowed}
    if unknown:
        i = next(i for i, value in enumerate(strings) if value in unknown)
        raise AlfiaError(
            f"{source}: {row_name(df, i)}, column {var.name!r}: unknown category {strings[i]!r}; "
            f"the schema allows {', '.join(repr(c) for c in var.categories or ())}"
        )
    return strings


def prepare_columns(df: pd.DataFrame, schema: CohortSchema, source: str) -> dict[str, list]:
    """Validate every predictor against ``schema`` and format it for the templates.

    Returns column -> list of strings (``None`` = missing), including the derived BMI. A predictor the
    table lacks is all missing.
    """
    n = len(df)
    columns: dict[str, list] = {}
    numeric: dict[str, np.ndarray] = {}
    for var in schema.predictors:
        if var.name not in df.columns:
            columns[var.name] = [None] * n
        elif var.is_categorical:
            columns[var.name] = _category_values(df, var, source)
        else:
            values = _numeric_values(df, var, source)
            numeric[var.name] = values
            columns[var.name] = format_column(values, decimals_for(var))
    if "height" in numeric and "weight" in numeric:
        with np.errstate(invalid="ignore", divide="ignore"):
            bmi = body_mass_index(numeric["height"], numeric["weight"])
        columns["bmi"] = format_column(bmi, BMI_DECIMALS)
    else:
        columns["bmi"] = [None] * n
    return columns


def _check_columns(df: pd.DataFrame, template: Template, source: str) -> None:
    if len(df) == 0:
        raise AlfiaError(f"{source}: the cohort has no rows; nothing to encode")
    if ID_COLUMN not in df.columns:
        raise AlfiaError(
            f"{source}: column {ID_COLUMN!r} is missing; every cohort row needs its stay id")
    dup = df[ID_COLUMN].duplicated(keep="first").to_numpy()
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        raise AlfiaError(f"{source}: {row_name(df, i)}: column {ID_COLUMN!r} repeats an earlier row's "
                         f"stay id ({int(dup.sum())} duplicate(s)); each ICU stay must appear once")
    schema = template.schema
    unknown = [c for c in df.columns if c not in schema and c not in PASSTHROUGH]
    if unknown:
        warnings.warn(
            f"{source}: {len(unknown)} column(s) unknown to the {template.name} template are ignored: "
            f"{', '.join(map(str, unknown))}", TextEncodingWarning, stacklevel=3)
    absent = [c for c in schema.predictor_names if c not in df.columns]
    if len(absent) == len(schema.predictors):
        raise AlfiaError(f"{source}: none of the {template.name} template's predictors is a column of "
                         "this table; is it the right template?")
    if absent:
        warnings.warn(
            f"{source}: {len(absent)} {template.name} predictor(s) absent, written as missing: "
            f"{', '.join(absent)}", TextEncodingWarning, stacklevel=3)


def render_prepared(columns: dict[str, list], template: Template, missing: MissingMode = "omit",
                    *, progress: bool = False) -> list[str]:
    """Render rows from :func:`prepare_columns` output."""
    if missing not in MISSING_MODES:
        raise AlfiaError(f"missing must be one of {', '.join(MISSING_MODES)}, not {missing!r}")
    state = missing == "state"
    names = list(columns)
    render = template.render
    n = len(columns[names[0]]) if names else 0
    rows: Iterable = zip(*columns.values())
    if not progress or n < _CHUNK:
        return [render(dict(zip(names, values)), state) for values in rows]
    from alfia.progress import step

    texts: list[str] = []
    with step(f"encoding {n:,} rows ({template.name})", n, unit="rows") as bar:
        for i, values in enumerate(rows, 1):
            texts.append(render(dict(zip(names, values)), state))
            if i % _CHUNK == 0:
                bar.update(completed=i)
        bar.update(completed=n)
    return texts


def encode_cohort(df: pd.DataFrame, template: str = "auto", missing: MissingMode = "omit", *,
                  source: str = "<cohort>", progress: bool = False) -> pd.DataFrame:
    """Encode every row of a CW-24 cohort table as clinical text.

    Returns ``stay_id``, ``split``, ``hospital_expire_flag``, ``text``, then every predictor the table
    has, unchanged (so ALFIA-boost can join them back), and ``subject_id``/``hospitalid`` when present. Raises
    :class:`AlfiaError` naming the row and column for a value outside the schema.
    """
    tmpl = resolve_template(template, df, source)
    if missing not in MISSING_MODES:
        raise AlfiaError(f"missing must be one of {', '.join(MISSING_MODES)}, not {missing!r}")
    _check_columns(df, tmpl, source)
    if OUTCOME_COLUMN in df.columns and df[OUTCOME_COLUMN].notna().any():
        check_labels(df, source)  # new stays carry no label (an empty column); a label that is there is 0 or 1
    columns = prepare_columns(df, tmpl.schema, source)
    texts = render_prepared(columns, tmpl, missing, progress=progress)
    n = len(df)
    out = {ID_COLUMN: df[ID_COLUMN].to_numpy()}
    for col in (SPLIT_COLUMN, OUTCOME_COLUMN):
        out[col] = df[col].to_numpy() if col in df.columns else pd.array([pd.NA] * n)
    out[TEXT_COLUMN] = texts
    for col in tmpl.schema.predictor_names:
        if col in df.columns:
            out[col] = df[col].to_numpy()
    for col in IDENTIFIER_COLUMNS[1:]:  # subject_id, hospitalid: identifiers travel with the text, unrendered
        if col in df.columns:
            out[col] = df[col].to_numpy()
    return pd.DataFrame(out)


def encode_file(cohort_path: str | os.PathLike, out_path: str | os.PathLike, template: str = "auto",
                missing: MissingMode = "omit", *, progress: bool = False,
                exclusive: bool = False) -> tuple[pd.DataFrame, Manifest]:
    """Read a cohort file, encode it, and write the text table with its manifest (atomically).
    ``exclusive``: refuse if ``out_path`` appeared while encoding (see ``write_table``)."""
    cohort_path = Path(cohort_path)
    df, manifest = read_table(cohort_path)
    source = str(cohort_path)
    if template == "auto":
        template = infer_variant(df, manifest, cohort_path)
    tmpl = get_template(template, source=source)
    if manifest is not None and manifest.variant and manifest.variant != tmpl.variant:
        warnings.warn(f"{source}: the manifest says this is a {manifest.variant} cohort, but the "
                      f"{tmpl.name} template was asked for", TextEncodingWarning, stacklevel=2)
    text = encode_cohort(df, tmpl.name, missing, source=source, progress=progress)
    text_manifest = Manifest(
        kind="text",
        source=(manifest.source if manifest is not None else cohort_path.name),
        variant=tmpl.variant,
        n_rows=len(text),
        splits=mortality_by_split(text) if text[OUTCOME_COLUMN].notna().all() else {},
        window_hours=tmpl.schema.window_hours,
        extra={
            "template": tmpl.name,
            "template_version": tmpl.version,
            "missing": missing,
            "cohort_file": cohort_path.name,
            "cohort_sha256": sha256_file(cohort_path),
            # the cohort's task (alfia.cohorts.tasks) travels with its label
            **({"task": manifest.extra["task"]} if manifest is not None and "task" in (manifest.extra or {}) else {}),
        },
    )
    written = write_table(text, out_path, text_manifest, exclusive=exclusive)
    return text, written
