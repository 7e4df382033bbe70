"""Functional core of ``alfia baselines`` and ``alfia boost``: train models on the cohort's own split and
leave one run directory per model, in the format every ALFIA run uses (``alfia.runs``)::

    OUT/<ModelName>/config.json          model_name, model_family, hyperparameters, train time, ...
    OUT/<ModelName>/predictions.parquet  stay_id, split, label, prob for the val and test rows
    OUT/<ModelName>/metrics.json         written by alfia.evaluation.evaluate_run (+ figures/)
    OUT/<ModelName>/model/               the fitted model and its preprocessing (alfia.baselines.saved):
                                         what ``alfia predict`` and later external cohorts score with
    OUT/summary.csv, OUT/summary.md      one row per model, sorted by test AUPRC

Only the training split is used to fit preprocessing and models. The validation split selects
hyperparameters, stops boosting / epochs, and picks the ensemble's weights (all on AUPRC). The test
split is only predicted.

External cohorts (``--external``) are mapped into the training variant (``alfia.cohorts.mapping``),
imputed with the training split's mode/median where the paper imputes, and scored whole by every
fitted model (the ensemble with its internal weights). Their labels are read only after every model
has scored, to write ``OUT/<Model>/external/<name>/`` and ``OUT/external_summary.csv/.md``. With
``--resume``, a model that already finished scores a new external cohort with its saved model: it is not
refitted.
"""

from __future__ import annotations

import functools
import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from alfia import __version__
from alfia.atomic import write_json_atomic, write_text_atomic
from alfia.baselines.ensemble import GreedyEnsembleSelection
from alfia.baselines.estimators import TabularClassifier, frame_rows
from alfia.baselines.preprocessing import FeatureSpec
from alfia.baselines.registry import (
    ENSEMBLE_NAME, MODELS, Profile, build_model, resolve_models,
)
from alfia.baselines.saved import jsonable as _jsonable
from alfia.baselines.saved import load_model, save_ensemble, save_model
from alfia.cohorts.mapping import MappedCohort, fit_imputation, impute, map_cohort
from alfia.cohorts.schema import ID_COLUMN, OUTCOME_COLUMN, SPLIT_COLUMN, get_schema
from alfia.cohorts.validate import check_integer_ids, check_labels, split_for_training
from alfia.config_base import JsonConfig, require
from alfia.errors import AlfiaError
from alfia.machine import available_cores, resolve_jobs
from alfia.runs import RunLayout, write_predictions

SUMMARY_FILE = "summary.csv"  # OUT/summary.csv (+ .md): one row per model
EXTERNAL_SUMMARY_FILE = "external_summary.csv"  # OUT/external_summary.csv (+ .md): one row per model and cohort
FAMILY_BASELINE = "baseline"
FAMILY_ENSEMBLE = "ensemble"
SUMMARY_COLUMNS = ("model", "family", "val_auprc", "test_auprc", "test_auprc_ci_low",
                   "test_auprc_ci_high", "test_auroc", "test_auroc_ci_low", "test_auroc_ci_high",
                   "test_best_f1", "test_best_f1_ci_low", "test_best_f1_ci_high", "test_best_f2",
                   "test_best_f2_ci_low", "test_best_f2_ci_high", "train_time_s")

# A callback the CLI uses for progress: callback("start" | "done", model_name, summary_row_or_None).
ProgressCallback = Callable[[str, str, dict | None], None]


@dataclass
class BaselineRunConfig(JsonConfig):
    """What a baselines run was asked to do; saved inside every model's config.json (``run_config``)."""

    variant: str
    models: list[str]
    seed: int = 42
    profile: Profile = "full"
    engine: str = "native"
    n_boot: int = 1000
    cohort: str | None = None
    embeddings: str | None = None
    n_jobs: int = field(default_factory=available_cores)  # threads per model (--jobs)
    externals: list[str] = field(default_factory=list)
    # Set by run_models: the SHA-256 of the training table's content (cohort, with boost's embeddings) and of
    # each external cohort's features; --resume reuses a model only while they are unchanged.
    data_sha256: str | None = None
    externals_sha256: dict[str, str] = field(default_factory=dict)

    def validate(self) -> None:
        require(self.n_boot >= 1, f"n_boot must be at least 1, got {self.n_boot}")
        require(self.n_jobs >= 1, f"the number of threads must be >= 1, got {self.n_jobs}")


