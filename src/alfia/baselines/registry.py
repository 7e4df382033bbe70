"""The baseline zoo by name: the lineup of the paper's Table 3, as library estimators.

Names follow AutoGluon's, so a table from ``--engine native`` reads like one from ``--engine autogluon``.
Each entry builds a fresh, unfitted estimator for a feature spec, a seed and a profile:

- ``full``: the configuration used for measured results (BENCHMARKS.md);
- ``fast``: tiny sizes and few iterations, for tests and smoke runs. Same code path, same libraries.

Model selection for models without early stopping (kNN, logistic regression, random forest, extra
trees) is a small grid chosen by validation AUPRC; the grids are listed below and saved in each run's
config.json together with the validation AUPRC of every grid point.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier

from alfia.baselines.estimators import (
    CatBoostModel, FTTransformerModel, GridSelected, LightGBMModel, MLPModel, TabularClassifier,
    XGBoostModel,
)
from alfia.baselines.preprocessing import FeatureSpec
from alfia.errors import AlfiaError
from alfia.machine import resolve_jobs

Profile = Literal["full", "fast"]


@dataclass(frozen=True)
class ModelEntry:
    name: str
    library: str
    description: str
    build: Callable[[FeatureSpec, int, Profile, int], TabularClassifier]  # spec, seed, profile, n_jobs


def _knn(weights: str):
    def build(spec, seed, profile, n_jobs):
        grid = {"n_neighbors": [5, 15] if profile == "fast" else [5, 15, 50, 100]}
        return GridSelected(spec, KNeighborsClassifier(weights=weights, n_jobs=n_jobs), grid,
                            scale=True)
    return build


def _logistic(spec, seed, profile, n_jobs):
    grid = {"C": [0.1, 1.0] if profile == "fast" else [0.001, 0.01, 0.1, 1.0, 10.0]}
    return GridSelected(spec, LogisticRegression(max_iter=2000, random_state=seed), grid, scale=True)


def _forest(cls, criterion: str):
    def build(spec, seed, profile, n_jobs):
        # 300 trees as in AutoGluon; the leaf size is chosen on validation AUPRC.
        est = cls(n_estimators=20 if profile == "fast" else 300, criterion=criterion,
                  random_state=seed, n_jobs=n_jobs)
        return GridSelected(spec, est, {"min_samples_leaf": [1, 5] if profile == "fast"
                                        else [1, 3, 10]}, scale=False)
    return build


# AutoGluon's LightGBM defaults (learning rate 0.05) and its two named variants.
_LGBM_BASE = {"learning_rate": 0.05}
_LGBM_XT = {"learning_rate": 0.05, "extra_trees": True}
_LGBM_LARGE = {"learning_rate": 0.03, "num_leaves": 128, "colsample_bytree": 0.9,
               "min_child_samples": 3}


def _lightgbm(params: dict):
    def build(spec, seed, profile, n_jobs):
        fast = profile == "fast"
        return LightGBMModel(spec, params=dict(params) | ({"num_leaves": 7} if fast else {}),
                             n_estimators=40 if fast else 10000,
                             early_stopping_rounds=10 if fast else 100, random_state=seed,
                             n_jobs=n_jobs)
    return build


def _xgboost(spec, seed, profile, n_jobs):
    fast = profile == "fast"
    return XGBoostModel(spec, params={"learning_rate": 0.1, "max_depth": 3 if fast else 6},
                        n_estimators=40 if fast else 10000, early_stopping_rounds=10 if fast else 100,
                        random_state=seed, n_jobs=n_jobs)


def _catboost(spec, seed, profile, n_jobs):
    fast = profile == "fast"
    return CatBoostModel(spec, params={"learning_rate": 0.05, "depth": 3 if fast else 6},
                         n_estimators=40 if fast else 10000, early_stopping_rounds=10 if fast else 100,
                         random_state=seed, n_jobs=n_jobs)


def _mlp(spec, seed, profile, n_jobs):
    if profile == "fast":
        return MLPModel(spec, hidden_layer_sizes=(16,), max_epochs=5, patience=2, random_state=seed)
    return MLPModel(spec, hidden_layer_sizes=(256, 128), max_epochs=200, patience=10,
                    random_state=seed)


def _ft_transformer(spec, seed, profile, n_jobs):
    if profile == "fast":
        return FTTransformerModel(spec, n_blocks=1, d_block=16, attention_n_heads=2, max_epochs=2,
                                  patience=1, random_state=seed, n_jobs=n_jobs)
    # rtdl's default for 1 block (d_block 96): the 3-block/192 default costs minutes per epoch on a
    # 2-core CPU with the ~270 features of PhysioNet 2012. lr 1e-4 / wd 1e-5 as in the FT-T paper.
    return FTTransformerModel(spec, n_blocks=1, d_block=96, attention_n_heads=8, max_epochs=100,
                              patience=8, random_state=seed, n_jobs=n_jobs)


MODELS: dict[str, ModelEntry] = {e.name: e for e in (
    ModelEntry("KNeighborsUnif", "scikit-learn", "k-nearest neighbours, uniform weights", _knn("uniform")),
    ModelEntry("KNeighborsDist", "scikit-learn", "k-nearest neighbours, distance weights",
               _knn("distance")),
    ModelEntry("LinearModel", "scikit-learn", "L2 logistic regression", _logistic),
    ModelEntry("RandomForestGini", "scikit-learn", "random forest, gini",
               _forest(RandomForestClassifier, "gini")),
    ModelEntry("RandomForestEntr", "scikit-learn", "random forest, entropy",
               _forest(RandomForestClassifier, "entropy")),
    ModelEntry("ExtraTreesGini", "scikit-learn", "extra trees, gini",
               _forest(ExtraTreesClassifier, "gini")),
    ModelEntry("ExtraTreesEntr", "scikit-learn", "extra trees, entropy",
               _forest(ExtraTreesClassifier, "entropy")),
    ModelEntry("LightGBM", "lightgbm", "LightGBM, AutoGluon defaults", _lightgbm(_LGBM_BASE)),
    ModelEntry("LightGBMXT", "lightgbm", "LightGBM in extra-trees mode", _lightgbm(_LGBM_XT)),
    ModelEntry("LightGBMLarge", "lightgbm", "LightGBM, AutoGluon's 'GBMLarge' settings",
               _lightgbm(_LGBM_LARGE)),
    ModelEntry("XGBoost", "xgboost", "XGBoost, hist, native categoricals", _xgboost),
    ModelEntry("CatBoost", "catboost", "CatBoost, native categoricals", _catboost),
    ModelEntry("NeuralNetMLP", "scikit-learn", "MLP, early stopping on val AUPRC", _mlp),
    ModelEntry("FTTransformer", "rtdl-revisiting-models + torch", "FT-Transformer", _ft_transformer),
)}
ENSEMBLE_NAME = "WeightedEnsemble"
DEFAULT_MODELS: tuple[str, ...] = (*MODELS, ENSEMBLE_NAME)


def resolve_models(names: list[str] | tuple[str, ...] | None) -> list[str]:
    """Validate model names (case-insensitive); unknown names get an error listing the known ones."""
    if not names:
        return list(DEFAULT_MODELS)
    known = {n.lower(): n for n in DEFAULT_MODELS}
    out, unknown = [], []
    for raw in names:
        name = known.get(str(raw).strip().lower())
        if name is None:
            unknown.append(str(raw))
        elif name not in out:
            out.append(name)
    if unknown:
        raise AlfiaError(f"unknown model name(s): {', '.join(unknown)}; known models: "
                         f"{', '.join(DEFAULT_MODELS)}")
    return out


def build_model(name: str, spec: FeatureSpec, seed: int = 42,
                profile: Profile = "full", n_jobs: int | None = None) -> TabularClassifier:
    """A fresh estimator of the zoo; ``n_jobs``: its threads (None: the machine's cores)."""
    if name not in MODELS:
        resolve_models([name])  # raises with the list of known names
        raise AlfiaError(f"{name} is not a single model (the ensemble is built from the others)")
    return MODELS[name].build(spec, seed, profile, resolve_jobs(n_jobs))
