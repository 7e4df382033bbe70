"""``alfia baselines --engine autogluon``: the paper's own protocol (AutoGluon TabularPredictor).

Same split as the native engine (train as ``train_data``, val as ``tuning_data``, no bagging, so
AutoGluon early-stops and weights its ensemble on our validation split), same metric
(``eval_metric="average_precision"``), and the same output: one run directory per model in
AutoGluon's leaderboard, scored by the project's evaluation module. AutoGluon is an optional extra::

    pip install ".[autogluon]"
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from alfia.baselines.preprocessing import FeatureSpec, categorical_as_object, numeric_frame
from alfia.baselines.registry import ENSEMBLE_NAME, resolve_models
from alfia.baselines.runner import (
    FAMILY_BASELINE, FAMILY_ENSEMBLE, BaselineRunConfig, _base_config, _write_run,
    split_labelled, summary_row, write_summary,
)
from alfia.cohorts.schema import OUTCOME_COLUMN
from alfia.errors import AlfiaError
from alfia.machine import resolve_jobs

INSTALL_HINT = 'pip install ".[autogluon]" (run in the ALFIA source folder)'

# Our model names -> AutoGluon's hyperparameter keys (the model families of its default zoo).
AUTOGLUON_KEYS = {
    "KNeighborsUnif": "KNN", "KNeighborsDist": "KNN", "LinearModel": "LR",
    "RandomForestGini": "RF", "RandomForestEntr": "RF", "ExtraTreesGini": "XT",
    "ExtraTreesEntr": "XT", "LightGBM": "GBM", "LightGBMXT": "GBM", "LightGBMLarge": "GBM",
    "XGBoost": "XGB", "CatBoost": "CAT", "NeuralNetMLP": "NN_TORCH",
    "FTTransformer": "FT_TRANSFORMER",
}


def import_tabular_predictor():
    """AutoGluon's TabularPredictor, or a clear error saying how to install it."""
    try:
        from autogluon.tabular import TabularPredictor
    except ImportError as e:
        raise AlfiaError(f"--engine autogluon needs AutoGluon, which is not installed ({e.name or e}); "
                         f"install the optional extra: {INSTALL_HINT}") from None
    return TabularPredictor


def _autogluon_frame(part: pd.DataFrame, spec: FeatureSpec, with_label: bool) -> pd.DataFrame:
    out = numeric_frame(part, spec.numeric)
    for c in spec.categorical:
        out[c] = categorical_as_object(part[c])
    out = out[spec.columns]
    if with_label:
        out[OUTCOME_COLUMN] = part[OUTCOME_COLUMN].astype(int).to_numpy()
    return out


def _hyperparameters(names: list[str]):
    """AutoGluon's default zoo, restricted to the families of the requested models."""
    from autogluon.tabular.configs.hyperparameter_configs import get_hyperparameter_config

    default = get_hyperparameter_config("default")
    keys = {AUTOGLUON_KEYS[n] for n in names if n in AUTOGLUON_KEYS}
    # Families outside AutoGluon's default zoo (LR, FT_TRANSFORMER) get AutoGluon's own defaults ({}).
    return {k: default.get(k, {}) for k in sorted(keys)}


def run_autogluon(cohort_df: pd.DataFrame, variant: str, out_dir: str | os.PathLike,
                  models: list[str] | None = None, seed: int = 42, *, n_boot: int = 1000,
                  presets: str = "medium_quality", time_limit: float | None = None,
                  callback=None, source: str = "cohort", n_jobs: int | None = None,
                  overwrite: bool = False) -> pd.DataFrame:
    TabularPredictor = import_tabular_predictor()
    names = resolve_models(models)
    spec = FeatureSpec.from_schema(variant, cohort_df, source=source)
    out_dir = Path(out_dir)
    parts, labels = split_labelled(cohort_df, source)
    run = BaselineRunConfig(variant=variant, models=names, seed=seed, profile="full",
                            engine="autogluon", n_boot=n_boot, cohort=source, n_jobs=resolve_jobs(n_jobs))
    hyperparameters = _hyperparameters(names) if models else "default"
    if callback:
        callback("start", "AutoGluon", None)
    t0 = time.perf_counter()
    predictor = TabularPredictor(label=OUTCOME_COLUMN, problem_type="binary",
                                 eval_metric="average_precision", path=str(out_dir / "autogluon"),
                                 verbosity=1)
    try:
        predictor.fit(_autogluon_frame(parts["train"], spec, True),
                      tuning_data=_autogluon_frame(parts["val"], spec, True),
                      presets=presets, hyperparameters=hyperparameters, time_limit=time_limit,
                      num_bag_folds=0, num_stack_levels=0, use_bag_holdout=False, num_cpus=run.n_jobs,
                      fit_weighted_ensemble=ENSEMBLE_NAME in names or not models)
    except RuntimeError as e:
        if "No models were trained" not in str(e):
            raise
        raise AlfiaError(f"{source}: AutoGluon trained no model; its log is in {out_dir / 'autogluon'} "
                         f"(a missing model library? install them with "
                         f"pip install \"autogluon.tabular[all]==1.6.3\")") from None
    total_time = time.perf_counter() - t0
    leaderboard = predictor.leaderboard(silent=True)
    info = predictor.info().get("model_info", {})
    x_val = _autogluon_frame(parts["val"], spec, False)
    x_test = _autogluon_frame(parts["test"], spec, False)
    rows = []
    for _, entry in leaderboard.iterrows():
        name = str(entry["model"])
        family = FAMILY_ENSEMBLE if name.startswith("WeightedEnsemble") else FAMILY_BASELINE
        val_prob = np.asarray(predictor.predict_proba(x_val, model=name, as_multiclass=False))
        test_prob = np.asarray(predictor.predict_proba(x_test, model=name, as_multiclass=False))
        fit_time = float(entry.get("fit_time", np.nan))
        model_info = info.get(name, {})
        config = _base_config(name, family, run, spec, parts) | {
            "library": "autogluon.tabular",
            "description": f"AutoGluon {model_info.get('model_type', name)}",
            "hyperparameters": model_info.get("hyperparameters", {}),
            "autogluon": {"presets": presets, "time_limit": time_limit,
                          "predictor_path": str(out_dir / "autogluon"),
                          "score_val": float(entry.get("score_val", np.nan)),
                          "total_fit_time_seconds": round(total_time, 3)},
            "train_time_seconds": round(fit_time, 3),
        }
        metrics = _write_run(out_dir / name, config=config, parts=parts, labels=labels,
                             val_prob=val_prob, test_prob=test_prob, n_boot=n_boot, seed=seed)
        row = summary_row(name, family, float(entry.get("score_val", np.nan)), metrics, fit_time)
        rows.append(row)
        if callback:
            callback("done", name, row)
    if not rows:
        raise AlfiaError(f"{source}: AutoGluon trained no model (see {out_dir / 'autogluon'})")
    return write_summary(rows, out_dir, overwrite=overwrite)