@dataclass
class ModelResult:
    name: str
    family: str
    val_prob: np.ndarray
    test_prob: np.ndarray
    train_time_s: float
    summary: dict = field(default_factory=dict)
    external_prob: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class ExternalInput:
    """An external cohort as read: its name (external/<name>/), rows, variant and file."""

    name: str
    frame: pd.DataFrame
    variant: str
    source: str
    embeddings: pd.DataFrame | None = None  # ALF embeddings of its stays (alfia boost only)


@dataclass
class ExternalCohort:
    """An external cohort ready to score: mapped, imputed features, and the labels kept apart."""

    name: str
    source: str
    mapped: MappedCohort
    features: pd.DataFrame  # stay_id + predictors (+ embeddings): all a model ever sees
    imputed: list[dict]

    @property
    def stay_id(self) -> np.ndarray:
        return self.features[ID_COLUMN].to_numpy()

    def labels(self) -> np.ndarray:
        """Read only after every model has scored."""
        return check_labels(self.mapped.frame, self.source)


def prepare_external(ext: ExternalInput, variant: str, train: pd.DataFrame) -> ExternalCohort:
    """Map ``ext`` into ``variant`` and impute it from the training rows (never from its own labels)."""
    if ID_COLUMN in ext.frame.columns and ext.frame[ID_COLUMN].duplicated().any():
        dup = ext.frame.loc[ext.frame[ID_COLUMN].duplicated(), ID_COLUMN].iloc[0]
        raise AlfiaError(f"{ext.source}: column {ID_COLUMN!r} repeats stay {dup}")
    mapped = map_cohort(ext.frame, ext.variant, variant, source=ext.source)
    features, imputed = impute(mapped, fit_imputation(train, get_schema(variant)))
    return ExternalCohort(ext.name, ext.source, mapped, features.reset_index(drop=True), imputed)


def split_labelled(df: pd.DataFrame, source: str):
    """The checked train/val/test parts (``alfia.cohorts.validate.split_for_training``) and their labels."""
    parts = split_for_training(df, source)
    check_integer_ids(df, source)
    return parts, {s: p[OUTCOME_COLUMN].astype(int).to_numpy() for s, p in parts.items()}


def hyperparameters_of(estimator: TabularClassifier) -> dict:
    params = estimator.get_params(deep=False)
    params.pop("spec", None)
    return _jsonable(params)


def _write_run(run_dir: Path, *, config: dict, parts: dict, labels: dict, val_prob, test_prob,
               n_boot: int, seed: int) -> dict:
    """predictions.parquet, then config.json, then metrics.json (via the evaluation module)."""
    from alfia.evaluation import evaluate_run

    layout = RunLayout.of(run_dir)
    layout.root.mkdir(parents=True, exist_ok=True)
    ids = np.concatenate([parts["val"][ID_COLUMN].to_numpy(), parts["test"][ID_COLUMN].to_numpy()])
    split = ["val"] * len(parts["val"]) + ["test"] * len(parts["test"])
    write_predictions(layout.predictions, ids, split, np.concatenate([labels["val"], labels["test"]]),
                      np.concatenate([val_prob, test_prob]))
    write_json_atomic(layout.config, _jsonable(config))
    return evaluate_run(layout.root, split="test", n_boot=n_boot, seed=seed)


def summary_row(name: str, family: str, val_auprc: float, metrics: dict, train_time_s: float) -> dict:
    row: dict[str, Any] = {"model": name, "family": family, "val_auprc": float(val_auprc)}
    for key in ("auprc", "auroc", "best_f1", "best_f2"):
        m = metrics["metrics"][key]
        row[f"test_{key}"], row[f"test_{key}_ci_low"], row[f"test_{key}_ci_high"] = (
            m["value"], m["ci_low"], m["ci_high"])
    row["train_time_s"] = round(float(train_time_s), 2)
    return row


