"""Thin scikit-learn-style estimators around the libraries of the baseline zoo.

Each estimator takes the cohort rows as a DataFrame (``fit(X, y, X_val, y_val)``), preprocesses them
as its family needs (fitted on ``X`` = the training split only), selects hyperparameters or stops early
on validation AUPRC, and exposes ``predict_proba`` like any scikit-learn classifier. Learned state
lives in attributes ending in ``_``; ``selected_params_`` records what validation AUPRC chose and
``val_auprc_`` the validation AUPRC of the final model.

The learning itself is the libraries': scikit-learn, LightGBM, XGBoost, CatBoost, and torch with
``rtdl_revisiting_models.FTTransformer``. Each family writes its fitted model in its library's own file
(``save_files``) and reads it back (``load_files``), never with pickle; ``alfia.baselines.saved`` puts
those files, the learned scalars and their SHA-256 in a run's ``model/`` folder.
"""

from __future__ import annotations

import copy
import logging
import warnings

import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import average_precision_score
from sklearn.model_selection import ParameterGrid
from sklearn.pipeline import Pipeline


from alfia.baselines import model_io
from alfia.baselines.preprocessing import (
    FeatureSpec, NativeCategoricals, TokenizerInputs, make_dense_preprocessor,
)
from alfia.errors import AlfiaError
from alfia.machine import resolve_jobs

PREPROCESSING_FILE = "preprocessing.skops"  # every family's fitted preprocessing (skops)


# Epoch-by-epoch progress of the neural models (INFO): long FT-Transformer runs are otherwise silent.
log = logging.getLogger("alfia.baselines")


def _proba2(p1: np.ndarray) -> np.ndarray:
    p1 = np.clip(np.asarray(p1, dtype=float), 0.0, 1.0)
    return np.column_stack([1.0 - p1, p1])


