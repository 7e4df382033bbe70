"""Load a time-series run and predict: one risk per stay, or the risk after each hour 1..k.

Hour-by-hour risk runs the model on hours 1..k only, so the risk after hour k is what a bedside system
would have shown then: nothing measured later can change it (forward fill and the time-since-last
channel look backwards only, see :mod:`alfia.series.preprocess`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy.special import expit

from alfia.atomic import read_json_object
from alfia.cohorts.schema import ID_COLUMN, OUTCOME_COLUMN, SPLIT_COLUMN
from alfia.errors import AlfiaError
from alfia.runs import RunLayout
from alfia.series.hourly import HOUR_COLUMN, HourlyArrays
from alfia.series.models import build_model, config_from_dict
from alfia.series.preprocess import HourlyPreprocessor
from alfia.series.variables import Alignment

PROBABILITY_COLUMN = "prob"  # as in every predictions file (alfia.runs)


@dataclass
class SeriesRun:
    root: Path
    name: str
    model_config: object
    model: torch.nn.Module
    preprocessor: HourlyPreprocessor
    config: dict


def load_series_run(run_dir: str | os.PathLike) -> SeriesRun:
    """A trained time-series run (weights load with safetensors)."""
    from safetensors.torch import load_file

    layout = RunLayout.of(run_dir).require()
    config = read_json_object(layout.config)
    if config.get("model_family") != "series":
        raise AlfiaError(f"{layout.root}: not a time-series run (config.json model_family is "
                         f"{config.get('model_family')!r}; train one with `alfia series train`)")
    if not isinstance(config.get("model"), dict):
        raise AlfiaError(f"{layout.config}: no 'model' section (the sequence model's config)")
    name, model_config = config_from_dict(config["model"])
    pre = HourlyPreprocessor.from_dict(read_json_object(layout.preprocessing))
    if not layout.series_weights.exists():
        raise AlfiaError(f"{layout.series_weights}: missing (the run did not finish training)")
    model = build_model(name, model_config)
    model.load_state_dict(load_file(str(layout.series_weights)))
    model.eval()
    return SeriesRun(layout.root, name, model_config, model, pre, config)


@torch.no_grad()
def logits_of(model: torch.nn.Module, x: np.ndarray | torch.Tensor, batch_size: int = 512) -> np.ndarray:
    """Model logits for (N, H, F) inputs, in eval mode, batch by batch."""
    was_training = model.training
    model.eval()
    x = torch.as_tensor(x)
    out = [model(x[i:i + batch_size]).float() for i in range(0, len(x), batch_size)]
    model.train(was_training)
    return torch.cat(out).numpy() if out else np.zeros(0)


def probabilities(model: torch.nn.Module, x, batch_size: int = 512) -> np.ndarray:
    return expit(logits_of(model, x, batch_size).astype(np.float64))


def features(run: SeriesRun, arrays: HourlyArrays) -> tuple[np.ndarray, Alignment]:
    """The run's model input for a table (variables aligned by name and unit) and the alignment."""
    if arrays.hours > run.preprocessor.hours_:
        raise AlfiaError(f"the table has {arrays.hours} hours; the run was trained on {run.preprocessor.hours_}")
    values, alignment = run.preprocessor.align(arrays)
    return run.preprocessor.transform_values(values), alignment


def predict_stays(run: SeriesRun, arrays: HourlyArrays) -> tuple[pd.DataFrame, Alignment]:
    """One probability per stay from all its hours."""
    x, alignment = features(run, arrays)
    df = pd.DataFrame({ID_COLUMN: arrays.stay_id, PROBABILITY_COLUMN: probabilities(run.model, x)})
    return _with_known(df, arrays), alignment


def _with_known(df: pd.DataFrame, arrays: HourlyArrays, repeat: int = 1) -> pd.DataFrame:
    """The stays' label and split, where the table has them (a new table may have neither)."""
    if (arrays.label >= 0).all():
        df[OUTCOME_COLUMN] = np.repeat(arrays.label, repeat)
    if all(arrays.split):
        df[SPLIT_COLUMN] = np.repeat(arrays.split, repeat)
    return df


def hourly_probabilities(model: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    """(N, H) risks: column k-1 from hours 1..k only."""
    return np.stack([probabilities(model, x[:, :k]) for k in range(1, x.shape[1] + 1)], axis=1)


def predict_hourly(run: SeriesRun, arrays: HourlyArrays) -> tuple[pd.DataFrame, Alignment]:
    """One row per stay and hour k: the risk from what had been observed by the end of hour k."""
    x, alignment = features(run, arrays)
    p = hourly_probabilities(run.model, x)
    n, h = p.shape
    df = pd.DataFrame({ID_COLUMN: np.repeat(arrays.stay_id, h),
                       HOUR_COLUMN: np.tile(np.arange(1, h + 1, dtype=np.int16), n),
                       PROBABILITY_COLUMN: p.reshape(-1)})
    return _with_known(df, arrays, repeat=h), alignment