def _base_config(name: str, family: str, run: BaselineRunConfig, spec: FeatureSpec,
                 parts: dict) -> dict:
    return {
        "model_name": name,
        "model_family": family,
        "engine": run.engine,
        "variant": run.variant,
        "seed": run.seed,
        "profile": run.profile,
        "cohort": run.cohort,
        "embeddings": run.embeddings,
        "features": {"categorical": list(spec.categorical), "numeric": list(spec.numeric)},
        "n_rows": {s: int(len(p)) for s, p in parts.items()},
        "n_jobs": run.n_jobs,
        "run_config": asdict(run),
        "alfia_version": __version__,
        "python": platform.python_version(),
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def train_one(name: str, estimator: TabularClassifier, *, family: str, library: str,
              description: str, spec: FeatureSpec, run: BaselineRunConfig, parts: dict,
              labels: dict, out_dir: Path, externals: list[ExternalCohort] = (),
              imputation: Callable[[], dict] | None = None) -> ModelResult:
    """Fit one estimator on train (val for selection), save it (``OUT/<name>/model/``), predict val+test
    (and each external cohort), write its run directory."""
    t0 = time.perf_counter()
    estimator.fit(frame_rows(parts["train"], spec), labels["train"],
                  frame_rows(parts["val"], spec), labels["val"])
    train_time = time.perf_counter() - t0
    save_model(RunLayout.of(out_dir / name).baseline_model, estimator, variant=run.variant,
               imputation=imputation() if imputation else None)
    t1 = time.perf_counter()
    val_prob = estimator.predict_proba(frame_rows(parts["val"], spec))[:, 1]
    test_prob = estimator.predict_proba(frame_rows(parts["test"], spec))[:, 1]
    predict_time = time.perf_counter() - t1
    external_prob = {e.name: estimator.predict_proba(frame_rows(e.features, spec))[:, 1] for e in externals}
    from sklearn.metrics import average_precision_score

    val_auprc = float(average_precision_score(labels["val"], val_prob))
    config = _base_config(name, family, run, spec, parts) | {
        "library": library,
        "description": description,
        "estimator": type(estimator).__name__,
        "hyperparameters": hyperparameters_of(estimator),
        "selected_hyperparameters": getattr(estimator, "selected_params_", {}),
        "selection": {"metric": "validation AUPRC (average precision)", "val_auprc": val_auprc,
                      "grid": getattr(estimator, "grid_scores_", None),
                      "history": getattr(estimator, "history_", None)},
        "train_time_seconds": round(train_time, 3),
        "predict_time_seconds": round(predict_time, 3),
    }
    metrics = _write_run(out_dir / name, config=config, parts=parts, labels=labels,
                         val_prob=val_prob, test_prob=test_prob, n_boot=run.n_boot, seed=run.seed)
    return ModelResult(name, family, val_prob, test_prob, train_time,
                       summary_row(name, family, val_auprc, metrics, train_time), external_prob)


def build_ensemble(members: list[ModelResult], *, spec: FeatureSpec, run: BaselineRunConfig,
                   parts: dict, labels: dict, out_dir: Path,
                   name: str = ENSEMBLE_NAME, externals: list[ExternalCohort] = (),
                   imputation: Callable[[], dict] | None = None) -> ModelResult:
    if not members:
        raise AlfiaError(f"{name} is built from other models' validation predictions: "
                         f"ask for at least one other model")
    t0 = time.perf_counter()
    selector = GreedyEnsembleSelection(n_iterations=100).fit(
        np.column_stack([m.val_prob for m in members]), labels["val"], [m.name for m in members])
    train_time = time.perf_counter() - t0
    save_ensemble(RunLayout.of(out_dir / name).baseline_model, selector, out_dir, variant=run.variant,
                  imputation=imputation() if imputation else None)
    val_prob = selector.predict_proba(np.column_stack([m.val_prob for m in members]))[:, 1]
    test_prob = selector.predict_proba(np.column_stack([m.test_prob for m in members]))[:, 1]
    # The weights were chosen on internal validation only; external cohorts just reuse them.
    external_prob = {e.name: selector.predict_proba(np.column_stack(
        [m.external_prob[e.name] for m in members]))[:, 1] for e in externals}
    config = _base_config(name, FAMILY_ENSEMBLE, run, spec, parts) | {
        "library": "alfia (Caruana et al. 2004 greedy ensemble selection)",
        "description": "greedy ensemble selection with replacement on validation AUPRC",
        "hyperparameters": {"n_iterations": selector.n_iterations},
        "members": {m.name: m.family for m in members},
        "weights": selector.weights_by_name(),
        "selection": {"metric": "validation AUPRC (average precision)",
                      "val_auprc": selector.val_auprc_, "trajectory": selector.trajectory_},
        "train_time_seconds": round(train_time, 3),
        "train_time_seconds_including_members": round(
            train_time + sum(m.train_time_s for m in members), 3),
    }
    metrics = _write_run(out_dir / name, config=config, parts=parts, labels=labels,
                         val_prob=val_prob, test_prob=test_prob, n_boot=run.n_boot, seed=run.seed)
    return ModelResult(name, FAMILY_ENSEMBLE, val_prob, test_prob, train_time,
                       summary_row(name, FAMILY_ENSEMBLE, selector.val_auprc_, metrics, train_time),
                       external_prob)


def write_summary(rows: list[dict], out_dir: Path, *, overwrite: bool = False) -> pd.DataFrame:
    """OUT/summary.csv and OUT/summary.md, sorted by test AUPRC (best first).

    Rows of models already summarised in OUT by an earlier call (e.g. the zoo, then ``alfia boost``
    into the same folder) are kept unless this call re-ran the same model: nothing written is lost.
    With ``overwrite`` (``--overwrite``: replace what OUT held) the summary holds this call's models only.
    """
    table = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))
    earlier_path = out_dir / SUMMARY_FILE
    if earlier_path.exists() and not overwrite:
        earlier = pd.read_csv(earlier_path)
        if list(earlier.columns) == list(SUMMARY_COLUMNS):
            earlier = earlier[~earlier["model"].isin(table["model"])]
            table = pd.concat([earlier, table], ignore_index=True) if len(earlier) else table
    table = table.sort_values("test_auprc", ascending=False, kind="stable").reset_index(drop=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out_dir / SUMMARY_FILE, table.to_csv(index=False))
    write_text_atomic((out_dir / SUMMARY_FILE).with_suffix(".md"), summary_markdown(table) + "\n")
    return table