class TabularClassifier(ClassifierMixin, BaseEstimator):
    """Common surface: ``fit(X, y, X_val, y_val)`` then ``predict_proba(X)``; ``save_files(folder)`` writes
    the fitted model in its library's own format, ``load_files(folder)`` reads it back into a fresh instance.

    ``X`` is a DataFrame holding the ``spec``'s columns (the zoo's way), or any 2-D array when ``spec`` is None
    (then every column is numeric; scikit-learn's estimator checks fit this way). Without ``X_val``/``y_val``,
    a stratified ``VALIDATION_FRACTION`` of ``X`` (seeded) is held out for the selection, so
    ``clone(model).fit(X, y)`` works as for any scikit-learn classifier. ``y`` has two classes, any labels.

    ``learned_attributes``: the family's learned attributes (plain JSON) that ``alfia.baselines.saved`` keeps
    beside the files, with ``COMMON_ATTRIBUTES``, so a loaded model reports what validation chose.
    """

    VALIDATION_FRACTION = 0.2
    COMMON_ATTRIBUTES = ("classes_", "n_features_in_", "feature_names_in_")
    spec: FeatureSpec | None
    learned_attributes: tuple[str, ...] = ("val_auprc_", "selected_params_")

    def _as_frame(self, X, columns) -> pd.DataFrame:
        if isinstance(X, pd.DataFrame):
            return X
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != len(columns):
            raise AlfiaError(f"{type(self).__name__}: X has shape {X.shape}; the model reads {len(columns)} columns "
                             f"({', '.join(columns[:5])}{' ...' if len(columns) > 5 else ''})")
        return pd.DataFrame(X, columns=columns)

    def _fit_inputs(self, X, y, X_val, y_val):
        """``(X, y, X_val, y_val, classes)`` as a family fits them: DataFrames of ``spec_``'s columns and 0/1
        labels. Sets ``spec_``, ``n_features_in_`` (and ``feature_names_in_`` for a DataFrame)."""
        from sklearn.model_selection import train_test_split
        from sklearn.utils.multiclass import check_classification_targets
        from sklearn.utils.validation import validate_data

        name = type(self).__name__
        if isinstance(X, pd.DataFrame):  # checked by the preprocessing, column by column, with row names
            if self.spec is None:
                X = X.rename(columns=str)
            validate_data(self, X, skip_check_array=True)
            if len(X) == 0:
                raise AlfiaError(f"{name}: X has no rows")
            y = np.asarray(y)
        else:
            X, y = validate_data(self, X, y, dtype=None, ensure_all_finite="allow-nan")
        check_classification_targets(y)
        classes = np.unique(y)
        if len(classes) != 2:
            # scikit-learn's wording for a binary-only classifier (its estimator checks look for it)
            raise AlfiaError(f"Only binary classification is supported: {name} needs two classes in y; it holds "
                             f"{len(classes)} class(es) ({', '.join(map(str, classes[:5]))})")
        self.spec_ = self.spec if self.spec is not None else FeatureSpec(
            (), tuple(map(str, X.columns)) if isinstance(X, pd.DataFrame) else tuple(f"x{i}" for i in range(X.shape[1])))
        X, y01 = self._as_frame(X, self.spec_.columns), (y == classes[1]).astype(int)
        if X_val is None and y_val is None:
            try:
                X, X_val, y01, y_val01 = train_test_split(
                    X, y01, test_size=self.VALIDATION_FRACTION, stratify=y01,
                    random_state=getattr(self, "random_state", 0))
            except ValueError as e:
                raise AlfiaError(f"{name}: too few rows of each class to hold out a validation split ({e}); "
                                 f"pass X_val and y_val") from None
        elif X_val is None or y_val is None:
            raise AlfiaError(f"{name} selects on validation AUPRC: pass both X_val and y_val (or neither)")
        else:
            X_val, y_val = self._as_frame(X_val, self.spec_.columns), np.asarray(y_val)
            unknown = set(np.unique(y_val)) - set(classes)
            if unknown:
                raise AlfiaError(f"{name}: y_val holds label(s) {sorted(map(str, unknown))} that y does not")
            y_val01 = (y_val == classes[1]).astype(int)
        return X, y01, X_val, y_val01, classes

    def _predict_input(self, X) -> pd.DataFrame:
        """``X`` checked against what the model was fitted on (columns, their number), as a DataFrame."""
        from sklearn.utils.validation import validate_data

        self._check_fitted()
        if isinstance(X, pd.DataFrame):
            if self.spec is None:
                X = X.rename(columns=str)
            validate_data(self, X, skip_check_array=True, reset=False)
            return X
        X = validate_data(self, X, dtype=None, ensure_all_finite="allow-nan", reset=False)
        return self._as_frame(X, self.spec_.columns)

    def _check_fitted(self) -> None:
        if not hasattr(self, "classes_"):
            from alfia.errors import NotFittedError

            raise NotFittedError(f"this {type(self).__name__} is not fitted yet: call fit(X, y, X_val, y_val) "
                                 f"or load a saved one (alfia.baselines.saved.load_model)")

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "classes_")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # every family handles missing values (imputers, native NaN)
        tags.input_tags.categorical = True
        tags.input_tags.string = True
        tags.classifier_tags.multi_class = False
        return tags

    def predict(self, X):
        death = self.predict_proba(X)[:, 1] >= 0.5
        return self.classes_[death.astype(int)]

    def save_files(self, folder) -> None:
        """Write the fitted model into ``folder`` (an empty folder)."""
        raise NotImplementedError

    def load_files(self, folder) -> None:
        """Read what :meth:`save_files` wrote (the saved attributes are set by the caller)."""
        raise NotImplementedError

    def saved_params(self) -> dict:
        """The constructor's parameters a loaded model is rebuilt with (``spec`` is saved on its own)."""
        params = self.get_params(deep=False)
        params.pop("spec", None)
        return params


