"""Scoring new stays with a saved baseline run (``alfia predict BASELINE_RUN``, external cohorts): the run's
model or ensemble loaded from ``baselines.saved``, its features rebuilt from cohort rows (and, for ALFIA-boost /
ALFIA-nn, the stays' ALF embeddings), and probabilities at the run's threshold.

It sits above ``saved`` (the file formats), ``runner`` and ``boost`` (the run families and the boost frame), so
that saving a model while training imports nothing back.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from alfia.baselines.estimators import frame_rows
from alfia.baselines.preprocessing import FeatureSpec
from alfia.baselines.saved import ENSEMBLE, MANIFEST, SavedEnsemble, load_ensemble, load_model, read_manifest
from alfia.cohorts.schema import ID_COLUMN, OUTCOME_COLUMN, SPLIT_COLUMN
from alfia.errors import AlfiaError
from alfia.runs import RunLayout


def is_baseline_run(config: dict) -> bool:
    """A run directory ``alfia baselines`` or ``alfia boost`` wrote (its config.json has the family)."""
    from alfia.baselines.boost import LEARNERS
    from alfia.baselines.runner import FAMILY_BASELINE, FAMILY_ENSEMBLE

    return config.get("model_family") in {FAMILY_BASELINE, FAMILY_ENSEMBLE, *(f for _, f, _ in LEARNERS.values())}


@dataclass
class SavedRun:
    """A baseline run ready to score: its model (or ensemble), features, variant, imputation and threshold."""

    run_dir: Path
    model: Any  # a TabularClassifier or a SavedEnsemble: predict_proba(X)
    spec: FeatureSpec
    variant: str
    imputation: dict | None
    threshold: float
    threshold_source: str
    embeddings: str | None = None  # ALFIA-boost / ALFIA-nn: the embeddings it was trained with
    config: dict = field(default_factory=dict)


def load_run(run_dir: str | os.PathLike) -> SavedRun:
    """A finished baseline run directory with its saved model (``alfia predict`` reads baselines this way)."""
    from alfia.evaluation.thresholds import DECISION_POINT, run_thresholds
    from alfia.runs import read_config

    layout = RunLayout.of(run_dir).require()
    config = read_config(layout.root)
    if not is_baseline_run(config):
        raise AlfiaError(f"{layout.config}: not a baseline run (model_family={config.get('model_family')!r})")
    if config.get("engine") == "autogluon" and not (layout.baseline_model / MANIFEST).is_file():
        raise AlfiaError(f"{layout.root}: an --engine autogluon run keeps AutoGluon's own predictor (in "
                         f"{layout.root.parent / 'autogluon'}), not a model ALFIA loads; train with --engine native")
    doc = read_manifest(layout.baseline_model)
    model = load_ensemble(layout.baseline_model) if doc.get("estimator") == ENSEMBLE else \
        load_model(layout.baseline_model)
    point = run_thresholds(layout)[DECISION_POINT]
    spec = model.spec if isinstance(model, SavedEnsemble) else model.spec_
    return SavedRun(layout.root, model, spec, str(doc.get("variant") or config.get("variant")),
                    doc.get("imputation"), point.threshold,
                    f"max {DECISION_POINT.upper()} on {point.chosen_on} ({layout.thresholds.name})",
                    config.get("embeddings"), config)


def cohort_features(run: SavedRun, df: pd.DataFrame, variant: str, source: str,
                    embeddings: pd.DataFrame | None = None, embeddings_source: str = "embeddings") -> pd.DataFrame:
    """The rows a saved model scores: ``df`` as it is when it is of the run's variant (so the run's own val and
    test stays score as they did in training), else mapped into that variant and imputed with the training
    split's fills, as ``--external`` does. ALFIA-boost's ALF embeddings are joined by stay_id."""
    from alfia.cohorts.mapping import impute, map_cohort

    if variant != run.variant:
        mapped = map_cohort(df, variant, run.variant, source=source)
        if not run.imputation:
            raise AlfiaError(f"{run.run_dir}: its saved model has no training imputation, so it scores cohorts of "
                             f"its own variant ({run.variant}) only; {source} is {variant}")
        df = impute(mapped, run.imputation)[0].reset_index(drop=True)
    if embeddings is not None:
        from alfia.baselines.boost import build_boost_frame

        df = build_boost_frame(df, embeddings, cohort_source=source, embeddings_source=embeddings_source,
                               include_layer_weights=any(c.startswith("layer_weight_") for c in run.spec.numeric))[0]
    missing = [c for c in run.spec.columns if c not in df.columns]
    if missing:
        hint = (f"; {run.run_dir.name} also reads ALF embeddings: pass --embeddings EMB.parquet (alfia embed "
                f"ALFIA_RUN --input {source} --out EMB.parquet)" if run.embeddings and
                any(c.startswith("alf_") for c in missing) else "")
        shown = ", ".join(missing[:8]) + (" ..." if len(missing) > 8 else "")
        raise AlfiaError(f"{source}: missing column(s) the model of {run.run_dir} reads: {shown}{hint}")
    return df


def predict_frame(run: SavedRun, df: pd.DataFrame, variant: str, source: str, *,
                  embeddings: pd.DataFrame | None = None, embeddings_source: str = "embeddings") -> pd.DataFrame:
    """What ``alfia predict`` writes for a baseline run: stay_id, (split), prob, pred_label at the run's
    threshold, (hospital_expire_flag when the input has labels); one row per input row, in input order."""
    from alfia.cohorts.validate import check_labels
    from alfia.evaluation.metrics import predicted_death

    if ID_COLUMN not in df.columns:
        raise AlfiaError(f"{source}: no {ID_COLUMN!r} column")
    if df[ID_COLUMN].duplicated().any():
        raise AlfiaError(f"{source}: column {ID_COLUMN!r} repeats stay {df.loc[df[ID_COLUMN].duplicated(), ID_COLUMN].iloc[0]}")
    features = cohort_features(run, df, variant, source, embeddings, embeddings_source)
    prob = run.model.predict_proba(frame_rows(features, run.spec))[:, 1]
    out = pd.DataFrame({ID_COLUMN: df[ID_COLUMN].to_numpy()})
    if SPLIT_COLUMN in df.columns:
        out[SPLIT_COLUMN] = df[SPLIT_COLUMN].astype(str).to_numpy()
    out["prob"] = prob
    out["pred_label"] = predicted_death(prob, run.threshold).astype(np.int8)
    if OUTCOME_COLUMN in df.columns and df[OUTCOME_COLUMN].notna().any():
        out[OUTCOME_COLUMN] = check_labels(df, source)
    out.attrs["threshold"] = run.threshold
    return out


def predict_file(run_dir: str | os.PathLike, input_path: str | os.PathLike,
                 embeddings_path: str | os.PathLike | None = None) -> tuple[pd.DataFrame, SavedRun]:
    """``alfia predict BASELINE_RUN --input COHORT``: a cohort file (Parquet or CSV, any CW-24 variant) scored
    by the run's saved model; ``embeddings_path``: the ALF embeddings an ALFIA-boost / ALFIA-nn run reads."""
    from alfia.cohorts.io import read_cohort, read_table

    run = load_run(run_dir)
    df, _, variant = read_cohort(input_path)
    embeddings = None
    if embeddings_path is not None:
        if not run.embeddings:
            raise AlfiaError(f"--embeddings goes with an ALFIA-boost / ALFIA-nn run; {run.run_dir} reads none")
        embeddings = read_table(embeddings_path)[0]
    frame = predict_frame(run, df, variant, str(input_path), embeddings=embeddings,
                          embeddings_source=str(embeddings_path))
    return frame, run
