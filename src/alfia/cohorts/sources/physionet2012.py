"""The PhysioNet/CinC Challenge 2012 cohort: real MIMIC-II ICU stays, read from PhysioNet's own files.

Input: one or more record sets (``set-a.tar.gz`` or a folder of ``<RecordID>.txt`` files, each a CSV
``Time,Parameter,Value`` with ``Time`` as hh:mm since ICU admission and ``-1`` for missing) and their
outcome files (``RecordID,SAPS-I,SOFA,Length_of_stay,Survival,In-hospital_death``).

Output: one row per stay: the static descriptors, SAPS-I and SOFA, and aggregates of every time series
measured at or before the window's end. By default the chart aggregates of
:data:`alfia.cohorts.schema.PHYSIONET2012_COMPACT` (worst/last GCS, range and mean of each vital sign,
range of each lab, urine total, ventilation); ``aggregates="full"`` keeps first/last/min/max/mean/std/count
of every series (:data:`alfia.cohorts.schema.PHYSIONET2012`). ``Length_of_stay`` and ``Survival`` are outcome
information and never enter the cohort; a length-of-stay task (:mod:`alfia.cohorts.tasks`) reads
``Length_of_stay`` there, only to derive its label.

All lines of all records are parsed at once with Arrow compute kernels (no per-line Python), so a set of
4,000 stays takes a few seconds.
"""

from __future__ import annotations

import os
import re
import tarfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from alfia.cohorts.schema import (
    ICU_TYPES, ID_COLUMN, OUTCOME_COLUMN, PHYSIONET_AGGREGATES, PHYSIONET_SERIES, SERIES_STATS,
    SPLIT_COLUMN, COMPACT_DECIMALS, compact_stats, series_column,
)
from alfia.cohorts.splits import DEFAULT_SEED, assign_splits
from alfia.cohorts.tasks import apply_task, get_task, physionet2012_los
from alfia.errors import AlfiaError

PathLike = str | os.PathLike
HEADER = "Time,Parameter,Value"
DESCRIPTORS = ("RecordID", "Age", "Gender", "Height", "ICUType", "Weight")
OUTCOME_COLUMNS = ("RecordID", "SAPS-I", "SOFA", "In-hospital_death")
LEAKING_OUTCOME_COLUMNS = ("Length_of_stay", "Survival")  # never loaded
_RECORD_NAME = re.compile(r"^(\d+)\.txt$")
_TIME = re.compile(r"^\d{1,3}:\d{2}$")
_NUMBER = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")
_MAX_LISTED = 20

Progress = Callable[[int, int], None]  # (records read so far, total or 0 if unknown)


# --- reading record files -------------------------------------------------------------------------

class _RecordFile:
    __slots__ = ("record_id", "label", "text")

    def __init__(self, record_id: int, label: str, text: bytes):
        self.record_id, self.label, self.text = record_id, label, text


def _check_record(label: str, name: str, data: bytes) -> _RecordFile:
    m = _RECORD_NAME.match(name)
    if not m:
        raise AlfiaError(f"{label}: not a PhysioNet 2012 record (expected a file named "
                         f"<RecordID>.txt)")
    if not data.strip():
        raise AlfiaError(f"{label}: empty file, not a PhysioNet 2012 record")
    try:
        data.decode("utf-8")  # Arrow's CSV reader would stop at a bad byte with a traceback naming no file
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise AlfiaError(f"{label}: line {line} is not UTF-8 text (byte {data[e.start]:#04x}); a PhysioNet 2012 "
                         f"record is plain ASCII, so the file is damaged") from None
    first, _, rest = data.partition(b"\n")
    first_text = first.decode("utf-8", errors="replace").strip().lstrip("\ufeff")
    if first_text != HEADER:
        raise AlfiaError(f"{label}: not a PhysioNet 2012 record (line 1 is {first_text[:40]!r}, "
                         f"expected {HEADER!r})")
    if rest and not rest.endswith(b"\n"):
        rest += b"\n"
    return _RecordFile(int(m.group(1)), label, rest)


