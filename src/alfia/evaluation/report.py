"""Score one model's predictions: every metric with a bootstrap 95% CI, thresholds chosen on val.

``evaluate_predictions`` works on a predictions frame (``alfia.runs.PREDICTION_COLUMNS``);
``evaluate_run`` reads a run directory, writes ``metrics.json`` and the figures beside it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from alfia.atomic import sha256_file, write_json_atomic
from alfia.cohorts.schema import SPLIT_COLUMN
from alfia.errors import AlfiaError
from alfia.evaluation.bootstrap import CI_LEVEL, bootstrap_distribution, with_ci
from alfia.evaluation.calibration import N_BINS, calibration_metrics
from alfia.evaluation.format import few_events_warning, slope_ci_warning
from alfia.evaluation.metrics import (THRESHOLD_METRICS, RankedScores, confusion_at_threshold, ranking_metrics,
                                      threshold_metrics)
from alfia.evaluation.thresholds import (
    OPERATING_POINTS, THRESHOLD_RULE, ChosenThreshold, choose_threshold, select_thresholds,
    write_run_thresholds,
)
from alfia.runs import UNCALIBRATED_COLUMN, RunLayout, read_config, read_predictions, validate_predictions

# Headline metrics, in the order tables show them.
RANKING_METRICS = ("auprc", "auroc", "best_f1", "best_f2")
CALIBRATION_METRICS = ("brier", "calibration_slope", "calibration_intercept", "ece")
SLOPE_UNDEFINED = "slope undefined"  # the named warning a table prints instead of a value

DEFINITIONS = {
    "auprc": "area under the precision-recall curve, as average precision (scikit-learn)",
    "auroc": "area under the ROC curve",
    "best_f1": "highest F1 over all thresholds of the evaluated split (test-optimal, as the paper reports)",
    "best_f2": "highest F2 over all thresholds of the evaluated split (test-optimal, as the paper reports)",
    "f1": "F1 at the max-F1 threshold chosen on the threshold split",
    "f2": "F2 at the max-F2 threshold chosen on the threshold split",
    "sensitivity": "recall of deaths at the max-F1 threshold: TP / (TP + FN)",
    "specificity": "TN / (TN + FP) at the max-F1 threshold",
    "ppv": "precision at the max-F1 threshold: TP / (TP + FP); null if nothing is predicted positive",
    "npv": "TN / (TN + FN) at the max-F1 threshold; null if nothing is predicted negative",
    "brier": "mean of (prob - label)^2",
    "calibration_slope": "b in logit P(death) = a + b * logit(prob); 1 is ideal",
    "calibration_intercept": "a in logit P(death) = a + logit(prob) (slope fixed at 1); 0 is ideal",
    "ece": f"expected calibration error over {N_BINS} equal-width probability bins",
    "threshold_rule": THRESHOLD_RULE,
}


def _where(source: str | None) -> str:
    return f"{source}: " if source else ""


def _split_rows(pred: pd.DataFrame, split: str) -> pd.DataFrame:
    return pred.loc[pred[SPLIT_COLUMN] == split]


def _has_both_classes(rows: pd.DataFrame) -> bool:
    return rows["label"].nunique() == 2


def evaluate_predictions(pred: pd.DataFrame, *, split: str = "test", n_boot: int = 1000, seed: int = 42,
                         source: str | None = None) -> dict:
    """Every metric of ``split`` with a stratified-bootstrap 95% CI; thresholds chosen on val.

    Returns a JSON-serialisable dict::

        split, n, n_pos, prevalence
        metrics:  {name: {value, ci_low, ci_high}} for auprc, auroc, best_f1, best_f2 (test-optimal),
                  f1, f2, sensitivity, specificity, ppv, npv (at the thresholds chosen on val; the last
                  four at the max-F1 threshold), brier, calibration_slope, calibration_intercept, ece
        operating_points: {"f1"|"f2": {threshold, chosen_on, score_on_chosen_split,
                  metrics: {f1, f2, sensitivity, specificity, ppv, npv with CIs}, confusion_matrix}}
        thresholds: {f1, f2, chosen_on, best_f1_threshold, best_f2_threshold}
        bootstrap: {n_boot, seed, ci_level, method}; definitions; notes

    Undefined values (e.g. PPV with nothing predicted positive) are ``None``. Without val rows (or
    with a single-class val split) the thresholds are chosen on ``split`` itself, and ``notes`` says so.
    """
    return score_split(validate_predictions(pred, source), split=split, n_boot=n_boot, seed=seed, source=source)


def score_split(pred: pd.DataFrame, *, split: str = "test", n_boot: int = 1000, seed: int = 42,
                source: str | None = None, thresholds: dict[str, ChosenThreshold] | None = None) -> dict:
    """:func:`evaluate_predictions` on predictions validated where they entered (``read_predictions``).

    ``thresholds``: the operating points already chosen on these predictions' val rows (the run's
    thresholds.json), used instead of choosing them again."""
    where = _where(source)
    rows = _split_rows(pred, split)
    if rows.empty:
        splits = sorted(map(str, pred[SPLIT_COLUMN].unique()))
        raise AlfiaError(f"{where}no rows in split {split!r} (splits present: {', '.join(splits) or 'none'})")
    if not _has_both_classes(rows):
        raise AlfiaError(f"{where}split {split!r} holds only label {int(rows['label'].iloc[0])}: "
                         "AUPRC, AUROC and the bootstrap need both deaths and survivors")
    notes: list[str] = []
    val = _split_rows(pred, "val")
    if split != "val" and not val.empty and _has_both_classes(val):
        threshold_rows, chosen_on = val, "val"
    else:
        threshold_rows, chosen_on = rows, split
        if split == "val":
            notes.append("evaluating val: the thresholds were chosen on these same rows, so the threshold "
                         "metrics are optimistic")
        else:
            why = "there are no val rows" if val.empty else "the val rows hold a single class"
            notes.append(f"thresholds were chosen on the {split} rows themselves because {why}; the "
                         f"threshold metrics are therefore optimistic")
    chosen = thresholds if thresholds is not None else select_thresholds(
        threshold_rows["label"].to_numpy(), threshold_rows["prob"].to_numpy(), chosen_on)

    y = rows["label"].to_numpy(dtype=float)
    prob = rows["prob"].to_numpy(dtype=float)
    ranked = RankedScores.of(y, prob)

    def statistic(weights: np.ndarray) -> dict[str, np.ndarray]:
        out = {**ranking_metrics(y, prob, weights, ranked), **calibration_metrics(y, prob, weights)}
        for name, ct in chosen.items():
            for metric, values in threshold_metrics(y, prob, ct.threshold, weights).items():
                out[f"{name}:{metric}"] = values
        return out

    point = {k: float(v[0]) for k, v in statistic(np.ones((1, y.size))).items()}
    samples = bootstrap_distribution(y, statistic, n_boot=n_boot, seed=seed)

    def entry(key: str) -> dict:
        return with_ci(point[key], samples[key])

    metrics = {name: entry(name) for name in RANKING_METRICS}
    metrics["f1"] = entry("f1:f1")
    metrics["f2"] = entry("f2:f2")
    for metric in ("sensitivity", "specificity", "ppv", "npv"):
        metrics[metric] = entry(f"f1:{metric}")
    metrics.update({name: entry(name) for name in CALIBRATION_METRICS})

    operating_points = {}
    for name, ct in chosen.items():
        counts = confusion_at_threshold(y, prob, ct.threshold, np.ones((1, y.size)))
        operating_points[name] = {
            "threshold": ct.threshold, "chosen_on": ct.chosen_on, "score_on_chosen_split": ct.score_on_chosen_split,
            "metrics": {metric: entry(f"{name}:{metric}") for metric in THRESHOLD_METRICS},
            "confusion_matrix": {k: int(round(float(counts[k][0]))) for k in ("tn", "fp", "fn", "tp")},
        }
    if any(point[f"{name}:ppv"] != point[f"{name}:ppv"] for name in chosen):
        notes.append("a threshold chosen on val predicts no death on this split; PPV is undefined (null)")
    spread = float(np.std(prob))
    if np.isnan(point["calibration_slope"]):
        why = (f"the probabilities barely vary across stays (SD {spread:.2g})" if spread < 1e-3 else
               "the probabilities separate the classes (or nearly)")
        metrics["calibration_slope"]["warning"] = f"{SLOPE_UNDEFINED}: {why}"
        notes.append(f"the calibration slope is undefined: {why}, so the recalibration fit has no finite slope")
    calibration_before = None
    if UNCALIBRATED_COLUMN in rows.columns:
        raw = rows[UNCALIBRATED_COLUMN].to_numpy(dtype=float)

        def raw_statistic(weights: np.ndarray) -> dict[str, np.ndarray]:
            return calibration_metrics(y, raw, weights)

        raw_point = {k: float(v[0]) for k, v in raw_statistic(np.ones((1, y.size))).items()}
        raw_samples = bootstrap_distribution(y, raw_statistic, n_boot=n_boot, seed=seed)
        calibration_before = {name: with_ci(raw_point[name], raw_samples[name]) for name in CALIBRATION_METRICS}
    warnings = [w for w in (few_events_warning(int(y.sum()), f"the {split} split"),) if w]
    for block, what in ((metrics, ""), (calibration_before or {}, " (before calibration)")):
        slope = block.get("calibration_slope")
        caution = slope_ci_warning(slope) if slope else None
        if caution:
            slope["caution"] = caution
            warnings.append(caution + what)

    return {
        "split": split,
        "n": int(y.size),
        "n_pos": int(y.sum()),
        "prevalence": float(y.mean()),
        "metrics": metrics,
        # The run's own sigmoid(logit) before its post-hoc calibrator (calibration.json); None without one.
        "calibration_before": calibration_before,
        "probability_sd": spread,
        "operating_points": operating_points,
        "thresholds": {
            **{name: ct.threshold for name, ct in chosen.items()},
            "chosen_on": chosen_on,
            **{f"best_{name}_threshold": choose_threshold(y, prob, beta)[0] for name, beta in OPERATING_POINTS.items()},
        },
        "bootstrap": {
            "n_boot": int(n_boot), "seed": int(seed), "ci_level": CI_LEVEL,
            "method": "stratified bootstrap (positives and negatives resampled separately, with replacement); "
                      "percentile interval; resamples where a metric is undefined are left out",
        },
        "definitions": DEFINITIONS,
        "notes": notes,
        # Small-sample warnings (evaluation.format: MIN_EVENTS, MAX_SLOPE_CI_WIDTH), shown wherever a metric is.
        "warnings": warnings,
    }


def model_name_of(run_dir: str | os.PathLike) -> str:
    """config.json's "model_name" if present, else the run folder's name."""
    config = read_config(run_dir)
    name = config.get("model_name")
    return str(name) if name else Path(run_dir).resolve().name


def read_history(path: str | os.PathLike) -> pd.DataFrame:
    """history.jsonl as a frame, one row per epoch; AlfiaError naming the line of a malformed record."""
    path = Path(path)
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise AlfiaError(f"{path}, line {number}: not valid JSON ({e.msg})") from e
        if not isinstance(record, dict) or "epoch" not in record:
            raise AlfiaError(f"{path}, line {number}: expected a JSON object with an 'epoch' key")
        records.append(record)
    if not records:
        raise AlfiaError(f"{path}: no epochs recorded")
    return pd.DataFrame.from_records(records)


def clinical_sections(rows: pd.DataFrame, result: dict, config: dict, run_dir: Path, *,
                      cohort: str | os.PathLike | None, n_boot: int, seed: int) -> dict:
    """Decision curve, calibration curve with its band, and subgroup tables of one evaluated split."""
    from alfia.evaluation.curves import calibration_band, decision_curve
    from alfia.evaluation.subgroups import resolve_subgroup_source, subgroup_attributes, subgroup_metrics

    y, prob = rows["label"].to_numpy(), rows["prob"].to_numpy()
    out = {"decision_curve": decision_curve(y, prob), "calibration_curve": calibration_band(y, prob)}
    source = resolve_subgroup_source(config, cohort, run_dir)
    if source is None:
        out["subgroups"] = {"source": None, "groups": {},
                            "note": "no cohort file found (the run's config records none, or it has moved); "
                                    "pass one with --cohort for the subgroup tables"}
    else:
        attributes = subgroup_attributes(source)
        if cohort is not None and len(rows) and not attributes.index.isin(rows["stay_id"]).any():
            raise AlfiaError(f"{cohort}: none of its {len(attributes)} stay_ids is one of the {len(rows)} stays "
                             f"evaluated; --cohort takes the cohort (or text table) the run was built on")
        out["subgroups"] = subgroup_metrics(rows, attributes, result["thresholds"]["f1"],
                                            n_boot=n_boot, seed=seed, source=str(source))
    return out


def evaluate_run(run_dir: str | os.PathLike, *, split: str = "test", n_boot: int = 1000, seed: int = 42,
                 cohort: str | os.PathLike | None = None) -> dict:
    """Evaluate RUN_DIR/predictions.parquet; write RUN_DIR/metrics.json and RUN_DIR/figures/*.png.

    Figures: roc.png, pr.png, calibration.png (with a 95% band), decision_curve.png,
    confusion_matrix.png and, when RUN_DIR/history.jsonl exists, training_curves.png. metrics.json also
    holds the decision curve, the calibration curve and the subgroup tables (sex, age band, ICU unit;
    columns joined by stay_id from ``cohort``, default the data file the run's config records). Every
    file is written atomically; metrics.json comes last, so a run with a metrics.json has its figures too.
    """
    from alfia.evaluation import plots  # matplotlib only loads when figures are drawn

    layout = RunLayout.of(run_dir)
    if not layout.root.is_dir():
        raise AlfiaError(f"{layout.root}: not a run directory (no such folder)")
    pred = read_predictions(layout.predictions)
    # The run's own operating points (thresholds.json, chosen on its val rows): metrics.json reports the
    # very thresholds that alfia predict applies.
    val = _split_rows(pred, "val")
    chosen = write_run_thresholds(layout, pred) if not val.empty and _has_both_classes(val) else None
    result = score_split(pred, split=split, n_boot=n_boot, seed=seed, source=str(layout.predictions),
                       thresholds=chosen)
    rows = _split_rows(pred, split)
    name = model_name_of(layout.root)
    history = read_history(layout.history) if layout.history.exists() else None

    result.update(clinical_sections(rows, result, read_config(layout.root), layout.root, cohort=cohort,
                                    n_boot=n_boot, seed=seed))
    figures = plots.run_figures(rows["label"].to_numpy(), rows["prob"].to_numpy(), result, layout.figures,
                                title=name, history=history)
    result = {
        "model_name": name,
        "run_dir": str(layout.root.resolve()),
        "predictions_sha256": sha256_file(layout.predictions),
        **result,
        "figures": {key: str(path.relative_to(layout.root)) for key, path in figures.items()},
    }
    write_json_atomic(layout.metrics, result)
    return result
