"""The hourly table: one row per stay and hour 1..H, with a value, a measured mask and the time since
the last measurement for every variable, plus the stay's label and split.

Hour ``h`` holds what was measured in ((h - 1) h, h h] after ICU admission (hour 1 also takes time 0).
A value after the window's end never enters: builders drop it and count it in the manifest. Values are
the raw hourly aggregates in the vocabulary's units (:mod:`alfia.series.variables`), NaN where nothing
was measured; imputation and normalisation belong to a trained run (:mod:`alfia.series.preprocess`),
which fits them on the train split only.

Columns: ``stay_id, hour, hospital_expire_flag, split``, then ``<var>`` (value), ``<var>__mask``
(1 = measured in that hour) and ``<var>__tsl`` (hours since the last measurement at or before this hour;
since admission when never measured) for each variable. Written as Parquet with a manifest
(:mod:`alfia.cohorts.io`) whose ``extra`` lists the variables with their units.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from alfia.cohorts.io import Manifest, mortality_by_split, read_table, write_table
from alfia.cohorts.schema import ID_COLUMN, OUTCOME_COLUMN, SPLIT_COLUMN
from alfia.cohorts.validate import split_for_training
from alfia.errors import AlfiaError
from alfia.series.variables import SeriesVariable, variable_of

HOUR_COLUMN = "hour"
KIND = "hourly"
MASK_SUFFIX, TSL_SUFFIX = "__mask", "__tsl"


def mask_column(name: str) -> str:
    return name + MASK_SUFFIX


def tsl_column(name: str) -> str:
    return name + TSL_SUFFIX


def hour_of_minute(minutes: np.ndarray) -> np.ndarray:
    """Hour row of a time in minutes since admission: (60(h-1), 60h] -> h, and minute 0 -> hour 1."""
    return np.maximum(np.ceil(np.asarray(minutes, dtype=float) / 60.0), 1).astype(np.int64)


def hourly_from_long(long: pd.DataFrame, stays: pd.DataFrame, variables: list[SeriesVariable],
                     hours: int) -> pd.DataFrame:
    """The hourly table from measurements in long form.

    ``long``: ``stay_id, hour, variable, value`` in time order within a stay (``last`` takes the latest);
    hours outside 1..``hours`` raise (a builder must drop them first: nothing after the window enters).
    ``stays``: ``stay_id``, the outcome and ``split``, one row per stay: every stay gets all its hours,
    also those (or all) without a measurement.
    """
    if long.empty:
        long = pd.DataFrame({ID_COLUMN: [], HOUR_COLUMN: [], "variable": [], "value": []})
    bad = ~long[HOUR_COLUMN].between(1, hours)
    if bad.any():
        raise AlfiaError(f"measurement at hour {long[HOUR_COLUMN][bad].iloc[0]} outside the window 1..{hours}")
    names = [v.name for v in variables]
    unknown = set(long["variable"].unique()) - set(names)
    if unknown:
        raise AlfiaError(f"measurements of undeclared variable(s): {', '.join(sorted(map(str, unknown)))}")
    stays = stays.sort_values(ID_COLUMN, kind="mergesort").reset_index(drop=True)
    if stays[ID_COLUMN].duplicated().any():
        raise AlfiaError(f"stay {stays[ID_COLUMN][stays[ID_COLUMN].duplicated()].iloc[0]} listed twice")
    long = long[long[ID_COLUMN].isin(stays[ID_COLUMN])]
    n, v = len(stays), len(variables)
    values = np.full((n, hours, v), np.nan)
    row = pd.Index(stays[ID_COLUMN])
    for agg in ("mean", "sum", "max", "last"):
        vars_agg = [x.name for x in variables if x.aggregate == agg]
        part = long[long["variable"].isin(vars_agg)]
        if part.empty:
            continue
        g = part.groupby([ID_COLUMN, HOUR_COLUMN, "variable"], sort=False, observed=True)["value"].agg(agg)
        g = g.dropna()
        i = row.get_indexer(g.index.get_level_values(0))
        h = g.index.get_level_values(1).to_numpy(dtype=np.int64) - 1
        j = pd.Index(names).get_indexer(g.index.get_level_values(2))
        values[i, h, j] = g.to_numpy(dtype=float)
    return frame_from_arrays(stays[ID_COLUMN].to_numpy(), stays[OUTCOME_COLUMN].to_numpy(),
                             stays[SPLIT_COLUMN].to_numpy(), values, names)


def time_since_last(measured: np.ndarray) -> np.ndarray:
    """(N, H, V) hours since the last measurement at or before each hour; ``h`` when none yet."""
    hour = np.arange(1, measured.shape[1] + 1, dtype=np.float32)[None, :, None]
    last = np.maximum.accumulate(np.where(measured, hour, 0.0), axis=1)
    return (hour - last).astype(np.float32)


def frame_from_arrays(stay_id, label, split, values: np.ndarray, names: list[str]) -> pd.DataFrame:
    """Long hourly frame (the file layout) from (N, H, V) values, NaN where not measured."""
    n, hours, _ = values.shape
    measured = ~np.isnan(values)
    tsl = time_since_last(measured)
    cols: dict[str, Any] = {
        ID_COLUMN: np.repeat(np.asarray(stay_id), hours),
        HOUR_COLUMN: np.tile(np.arange(1, hours + 1, dtype=np.int16), n),
        OUTCOME_COLUMN: np.repeat(np.asarray(label, dtype=np.int8), hours),
        SPLIT_COLUMN: np.repeat(np.asarray(split, dtype=object), hours),
    }
    flat = values.reshape(n * hours, -1)
    for j, name in enumerate(names):
        cols[name] = flat[:, j].astype(np.float64)
    for j, name in enumerate(names):
        cols[mask_column(name)] = measured.reshape(n * hours, -1)[:, j].astype(np.int8)
    for j, name in enumerate(names):
        cols[tsl_column(name)] = tsl.reshape(n * hours, -1)[:, j]
    return pd.DataFrame(cols)


def write_hourly(df: pd.DataFrame, path: str | os.PathLike, *, source: str, variables: list[SeriesVariable],
                 hours: int, extra: dict[str, Any] | None = None) -> Manifest:
    """Write the hourly table and its manifest atomically (alfia.cohorts.io.write_table)."""
    per_stay = df.drop_duplicates(ID_COLUMN)[[ID_COLUMN, OUTCOME_COLUMN, SPLIT_COLUMN]]
    manifest = Manifest(kind=KIND, source=source, variant=KIND, n_rows=len(df),
                        splits=mortality_by_split(per_stay), window_hours=float(hours),
                        extra={"n_stays": int(len(per_stay)), "hours": int(hours),
                               "variables": [v.to_dict() for v in variables], **(extra or {})})
    return write_table(df, path, manifest)


@dataclass
class HourlyArrays:
    """An hourly table as arrays: (N,) stay ids, labels and splits; (N, H, V) values (NaN = not measured)."""

    stay_id: np.ndarray
    label: np.ndarray
    split: np.ndarray
    values: np.ndarray
    variables: list[SeriesVariable]
    source: str = ""

    @property
    def hours(self) -> int:
        return int(self.values.shape[1])

    @property
    def names(self) -> list[str]:
        return [v.name for v in self.variables]

    def subset(self, rows) -> "HourlyArrays":
        return HourlyArrays(self.stay_id[rows], self.label[rows], self.split[rows], self.values[rows],
                            self.variables, self.source)

    def rows_of(self, split: str) -> np.ndarray:
        return np.flatnonzero(self.split == split)

    def to_frame(self) -> pd.DataFrame:
        return frame_from_arrays(self.stay_id, self.label, self.split, self.values, self.names)


def arrays_from_frame(df: pd.DataFrame, variables: list[SeriesVariable] | None = None,
                      source: str = "hourly table") -> HourlyArrays:
    """Check the layout and turn the long frame into arrays. Variables default to the columns with a mask."""
    for col in (ID_COLUMN, HOUR_COLUMN):
        if col not in df.columns:
            raise AlfiaError(f"{source}: no {col!r} column (not an hourly table; build one with `alfia series build`)")
    if variables is None:
        variables = [variable_of(c.removesuffix(MASK_SUFFIX)) for c in df.columns if c.endswith(MASK_SUFFIX)]
    names = [v.name for v in variables]
    missing = [c for c in names if c not in df.columns]
    if missing:
        raise AlfiaError(f"{source}: variable column(s) {', '.join(missing[:5])} missing")
    df = df.sort_values([ID_COLUMN, HOUR_COLUMN], kind="mergesort")
    ids, counts = np.unique(df[ID_COLUMN].to_numpy(), return_counts=True)
    hours = int(df[HOUR_COLUMN].max())
    expected = np.tile(np.arange(1, hours + 1), len(ids))
    if (counts != hours).any() or not np.array_equal(df[HOUR_COLUMN].to_numpy(), expected):
        bad = ids[counts != hours][:1] if (counts != hours).any() else ids[:1]
        raise AlfiaError(f"{source}: stay {bad[0]} does not have exactly one row for each hour 1..{hours}")
    n = len(ids)
    for col in (OUTCOME_COLUMN, SPLIT_COLUMN):  # a stay has one label and one split, on each of its hours
        if col in df.columns:
            varies = df.groupby(ID_COLUMN, sort=False)[col].nunique(dropna=False) > 1
            if varies.any():
                raise AlfiaError(f"{source}: column {col!r} differs between the hours of stay {varies.index[varies][0]} "
                                 f"({int(varies.sum())} stay(s)); a stay has one {col} on all its rows")
    values = _numeric_values(df, names, source).reshape(n, hours, len(names))
    infinite = np.isinf(values)
    if infinite.any():
        i, h, j = (int(k[0]) for k in np.nonzero(infinite))
        raise AlfiaError(f"{source}: column {names[j]!r} holds {values[i, h, j]} at stay {ids[i]}, hour {h + 1} "
                         f"({int(infinite.sum())} infinite value(s)); an unmeasured hour is empty (NaN), not infinite")
    first = df.iloc[::hours]
    label = (first[OUTCOME_COLUMN].to_numpy().astype(np.int64) if OUTCOME_COLUMN in df
             else np.full(n, -1, dtype=np.int64))
    split = (first[SPLIT_COLUMN].astype(str).to_numpy() if SPLIT_COLUMN in df
             else np.full(n, "", dtype=object))
    return HourlyArrays(ids, label, np.asarray(split, dtype=object), values, list(variables), source)


def _numeric_values(df: pd.DataFrame, names: list[str], source: str) -> np.ndarray:
    """The variables' values as floats; a value that is no number is named by its stay, hour and column."""
    out = np.empty((len(df), len(names)), dtype=np.float64)
    for j, name in enumerate(names):
        column = df[name]
        number = pd.to_numeric(column, errors="coerce")
        bad = number.isna() & column.notna() & (column.astype(str).str.strip() != "")
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise AlfiaError(f"{source}: column {name!r} holds {column.iloc[i]!r} at stay {df[ID_COLUMN].iloc[i]}, "
                             f"hour {df[HOUR_COLUMN].iloc[i]} ({int(bad.sum())} value(s) that are not numbers)")
        out[:, j] = number.to_numpy(dtype=np.float64, na_value=np.nan)
    return out