class GridSelected(TabularClassifier):
    """A scikit-learn estimator behind dense preprocessing, with a small grid chosen by val AUPRC.

    Used for kNN, logistic regression, random forest and extra trees, which have no early stopping.
    """

    def __init__(self, spec: FeatureSpec | None = None, estimator=None, param_grid: dict | None = None,
                 scale: bool = True):
        self.spec = spec
        self.estimator = estimator
        self.param_grid = param_grid
        self.scale = scale

    def fit(self, X, y, X_val=None, y_val=None):
        X, y, X_val, y_val, classes = self._fit_inputs(X, y, X_val, y_val)
        best = None
        self.grid_scores_ = []
        for params in ParameterGrid(self.param_grid or {}):
            model = Pipeline([("preprocess", make_dense_preprocessor(self.spec_, scale=self.scale)),
                              ("model", clone(self.estimator).set_params(**params))])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                model.fit(X, np.asarray(y).astype(int))
            score = float(average_precision_score(y_val, model.predict_proba(X_val)[:, 1]))
            self.grid_scores_.append({"params": params, "val_auprc": score})
            if best is None or score > best[0]:
                best = (score, params, model)
        self.val_auprc_, self.selected_params_, self.pipeline_ = best
        self.classes_ = classes
        return self

    learned_attributes = ("val_auprc_", "selected_params_", "grid_scores_")
    MODEL_FILE = "model.skops"

    def predict_proba(self, X):
        X = self._predict_input(X)
        return _proba2(self.pipeline_.predict_proba(X)[:, 1])

    def saved_params(self) -> dict:
        params = super().saved_params()
        params.pop("estimator")  # a library object: the loaded model's own step stands in for it
        return params

    def save_files(self, folder) -> None:
        model_io.dump_skops(self.pipeline_.named_steps["preprocess"], folder / PREPROCESSING_FILE)
        model_io.dump_skops(self.pipeline_.named_steps["model"], folder / self.MODEL_FILE)

    def load_files(self, folder) -> None:
        from sklearn.base import clone

        model = model_io.load_skops(folder / self.MODEL_FILE)
        self.pipeline_ = Pipeline([("preprocess", model_io.load_skops(folder / PREPROCESSING_FILE)),
                                   ("model", model)])
        self.estimator = clone(model)  # the selected configuration, unfitted: what refitting would start from


class EarlyStoppedBoosting(TabularClassifier):
    """Shared surface of the GBDTs: native categoricals, up to ``n_estimators`` rounds, early-stopped on
    validation AUPRC. Subclasses only make and fit their library's model in ``_fit_library``, which
    returns ``(best number of rounds, validation AUPRC at that round)``.
    """

    categorical_mode = "pandas"

    def __init__(self, spec: FeatureSpec | None = None, params: dict | None = None, n_estimators: int = 10000,
                 early_stopping_rounds: int = 100, random_state: int = 42, n_jobs: int | None = None):
        self.spec = spec
        self.params = params
        self.n_estimators = n_estimators
        self.early_stopping_rounds = early_stopping_rounds
        self.random_state = random_state
        self.n_jobs = n_jobs

    def fit(self, X, y, X_val=None, y_val=None):
        X, y, X_val, y_val, classes = self._fit_inputs(X, y, X_val, y_val)
        self.preprocess_ = NativeCategoricals(self.spec_.categorical, self.spec_.numeric,
                                              mode=self.categorical_mode).fit(X)
        self.best_iteration_, self.val_auprc_ = self._fit_library(
            self.preprocess_.transform(X), np.asarray(y).astype(int),
            self.preprocess_.transform(X_val), y_val)
        self.selected_params_ = {"n_estimators": self.best_iteration_}
        self.classes_ = classes
        return self

    learned_attributes = ("val_auprc_", "selected_params_", "best_iteration_")
    MODEL_FILE: str  # the library's own model file

    def _fit_library(self, X, y, X_val, y_val) -> tuple[int, float]:
        raise NotImplementedError

    def predict_proba(self, X):
        # Each library keeps (or predicts with) only the rounds up to the best iteration.
        X = self._predict_input(X)
        return _proba2(self.model_.predict_proba(self.preprocess_.transform(X))[:, 1])

    def save_files(self, folder) -> None:
        model_io.dump_skops(self.preprocess_, folder / PREPROCESSING_FILE)
        self._save_library(folder / self.MODEL_FILE)

    def load_files(self, folder) -> None:
        self.preprocess_ = model_io.load_skops(folder / PREPROCESSING_FILE)
        path = model_io.require_file(folder / self.MODEL_FILE)
        try:
            self._load_library(path)
        except Exception as e:  # each library has its own error for a file it cannot parse
            raise AlfiaError(f"{path}: not a readable {type(self).__name__} model file ({e})") from None

    def _save_library(self, path) -> None:
        raise NotImplementedError

    def _load_library(self, path) -> None:
        raise NotImplementedError