def _read_records(source: PathLike, progress: Progress | None) -> list[_RecordFile]:
    path = Path(source)
    if not path.exists():
        raise AlfiaError(f"{path}: no such file or folder")
    records: list[_RecordFile] = []
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
        if not files:
            raise AlfiaError(f"{path}: folder holds no record files")
        for i, f in enumerate(files):
            records.append(_check_record(str(f), f.name, f.read_bytes()))
            if progress and i % 200 == 0:
                progress(len(records), len(files))
    else:
        if path.stat().st_size == 0:
            raise AlfiaError(f"{path}: file is empty")
        try:
            with tarfile.open(path, "r:*") as tar:
                for member in tar:
                    if member.isdir():
                        continue
                    label = f"{path}:{member.name}"
                    if member.name.startswith(("/", "\\")) or ".." in Path(member.name).parts:
                        # Members are read in memory, never extracted; a name pointing outside
                        # the archive still marks a hostile or broken file.
                        raise AlfiaError(f"{label}: member path points outside the archive; refusing it")
                    if not member.isfile():
                        raise AlfiaError(f"{label}: not a PhysioNet 2012 record (not a regular "
                                         f"file)")
                    data = tar.extractfile(member).read()
                    records.append(_check_record(label, Path(member.name).name, data))
                    if progress and len(records) % 200 == 0:
                        progress(len(records), 0)
        except (tarfile.TarError, EOFError, OSError) as e:
            raise AlfiaError(f"{path}: not a readable tar archive or record folder ({e})") from None
        if not records:
            raise AlfiaError(f"{path}: archive holds no record files")
    if progress:
        progress(len(records), len(records))
    return records


