"""Fusion over cached levels: train one (LeMoF or early fusion), score every stay, write its run directory.

Shared by the LeMoF run (:mod:`alfia.multimodal.run`) and its ablations (:mod:`alfia.multimodal.ablations`), so
every row of the ablation table is trained, calibrated and written the same way.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from rich.console import Console

from alfia import __version__
from alfia.atomic import read_json_object, write_json_atomic
from alfia.errors import AlfiaError
from alfia.multimodal.fit import FitConfig
from alfia.multimodal.levels import ModalityLevels, Stays
from alfia.multimodal.model import EarlyFusion, LemofConfig, LeMoF, n_parameters
from alfia.runs import RunLayout

MODEL_FAMILY = "lemof"  # config.json's model_family of the fusion, its ablations and its tabular encoder
KINDS = {"lemof": LeMoF, "early": EarlyFusion}
LEVEL_WEIGHTS_FILE = "level_weights.json"


def _tensors(levels: dict[str, ModalityLevels], rows: np.ndarray) -> list[torch.Tensor]:
    """Every level of every modality for ``rows``, flattened in (modality, level) order."""
    return [torch.from_numpy(x[rows]) for lv in levels.values() for x in lv.levels]


def _unflatten(config: LemofConfig, flat) -> dict[str, list[torch.Tensor]]:
    out, i = {}, 0
    for mod in config.modalities:
        k = len(config.level_widths[mod])
        out[mod] = list(flat[i:i + k])
        i += k
    return out


def build_fusion(kind: str, config: LemofConfig):
    if kind not in KINDS:
        raise AlfiaError(f"unknown fusion kind {kind!r}; one of {', '.join(KINDS)}")
    return KINDS[kind](config)


def train_fusion(stays: Stays, levels: dict[str, ModalityLevels], config: LemofConfig, fit_config: FitConfig, *,
                 kind: str = "lemof", history: str | os.PathLike | None = None, console: Console | None = None):
    """Fit the fusion on the train stays' levels (early stopping on val AUPRC). Returns (model, TrainResult)."""
    from alfia.multimodal.fit import fit
    from alfia.training.callbacks import EarlyStopping, JsonlHistory, ProgressDisplay

    config = config.with_levels(levels)
    torch.manual_seed(fit_config.seed)
    model = build_fusion(kind, config)
    train_rows, val_rows = stays.rows_of("train"), stays.rows_of("val")
    if not len(train_rows) or not len(val_rows):
        raise AlfiaError("the fusion needs train and val stays (the cohort's split column)")
    train_x = _tensors(levels, train_rows)
    model.fit_standardisation(_unflatten(config, train_x))

    def loss_fn(m, inputs, y):
        out = m(_unflatten(config, inputs))
        return m.loss(out, y), out.logit

    callbacks = [EarlyStopping(fit_config.patience)]
    if history is not None:
        callbacks.append(JsonlHistory(history))
    if console is not None:
        callbacks.append(ProgressDisplay(console, enabled=True, log_every_s=30))
    result = fit(model, train_x, stays.label[train_rows], _tensors(levels, val_rows), stays.label[val_rows],
                 fit_config, loss_fn=loss_fn, predict=lambda m, inputs: m(_unflatten(config, inputs)).logit,
                 callbacks=callbacks)
    return model, result


def fusion_logits(model, levels: dict[str, ModalityLevels], rows: np.ndarray | None = None) -> np.ndarray:
    from alfia.multimodal.fit import predict_logits

    n = len(next(iter(levels.values())).stay_id)
    rows = np.arange(n) if rows is None else rows
    return predict_logits(model, _tensors(levels, rows), lambda m, inputs: m(_unflatten(model.config, inputs)).logit)


def save_fusion(model, path: str | os.PathLike) -> Path:
    from safetensors.torch import save_file

    from alfia.atomic import atomic_path

    with atomic_path(path) as tmp:
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp))
    return Path(path)


def load_fusion(kind: str, config: LemofConfig, path: str | os.PathLike):
    from safetensors.torch import load_file

    model = build_fusion(kind, config)
    try:
        model.load_state_dict(load_file(str(path)))
    except (RuntimeError, OSError) as e:  # shapes or names that are not this model's, or a torn file
        raise AlfiaError(f"{path}: does not hold this fusion's weights ({str(e).splitlines()[0]})") from None
    return model.eval()


# --- one prediction run directory (the LeMoF run, and each ablation) --------------------------------------

def write_prediction_run(root: str | os.PathLike, stays: Stays, logit: np.ndarray, config_doc: dict) -> pd.DataFrame:
    """predictions.parquet (val + test, Platt-calibrated on val), calibration.json, thresholds.json and
    config.json of a model whose logits for every stay are ``logit``. Returns the predictions."""
    from scipy.special import expit

    from alfia.evaluation.thresholds import write_run_thresholds
    from alfia.models.calibrator import Calibrator
    from alfia.runs import write_predictions

    layout = RunLayout.of(root)
    layout.root.mkdir(parents=True, exist_ok=True)
    val = stays.rows_of("val")
    calibrator = Calibrator.fit("platt", logit[val], stays.label[val])
    calibrator.save_json(layout.calibration)
    rows = np.flatnonzero(np.isin(stays.split, ("val", "test")))
    write_predictions(layout.predictions, stays.stay_id[rows], stays.split[rows], stays.label[rows],
                      calibrator.transform(logit[rows]), prob_uncalibrated=expit(logit[rows]))
    write_json_atomic(layout.config, {**config_doc, "calibration": "platt", "alfia_version": __version__})
    write_run_thresholds(layout.root)
    from alfia.runs import read_predictions

    return read_predictions(layout.predictions)


def fit_and_write(root: Path, stays: Stays, levels: dict[str, ModalityLevels], config: LemofConfig,
                  fit_config: FitConfig, config_doc: dict, *, kind: str = "lemof",
                  console: Console | None = None) -> dict:
    """Train one fusion over the cached levels and write its run directory at ``root``."""
    from alfia.multimodal.figures import plot_level_weights

    layout = RunLayout.of(root)
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    t0 = time.perf_counter()
    model, result = train_fusion(stays, levels, config, fit_config, kind=kind, history=layout.history,
                                 console=console)
    seconds = time.perf_counter() - t0
    save_fusion(model, layout.series_weights)
    write_prediction_run(root, stays, fusion_logits(model, levels), {**config_doc, "kind": kind,
                                                                     "model": model.config.to_dict()})
    summary = {"best_epoch": result.best_epoch, "best_val_auprc": result.best_score, "epochs_run": len(result.history),
               "stopped_early": result.stopped_early, "fusion_train_seconds": round(seconds, 2),
               "seconds_per_epoch": round(seconds / max(len(result.history), 1), 3),
               "n_parameters": n_parameters(model), "threads": torch.get_num_threads(),
               "load_average_1min_before": load_before}
    if isinstance(model, LeMoF):
        weights = {m: dict(zip(model.config.level_names[m], w.detach().numpy().round(6).tolist()))
                   for m, w in model.level_weights().items()}
        if model.config.global_heads:
            beta = model.decision_weights().detach().numpy().round(6).tolist()
            summary["decision_weights"] = dict(zip(["fusion", *model.config.modalities], beta))
        write_json_atomic(layout.root / LEVEL_WEIGHTS_FILE, {"equation": "alpha_m = softmax(a_m), eq. (2)",
                                                             "level_weights": weights})
        plot_level_weights(weights, layout.figures / "level_weights.png")
    write_json_atomic(layout.config, {**read_json_object(layout.config), "result": summary})
    return summary