class LightGBMModel(EarlyStoppedBoosting):
    """LightGBM on native categoricals, early-stopped on validation average precision."""

    def _fit_library(self, X, y, X_val, y_val):
        import lightgbm as lgb

        self.model_ = lgb.LGBMClassifier(n_estimators=self.n_estimators,
                                         random_state=self.random_state, n_jobs=resolve_jobs(self.n_jobs),
                                         deterministic=True, verbose=-1, **(self.params or {}))
        self.model_.fit(X, y, eval_X=(X_val,), eval_y=(y_val,), eval_metric="average_precision",
                        callbacks=[lgb.early_stopping(self.early_stopping_rounds, verbose=False,
                                                      first_metric_only=False),
                                   lgb.log_evaluation(0)])
        self.booster_ = self.model_.booster_
        return (int(self.model_.best_iteration_ or self.n_estimators),
                float(self.model_.best_score_["valid_0"]["average_precision"]))

    MODEL_FILE = "lightgbm.txt"  # LightGBM's text model format

    def predict_proba(self, X):
        # The booster (fitted or read from its file) gives P(death) of the binary objective.
        X = self._predict_input(X)
        return _proba2(self.booster_.predict(self.preprocess_.transform(X), num_iteration=self.best_iteration_))

    def _save_library(self, path) -> None:
        self.booster_.save_model(str(path), num_iteration=self.best_iteration_)

    def _load_library(self, path) -> None:
        import lightgbm as lgb

        self.booster_ = lgb.Booster(model_file=str(path))


def _average_precision(y_true, y_score) -> float:
    return float(average_precision_score(y_true, y_score))


class XGBoostModel(EarlyStoppedBoosting):
    """XGBoost (hist, ``enable_categorical``), early-stopped on validation average precision."""

    def _fit_library(self, X, y, X_val, y_val):
        import xgboost as xgb

        stopper = xgb.callback.EarlyStopping(rounds=self.early_stopping_rounds,
                                             metric_name="_average_precision", maximize=True,
                                             save_best=True)  # keeps only the trees up to the best
        self.model_ = xgb.XGBClassifier(
            n_estimators=self.n_estimators, tree_method="hist", enable_categorical=True,
            eval_metric=_average_precision, callbacks=[stopper], random_state=self.random_state,
            n_jobs=resolve_jobs(self.n_jobs), **(self.params or {}))
        self.model_.fit(X, y, eval_set=[(X_val, y_val)], verbose=False)
        return int(self.model_.best_iteration) + 1, float(self.model_.best_score)

    MODEL_FILE = "xgboost.json"  # XGBoost's JSON model format

    def _save_library(self, path) -> None:
        self.model_.save_model(str(path))

    def _load_library(self, path) -> None:
        import xgboost as xgb

        self.model_ = xgb.XGBClassifier()
        self.model_.load_model(str(path))


class CatBoostModel(EarlyStoppedBoosting):
    """CatBoost with ``cat_features``, early-stopped on validation PRAUC (CatBoost's AUPRC)."""

    categorical_mode = "catboost"

    def _fit_library(self, X, y, X_val, y_val):
        from catboost import CatBoostClassifier

        self.model_ = CatBoostClassifier(
            iterations=self.n_estimators, eval_metric="PRAUC", random_seed=self.random_state,
            thread_count=resolve_jobs(self.n_jobs), early_stopping_rounds=self.early_stopping_rounds,
            use_best_model=True, allow_writing_files=False, verbose=False, **(self.params or {}))
        self.model_.fit(X, y, cat_features=list(self.spec_.categorical), eval_set=(X_val, y_val))
        return (int(self.model_.get_best_iteration()) + 1,
                float(self.model_.get_best_score()["validation"]["PRAUC"]))

    MODEL_FILE = "catboost.cbm"  # CatBoost's own binary model format

    def _save_library(self, path) -> None:
        self.model_.save_model(str(path), format="cbm")

    def _load_library(self, path) -> None:
        from catboost import CatBoostClassifier

        self.model_ = CatBoostClassifier()
        self.model_.load_model(str(path), format="cbm")