def summary_markdown(table: pd.DataFrame) -> str:
    from alfia.evaluation.format import ci_entry, ci_text

    def ci(r, key):
        return ci_text(ci_entry(r, f"test_{key}"), style="dash")

    # Test-optimal F1/F2 (a threshold picked on the very split it scores) stay out of the headline table: they
    # are in summary.csv, and alfia evaluate / compare report F1 at the threshold chosen on val (issue 20).
    lines = ["| Model | Family | Val AUPRC | Test AUPRC (95% CI) | AUROC (95% CI) | Train time (s) |",
             "|---|---|---|---|---|---|"]
    for _, r in table.iterrows():
        lines.append(f"| {r['model']} | {r['family']} | {r['val_auprc']:.3f} | {ci(r, 'auprc')} | "
                     f"{ci(r, 'auroc')} | {r['train_time_s']:.1f} |")
    lines += ["", "Test-optimal F1 and F2 (threshold chosen on the test split itself) are in summary.csv "
                  "(test_best_f1, test_best_f2); they are not results to compare models by."]
    return "\n".join(lines)


def reuse_finished(name: str, family: str, run: BaselineRunConfig, spec: FeatureSpec, parts: dict,
                   out_dir: Path, externals: list[ExternalCohort] = ()) -> ModelResult | None:
    """A model's earlier result from OUT/<name>/, if it finished with the same settings and stays.

    Same variant, seed, profile, features, the same training table (its content's SHA-256: every row, the
    training rows included), and the same val/test stays and labels, with its saved model; anything else
    (or a run without metrics.json, i.e. one that did not finish) is retrained. An external cohort it has
    not scored (or that changed since) is scored with the saved model, not by refitting.
    """
    import json

    from alfia.runs import read_config, read_predictions

    layout = RunLayout.of(out_dir / name)
    if not (layout.config.exists() and layout.predictions.exists() and layout.metrics.exists()
            and (layout.baseline_model / "model.json").exists()):
        return None
    config = read_config(layout.root)
    same = (config.get("model_family") == family and config.get("variant") == run.variant
            and config.get("seed") == run.seed and config.get("profile") == run.profile
            and config.get("engine") == run.engine
            and config.get("run_config", {}).get("n_boot") == run.n_boot
            and run.data_sha256 is not None and config.get("run_config", {}).get("data_sha256") == run.data_sha256
            and config.get("features") == {"categorical": list(spec.categorical),
                                           "numeric": list(spec.numeric)})
    if not same:
        return None
    pred = read_predictions(layout.predictions).set_index(ID_COLUMN)
    probs = {}
    for split in ("val", "test"):
        ids = parts[split][ID_COLUMN]
        if not ids.isin(pred.index).all() or (pred.loc[ids, SPLIT_COLUMN] != split).any():
            return None
        if (pred.loc[ids, "label"].to_numpy() != parts[split][OUTCOME_COLUMN].astype(int).to_numpy()).any():
            return None
        probs[split] = pred.loc[ids, "prob"].to_numpy(dtype=float)
    external_prob = {}
    scored = config.get("run_config", {}).get("externals_sha256", {})
    saved_model = None
    for e in externals:  # earlier predictions of the same external stays, else the saved model scores them
        path = layout.external(e.name).predictions
        if path.exists() and scored.get(e.name) == run.externals_sha256[e.name]:
            ext = read_predictions(path).set_index(ID_COLUMN)
            if pd.Index(e.stay_id).isin(ext.index).all():
                external_prob[e.name] = ext.loc[e.stay_id, "prob"].to_numpy(dtype=float)
                continue
        if saved_model is None:
            saved_model = load_model(layout.baseline_model)
        external_prob[e.name] = saved_model.predict_proba(frame_rows(e.features, spec))[:, 1]
    if saved_model is not None:  # record what the external predictions written next were scored from
        run_config = config.setdefault("run_config", {})
        run_config.setdefault("externals_sha256", {}).update({e.name: run.externals_sha256[e.name] for e in externals})
        run_config["externals"] = sorted(set(run_config.get("externals", [])) | {e.source for e in externals})
        write_json_atomic(layout.config, _jsonable(config))
    metrics = json.loads(layout.metrics.read_text(encoding="utf-8"))
    from sklearn.metrics import average_precision_score

    val_auprc = float(average_precision_score(parts["val"][OUTCOME_COLUMN].astype(int), probs["val"]))
    train_time = float(config.get("train_time_seconds", 0.0))
    return ModelResult(name, family, probs["val"], probs["test"], train_time,
                       summary_row(name, family, val_auprc, metrics, train_time), external_prob)


