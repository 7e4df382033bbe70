"""External validation: a trained run scores a whole cohort from another hospital system.

Every model family writes its external scores the same way (``RUN_DIR/external/<name>/``, see
``alfia.runs``): :func:`write_external` stores the predictions, scores them with the same
:func:`~alfia.evaluation.report.evaluate_predictions` as the internal split (the operating thresholds
come from the run's own validation rows, never from the external labels) and adds calibration in the
large. :func:`shift_report` describes how the external cohort differs from the training cohort.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from alfia.atomic import atomic_directory, read_json_object, write_json_atomic
from alfia.cohorts.schema import OUTCOME_COLUMN, SPLIT_COLUMN, CohortSchema
from alfia.errors import AlfiaError
from alfia.evaluation.report import model_name_of, score_split
from alfia.runs import EXTERNAL_SPLIT, UNCALIBRATED_COLUMN, RunLayout, read_predictions, write_predictions


def external_name(path: str | os.PathLike) -> str:
    """external/<name>/ of a cohort file: its file name without the Parquet/CSV suffixes."""
    name = Path(path).name
    for suffix in (".gz", ".parquet", ".csv"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return name


def external_names(paths: Sequence[str | os.PathLike]) -> list[str]:
    names = [external_name(p) for p in paths]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise AlfiaError(f"two external cohorts share the name {sorted(dup)[0]!r} (their file name); "
                         f"rename one file so their external/<name>/ folders differ")
    return names


def external_frame(run_dir: str | os.PathLike, name: str, *, folder: str | os.PathLike | None = None) -> pd.DataFrame:
    """The run's own val rows (they choose the thresholds) and the external cohort's rows (read from
    external/<name>/, or ``folder``)."""
    layout = RunLayout.of(run_dir)
    internal = read_predictions(layout.predictions)
    ext_path = RunLayout(Path(folder)).predictions if folder is not None else layout.external(name).predictions
    ext = read_predictions(ext_path)
    other = ext.loc[ext[SPLIT_COLUMN] != EXTERNAL_SPLIT, SPLIT_COLUMN]
    if len(other):
        # A folder written before there was one external path held the model's own val rows beside the other
        # table's: counting them as external stays would score the model on its own validation data.
        counts = ", ".join(f"{n} {s!r}" for s, n in other.value_counts().sort_index().items())
        raise AlfiaError(f"{ext_path}: {len(other)} of its {len(ext)} rows are not of split {EXTERNAL_SPLIT!r} "
                         f"({counts}); an external cohort's predictions hold that cohort only. Score it again: "
                         f"`alfia evaluate {layout.root} --external COHORT` (or alfia.evaluate(model, COHORT))")
    val = internal.loc[internal[SPLIT_COLUMN] == "val"]
    if UNCALIBRATED_COLUMN not in ext.columns:  # both sides or neither: a raw column half empty is no metric
        val = val.drop(columns=[UNCALIBRATED_COLUMN], errors="ignore")
    return pd.concat([val, ext], ignore_index=True)


def calibration_in_the_large(label, prob) -> dict:
    """Observed against expected deaths: the first thing that moves when a model changes hospitals."""
    y, p = np.asarray(label, dtype=float), np.asarray(prob, dtype=float)
    observed, expected = float(y.mean()), float(p.mean())
    return {"observed_rate": observed, "mean_predicted": expected, "difference": observed - expected,
            "observed_to_expected": observed / expected if expected > 0 else None}


def evaluate_external(run_dir: str | os.PathLike, name: str, *, n_boot: int = 1000, seed: int = 42,
                      extra: dict | None = None, folder: str | os.PathLike | None = None) -> dict:
    """Score RUN_DIR/external/<name>/predictions.parquet and write its metrics.json (``folder``: the files of
    external/<name>/ being written elsewhere, see :func:`write_external`)."""
    layout = RunLayout.of(run_dir)
    ext = layout.external(name)
    frame = external_frame(layout.root, name, folder=folder)
    result = score_split(frame, split=EXTERNAL_SPLIT, n_boot=n_boot, seed=seed,
                         source=str(ext.predictions))
    rows = frame.loc[frame[SPLIT_COLUMN] == EXTERNAL_SPLIT]
    result = {"model_name": model_name_of(layout.root), "external": name, "run_dir": str(layout.root.resolve()),
              **(extra or {}), **result,
              "calibration_in_the_large": calibration_in_the_large(rows["label"], rows["prob"])}
    source = (extra or {}).get("external_source")
    if source and Path(source).is_file():  # the external cohort's own sex, age and ICU-unit columns
        from alfia.evaluation.subgroups import subgroup_attributes, subgroup_metrics

        result["subgroups"] = subgroup_metrics(rows, subgroup_attributes(source), result["thresholds"]["f1"],
                                               n_boot=n_boot, seed=seed, source=str(source))
    write_json_atomic(RunLayout(Path(folder)).metrics if folder is not None else ext.metrics, result)
    return result


def write_external(run_dir: str | os.PathLike, name: str, stay_id, label, prob, *, n_boot: int = 1000,
                   seed: int = 42, shift: dict | None = None, extra: dict | None = None) -> dict:
    """external/<name>/{predictions.parquet, shift.json, metrics.json} of one run; returns the metrics.

    The folder is written whole or not at all: it is filled next to its place and swapped in once scored, so
    a cohort that cannot be scored leaves no external/<name>/ (and an earlier one as it was)."""
    layout = RunLayout.of(run_dir)
    target = layout.external(name).root
    source = (extra or {}).get("external_source") or name
    stay_id, label = np.asarray(stay_id), np.asarray(label)
    if len(np.unique(label)) < 2:
        raise AlfiaError(f"{source}: the labels hold one class only; external validation needs deaths and survivors")
    had_parent = target.parent.exists()
    try:
        with atomic_directory(target) as tmp:
            ext = RunLayout(tmp)
            write_predictions(ext.predictions, stay_id, [EXTERNAL_SPLIT] * len(stay_id), label, prob)
            if shift is not None:
                write_json_atomic(ext.shift, shift)
            return evaluate_external(run_dir, name, n_boot=n_boot, seed=seed, extra=extra, folder=tmp)
    except BaseException:
        if not had_parent:
            with contextlib.suppress(OSError):
                target.parent.rmdir()  # the external/ folder this call created, still empty
        raise


def read_shift(run_dir: str | os.PathLike, name: str) -> dict | None:
    path = RunLayout.of(run_dir).external(name).shift
    return read_json_object(path) if path.exists() else None


# Fewer observed values than this on either side leave the SMD undefined: one smoker among 2,090 eICU
# stays would otherwise read as a shift of five standard deviations.
MIN_OBSERVED = 10


def _smd_numeric(a: np.ndarray, b: np.ndarray) -> float | None:
    if len(a) < MIN_OBSERVED or len(b) < MIN_OBSERVED:
        return None
    pooled = np.sqrt((np.var(a, ddof=1) + np.var(b, ddof=1)) / 2.0)
    diff = float(np.mean(b) - np.mean(a))
    if pooled == 0:
        return 0.0 if diff == 0 else None
    return diff / float(pooled)


def _smd_share(p: float, q: float) -> float:
    pooled = np.sqrt((p * (1 - p) + q * (1 - q)) / 2.0)
    return 0.0 if pooled == 0 else float((q - p) / pooled)


def shift_report(train: pd.DataFrame, external: pd.DataFrame, schema: CohortSchema, *,
                 external_labels=None, imputed: Sequence[dict] = (), mapping: Sequence[dict] = (),
                 source_variant: str | None = None, external_source: str | None = None) -> dict:
    """Covariate and outcome shift between the training rows and an external cohort.

    ``external`` holds the external cohort in the training variant's columns, before imputation (so
    missingness is what the source measured). Per predictor: standardised mean difference
    (external minus training, over the pooled SD of observed values; for a categorical predictor the
    level with the largest absolute SMD of its share), missing share on both sides. ``external_labels``
    are only read here, after every model has scored.
    """
    rows = []
    for var in schema.predictors:
        t = train[var.name] if var.name in train.columns else pd.Series(np.nan, index=train.index)
        e = external[var.name] if var.name in external.columns else pd.Series(np.nan, index=external.index)
        row = {"variable": var.name, "kind": var.kind, "unit": var.unit,
               "missing_train": float(t.isna().mean()), "missing_external": float(e.isna().mean()),
               "smd": None, "smd_level": None, "mean_train": None, "mean_external": None}
        to, eo = t.dropna(), e.dropna()
        if var.is_categorical:
            if len(to) >= MIN_OBSERVED and len(eo) >= MIN_OBSERVED:
                ts, es = to.astype(str).value_counts(normalize=True), eo.astype(str).value_counts(normalize=True)
                best = None
                for level in sorted(set(ts.index) | set(es.index)):
                    smd = _smd_share(float(ts.get(level, 0.0)), float(es.get(level, 0.0)))
                    if best is None or abs(smd) > abs(best[1]):
                        best = (level, smd)
                row["smd_level"], row["smd"] = best
        else:
            a, b = pd.to_numeric(to).to_numpy(float), pd.to_numeric(eo).to_numpy(float)
            row["smd"] = _smd_numeric(a, b)
            row["mean_train"] = float(a.mean()) if len(a) else None
            row["mean_external"] = float(b.mean()) if len(b) else None
        rows.append(row)
    measured = [r for r in rows if r["smd"] is not None]
    report = {
        "variant": schema.variant, "source_variant": source_variant, "external_source": external_source,
        "n_train": int(len(train)), "n_external": int(len(external)),
        "outcome_rate_train": float(pd.to_numeric(train[OUTCOME_COLUMN]).mean()) if OUTCOME_COLUMN in train else None,
        "outcome_rate_external": (float(np.mean(np.asarray(external_labels, dtype=float)))
                                  if external_labels is not None else None),
        "predictors": rows,
        "n_predictors_abs_smd_over_0_1": int(sum(abs(r["smd"]) > 0.1 for r in measured)),
        "max_abs_smd": (max(measured, key=lambda r: abs(r["smd"]))["variable"] if measured else None),
        "imputed": list(imputed), "mapping": list(mapping),
        "definitions": {
            "smd": "(mean external - mean training) / sqrt((var training + var external) / 2) over observed "
                   "values; categorical: the level whose share differs most, in the same units; null with fewer "
                   f"than {MIN_OBSERVED} observed values on either side",
            "missing": "share of stays without a value, after mapping and before imputation",
            "train": "the training split of the training cohort",
        },
    }
    return report


def headline(shift: dict) -> str:
    """One line for terminals and BENCHMARKS: outcome rates, predictors shifted, imputed."""
    parts = []
    if shift.get("outcome_rate_external") is not None:
        parts.append(f"mortality {shift['outcome_rate_train']:.1%} (train) vs "
                     f"{shift['outcome_rate_external']:.1%} (external)")
    measured = [r for r in shift["predictors"] if r["smd"] is not None]
    if measured:
        top = max(measured, key=lambda r: abs(r["smd"]))
        parts.append(f"{shift['n_predictors_abs_smd_over_0_1']}/{len(shift['predictors'])} predictors with "
                     f"|SMD| > 0.1 (largest: {top['variable']} {top['smd']:+.2f})")
    filled = [r for r in shift["imputed"] if r["fill"] is not None]
    whole = [r for r in filled if r["share_of_stays"] >= 0.999]
    absent = len(shift["imputed"]) - len(filled)
    parts.append(f"{len(filled)} predictors imputed ({len(whole)} for every stay)"
                 + (f", {absent} absent from the text" if absent else ""))
    return "; ".join(parts)
