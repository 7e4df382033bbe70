"""``ALFIAClassifier``: ALFIA with scikit-learn's conventions, over the run directory of ``alfia train``.

    model = ALFIAClassifier(epochs=2, max_length=256).fit(texts)   # trains with alfia.training.train_run
    model.predict_proba(["A 71-year-old woman ..."])[:, 1]
    model.save_pretrained("runs/alfia"); ALFIAClassifier.from_pretrained("runs/alfia")

Hyperparameters live in ``__init__`` and are mapped by field name onto ``AlfiaConfig`` (the model),
``LoraSettings`` (``lora_*``) and ``TrainConfig`` (the schedule) in :func:`configs_from_params`; ``None``
means the config's own default (the paper's). A new config field becomes a classifier parameter by
adding one keyword to ``__init__``: the mapping finds it by name.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import weakref
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin

from alfia.errors import AlfiaError

# Parameters of ALFIAClassifier that are not config fields.
_OWN_PARAMS = ("run_dir", "progress")
_LORA_PREFIX = "lora_"


def _field_names(cls) -> set[str]:
    return {f.name for f in fields(cls)}


def configs_from_params(params: dict[str, Any]):
    """(AlfiaConfig, TrainConfig) from classifier parameters, matched by field name.

    ``lora_<x>`` goes to ``LoraSettings.<x>``; a name that is a field of both configs would go to both (no
    field is, since ``max_length`` lives in ``AlfiaConfig`` only); ``None`` leaves the config's default. A parameter that matches no field is an error,
    so a renamed config field cannot be silently ignored.
    """
    from alfia.models import AlfiaConfig, LoraSettings
    from alfia.training import TrainConfig

    model_fields, lora_fields, train_fields = (_field_names(c) for c in (AlfiaConfig, LoraSettings, TrainConfig))
    model_kw: dict[str, Any] = {}
    lora_kw: dict[str, Any] = {}
    train_kw: dict[str, Any] = {}
    for name, value in params.items():
        if name in _OWN_PARAMS:
            continue
        lora_name = name[len(_LORA_PREFIX):] if name.startswith(_LORA_PREFIX) else None
        placed = False
        if lora_name in lora_fields:
            placed = True
            if value is not None:
                lora_kw[lora_name] = value
        if name in model_fields and name != "lora":
            placed = True
            if value is not None:
                model_kw[name] = value
        if name in train_fields:
            placed = True
            if value is not None:
                train_kw[name] = value
        if not placed:
            raise AlfiaError(f"ALFIAClassifier: parameter {name!r} matches no field of AlfiaConfig, LoraSettings "
                             f"(as lora_<field>) or TrainConfig")
    try:
        return AlfiaConfig(**model_kw, lora=LoraSettings(**lora_kw)), TrainConfig(**train_kw)
    except TypeError as e:  # a value of the wrong kind for a dataclass field
        raise AlfiaError(f"ALFIAClassifier: {e}") from None


def params_from_configs(param_names, model: dict, train: dict) -> dict[str, Any]:
    """The inverse of :func:`configs_from_params`, from a run's saved config dicts."""
    out: dict[str, Any] = {}
    lora = model.get("lora", {})
    for name in param_names:
        if name in _OWN_PARAMS:
            continue
        lora_name = name[len(_LORA_PREFIX):] if name.startswith(_LORA_PREFIX) else None
        if lora_name is not None and lora_name in lora:
            value = lora[lora_name]
            out[name] = tuple(value) if isinstance(value, list) else value
        elif name in model:
            out[name] = model[name]
        elif name in train:
            out[name] = train[name]
    return out