def run_models(df: pd.DataFrame, *, jobs: list[tuple[str, Callable[[], TabularClassifier], str, str,
                                                    str]],
               spec: FeatureSpec, run: BaselineRunConfig, out_dir: str | os.PathLike,
               ensemble: bool = False, callback: ProgressCallback | None = None,
               source: str = "cohort", resume: bool = False,
               externals: list[ExternalInput] = (),
               external_features: Callable[[ExternalInput, pd.DataFrame], pd.DataFrame] | None = None,
               overwrite: bool = False) -> pd.DataFrame:
    """Train ``jobs`` (name, make_estimator, family, library, description) and optionally the ensemble.

    ``resume=True`` reuses models that already finished in ``out_dir`` with the same settings.
    ``externals`` are scored whole by every model; ``external_features(input, features)`` may add
    columns to an external cohort's mapped, imputed features (ALFIA-boost joins its embeddings).
    ``out_dir`` is this job's until its summary is written (``alfia.outputs.hold_output_dir``): a second job
    on it is refused, not mixed in. ``overwrite``: the summary drops the rows of earlier calls (``--overwrite``).
    """
    from alfia.outputs import hold_output_dir

    with hold_output_dir(out_dir):
        return _run_models(df, jobs=jobs, spec=spec, run=run, out_dir=Path(out_dir), ensemble=ensemble,
                           callback=callback, source=source, resume=resume, externals=externals,
                           external_features=external_features, overwrite=overwrite)


