"""Performance by subgroup (sex, age band, ICU unit type), joined from the cohort by ``stay_id``.

Predictions carry only ``stay_id``; the subgroup columns come from the data file a run records in its
``config.json`` (an ALFIA run's text table keeps every predictor of its cohort; a baseline run records
its cohort file), or from a file given explicitly. Each variant names the concepts differently
(``SUBGROUP_COLUMNS``). Every metric carries a stratified-bootstrap 95% CI computed within the
subgroup; the threshold metrics use the model's threshold chosen on the whole validation split.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from alfia.cohorts.schema import ID_COLUMN
from alfia.errors import AlfiaError
from alfia.evaluation.bootstrap import bootstrap_distribution, with_ci
from alfia.evaluation.format import few_events_warning
from alfia.evaluation.metrics import RankedScores, ranking_metrics, threshold_metrics

# Subgroup -> candidate cohort columns, first present wins (MIMIC-IV, eICU, PhysioNet 2012 names).
SUBGROUP_COLUMNS = {
    "sex": ("gender",),
    "age_band": ("admission_age", "age"),
    "icu_unit": ("careunit", "unittype", "icu_type"),
}
SUBGROUP_LABELS = {"sex": "Sex", "age_band": "Age band (years)", "icu_unit": "ICU unit type"}
AGE_EDGES = (-np.inf, 45, 65, 80, np.inf)
AGE_LABELS = ("<45", "45-64", "65-79", ">=80")
SUBGROUP_METRICS = ("auroc", "auprc", "sensitivity", "specificity", "observed_rate", "mean_prob")


def recorded_data_path(config: dict) -> Path | None:
    """The data file a run's config.json records: an ALFIA run's text table, a baseline's cohort, or the
    table of an external validation."""
    candidates = [(config.get("data") or {}).get("path"), config.get("cohort"),
                  ((config.get("external_validation") or {}).get("data") or {}).get("path")]
    for c in candidates:
        if c:
            return Path(c)
    return None


def subgroup_attributes(path: str | os.PathLike) -> pd.DataFrame:
    """stay_id -> sex, age_band, icu_unit (the ones the file has), as strings ("missing" for gaps)."""
    from alfia.cohorts.io import read_table_or_csv

    path = Path(path)
    df, _ = read_table_or_csv(path)
    if ID_COLUMN not in df.columns:
        raise AlfiaError(f"{path}: no {ID_COLUMN} column; cannot join subgroups to predictions")
    out = pd.DataFrame(index=pd.Index(df[ID_COLUMN].to_numpy(), name=ID_COLUMN))
    for name, candidates in SUBGROUP_COLUMNS.items():
        column = next((c for c in candidates if c in df.columns), None)
        if column is None:
            continue
        values = df[column]
        if name == "age_band":
            age = pd.to_numeric(values, errors="coerce")
            bad = age.isna() & values.notna()
            if bad.any():  # text in the age column: named, not silently counted as "missing"
                from alfia.cohorts.validate import row_name

                i = int(np.flatnonzero(bad.to_numpy())[0])
                raise AlfiaError(f"{path}: {row_name(df, i)}, column {column!r}: {values.iloc[i]!r} is not a "
                                 f"number ({int(bad.sum())} such row(s))")
            band = pd.cut(age, AGE_EDGES, right=False, labels=AGE_LABELS)
            out[name] = band.astype(object).where(band.notna(), "missing").to_numpy()
        else:
            out[name] = values.astype(object).where(values.notna(), "missing").astype(str).to_numpy()
    out.attrs["columns"] = {name: next((c for c in cands if c in df.columns), None)
                            for name, cands in SUBGROUP_COLUMNS.items()}
    return out


def _level_order(name: str, levels) -> list:
    levels = list(dict.fromkeys(levels))
    if name == "age_band":
        return [a for a in (*AGE_LABELS, "missing") if a in levels]
    return sorted(levels, key=lambda v: (v == "missing", str(v)))


def subgroup_metrics(rows: pd.DataFrame, attributes: pd.DataFrame, threshold: float, *, n_boot: int = 1000,
                     seed: int = 42, source: str = "") -> dict:
    """Per subgroup level: n, deaths, AUROC, AUPRC, sensitivity and specificity at ``threshold``, observed
    mortality and mean predicted risk, each with a stratified-bootstrap 95% CI (``None`` when the level
    holds a single class)."""
    ids = rows[ID_COLUMN].to_numpy() if ID_COLUMN in rows.columns else rows.index.to_numpy()
    joined = attributes.reindex(ids)
    unmatched = int(joined.isna().all(axis=1).sum()) if len(attributes.columns) else len(ids)
    y_all = rows["label"].to_numpy(dtype=float)
    p_all = rows["prob"].to_numpy(dtype=float)
    groups: dict[str, list[dict]] = {}
    for name in attributes.columns:
        levels = joined[name].fillna("unmatched").to_numpy()
        entries = []
        for level in _level_order(name, levels):
            mask = levels == level
            y, p = y_all[mask], p_all[mask]
            entry = {"level": str(level), "n": int(mask.sum()), "n_pos": int(y.sum())}
            warning = few_events_warning(entry["n_pos"], f"subgroup {name} = {level}")
            if warning:
                entry["warning"] = warning
            point = {"observed_rate": float(y.mean()), "mean_prob": float(p.mean())}
            if 0 < y.sum() < y.size:
                ranked = RankedScores.of(y, p)

                def statistic(w, y=y, p=p, ranked=ranked):
                    r = ranking_metrics(y, p, w, ranked)
                    t = threshold_metrics(y, p, threshold, w)
                    return {"auroc": r["auroc"], "auprc": r["auprc"], "sensitivity": t["sensitivity"],
                            "specificity": t["specificity"], "observed_rate": (w @ y) / w.sum(axis=1),
                            "mean_prob": (w @ p) / w.sum(axis=1)}

                values = {k: float(v[0]) for k, v in statistic(np.ones((1, y.size))).items()}
                samples = bootstrap_distribution(y, statistic, n_boot=n_boot, seed=seed)
                entry["metrics"] = {k: with_ci(values[k], samples[k]) for k in SUBGROUP_METRICS}
            else:
                entry["metrics"] = {k: {"value": point.get(k), "ci_low": None, "ci_high": None}
                                    for k in SUBGROUP_METRICS}
                entry["note"] = "a single outcome class: discrimination is undefined"
            entries.append(entry)
        groups[name] = entries
    return {"source": source, "columns": attributes.attrs.get("columns", {}), "threshold": threshold,
            "unmatched_stays": unmatched, "groups": groups,
            "method": "stratified bootstrap within each subgroup; sensitivity/specificity at the max-F1 threshold "
                      "chosen on the whole validation split; observed rate vs mean predicted risk = "
                      "calibration-in-the-large"}


def subgroup_frame(block: dict) -> pd.DataFrame:
    """A flat table (one row per subgroup level) of a ``subgroup_metrics`` result."""
    records = []
    for name, entries in block["groups"].items():
        for e in entries:
            record = {"subgroup": name, "level": e["level"], "n": e["n"], "deaths": e["n_pos"]}
            for metric, m in e["metrics"].items():
                record[metric], record[f"{metric}_ci_low"], record[f"{metric}_ci_high"] = (
                    m["value"], m["ci_low"], m["ci_high"])
            records.append(record)
    return pd.DataFrame.from_records(records)


def resolve_subgroup_source(config: dict, explicit: str | os.PathLike | None, run_dir: Path) -> Path | None:
    """The file to take subgroup columns from: ``explicit``, else the one the run recorded (if it exists,
    as given or relative to the run directory)."""
    if explicit is not None:
        path = Path(explicit)
        if not path.exists():
            raise AlfiaError(f"{path}: no such cohort file for the subgroup tables")
        return path
    recorded = recorded_data_path(config)
    if recorded is None:
        return None
    for candidate in (recorded, run_dir / recorded):
        if candidate.exists():
            return candidate
    return None


def source_cohort(path: str | os.PathLike, manifest) -> tuple[object | None, Path | None]:
    """The cohort manifest behind a data file whose own manifest is ``manifest``: that one if the file is a cohort,
    else the one its manifest names (``cohort_file``, a text table's cohort) when that file lies beside it, with
    that file's path; ``(None, None)`` otherwise."""
    from alfia.cohorts.io import read_manifest

    if manifest is None:
        return None, None
    if manifest.kind == "cohort":
        return manifest, None
    name = (manifest.extra or {}).get("cohort_file")
    beside = Path(path).with_name(name) if name else None
    if beside is None or not beside.is_file():
        return None, None
    return read_manifest(beside), beside


def data_provenance(path: str | os.PathLike) -> dict:
    """Where a run's data file came from, as its manifests say: the file, its kind, the cohort's source (e.g.
    "synthetic", "physionet2012"), variant and SHA-256, and whether the data are synthetic. A text table's own
    manifest names the cohort file it was encoded from (``cohort_file``); that cohort's manifest is read when it
    lies beside it. Without a manifest, ``source`` is None and ``note`` says so."""
    from alfia.cohorts.io import read_manifest

    path = Path(path)
    manifest = read_manifest(path) if path.is_file() else None
    out = {"path": str(path), "kind": None, "source": None, "variant": None, "synthetic": False,
           "cohort_file": None, "content_sha256": None, "note": None}
    if manifest is None:
        out["note"] = f"{path.name} has no manifest: its data source is not recorded"
        return out
    cohort, beside = source_cohort(path, manifest)
    cohort = cohort or manifest
    out["cohort_file"] = None if beside is None else str(beside)
    out.update(kind=manifest.kind, source=cohort.source, variant=cohort.variant or manifest.variant,
               content_sha256=cohort.content_sha256 or None, synthetic=cohort.source == "synthetic")
    if out["synthetic"]:
        calibration = ((cohort.extra or {}).get("generator") or {}).get("calibration")
        out["note"] = ("synthetic data: generated, no patient is real"
                       + (f" ({calibration})" if calibration else "") + "; no clinical conclusion follows")
    return out