def read_hourly(path: str | os.PathLike) -> HourlyArrays:
    """Read an hourly table written by :func:`write_hourly` (variables and units from its manifest)."""
    from alfia.cohorts.io import manifest_path

    df, manifest = read_table(path)
    if manifest is None:  # the variables' units live in the manifest alone: without it no unit could match
        raise AlfiaError(f"{path}: no manifest ({manifest_path(path).name}); an hourly table's variables and units "
                         f"are in it. Keep it beside the table (`alfia series build` writes both)")
    if manifest.kind != KIND:
        raise AlfiaError(f"{path}: a {manifest.kind} table, not an hourly table (build one with "
                         f"`alfia series build`)")
    variables = [SeriesVariable.from_dict(d) for d in manifest.extra.get("variables", [])] or None
    arrays = arrays_from_frame(df, variables, source=str(path))
    arrays.source = manifest.source
    return arrays


def check_splits(arrays: HourlyArrays, where: str) -> None:
    """Training needs labelled train and val stays with deaths and survivors: the one check of labels and
    splits (``alfia.cohorts.validate.split_for_training``), on the table's stays."""
    split_for_training(pd.DataFrame({ID_COLUMN: arrays.stay_id, OUTCOME_COLUMN: arrays.label,
                                     SPLIT_COLUMN: arrays.split}), where, need_test=False)