def _run_models(df: pd.DataFrame, *, jobs, spec: FeatureSpec, run: BaselineRunConfig, out_dir: Path,
                ensemble: bool, callback: ProgressCallback | None, source: str, resume: bool, externals,
                external_features, overwrite: bool = False) -> pd.DataFrame:
    parts, labels = split_labelled(df, source)
    prepared = []
    for ext in externals:
        cohort = prepare_external(ext, run.variant, parts["train"])
        if external_features is not None:
            cohort.features = external_features(ext, cohort.features)
        prepared.append(cohort)
    from alfia.cohorts.io import frame_sha256

    run = replace(run, data_sha256=frame_sha256(df),
                  externals_sha256={c.name: frame_sha256(c.features) for c in prepared})
    # Saved with every model: a cohort of another variant is imputed from the training split as here. Made
    # after the first fit, so a bad value is reported by the model's own check (naming column and row).
    imputation = functools.cache(lambda: fit_imputation(parts["train"], get_schema(run.variant)))
    results: list[ModelResult] = []
    for name, make, family, library, description in jobs:
        if callback:
            callback("start", name, None)
        result = reuse_finished(name, family, run, spec, parts, out_dir, prepared) if resume else None
        if result is None:
            result = train_one(name, make(), family=family, library=library, description=description,
                               spec=spec, run=run, parts=parts, labels=labels, out_dir=out_dir,
                               externals=prepared, imputation=imputation)
        results.append(result)
        if callback:
            callback("done", name, result.summary)
    if ensemble:
        if callback:
            callback("start", ENSEMBLE_NAME, None)
        result = build_ensemble(results, spec=spec, run=run, parts=parts, labels=labels,
                                out_dir=out_dir, externals=prepared, imputation=imputation)
        results.append(result)
        if callback:
            callback("done", ENSEMBLE_NAME, result.summary)
    summary = write_summary([r.summary for r in results], out_dir, overwrite=overwrite)
    if prepared:
        write_external_results(results, prepared, parts["train"], run, out_dir)
    return summary


EXTERNAL_SUMMARY_COLUMNS = ("external", "model", "family", "n", "n_pos", "auprc", "auprc_ci_low",
                            "auprc_ci_high", "auroc", "auroc_ci_low", "auroc_ci_high",
                            "calibration_intercept", "calibration_intercept_ci_low",
                            "calibration_intercept_ci_high", "observed_rate", "mean_predicted",
                            "internal_test_auprc", "internal_test_auroc")