class MLPModel(TabularClassifier):
    """scikit-learn's MLPClassifier trained epoch by epoch (``partial_fit``); the epoch with the best
    validation AUPRC is kept, training stops after ``patience`` epochs without improvement."""

    def __init__(self, spec: FeatureSpec | None = None, hidden_layer_sizes=(256, 128), alpha: float = 1e-4,
                 learning_rate_init: float = 1e-3, batch_size: int = 256, max_epochs: int = 200,
                 patience: int = 10, random_state: int = 42):
        self.spec = spec
        self.hidden_layer_sizes = hidden_layer_sizes
        self.alpha = alpha
        self.learning_rate_init = learning_rate_init
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.random_state = random_state

    def fit(self, X, y, X_val=None, y_val=None):
        from sklearn.neural_network import MLPClassifier

        X, y, X_val, y_val, classes = self._fit_inputs(X, y, X_val, y_val)
        self.preprocess_ = make_dense_preprocessor(self.spec_, scale=True).fit(X)
        x_train, x_val = self.preprocess_.transform(X), self.preprocess_.transform(X_val)
        y = np.asarray(y).astype(int)
        mlp = MLPClassifier(hidden_layer_sizes=tuple(self.hidden_layer_sizes), alpha=self.alpha,
                            learning_rate_init=self.learning_rate_init,
                            batch_size=min(self.batch_size, len(y)), random_state=self.random_state,
                            shuffle=True)
        best, since_best, self.history_ = (-1.0, None, 0), 0, []
        for epoch in range(1, self.max_epochs + 1):
            mlp.partial_fit(x_train, y, classes=[0, 1])
            score = float(average_precision_score(y_val, mlp.predict_proba(x_val)[:, 1]))
            self.history_.append({"epoch": epoch, "val_auprc": score})
            log.info("MLP epoch %d: val AUPRC %.4f", epoch, score)
            if score > best[0]:
                best, since_best = (score, copy.deepcopy(mlp), epoch), 0
            else:
                since_best += 1
                if since_best >= self.patience:
                    break
        self.val_auprc_, self.model_, self.best_epoch_ = best
        self.selected_params_ = {"epochs": self.best_epoch_}
        self.classes_ = classes
        return self

    learned_attributes = ("val_auprc_", "selected_params_", "best_epoch_", "history_")
    MODEL_FILE = "model.skops"

    def predict_proba(self, X):
        X = self._predict_input(X)
        return _proba2(self.model_.predict_proba(self.preprocess_.transform(X))[:, 1])

    def save_files(self, folder) -> None:
        model_io.dump_skops(self.preprocess_, folder / PREPROCESSING_FILE)
        model_io.dump_skops(self.model_, folder / self.MODEL_FILE)

    def load_files(self, folder) -> None:
        self.preprocess_ = model_io.load_skops(folder / PREPROCESSING_FILE)
        self.model_ = model_io.load_skops(folder / self.MODEL_FILE)


