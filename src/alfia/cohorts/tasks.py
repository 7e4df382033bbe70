"""The prediction task: one setting (``--task``), one home (:data:`TASKS`), one place the label is derived.

    mortality   in-hospital death (the toolkit's first task; the source's own flag)
    los3        ICU length of stay > 3 days (binary)
    los7        ICU length of stay > 7 days (binary)

A cohort is built for one task. Its label column (``hospital_expire_flag``, the one label column every stage
reads) then holds that task's label, and its manifest records the task (``extra["task"]``). Everything
downstream trains on the table's label as it is: the text table (``alfia text encode`` carries the label
over), the hourly table (``alfia series build ... --task``, the same stays and labels), the zoo and LeMoF. So
a task needs no option of its own in any training command, and a model can never mix two tasks' labels.

Three rules keep the length of stay out of the predictors:

- LOS is read here only, from the source's own outcome field (PhysioNet 2012 ``Length_of_stay``, MIMIC-IV
  ``icustays.los``, eICU ``patient.unitdischargeoffset``), and only to derive the label. It is never a column
  of any table; the leakage guard (:mod:`alfia.cohorts.validate`) keeps refusing a ``los`` column as a feature.
- The split is assigned before the label is derived, on in-hospital mortality as always, so the stays of every
  task fall into the same train/val/test split (the fixed split of the benchmarks).
- A stay without a known LOS cannot be labelled for a LOS task; it is left out, and the manifest counts it.

Definitions: LOS is ICU admission to ICU discharge in days; a stay that ends in death inside the window
counts with its LOS like any other (LOS > k is "still in the ICU after k days"). PhysioNet 2012 gives whole
days, so ``los3`` there means 4 days or more.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from alfia.cohorts.schema import ID_COLUMN, OUTCOME_COLUMN
from alfia.errors import AlfiaError


@dataclass(frozen=True)
class Task:
    name: str
    description: str
    los_days_over: float | None = None  # None: the source's in-hospital mortality flag

    @property
    def is_los(self) -> bool:
        return self.los_days_over is not None

    def to_dict(self) -> dict:
        rule = (f"{OUTCOME_COLUMN} = 1 when the ICU length of stay exceeds {self.los_days_over:g} days"
                if self.is_los else f"{OUTCOME_COLUMN} = 1 for an in-hospital death")
        return {"name": self.name, "description": self.description, "label_column": OUTCOME_COLUMN,
                "rule": rule, "split": "assigned on in-hospital mortality before the label is derived"}


TASKS: dict[str, Task] = {
    "mortality": Task("mortality", "in-hospital mortality"),
    "los3": Task("los3", "ICU length of stay > 3 days", 3.0),
    "los7": Task("los7", "ICU length of stay > 7 days", 7.0),
}
DEFAULT_TASK = "mortality"


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise AlfiaError(f"unknown task {name!r}; choose one of {', '.join(TASKS)}")
    return TASKS[name]


def task_of_manifest(manifest) -> str:
    """The task a table was built for (its manifest's ``extra["task"]``); tables without one: mortality."""
    extra = getattr(manifest, "extra", None) or {}
    task = extra.get("task")
    return str(task.get("name")) if isinstance(task, dict) and task.get("name") else DEFAULT_TASK


# --- the length of stay, from each source's own outcome field --------------------------------------------

def physionet2012_los(outcomes: Sequence[str | os.PathLike]) -> pd.Series:
    """ICU LOS in days by RecordID from PhysioNet 2012 outcome files (``Length_of_stay``; -1 is unknown)."""
    parts = []
    for p in ([outcomes] if isinstance(outcomes, (str, os.PathLike)) else outcomes):
        path = Path(p)
        try:
            df = pd.read_csv(path, usecols=lambda c: c.strip() in ("RecordID", "Length_of_stay"),
                             skipinitialspace=True)
        except (OSError, ValueError, pd.errors.ParserError) as e:
            raise AlfiaError(f"{path}: cannot read the length of stay ({e})") from None
        df.columns = df.columns.str.strip()
        if "Length_of_stay" not in df.columns or "RecordID" not in df.columns:
            raise AlfiaError(f"{path}: no 'Length_of_stay' column; a LOS task needs PhysioNet's outcomes file")
        los = pd.to_numeric(df["Length_of_stay"], errors="coerce")
        parts.append(pd.Series(los.where(los >= 0).to_numpy(), index=df["RecordID"].astype(np.int64).to_numpy()))
    return pd.concat(parts)


def _source_tables(root: str | os.PathLike, label: str, table: str, subdirs: tuple[str, ...],
                   columns: tuple[str, ...], sql: str) -> pd.DataFrame:
    from alfia.cohorts.sources.duck import SourceTables, close, connect

    con = connect()
    try:
        tables = SourceTables(Path(root), label, con)
        tables.register(table, subdirs, columns=columns)
        return tables.df(sql, (table,))
    finally:
        close(con)


def mimic_iv_los(mimic_dir: str | os.PathLike) -> pd.Series:
    """ICU LOS in days by stay_id: ``icu/icustays`` (outtime - intime, as its ``los`` column holds)."""
    df = _source_tables(mimic_dir, "MIMIC-IV", "icustays", ("icu", ""), ("stay_id", "intime", "outtime"),
                        "SELECT stay_id, (epoch(outtime) - epoch(intime)) / 86400.0 AS los FROM icustays")
    return pd.Series(df["los"].to_numpy(dtype=float), index=df["stay_id"].astype(np.int64).to_numpy())


def eicu_los(eicu_dir: str | os.PathLike) -> pd.Series:
    """ICU LOS in days by unit stay: ``patient.unitdischargeoffset`` (minutes after unit admission) / 1440."""
    df = _source_tables(eicu_dir, "eICU", "patient", ("",), ("patientunitstayid", "unitdischargeoffset"),
                        "SELECT patientunitstayid AS stay_id, unitdischargeoffset / 1440.0 AS los FROM patient")
    return pd.Series(df["los"].to_numpy(dtype=float), index=df["stay_id"].astype(np.int64).to_numpy())


# --- deriving the label ---------------------------------------------------------------------------------

def apply_task(df: pd.DataFrame, task: str, los_days: pd.Series | None = None, *,
               source: str = "cohort") -> tuple[pd.DataFrame, dict]:
    """``df`` (one row per stay, split already assigned) with its label column set for ``task``.

    ``los_days``: ICU LOS in days indexed by ``stay_id`` (required for a LOS task). Stays without a known LOS
    are dropped. Returns (table, the manifest's ``task`` record). LOS never becomes a column."""
    spec = get_task(task)
    record = spec.to_dict()
    if not spec.is_los:
        return df, record
    if los_days is None:
        raise AlfiaError(f"{source}: task {task!r} needs the ICU length of stay, which this source does not carry")
    los = df[ID_COLUMN].map(los_days.groupby(level=0).first())
    known = los.notna().to_numpy()
    out = df.loc[known].copy()
    out[OUTCOME_COLUMN] = (los[known] > spec.los_days_over).astype(np.int64).to_numpy()
    if out.empty:
        raise AlfiaError(f"{source}: no stay has a known ICU length of stay; task {task!r} has no labels")
    record.update({"n_without_los": int((~known).sum()), "n_stays": int(len(out)),
                   "n_positive": int(out[OUTCOME_COLUMN].sum()),
                   "dropped": "stays without a known length of stay (no label for this task)"})
    return out.reset_index(drop=True), record
