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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from alfia.atomic import atomic_directory, read_json_object, sha256_file, write_json_atomic
from alfia.baselines.ensemble import GreedyEnsembleSelection
from alfia.baselines.estimators import (
    CatBoostModel, FTTransformerModel, GridSelected, LightGBMModel, MLPModel, TabularClassifier, XGBoostModel,
)
from alfia.baselines.preprocessing import FeatureSpec
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


def read_manifest(folder: Path) -> dict:
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
    doc = read_manifest(folder)
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
    doc = read_manifest(folder)
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