class ALFIAClassifier(ClassifierMixin, BaseEstimator):
    """ALFIA (encoder + LoRA + Adaptive Layer Fusion + Attentional Classifier Head) as an estimator.

    ``fit(texts)`` trains on the train rows of a text table (``alfia.encode`` or ``alfia encode``),
    early-stops on the val rows and predicts val and test, exactly as ``alfia train``. The run directory
    is ``run_dir`` (a new folder), or a fresh temporary folder when ``run_dir`` is None, deleted when the
    estimator is (or refitted); keep it with :meth:`save_pretrained`. Every other parameter is a field of
    ``AlfiaConfig`` / ``LoraSettings`` (``lora_*``) / ``TrainConfig``; ``None`` keeps that config's default
    (the paper's settings).

    scikit-learn's contract: parameters are never changed by ``fit``, ``save_pretrained`` or
    ``from_pretrained`` (so ``clone(model).fit(texts)`` trains a new model); what was learned lives in
    attributes ending in ``_``. Training and loading leave the process's torch thread count and random
    generators as they found them (``alfia.runtime.process_state_kept``). Before ``fit``, prediction raises
    ``alfia.errors.NotFittedError`` (scikit-learn's ``NotFittedError`` and an ``AlfiaError``).

    Learned attributes: ``run_dir_``, ``threshold_`` (max-F1 threshold chosen on val), ``best_epoch_``,
    ``best_val_auprc_``, ``n_rows_``, ``history_`` (one row per epoch), ``classes_``.
    """

    def __init__(self, *, backbone: str | None = None, n_fusion_layers: int | None = None,
                 fusion_heads: int | None = None, gating: bool | None = None, pooler: str | None = None,
                 classifier_heads: int | None = None, head_ffn_mult: int | None = None, dropout: float | None = None,
                 attention_dropout: float | None = None, train_layers: int | str | None = None,
                 finetune: str | None = None, prune_layers: str | None = None,
                 standardise_states: bool | None = None, lora_r: int | None = None,
                 lora_alpha: float | None = None, lora_dropout: float | None = None,
                 lora_target_modules: tuple[str, ...] | str | None = None, lora_bias: str | None = None,
                 max_length: int | None = None,
                 lr: float | None = None, batch_size: int | None = None, eval_batch_size: int | None = None,
                 epochs: int | None = None, warmup_ratio: float | None = None, weight_decay: float | None = None,
                 grad_clip: float | None = None, pos_weight: float | str | None = None,
                 patience: int | None = None, seed: int | None = None, bucket_size: int | None = None,
                 num_workers: int | None = None, num_threads: int | None = None, device: str | None = None,
                 max_train_rows: int | None = None, head_lr: float | None = None, head_epochs: int | None = None,
                 rows_per_epoch: int | None = None, state_cache_gb: float | None = None, precision: str | None = None,
                 calibration: str | None = None, head_from: str | None = None,
                 run_dir: str | os.PathLike | None = None, progress: bool = True):
        self.backbone = backbone
        self.n_fusion_layers = n_fusion_layers
        self.fusion_heads = fusion_heads
        self.gating = gating
        self.pooler = pooler
        self.classifier_heads = classifier_heads
        self.head_ffn_mult = head_ffn_mult
        self.dropout = dropout
        self.attention_dropout = attention_dropout
        self.train_layers = train_layers
        self.finetune = finetune
        self.prune_layers = prune_layers
        self.standardise_states = standardise_states
        self.lora_r = lora_r
        self.lora_alpha = lora_alpha
        self.lora_dropout = lora_dropout
        self.lora_target_modules = lora_target_modules
        self.lora_bias = lora_bias
        self.max_length = max_length
        self.lr = lr
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.epochs = epochs
        self.warmup_ratio = warmup_ratio
        self.weight_decay = weight_decay
        self.grad_clip = grad_clip
        self.pos_weight = pos_weight
        self.patience = patience
        self.seed = seed
        self.bucket_size = bucket_size
        self.num_workers = num_workers
        self.head_lr = head_lr
        self.head_epochs = head_epochs
        self.rows_per_epoch = rows_per_epoch
        self.state_cache_gb = state_cache_gb
        self.precision = precision
        self.calibration = calibration
        self.head_from = head_from
        self.num_threads = num_threads
        self.device = device
        self.max_train_rows = max_train_rows
        self.run_dir = run_dir
        self.progress = progress

    # -- configs -------------------------------------------------------------------------------
    def configs(self):
        """(AlfiaConfig, TrainConfig) these parameters ask for."""
        return configs_from_params(self.get_params(deep=False))

    # -- training ------------------------------------------------------------------------------
    def fit(self, texts, y=None) -> "ALFIAClassifier":
        """Train on a text table (its ``split`` and ``hospital_expire_flag`` columns); returns self."""
        from alfia.api.data import as_path
        from alfia.progress import make_console
        from alfia.training import train_run

        if y is not None:
            raise AlfiaError("ALFIAClassifier.fit takes the labels from the text table's hospital_expire_flag "
                             "column (and the split from its split column); call fit(texts) without y")
        from alfia.runtime import process_state_kept

        model_config, train_config = self.configs()
        temporary = None
        if self.run_dir is not None:
            run_dir = Path(self.run_dir)
        else:
            temporary = Path(tempfile.mkdtemp(prefix="alfia-run-"))
            run_dir = temporary / "run"
        console = make_console(stderr=True, quiet=not self.progress)
        try:
            with process_state_kept():  # train_run sets the seeds and torch's threads for itself only
                summary = train_run(as_path(texts, "text table"), run_dir, model_config, train_config,
                                    console=console, progress=self.progress)
        except BaseException:
            if temporary is not None:
                shutil.rmtree(temporary, ignore_errors=True)
            raise
        self._set_learned(summary.run_dir)
        self._release_temporary()  # a refit replaces the previous fit's temporary run
        if temporary is not None:
            # Deleted with the estimator (or at exit), so run_dir=None leaves nothing behind on every fit.
            self._temporary = weakref.finalize(self, shutil.rmtree, str(temporary), ignore_errors=True)
        return self

    def _release_temporary(self) -> None:
        """Delete the temporary run folder of an earlier fit (run_dir=None), if any."""
        finalizer = self.__dict__.pop("_temporary", None)
        if finalizer is not None:
            finalizer()

    def _set_learned(self, run_dir: Path) -> None:
        from alfia.evaluation.report import read_history
        from alfia.evaluation.thresholds import DECISION_POINT, run_thresholds
        from alfia.runs import RunLayout, read_alfia_config

        layout = RunLayout.of(run_dir)
        config = read_alfia_config(run_dir)
        result = config.get("result") or {}
        self.run_dir_ = layout.root
        self.threshold_ = run_thresholds(layout)[DECISION_POINT].threshold
        self.best_epoch_ = result.get("best_epoch")
        self.best_val_auprc_ = result.get("best_val_auprc")
        self.n_rows_ = dict(config["data"]["n_rows"])
        self.history_ = read_history(layout.history) if layout.history.exists() else None
        self.classes_ = np.array([0, 1])
        self._loaded = None

    def _check_fitted(self) -> None:
        if not hasattr(self, "run_dir_"):
            from alfia.errors import NotFittedError

            raise NotFittedError("this ALFIAClassifier is not fitted yet: call fit(texts) or "
                                 "ALFIAClassifier.from_pretrained(run_dir)")

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "run_dir_")

    def __getstate__(self):
        # The loaded model and the temporary folder's finalizer belong to this process's object only.
        state = dict(super().__getstate__())
        state.pop("_temporary", None)
        state["_loaded"] = None
        return state

    # -- prediction ----------------------------------------------------------------------------
    def _run(self):
        self._check_fitted()
        if getattr(self, "_loaded", None) is None:
            from alfia.inference import load_run
            from alfia.runtime import process_state_kept

            with process_state_kept():  # load_run sets torch's threads; the caller's are put back
                self._loaded = load_run(self.run_dir_, device=self.device or "auto", num_threads=self.num_threads)
        return self._loaded

    def _inputs(self, X):
        from alfia.inference import frame_to_input, read_inference_input
        from alfia.text.table import TEXT_COLUMN

        run = self._run()
        if isinstance(X, str) and not Path(X).exists():  # a text, or a path to nothing: not a file to read
            raise AlfiaError(f"ALFIAClassifier: X={X[:60]!r}{'...' if len(X) > 60 else ''} names no file; to score "
                             f"one text, pass a list of texts ([text])")
        if isinstance(X, (str, os.PathLike)):
            return read_inference_input(os.fspath(X), run)
        if isinstance(X, pd.DataFrame):
            return frame_to_input(X, "<DataFrame>", run)
        texts = list(X)
        if not all(isinstance(t, str) for t in texts):
            raise AlfiaError("ALFIAClassifier: X must be a text table (path or alfia.encode result), a DataFrame "
                             "(text or cohort rows) or a list of texts")
        return frame_to_input(pd.DataFrame({TEXT_COLUMN: texts}), "<texts>", run)  # checked like any text table

    def predict_frame(self, X, *, batch_size: int = 64) -> pd.DataFrame:
        """What ``alfia predict`` writes: stay_id, (split), prob, pred_label, (hospital_expire_flag)."""
        from alfia.inference import predict
        from alfia.runtime import process_state_kept, set_threads

        run, inputs = self._run(), self._inputs(X)
        with process_state_kept():
            if self.num_threads is not None:  # num_threads holds for this call, not for the process after it
                set_threads(self.num_threads)
            frame, _ = predict(run, inputs, batch_size=batch_size)
        return frame

    def predict_proba(self, X) -> np.ndarray:
        """(n, 2) array: P(survival), P(in-hospital death)."""
        prob = self.predict_frame(X)["prob"].to_numpy(dtype=float)
        return np.column_stack([1.0 - prob, prob])

    def predict(self, X) -> np.ndarray:
        """1 (death) where P(death) >= the run's threshold (max F1 on val), else 0."""
        from alfia.evaluation.metrics import predicted_death

        run = self._run()
        return predicted_death(self.predict_proba(X)[:, 1], run.threshold).astype(int)

    # -- persistence -----------------------------------------------------------------------------
    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        """Copy the run directory to ``directory`` (a new folder) and use it from now on (``run_dir_``; the
        ``run_dir`` parameter is left as it was). A run that ``fit`` wrote to a temporary folder
        (``run_dir=None``) is moved there instead of copied.

        The result is the run directory ``alfia train`` writes: ``alfia evaluate/predict/card`` read it.
        """
        from alfia.atomic import atomic_directory
        from alfia.outputs import check_output_dir

        self._check_fitted()
        target = Path(directory)
        if target.exists() and target.resolve() == Path(self.run_dir_).resolve():
            return target
        # A file of that name, a non-empty folder, or a parent that is a file: named, before anything is copied.
        check_output_dir(target, flag="save_pretrained's directory", hint="save_pretrained writes a new run directory")
        temporary = self.__dict__.get("_temporary")
        if temporary is not None and temporary.alive:
            # fit's own temporary folder: nobody else reads it, so it moves (a rename on the same disk)
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.exists():
                target.rmdir()  # check_output_dir let only an empty folder through
            shutil.move(str(self.run_dir_), str(target))
        else:
            with atomic_directory(target) as staging:  # the package's one folder swap
                shutil.copytree(self.run_dir_, staging, dirs_exist_ok=True)
        self._set_learned(target)
        self._release_temporary()
        return target

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, **overrides) -> "ALFIAClassifier":
        """A fitted classifier from a run directory (written by ``alfia train`` or :meth:`save_pretrained`).

        ``overrides`` set inference-time parameters such as ``device`` or ``num_threads``. ``run_dir`` stays
        None (the run is ``run_dir_``), so ``clone(model).fit(texts)`` trains anew instead of refusing a folder
        that holds a run.
        """
        from alfia.runs import read_alfia_config

        config = read_alfia_config(directory)
        params = params_from_configs(cls._get_param_names(), config["model"], config["train"])
        estimator = cls(**{**params, **overrides})
        estimator._set_learned(Path(directory))
        return estimator