class FTTransformerModel(TabularClassifier):
    """FT-Transformer (Gorishniy et al. 2021, ``rtdl_revisiting_models``) trained with torch.

    AdamW as in the paper (no weight decay on tokenizer, norms and biases), binary cross-entropy, the
    epoch with the best validation AUPRC kept, patience-based early stopping.
    """

    def __init__(self, spec: FeatureSpec | None = None, n_blocks: int = 3, d_block: int = 192,
                 attention_n_heads: int = 8, attention_dropout: float = 0.2,
                 ffn_dropout: float = 0.1, lr: float = 1e-4, weight_decay: float = 1e-5,
                 batch_size: int = 256, max_epochs: int = 100, patience: int = 10,
                 random_state: int = 42, n_jobs: int | None = None):
        self.spec = spec
        self.n_blocks = n_blocks
        self.d_block = d_block
        self.attention_n_heads = attention_n_heads
        self.attention_dropout = attention_dropout
        self.ffn_dropout = ffn_dropout
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _tensors(self, X):
        import torch

        x_num, x_cat = self.preprocess_.transform(X)
        return (None if x_num is None else torch.as_tensor(x_num, dtype=torch.float32),
                None if x_cat is None else torch.as_tensor(x_cat, dtype=torch.long))

    def _logits(self, x_num, x_cat, batch_size: int = 1024) -> np.ndarray:
        import torch

        n = len(x_num) if x_num is not None else len(x_cat)
        self.model_.eval()
        out = []
        with torch.no_grad():
            for i in range(0, n, batch_size):
                sl = slice(i, i + batch_size)
                out.append(self.model_(None if x_num is None else x_num[sl],
                                       None if x_cat is None else x_cat[sl]).squeeze(-1))
        return torch.cat(out).numpy()

    def fit(self, X, y, X_val=None, y_val=None):
        from alfia.runtime.device import process_state_kept

        # The seed and thread count are set for this fit only; the caller's are put back.
        with process_state_kept():
            return self._fit(X, y, X_val, y_val)

    def _fit(self, X, y, X_val, y_val):
        import torch

        from alfia.runtime.device import set_threads

        X, y, X_val, y_val, classes = self._fit_inputs(X, y, X_val, y_val)
        torch.manual_seed(self.random_state)
        set_threads(self.n_jobs)
        self.preprocess_ = TokenizerInputs(self.spec_.categorical, self.spec_.numeric).fit(X)
        x_num, x_cat = self._tensors(X)
        v_num, v_cat = self._tensors(X_val)
        y_t = torch.as_tensor(np.asarray(y).astype(np.float32))
        self.model_ = self._network()
        optimizer = torch.optim.AdamW(self.model_.make_parameter_groups(), lr=self.lr,
                                      weight_decay=self.weight_decay)
        loss_fn = torch.nn.BCEWithLogitsLoss()
        generator = torch.Generator().manual_seed(self.random_state)
        n = len(y_t)
        best, since_best, self.history_ = (-1.0, None, 0), 0, []
        for epoch in range(1, self.max_epochs + 1):
            self.model_.train()
            for idx in torch.randperm(n, generator=generator).split(self.batch_size):
                optimizer.zero_grad()
                logits = self.model_(None if x_num is None else x_num[idx],
                                     None if x_cat is None else x_cat[idx]).squeeze(-1)
                loss = loss_fn(logits, y_t[idx])
                loss.backward()
                optimizer.step()
            score = float(average_precision_score(y_val, self._logits(v_num, v_cat)))
            self.history_.append({"epoch": epoch, "val_auprc": score})
            log.info("FT-Transformer epoch %d: val AUPRC %.4f", epoch, score)
            if score > best[0]:
                best = (score, copy.deepcopy(self.model_.state_dict()), epoch)
                since_best = 0
            else:
                since_best += 1
                if since_best >= self.patience:
                    break
        self.val_auprc_, state, self.best_epoch_ = best
        self.model_.load_state_dict(state)
        self.selected_params_ = {"epochs": self.best_epoch_}
        self.classes_ = classes
        return self

    learned_attributes = ("val_auprc_", "selected_params_", "best_epoch_", "history_")
    MODEL_FILE = "ft_transformer.safetensors"  # the network's weights; its shape is rebuilt from the params

    def _network(self):
        from rtdl_revisiting_models import FTTransformer

        return FTTransformer(
            n_cont_features=self.preprocess_.n_numeric_,
            cat_cardinalities=self.preprocess_.cardinalities_, d_out=1, n_blocks=self.n_blocks,
            d_block=self.d_block, attention_n_heads=self.attention_n_heads,
            attention_dropout=self.attention_dropout, ffn_d_hidden=None,
            ffn_d_hidden_multiplier=4 / 3, ffn_dropout=self.ffn_dropout, residual_dropout=0.0)

    def predict_proba(self, X):
        X = self._predict_input(X)
        logits = self._logits(*self._tensors(X))
        return _proba2(expit(logits))

    def save_files(self, folder) -> None:
        from safetensors.torch import save_file

        model_io.dump_skops(self.preprocess_, folder / PREPROCESSING_FILE)
        save_file({k: v.detach().contiguous() for k, v in self.model_.state_dict().items()},
                  str(folder / self.MODEL_FILE))

    def load_files(self, folder) -> None:
        from safetensors.torch import load_file

        self.preprocess_ = model_io.load_skops(folder / PREPROCESSING_FILE)
        path = model_io.require_file(folder / self.MODEL_FILE)
        self.model_ = self._network()
        try:
            self.model_.load_state_dict(load_file(str(path)))
        except Exception as e:  # not safetensors, or weights of another shape
            raise AlfiaError(f"{path}: not the weights of this FT-Transformer ({e})") from None
        self.model_.eval()


def frame_rows(df: pd.DataFrame, spec: FeatureSpec) -> pd.DataFrame:
    """The model's input columns of ``df`` (labels, ids and split never reach a model)."""
    return df.loc[:, spec.columns]
