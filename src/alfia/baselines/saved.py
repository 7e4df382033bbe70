"""A baseline run's fitted model, saved with its preprocessing, so it scores new stays (``alfia predict``) and
external cohorts (``alfia baselines --external``) without refitting. Nothing is pickled::

    RUN/model/model.json          format, estimator class and parameters, features, the learned scalars, the
                                  training split's imputation (for cohorts of another variant), SHA-256 of each file
    RUN/model/preprocessing.skops the fitted preprocessing (skops, trusted types only: ``model_io``)
    RUN/model/<model file>        the library's own file: lightgbm.txt (LightGBM text), xgboost.json,
                                  catboost.cbm, model.skops (scikit-learn), ft_transformer.safetensors (torch)
    WeightedEnsemble/model/model.json  the members (sibling run directories), their weights and the SHA-256
                                  of each member's model.json when the ensemble was built

Loading checks every file against the SHA-256 recorded when it was saved, so a changed, damaged or missing
file is an AlfiaError naming it, never a silently different prediction.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from alfia.atomic import atomic_directory, read_json_object, sha256_file, write_json_atomic
from alfia.baselines.ensemble import GreedyEnsembleSelection
from alfia.baselines.estimators import (
    CatBoostModel, FTTransformerModel, GridSelected, LightGBMModel, MLPModel, TabularClassifier, XGBoostModel,
    frame_rows,
)
from alfia.baselines.preprocessing import FeatureSpec
from alfia.cohorts.schema import ID_COLUMN, OUTCOME_COLUMN, SPLIT_COLUMN
from alfia.errors import AlfiaError
from alfia.runs import RunLayout

MODEL_FORMAT = 1
MANIFEST = "model.json"
ENSEMBLE = "GreedyEnsembleSelection"
ESTIMATORS: dict[str, type[TabularClassifier]] = {c.__name__: c for c in (
    GridSelected, LightGBMModel, XGBoostModel, CatBoostModel, MLPModel, FTTransformerModel)}


def jsonable(value: Any) -> Any:
    """``value`` in JSON's types (NumPy scalars to Python's, tuples to lists); anything else as its repr."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, FeatureSpec):
        return {"categorical": list(value.categorical), "numeric_count": len(value.numeric)}
    return repr(value)


def _features(spec: FeatureSpec) -> dict:
    return {"categorical": list(spec.categorical), "numeric": list(spec.numeric)}


def _write_manifest(folder: Path, doc: dict) -> None:
    doc["files"] = {p.name: sha256_file(p) for p in sorted(folder.iterdir()) if p.name != MANIFEST}
    write_json_atomic(folder / MANIFEST, doc)


def _saved_attributes(cls: type[TabularClassifier]) -> tuple[str, ...]:
    return (*cls.COMMON_ATTRIBUTES, *cls.learned_attributes)


def save_model(folder: str | os.PathLike, estimator: TabularClassifier, *, variant: str,
               imputation: dict | None = None) -> Path:
    """Write a fitted zoo estimator to ``folder`` (a run's ``model/``), replacing what was there whole."""
    estimator._check_fitted()
    name = type(estimator).__name__
    if name not in ESTIMATORS:
        raise AlfiaError(f"{name}: not a zoo estimator that can be saved ({', '.join(ESTIMATORS)})")
    folder = Path(folder)
    with atomic_directory(folder) as staging:
        estimator.save_files(staging)
        _write_manifest(staging, {
            "format": MODEL_FORMAT, "estimator": name, "variant": variant, "features": _features(estimator.spec_),
            "params": jsonable(estimator.saved_params()),
            "learned": {a: jsonable(getattr(estimator, a)) for a in _saved_attributes(type(estimator))
                        if hasattr(estimator, a)},
            "imputation": jsonable(imputation)})
    return folder


def _read_manifest(folder: Path) -> dict:
    path = folder / MANIFEST
    if not path.is_file():
        raise AlfiaError(f"{path}: missing; this run saved no model (it was trained before baseline models were "
                         f"saved, or did not finish): retrain it to score new stays")
    doc = read_json_object(path)
    if doc.get("format") != MODEL_FORMAT:
        raise AlfiaError(f"{path}: model format {doc.get('format')!r}, but this ALFIA reads format {MODEL_FORMAT}")
    files = doc.get("files")
    if not isinstance(files, dict):
        raise AlfiaError(f"{path}: no 'files' record of the model's files")
    for file_name, expected in files.items():
        target = folder / str(file_name)
        if not target.is_file():
            raise AlfiaError(f"{target}: missing; the saved model is incomplete (retrain it)")
        if sha256_file(target) != expected:
            raise AlfiaError(f"{target}: its SHA-256 differs from the one {path.name} recorded when the model was "
                             f"saved; the file was changed or damaged (retrain the model)")
    return doc