def write_external_results(results: list[ModelResult], externals: list[ExternalCohort],
                           train: pd.DataFrame, run: BaselineRunConfig, out_dir: Path) -> pd.DataFrame:
    """After every model has scored: labels, shift report, OUT/<Model>/external/<name>/, summary."""
    from alfia.evaluation.external import shift_report, write_external

    rows = []
    for e in externals:
        y = e.labels()
        shift = shift_report(train, e.mapped.features, get_schema(run.variant), external_labels=y,
                             imputed=e.imputed, mapping=e.mapped.variables,
                             source_variant=e.mapped.source_variant, external_source=e.source)
        for r in results:
            m = write_external(out_dir / r.name, e.name, e.stay_id, y, r.external_prob[e.name],
                               n_boot=run.n_boot, seed=run.seed, shift=shift,
                               extra={"external_source": e.source, "source_variant": e.mapped.source_variant})
            row = {"external": e.name, "model": r.name, "family": r.family, "n": m["n"], "n_pos": m["n_pos"]}
            for key in ("auprc", "auroc", "calibration_intercept"):
                mk = m["metrics"][key]
                row[key], row[f"{key}_ci_low"], row[f"{key}_ci_high"] = mk["value"], mk["ci_low"], mk["ci_high"]
            row["observed_rate"] = m["calibration_in_the_large"]["observed_rate"]
            row["mean_predicted"] = m["calibration_in_the_large"]["mean_predicted"]
            row["internal_test_auprc"] = r.summary.get("test_auprc")
            row["internal_test_auroc"] = r.summary.get("test_auroc")
            rows.append(row)
    table = pd.DataFrame(rows, columns=list(EXTERNAL_SUMMARY_COLUMNS))
    table = table.sort_values(["external", "auprc"], ascending=[True, False], kind="stable").reset_index(drop=True)
    write_text_atomic(out_dir / EXTERNAL_SUMMARY_FILE, table.to_csv(index=False))
    write_text_atomic((out_dir / EXTERNAL_SUMMARY_FILE).with_suffix(".md"), external_summary_markdown(table) + "\n")
    return table


def external_summary_markdown(table: pd.DataFrame) -> str:
    from alfia.evaluation.format import ci_entry, ci_text

    def ci(r, key):
        return ci_text(ci_entry(r, key), style="dash")

    lines = ["| External | Model | n (deaths) | AUPRC (95% CI) | AUROC (95% CI) | Cal. intercept (95% CI) "
             "| Observed / mean predicted | Internal test AUPRC | Internal test AUROC |",
             "|---|---|---|---|---|---|---|---|---|"]
    for _, r in table.iterrows():
        lines.append(f"| {r['external']} | {r['model']} | {r['n']} ({r['n_pos']}) | {ci(r, 'auprc')} | "
                     f"{ci(r, 'auroc')} | {ci(r, 'calibration_intercept')} | "
                     f"{r['observed_rate']:.3f} / {r['mean_predicted']:.3f} | {r['internal_test_auprc']:.3f} | "
                     f"{r['internal_test_auroc']:.3f} |")
    return "\n".join(lines)


def run_baselines(cohort_df: pd.DataFrame, variant: str, out_dir: str | os.PathLike,
                  models: list[str] | None = None, seed: int = 42, *, profile: Profile = "full",
                  n_boot: int = 1000, callback: ProgressCallback | None = None,
                  source: str = "cohort", resume: bool = False,
                  externals: list[ExternalInput] = (), n_jobs: int | None = None,
                  overwrite: bool = False) -> pd.DataFrame:
    """Train the requested zoo (default: all models + the ensemble) and return the summary table.

    ``n_jobs``: threads each model may use (None: the machine's cores, ``alfia.machine``).

    ``resume=True`` keeps models that already finished in ``out_dir`` with the same settings (an
    interrupted run continues where it stopped; the ensemble is always rebuilt).
    """
    names = resolve_models(models)
    spec = FeatureSpec.from_schema(variant, cohort_df, source=source)
    run = BaselineRunConfig(variant=variant, models=names, seed=seed, profile=profile,
                            n_boot=n_boot, cohort=source, externals=[e.source for e in externals],
                            n_jobs=resolve_jobs(n_jobs))
    jobs = [(n, (lambda n=n: build_model(n, spec, seed, profile, run.n_jobs)), FAMILY_BASELINE,
             MODELS[n].library, MODELS[n].description) for n in names if n != ENSEMBLE_NAME]
    return run_models(cohort_df, jobs=jobs, spec=spec, run=run, out_dir=out_dir,
                      ensemble=ENSEMBLE_NAME in names, callback=callback, source=source,
                      resume=resume, externals=externals, overwrite=overwrite)
