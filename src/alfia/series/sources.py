"""Hourly tables from the sources: PhysioNet 2012, YAIB's hourly eICU demo export, the MIMIC-IV demo.

Each builder reuses the cohort code of its source for the stays, labels and split, so an hourly table
holds the same stays in the same splits as the CW-24 cohort built from the same files, and runs on
either compare on the same stays. Every value is placed in its hour (:func:`alfia.series.hourly.hour_of_minute`);
values after the window's end are dropped and counted in the manifest (``excluded_after_window``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from alfia.cohorts.schema import ID_COLUMN, OUTCOME_COLUMN, PHYSIONET_SERIES, SPLIT_COLUMN
from alfia.cohorts.splits import DEFAULT_SEED, assign_splits
from alfia.errors import AlfiaError
from alfia.series.hourly import HOUR_COLUMN, hour_of_minute, hourly_from_long
from alfia.series.variables import (
    PHYSIONET_COMBINED_BP, PHYSIONET_NAMES, PHYSIONET_VARIABLES, STATIC, VOCABULARY, YAIB_STATIC,
    YAIB_VARIABLES, variable_of,
)

PathLike = str | os.PathLike


def _check_hours(hours: float) -> int:
    if hours != int(hours) or not 1 <= hours <= 48:
        raise AlfiaError(f"--hours must be a whole number of hours in 1..48, got {hours:g}")
    return int(hours)


def _static_rows(stays: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    """Static descriptors as measurements of hour 1: ``columns`` maps frame column -> variable."""
    parts = []
    for col, name in columns.items():
        part = stays[[ID_COLUMN, col]].dropna().rename(columns={col: "value"})
        part["variable"] = name
        parts.append(part)
    out = pd.concat(parts, ignore_index=True)
    out[HOUR_COLUMN] = 1
    out["value"] = out["value"].astype(float)
    return out


def _combine_bp(long: pd.DataFrame) -> pd.DataFrame:
    """Rows of systolic/diastolic/mean BP by any method: invasive where an hour has it, else non-invasive."""
    extra = []
    for name, (invasive, noninvasive) in PHYSIONET_COMBINED_BP.items():
        inv = long[long["variable"] == invasive]
        ni = long[long["variable"] == noninvasive]
        has_inv = pd.MultiIndex.from_frame(inv[[ID_COLUMN, HOUR_COLUMN]])
        ni_only = ni[~pd.MultiIndex.from_frame(ni[[ID_COLUMN, HOUR_COLUMN]]).isin(has_inv)]
        both = pd.concat([inv, ni_only]).assign(variable=name)
        extra.append(both)
    return pd.concat([long, *extra], ignore_index=True)


def build_physionet2012_hourly(records: Sequence[PathLike], outcomes: Sequence[PathLike], hours: float = 24,
                               *, seed: int = DEFAULT_SEED, progress=None, task: str = "mortality"
                               ) -> tuple[pd.DataFrame, list, dict]:
    """Hourly table of PhysioNet 2012 stays: all 37 series (MechVent and urine are the interventions),
    the combined blood pressures, and age, sex, height (and the admission weight) at hour 1.

    Stays, labels and split come from :func:`alfia.cohorts.sources.physionet2012.build_physionet2012`
    with the same files, hours, seed and ``task`` (``alfia.cohorts.tasks``). Returns (frame, variables, report).
    """
    from alfia.cohorts.sources import physionet2012 as pn

    h = _check_hours(hours)
    if isinstance(records, (str, os.PathLike)):
        records = [records]
    cohort, cohort_report = pn.build_physionet2012(records, outcomes, float(h), seed=seed, progress=progress,
                                                   task=task)
    files = [f for src in records for f in pn._read_records(src, None)]
    lines, _ = pn._parse_lines(files)
    record_ids = np.array([f.record_id for f in files], dtype=np.int64)
    lines[ID_COLUMN] = record_ids[lines["record"].to_numpy()]
    ranges = {p.parameter: p.valid_range for p in PHYSIONET_SERIES}
    s = lines[lines["parameter"].isin(list(PHYSIONET_VARIABLES)) & (lines["value"] != -1)].copy()
    late = s["minute"] > h * 60
    report: dict = {"excluded_after_window": int(late.sum()), "dropped_implausible": {}}
    s = s[~late]
    param = s["parameter"].astype(str)
    lo = param.map({k: r[0] for k, r in ranges.items()}).astype(float)
    hi = param.map({k: r[1] for k, r in ranges.items()}).astype(float)
    ok = s["value"].between(lo, hi)
    report["dropped_implausible"] = {str(k): int(v) for k, v in param[~ok].value_counts().items() if v}
    s, param = s[ok], param[ok]
    s = s.sort_values([ID_COLUMN, "minute", "order"], kind="stable")
    param = param.loc[s.index]
    long = pd.DataFrame({
        ID_COLUMN: s[ID_COLUMN].to_numpy(),
        HOUR_COLUMN: hour_of_minute(s["minute"].to_numpy()),
        "variable": param.map({k: v[0] for k, v in PHYSIONET_VARIABLES.items()}).to_numpy(),
        "value": s["value"].to_numpy() * param.map({k: v[1] for k, v in PHYSIONET_VARIABLES.items()}).to_numpy(),
    })
    long = _combine_bp(long)
    stays = cohort[[ID_COLUMN, OUTCOME_COLUMN, SPLIT_COLUMN, "age", "gender", "height"]].copy()
    stays["sex_male"] = stays["gender"].map({"Male": 1.0, "Female": 0.0})
    static = _static_rows(stays, {"age": "age", "sex_male": "sex_male", "height": "height"})
    long = pd.concat([static, long], ignore_index=True)  # static first: "last" keeps a later weight
    variables = [VOCABULARY[n] for n in PHYSIONET_NAMES]
    frame = hourly_from_long(long, stays, variables, h)
    report.update({"cohort": {k: cohort_report[k] for k in ("sources", "n_stays", "n_deaths",
                                                             "records_without_outcome", "malformed_lines")},
                   "task": cohort_report["task"],
                   "split": f"alfia.cohorts.splits.assign_splits (seed {seed}), as `alfia cohort physionet2012`"})
    return frame, variables, report


def build_yaib_eicu_hourly(folder: PathLike, hours: float = 24, *, seed: int = DEFAULT_SEED
                           ) -> tuple[pd.DataFrame, list, dict]:
    """Hourly table from YAIB's eICU export (``dyn.parquet``, ``sta.parquet``, ``outc.parquet``).

    ricu's ``time`` t holds what was measured in [t, t + 1) h, so it becomes hour t + 1; rows at or after
    the window's end (YAIB's export carries t = 24) are dropped and counted. The export has no patient
    id; the split is :func:`alfia.cohorts.splits.assign_splits` on its stays with ``seed``.
    """
    h = _check_hours(hours)
    root = Path(folder)
    tables = {}
    for name in ("dyn", "sta", "outc"):
        path = root / f"{name}.parquet"
        if not path.exists():
            raise AlfiaError(f"{path}: no such file (a YAIB export holds dyn.parquet, sta.parquet, outc.parquet)")
        tables[name] = pd.read_parquet(path)
    dyn, sta, outc = tables["dyn"], tables["sta"], tables["outc"]
    for name, df, cols in (("dyn", dyn, ("stay_id", "time")), ("sta", sta, ("stay_id",)),
                           ("outc", outc, ("stay_id", "label"))):
        missing = [c for c in cols if c not in df.columns]
        if missing:
            raise AlfiaError(f"{root / (name + '.parquet')}: missing column(s) {', '.join(missing)}")
    t = dyn["time"]
    t_hours = (t.dt.total_seconds() / 3600.0) if pd.api.types.is_timedelta64_dtype(t) else t.astype(float)
    dyn = dyn.assign(**{HOUR_COLUMN: np.floor(t_hours.to_numpy()).astype(np.int64) + 1})
    value_cols = [c for c in dyn.columns if c not in ("stay_id", "time", HOUR_COLUMN)]
    late = (dyn[HOUR_COLUMN] > h) | (t_hours < 0)
    report: dict = {"excluded_after_window": int(dyn.loc[late, value_cols].notna().sum().sum())}
    dyn = dyn[~late]
    long = dyn.melt(id_vars=["stay_id", HOUR_COLUMN], value_vars=value_cols, var_name="column",
                    value_name="value").dropna(subset=["value"])
    mapping = {c: YAIB_VARIABLES.get(c, (c, None, 1.0)) for c in value_cols}
    long["variable"] = long["column"].map({c: m[0] for c, m in mapping.items()})
    long["value"] = long["value"] * long["column"].map({c: m[2] for c, m in mapping.items()})
    long = long.rename(columns={"stay_id": ID_COLUMN})[[ID_COLUMN, HOUR_COLUMN, "variable", "value"]]

    stays = outc.rename(columns={"stay_id": ID_COLUMN, "label": OUTCOME_COLUMN})[[ID_COLUMN, OUTCOME_COLUMN]]
    stays = stays.merge(sta.rename(columns={"stay_id": ID_COLUMN}), on=ID_COLUMN, how="left")
    stays[SPLIT_COLUMN] = assign_splits(stays, seed=seed, group_column=None)
    static_cols = {c: n for c, n in YAIB_STATIC.items() if c in stays}
    if "sex" in stays:
        stays["sex_male"] = stays["sex"].map({"Male": 1.0, "Female": 0.0})
        static_cols["sex_male"] = "sex_male"
    long = pd.concat([_static_rows(stays, static_cols), long], ignore_index=True)
    variables = [v for v in STATIC if v.name in static_cols.values()]
    variables += [variable_of(m[0], m[1]) for m in mapping.values()]
    frame = hourly_from_long(long, stays[[ID_COLUMN, OUTCOME_COLUMN, SPLIT_COLUMN]], variables, h)
    report.update({"sources": [str(root / f"{n}.parquet") for n in ("dyn", "sta", "outc")],
                   "column_map": {c: {"variable": m[0], "source_unit": m[1], "scale": m[2]}
                                  for c, m in mapping.items()},
                   "split": f"alfia.cohorts.splits.assign_splits (seed {seed}) on the export's stays"})
    return frame, variables, report


# --- MIMIC-IV -----------------------------------------------------------------------------------------

# alfia.cohorts.sources.mimic_iv concepts -> hourly variables (already in the vocabulary's units there).
MIMIC_CHART = {"heart_rate": "heart_rate", "sbp": "systolic_bp", "mbp": "mean_bp",
               "resp_rate": "respiratory_rate", "temperature": "temperature", "glucose": "glucose",
               "fio2": "fio2", "gcs_motor": "gcs_motor", "gcs_verbal": "gcs_verbal", "gcs_eyes": "gcs_eyes",
               "height": "height", "weight": "weight"}
MIMIC_LAB = {"creatinine": "creatinine", "bun": "blood_urea_nitrogen", "sodium": "sodium",
             "potassium": "potassium", "bicarbonate": "bicarbonate", "bilirubin": "bilirubin",
             "albumin": "albumin", "glucose_lab": "glucose", "wbc": "white_cell_count",
             "hematocrit": "hematocrit", "platelet": "platelets", "inr": "inr", "pt": "pt", "bands": "bands",
             "bg_po2": "pao2", "bg_pco2": "paco2", "bg_ph": "ph"}


def _interval_hours(iv: pd.DataFrame, hours: int) -> pd.DataFrame:
    """(stay_id, hour, rate) for every hour 1..hours an interval overlaps: hour h is ((h-1), h]."""
    if iv.empty:
        return pd.DataFrame({ID_COLUMN: [], HOUR_COLUMN: [], "rate": []})
    grid = iv.assign(_k=1).merge(pd.DataFrame({HOUR_COLUMN: np.arange(1, hours + 1), "_k": 1}), on="_k")
    on = (grid["start_h"] < grid[HOUR_COLUMN]) & (grid["end_h"] > grid[HOUR_COLUMN] - 1)
    return grid.loc[on, ["stay_id", HOUR_COLUMN, "rate"]].rename(columns={"stay_id": ID_COLUMN})


def build_mimic_iv_hourly(mimic_dir: PathLike, hours: float = 24, *, seed: int = DEFAULT_SEED,
                          min_age: float = 18.0, task: str = "mortality") -> tuple[pd.DataFrame, list, dict]:
    """Hourly table of the CW-24 MIMIC-IV stays (the cohort's inclusion and split, grouped by patient).

    Vitals and GCS from ``chartevents``, labs and blood gases from ``labevents`` (by patient, as the
    cohort), urine output from ``outputevents`` (summed per hour), vasopressor rates from ``inputevents``
    (the hour's highest running rate, 0 when none runs) and invasive / non-invasive ventilation from
    ``procedureevents`` (1 while running, else 0). Values before ICU admission or after the window's end
    are dropped and counted. ``task``: the label, as ``alfia cohort mimic-iv --task`` (``alfia.cohorts.tasks``).
    """
    from alfia.cohorts.sources import mimic_iv as mi
    from alfia.cohorts.tasks import apply_task, get_task, mimic_iv_los

    h = _check_hours(hours)
    los = mimic_iv_los(mimic_dir) if get_task(task).is_los else None
    cfg = mi.MimicConfig(str(mimic_dir), min_age=min_age)
    with mi.open_tables(cfg) as t:
        attrition = mi.build_cohort(t, cfg.min_age)
        stays = t.df("SELECT stay_id, subject_id, hospital_expire_flag, admission_age, gender FROM cohort")
        mi.stage_chartevents(t)
        mi.stage_labevents(t)
        mi.stage_urine(t)
        proc = mi.stage_intervals(t)
        chart = t.df("SELECT stay_id, concept, hours, value FROM chart_rel WHERE value IS NOT NULL")
        lab = t.df("SELECT stay_id, concept, hours, value FROM lab_rel WHERE value IS NOT NULL "
                   "AND concept <> 'bg_specimen'")
        urine = t.df("SELECT stay_id, 'urine_output' AS concept, hours, value FROM urine_rel")
        vaso = t.df("SELECT stay_id, itemid, start_h, end_h, rate FROM vaso_rel")
    if stays.empty:
        raise AlfiaError(f"{mimic_dir}: no ICU stay passed the inclusion criteria (attrition: {attrition})")
    chart["variable"] = chart["concept"].map(MIMIC_CHART)
    lab["variable"] = lab["concept"].map(MIMIC_LAB)
    urine["variable"] = "urine_output"
    events = pd.concat([chart, lab, urine], ignore_index=True).dropna(subset=["variable"])
    before = events["hours"] < 0
    late = events["hours"] > h
    report: dict = {"excluded_after_window": int(late.sum()), "excluded_before_admission": int(before.sum()),
                    "attrition": attrition}
    events = events[~before & ~late].sort_values([ID_COLUMN, "hours"], kind="stable")
    long = pd.DataFrame({ID_COLUMN: events[ID_COLUMN].to_numpy(),
                         HOUR_COLUMN: hour_of_minute(events["hours"].to_numpy() * 60.0),
                         "variable": events["variable"].to_numpy(), "value": events["value"].to_numpy()})
    # Interventions: every hour has a value (0 when nothing runs), so a stop is seen as a stop.
    grid = pd.MultiIndex.from_product([stays[ID_COLUMN], np.arange(1, h + 1)], names=[ID_COLUMN, HOUR_COLUMN])
    parts = [long]
    for itemid, name in mi.VASOPRESSORS.items():
        rate = _interval_hours(vaso[vaso["itemid"] == itemid], h).groupby([ID_COLUMN, HOUR_COLUMN])["rate"].max()
        parts.append(rate.reindex(grid, fill_value=0.0).rename("value").reset_index().assign(variable=name))
    for itemid, name in ((mi.INVASIVE_VENT, "mechanical_ventilation"), (mi.NONINVASIVE_VENT, "noninvasive_ventilation")):
        on = _interval_hours(proc[proc["itemid"] == itemid].assign(rate=1.0), h)
        flag = on.groupby([ID_COLUMN, HOUR_COLUMN])["rate"].max()
        parts.append(flag.reindex(grid, fill_value=0.0).rename("value").reset_index().assign(variable=name))
    stays = stays.rename(columns={"hospital_expire_flag": OUTCOME_COLUMN})
    stays[OUTCOME_COLUMN] = stays[OUTCOME_COLUMN].astype(int)
    stays[SPLIT_COLUMN] = assign_splits(stays, seed=seed)  # as write_extraction: grouped by subject_id
    stays, report["task"] = apply_task(stays, task, los, source=str(mimic_dir))  # after the split, as the cohort
    stays["sex_male"] = stays["gender"].map({"M": 1.0, "F": 0.0})
    static = _static_rows(stays, {"admission_age": "age", "sex_male": "sex_male"})
    long = pd.concat([static, *parts], ignore_index=True)
    long[HOUR_COLUMN] = long[HOUR_COLUMN].astype(np.int64)
    present = set(long["variable"])
    variables = [v for v in VOCABULARY.values() if v.name in present]
    frame = hourly_from_long(long, stays[[ID_COLUMN, OUTCOME_COLUMN, SPLIT_COLUMN]], variables, h)
    report.update({"sources": str(mimic_dir), "split": f"alfia.cohorts.splits.assign_splits (seed {seed}), "
                                                       "grouped by subject_id, as `alfia cohort mimic-iv`"})
    return frame, variables, report