def load_model(folder: str | os.PathLike) -> TabularClassifier:
    """The fitted estimator :func:`save_model` wrote to ``folder``; it predicts exactly as it did when saved."""
    folder = Path(folder)
    doc = _read_manifest(folder)
    cls = ESTIMATORS.get(doc.get("estimator"))
    if cls is None:
        raise AlfiaError(f"{folder / MANIFEST}: unknown estimator {doc.get('estimator')!r}")
    try:
        features = doc["features"]
        spec = FeatureSpec(tuple(features["categorical"]), tuple(features["numeric"]))
        estimator = cls(spec, **doc["params"])
        learned = dict(doc["learned"])
        classes = np.asarray(learned.pop("classes_"))
    except (KeyError, TypeError) as e:
        raise AlfiaError(f"{folder / MANIFEST}: not a saved {cls.__name__} ({e!r})") from None
    estimator.spec_ = spec
    estimator.load_files(folder)
    for attribute, value in learned.items():
        if attribute in _saved_attributes(cls):
            setattr(estimator, attribute, np.asarray(value, dtype=object) if attribute == "feature_names_in_" else value)
    estimator.classes_ = classes  # last: it marks the model fitted
    return estimator


def save_ensemble(folder: str | os.PathLike, selector: GreedyEnsembleSelection, out_dir: Path, *,
                  variant: str, imputation: dict | None = None) -> Path:
    """The ensemble's weights, with each member's saved model named (``OUT/<member>/model``) and fingerprinted."""
    members = []
    for name, weight, count in zip(selector.member_names_, selector.weights_, selector.counts_):
        manifest = RunLayout.of(out_dir / name).baseline_model / MANIFEST
        members.append({"name": name, "weight": float(weight), "count": int(count),
                        "model_sha256": sha256_file(manifest) if manifest.is_file() else None})
    folder = Path(folder)
    with atomic_directory(folder) as staging:
        _write_manifest(staging, {"format": MODEL_FORMAT, "estimator": ENSEMBLE, "variant": variant,
                                  "n_iterations": selector.n_iterations, "val_auprc": selector.val_auprc_,
                                  "members": members, "imputation": jsonable(imputation)})
    return folder


@dataclass
class SavedEnsemble:
    """A loaded ensemble: its selector (weights over every member) and the members with a weight."""

    selector: GreedyEnsembleSelection
    members: dict[str, TabularClassifier]
    spec: FeatureSpec

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        probs = np.column_stack([self.members[n].predict_proba(X)[:, 1] if n in self.members else np.zeros(len(X))
                                 for n in self.selector.member_names_])
        return self.selector.predict_proba(probs)


def load_ensemble(folder: str | os.PathLike) -> SavedEnsemble:
    """The ensemble :func:`save_ensemble` wrote, with its members loaded from their sibling run directories."""
    folder = Path(folder)
    doc = _read_manifest(folder)
    out_dir = folder.parent.parent
    selector = GreedyEnsembleSelection(n_iterations=int(doc.get("n_iterations", 100)))
    try:
        entries = list(doc["members"])
        selector.member_names_ = [str(m["name"]) for m in entries]
        selector.weights_ = np.asarray([float(m["weight"]) for m in entries])
        selector.counts_ = np.asarray([int(m["count"]) for m in entries])
    except (KeyError, TypeError, ValueError) as e:
        raise AlfiaError(f"{folder / MANIFEST}: not a saved ensemble ({e!r})") from None
    selector.val_auprc_ = doc.get("val_auprc")
    members = {}
    for entry in entries:
        if entry["weight"] <= 0:
            continue  # never chosen: it cannot change a prediction, so it need not be there
        member_folder = RunLayout.of(out_dir / entry["name"]).baseline_model
        manifest = member_folder / MANIFEST
        if not manifest.is_file() or sha256_file(manifest) != entry.get("model_sha256"):
            raise AlfiaError(f"{manifest}: {'missing' if not manifest.is_file() else 'not the model'} the ensemble "
                             f"{folder.parent.name} was built from; rebuild the ensemble "
                             f"(alfia baselines ... --resume)")
        members[entry["name"]] = load_model(member_folder)
    if not members:
        raise AlfiaError(f"{folder / MANIFEST}: no member carries a weight")
    spec = next(iter(members.values())).spec_
    return SavedEnsemble(selector, members, spec)


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
    doc = _read_manifest(layout.baseline_model)
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