def _parse_lines(records: list[_RecordFile]) -> tuple[pd.DataFrame, list[str]]:
    """All measurement lines of all records as one frame: record, minute, parameter, value, order.

    The records' lines are concatenated and read by Arrow's CSV reader in one pass; every physical
    line is either a parsed row or reported to the invalid-row handler, so the line numbers of bad
    rows give back each good row's file and line. Returns the frame and malformed lines as
    "file:line".
    """
    counts = np.array([r.text.count(b"\n") for r in records], dtype=np.int64)
    starts = np.cumsum(counts) - counts
    invalid: list[int] = []

    def on_invalid(row) -> str:
        invalid.append(row.number)  # 1-based physical line in the concatenation
        return "skip"

    if counts.sum():
        table = pacsv.read_csv(
            pa.py_buffer(b"".join(r.text for r in records)),
            read_options=pacsv.ReadOptions(column_names=["time", "parameter", "value"],
                                           use_threads=False),
            parse_options=pacsv.ParseOptions(quote_char=False, escape_char=False,
                                             ignore_empty_lines=False,
                                             invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(
                column_types={c: pa.string() for c in ("time", "parameter", "value")},
                strings_can_be_null=False),
        )
    else:
        table = pa.table({c: pa.array([], pa.string()) for c in ("time", "parameter", "value")})
    bad_rows = np.array(sorted(i - 1 for i in invalid), dtype=np.int64)
    row_line = np.setdiff1d(np.arange(counts.sum()), bad_rows, assume_unique=True)
    if len(row_line) != table.num_rows:
        raise AlfiaError("could not align record lines (invalid rows without line numbers)")

    time_s, param, value_s = (pc.utf8_trim_whitespace(table[c].combine_chunks())
                              for c in ("time", "parameter", "value"))
    hm = pc.extract_regex(time_s, r"^(?P<h>\d{1,3}):(?P<m>[0-5]\d)$")  # hh:mm; 05:75 is no time
    time_ok = pc.is_valid(hm).to_numpy(zero_copy_only=False)
    # Numbers are recognised by pattern, then cast in one Arrow kernel (no per-value Python).
    value_ok = pc.match_substring_regex(value_s, _NUMBER.pattern).to_numpy(zero_copy_only=False)
    param_ok = pc.greater(pc.utf8_length(param), 0).to_numpy(zero_copy_only=False)
    good = time_ok & value_ok & param_ok
    blank_rows = bad_rows  # wrong field count; blank lines among them are not malformed
    bad_lines = np.concatenate([blank_rows, row_line[~good]])
    keep = pa.array(good)

    def where(line: int) -> str:
        rec = int(np.searchsorted(starts, line, side="right") - 1)
        return f"{records[rec].label}:{line - starts[rec] + 2}"  # +2: header is line 1

    text_lines = None
    malformed = []
    for line in np.sort(bad_lines):
        if text_lines is None:  # only on bad input: find blank lines, which are not errors
            text_lines = b"".join(r.text for r in records).split(b"\n")
        if text_lines[line].strip():
            malformed.append(where(int(line)))

    hm = pc.filter(hm, keep)
    minutes = (pc.cast(pc.struct_field(hm, "h"), pa.int64()).to_numpy() * 60
               + pc.cast(pc.struct_field(hm, "m"), pa.int64()).to_numpy())
    value = pc.cast(pc.filter(value_s, keep), pa.float64()).to_numpy(zero_copy_only=False)
    codes = pc.dictionary_encode(pc.filter(param, keep))
    good_lines = row_line[good]
    frame = pd.DataFrame({
        "record": np.searchsorted(starts, good_lines, side="right") - 1,
        "minute": minutes,
        "parameter": pd.Categorical.from_codes(codes.indices.to_numpy(zero_copy_only=False),
                                               categories=codes.dictionary.to_pylist()),
        "value": value,
        "order": good_lines,
    })
    return frame, malformed


# --- outcomes ----------------------------------------------------------------------------------

def _read_outcomes(paths: Sequence[PathLike]) -> pd.DataFrame:
    parts = []
    for p in paths:
        path = Path(p)
        if not path.exists():
            raise AlfiaError(f"{path}: no such file")
        if path.stat().st_size == 0 or not path.read_text().strip():
            raise AlfiaError(f"{path}: file is empty")
        try:
            header = pd.read_csv(path, nrows=0).columns.str.strip().tolist()
        except (pd.errors.ParserError, UnicodeDecodeError) as e:
            raise AlfiaError(f"{path}: not a readable CSV outcomes file ({e})") from None
        missing = [c for c in OUTCOME_COLUMNS if c not in header]
        if missing:
            raise AlfiaError(f"{path}: missing required column {missing[0]!r} (an outcomes file "
                             f"has {', '.join(OUTCOME_COLUMNS)})")
        # usecols: Length_of_stay and Survival are outcome information and never enter memory.
        try:
            df = pd.read_csv(path, usecols=lambda c: c.strip() in OUTCOME_COLUMNS, dtype=str,
                             skipinitialspace=True)
        except pd.errors.ParserError as e:
            raise AlfiaError(f"{path}: malformed outcomes file ({e})") from None
        df.columns = df.columns.str.strip()
        df["_file"] = str(path)
        df["_line"] = np.arange(len(df)) + 2
        for col in OUTCOME_COLUMNS:
            num = pd.to_numeric(df[col], errors="coerce")
            bad = num.isna() | ~np.isfinite(num)
            if bad.any():
                rows = ", ".join(f"{path}:{n}" for n in df["_line"][bad][:5])
                raise AlfiaError(f"{path}: column {col!r} has non-numeric value "
                                 f"{df[col][bad].iloc[0]!r} at line {rows}")
            df[col] = num
        label = df["In-hospital_death"]
        bad = ~label.isin([0, 1])
        if bad.any():
            first = df[bad].iloc[0]
            raise AlfiaError(f"{path}:{first['_line']}: column 'In-hospital_death' is "
                             f"{first['In-hospital_death']:g} for RecordID "
                             f"{int(first['RecordID'])}; a label must be 0 or 1 "
                             f"({int(bad.sum())} such rows)")
        parts.append(df)
    out = pd.concat(parts, ignore_index=True)
    dup = out["RecordID"].duplicated(keep=False)
    if dup.any():
        where = out[dup].groupby("RecordID")[["_file", "_line"]].apply(
            lambda g: ", ".join(f"{f}:{n}" for f, n in zip(g["_file"], g["_line"])))
        shown = "; ".join(f"RecordID {int(r)} at {w}" for r, w in list(where.items())[:5])
        raise AlfiaError(f"duplicated RecordID in outcomes: {shown}"
                         + (f" and {len(where) - 5} more" if len(where) > 5 else ""))
    out["RecordID"] = out["RecordID"].astype(np.int64)
    return out


# --- building the cohort -----------------------------------------------------------------------

def _static(lines: pd.DataFrame, n_records: int, report: dict) -> pd.DataFrame:
    """Descriptors given at 00:00: the first line of each descriptor per record."""
    at_zero = lines[(lines["minute"] == 0) & lines["parameter"].isin(DESCRIPTORS)]
    first = at_zero.drop_duplicates(["record", "parameter"], keep="first")
    wide = first.pivot(index="record", columns="parameter", values="value")
    wide = wide.reindex(index=np.arange(n_records), columns=list(DESCRIPTORS))
    wide = wide.where(wide != -1)  # -1 means missing
    out = pd.DataFrame(index=wide.index)
    out["age"] = wide["Age"]
    out["gender"] = wide["Gender"].map({0.0: "Female", 1.0: "Male"})
    out["icu_type"] = wide["ICUType"].map({float(i + 1): t for i, t in enumerate(ICU_TYPES)})
    out["height"] = wide["Height"]
    out["weight"] = wide["Weight"]
    out.attrs["record_id_values"] = wide["RecordID"]
    dropped = report["dropped_implausible"]
    for col in ("age", "height", "weight"):
        lo, hi = PHYSIONET_AGGREGATES["full"][col].valid_range
        bad = out[col].notna() & ~out[col].between(lo, hi)
        if bad.any():
            dropped[col] = int(bad.sum())
            out.loc[bad, col] = np.nan
    for col, raw in (("gender", "Gender"), ("icu_type", "ICUType")):
        bad = wide[raw].notna() & out[col].isna()
        if bad.any():
            dropped[col] = int(bad.sum())
    return out, first.index


def _series(lines: pd.DataFrame, n_records: int, hours: float, report: dict) -> pd.DataFrame:
    names = {p.parameter: p for p in PHYSIONET_SERIES}
    s = lines[lines["parameter"].isin(list(names)) & (lines["value"] != -1)]
    s = s[s["minute"] <= hours * 60]  # at or before the window's end
    lo = s["parameter"].map({k: p.valid_range[0] for k, p in names.items()}).astype(float)
    hi = s["parameter"].map({k: p.valid_range[1] for k, p in names.items()}).astype(float)
    plausible = s["value"].between(lo, hi)
    dropped = s.loc[~plausible, "parameter"].value_counts()
    report["dropped_implausible"].update({str(k): int(v) for k, v in dropped.items() if v})
    s = s[plausible].sort_values(["record", "minute", "order"], kind="stable")
    stats = s.groupby(["record", "parameter"], sort=False, observed=True)["value"].agg(
        ["first", "last", "min", "max", "mean", "std", "count", "sum"]).rename(columns={"sum": "total"})
    wide = stats.unstack("parameter")
    cols = {}
    for p in PHYSIONET_SERIES:
        for stat in (*SERIES_STATS, "total"):
            key = (stat, p.parameter)
            cols[series_column(p, stat)] = wide[key] if key in wide.columns else np.nan
    out = pd.DataFrame(cols, index=wide.index).reindex(np.arange(n_records))
    count_cols = [series_column(p, "count") for p in PHYSIONET_SERIES]
    out[count_cols] = out[count_cols].fillna(0)
    # A urine total is known only where urine was charted: no reading is "not recorded", not 0 mL.
    return out


def build_physionet2012(records: Sequence[PathLike], outcomes: Sequence[PathLike],
                        hours: float = 24.0, *, aggregates: str = "compact", seed: int = DEFAULT_SEED,
                        progress: Progress | None = None, task: str = "mortality") -> tuple[pd.DataFrame, dict]:
    """Build the PhysioNet 2012 cohort from record sets and outcome files.

    ``aggregates``: "compact" (the default: the chart aggregates of ``schema.COMPACT_STATS``, variant
    ``physionet2012_compact``) or "full" (seven statistics of every series, variant ``physionet2012``).

    ``task``: the label (:data:`alfia.cohorts.tasks.TASKS`); the split is assigned on mortality first, so every
    task has the same split. Returns the cohort (schema column order, ``split`` assigned per stay: the challenge
    has no patient ids) and a report: counts, records without outcome, outcomes without record, malformed lines as
    "file:line", measurements dropped as implausible per parameter.
    """
    if isinstance(records, (str, os.PathLike)):
        records = [records]
    if isinstance(outcomes, (str, os.PathLike)):
        outcomes = [outcomes]
    if not records or not outcomes:
        raise AlfiaError("physionet2012 needs at least one record set and one outcomes file")
    get_task(task)  # an unknown task is refused before any file is read
    if aggregates not in PHYSIONET_AGGREGATES:
        raise AlfiaError(f"--aggregates must be one of {', '.join(PHYSIONET_AGGREGATES)}, got {aggregates!r}")
    schema = PHYSIONET_AGGREGATES[aggregates]
    if not 0 < hours <= 48:
        raise AlfiaError(f"--hours must lie in (0, 48] (PhysioNet 2012 records span 48 h), "
                         f"got {hours:g}")
    files: list[_RecordFile] = []
    for src in records:
        files.extend(_read_records(src, progress))
    seen: dict[int, str] = {}
    for f in files:
        if f.record_id in seen:
            raise AlfiaError(f"{f.label}: RecordID {f.record_id} also read from {seen[f.record_id]}")
        seen[f.record_id] = f.label
    outcome_table = _read_outcomes(outcomes)

    lines, malformed = _parse_lines(files)
    report: dict = {"dropped_implausible": {}}
    static, descriptor_rows = _static(lines, len(files), report)
    # The 00:00 descriptors (including the admission Weight) are not time-series measurements.
    lines = lines.drop(index=descriptor_rows)
    # RecordID inside the file must match its name.
    rid = static.attrs.pop("record_id_values")
    mismatch = [files[r].label for r, v in rid.items()
                if pd.notna(v) and int(v) != files[r].record_id]
    series = _series(lines, len(files), hours, report)
    # No descriptor weight: take the first in-window weight measurement ("first weight").
    fallback = static["weight"].isna() & series["weight_series_first"].notna()
    static.loc[fallback, "weight"] = series.loc[fallback, "weight_series_first"]

    cohort = pd.concat([static, series], axis=1)
    cohort.insert(0, ID_COLUMN, np.array([f.record_id for f in files], dtype=np.int64))
    ids = set(cohort[ID_COLUMN])
    merged = cohort.merge(outcome_table, left_on=ID_COLUMN, right_on="RecordID", how="inner")
    merged["saps_i"] = merged["SAPS-I"].where(merged["SAPS-I"] >= 0)
    merged["sofa"] = merged["SOFA"].where(merged["SOFA"] >= 0)
    merged[OUTCOME_COLUMN] = merged["In-hospital_death"].astype(np.int64)
    merged = merged.sort_values(ID_COLUMN, kind="stable").reset_index(drop=True)
    merged[SPLIT_COLUMN] = assign_splits(merged, seed=seed, group_column=None)
    merged, task_record = apply_task(merged, task, physionet2012_los(outcomes) if get_task(task).is_los else None,
                                     source="physionet2012")
    for v in schema.predictors:
        if not v.is_categorical:
            merged[v.name] = merged[v.name].astype(float)
        else:
            merged[v.name] = merged[v.name].astype(object)
    cohort_out = merged[schema.columns]
    if aggregates == "compact":
        cohort_out = _round_compact(cohort_out)

    no_outcome = sorted(ids - set(outcome_table["RecordID"]))
    no_record = sorted(set(outcome_table["RecordID"]) - ids)
    descriptor_only = int(len(files) - lines["record"].nunique())
    report = {
        "sources": {"records": [str(r) for r in records], "outcomes": [str(o) for o in outcomes]},
        "hours": hours,
        "aggregates": aggregates,
        "variant": schema.variant,
        "n_record_files": len(files),
        "n_outcomes": int(len(outcome_table)),
        "n_stays": int(len(cohort_out)),
        "n_deaths": int(cohort_out[OUTCOME_COLUMN].sum()),
        "mortality_rate": round(float(cohort_out[OUTCOME_COLUMN].mean()), 6)
        if len(cohort_out) else 0.0,
        "n_measurement_lines": int(len(lines)),
        "n_records_descriptors_only": descriptor_only,
        "weight_from_first_measurement": int(fallback.sum()),
        "records_without_outcome": {"count": len(no_outcome), "record_ids": no_outcome[:_MAX_LISTED]},
        "outcomes_without_record": {"count": len(no_record), "record_ids": no_record[:_MAX_LISTED]},
        "malformed_lines": {"count": len(malformed), "first": malformed[:_MAX_LISTED]},
        "record_id_mismatch": mismatch[:_MAX_LISTED],
        "unknown_parameters": _unknown_parameters(lines),
        "dropped_implausible": dict(sorted(report["dropped_implausible"].items())),
        "excluded": "Length_of_stay and Survival (outcome information) never enter the cohort",
        "task": task_record,
    }
    if cohort_out.empty:
        raise AlfiaError("no record matches an outcome: check that --records and --outcomes "
                         "belong to the same set")
    return cohort_out, report


def _round_compact(cohort: pd.DataFrame) -> pd.DataFrame:
    """Round each compact aggregate to the precision a chart shows (``schema.COMPACT_DECIMALS``)."""
    cohort = cohort.copy()
    for p in PHYSIONET_SERIES:
        if p.stem == "mechanical_ventilation":
            continue
        for stat in compact_stats(p):
            column = series_column(p, stat)
            cohort[column] = cohort[column].round(COMPACT_DECIMALS.get(p.stem, 0))
    return cohort


def _unknown_parameters(lines: pd.DataFrame) -> dict[str, int]:
    known = set(DESCRIPTORS) | {p.parameter for p in PHYSIONET_SERIES}
    counts = lines["parameter"].value_counts()
    return {k: int(v) for k, v in counts.items() if k not in known}
