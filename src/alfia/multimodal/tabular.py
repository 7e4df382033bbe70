"""The tabular encoder: a small MLP on the cohort row, trained on its own task, whose hidden layers are levels.

Preprocessing (fitted on the train split, saved as JSON): each numeric predictor of the cohort's schema is
imputed with its train median, standardised with its train mean and SD (clipped at +-10 SD) and joined by a
missingness indicator; each categorical predictor becomes a one-hot of the categories seen in train (an unseen
or missing value is all zeros). The MLP is ``[Linear, LayerNorm, GELU, Dropout] x len(hidden)`` and a linear
logit, trained with :func:`alfia.multimodal.fit.fit`. Its levels: the preprocessed row, then each hidden layer.

The encoder lives in ``RUN/encoders/tabular/``: ``config.json``, ``preprocessing.json``, ``model.safetensors``
and ``history.jsonl`` (RunLayout's names).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from alfia.atomic import atomic_path, read_json_object, write_json_atomic
from alfia.cohorts.schema import ID_COLUMN, get_schema
from alfia.config_base import JsonConfig, require
from alfia.errors import AlfiaError
from alfia.multimodal.fit import FitConfig
from alfia.multimodal.levels import ModalityLevels
from alfia.runs import RunLayout

CLIP_SD = 10.0


@dataclass
class TabularPreprocessor:
    """Median imputation + standardisation + missingness indicators; one-hot categoricals (train only)."""

    variant: str = ""
    numeric: list[str] = field(default_factory=list)
    median: list[float] = field(default_factory=list)
    mean: list[float] = field(default_factory=list)
    scale: list[float] = field(default_factory=list)
    categories: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def fit(cls, df: pd.DataFrame, variant: str, source: str = "cohort") -> "TabularPreprocessor":
        schema = get_schema(variant)
        missing = [c for c in schema.predictor_names if c not in df.columns]
        if missing:
            raise AlfiaError(f"{source}: missing predictor column(s) of the {variant} schema: {', '.join(missing[:5])}")
        values = _numeric(df, schema.numeric, source)
        median = np.nan_to_num(np.nanmedian(values, axis=0), nan=0.0) if len(values) else np.zeros(0)
        filled = np.where(np.isnan(values), median, values)
        mean, sd = filled.mean(axis=0), filled.std(axis=0)
        categories = {c: sorted(df[c].dropna().astype(str).unique().tolist()) for c in schema.categorical}
        return cls(variant, list(schema.numeric), median.tolist(), mean.tolist(),
                   np.where(sd > 1e-8, sd, 1.0).tolist(), categories)

    @property
    def feature_names(self) -> list[str]:
        return ([*self.numeric, *(f"{c}__missing" for c in self.numeric)]
                + [f"{c}={v}" for c, values in self.categories.items() for v in values])

    def transform(self, df: pd.DataFrame, source: str = "cohort") -> np.ndarray:
        missing = [c for c in [*self.numeric, *self.categories] if c not in df.columns]
        if missing:
            raise AlfiaError(f"{source}: missing predictor column(s) {', '.join(missing[:5])}")
        values = _numeric(df, self.numeric, source)
        absent = np.isnan(values)
        z = (np.where(absent, np.asarray(self.median), values) - np.asarray(self.mean)) / np.asarray(self.scale)
        parts = [np.clip(z, -CLIP_SD, CLIP_SD), absent.astype(np.float64)]
        for c, levels in self.categories.items():
            as_text = df[c].astype(object).map(lambda v: None if pd.isna(v) else str(v))
            parts.append(np.stack([(as_text == v).to_numpy(dtype=np.float64) for v in levels], axis=1)
                         if levels else np.zeros((len(df), 0)))
        return np.concatenate(parts, axis=1).astype(np.float32)

    def to_dict(self) -> dict:
        return {"method": "train median imputation, train standardisation (clipped at +-10 SD), missingness "
                          "indicators; one-hot of train categories", **asdict(self)}

    @classmethod
    def from_dict(cls, d: dict) -> "TabularPreprocessor":
        d = {k: v for k, v in d.items() if k != "method"}
        try:
            return cls(**d)
        except TypeError as e:
            raise AlfiaError(f"tabular preprocessing record is malformed ({e})") from None


def _numeric(df: pd.DataFrame, columns: list[str], source: str) -> np.ndarray:
    out = np.empty((len(df), len(columns)), dtype=np.float64)
    for j, c in enumerate(columns):
        as_num = pd.to_numeric(df[c], errors="coerce")
        bad = as_num.isna() & df[c].notna()
        if bad.any():
            raise AlfiaError(f"{source}: column {c!r} must be numeric; stay_id {df[ID_COLUMN].iloc[int(np.flatnonzero(bad)[0])]} "
                             f"holds {df[c][bad].iloc[0]!r}")
        out[:, j] = as_num.to_numpy(dtype=np.float64)
    return out


@dataclass
class TabularConfig(JsonConfig):
    """The tabular MLP's shape (``input_size``: the preprocessed row's width, set by :func:`train_tabular`)."""

    config_name = "tabular config"

    input_size: int = 0
    hidden: tuple[int, ...] = (64, 32)
    dropout: float = 0.2

    def validate(self) -> None:
        require(self.input_size >= 0, f"input_size must be >= 0, got {self.input_size!r}")
        require(len(self.hidden) >= 1 and all(isinstance(h, int) and not isinstance(h, bool) and h >= 1
                                              for h in self.hidden),
                f"hidden must be at least one layer width, each an integer >= 1, got {list(self.hidden)!r}")
        require(0.0 <= self.dropout < 1.0, f"dropout must lie in [0, 1), got {self.dropout}")


class TabularMLP(nn.Module):
    def __init__(self, config: TabularConfig):
        super().__init__()
        if config.input_size < 1 or not config.hidden:
            raise AlfiaError(f"the tabular MLP needs an input and at least one hidden layer, got {config}")
        widths = [config.input_size, *config.hidden]
        self.blocks = nn.ModuleList(nn.Sequential(nn.Linear(a, b), nn.LayerNorm(b), nn.GELU(), nn.Dropout(config.dropout))
                                    for a, b in zip(widths, widths[1:]))
        self.out = nn.Linear(widths[-1], 1)

    def levels(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """([the input row, hidden_1, ...], logit)."""
        out = [x]
        for block in self.blocks:
            out.append(block(out[-1]))
        return out, self.out(out[-1]).squeeze(-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.levels(x)[1]


def train_tabular(cohort: pd.DataFrame, variant: str, out_dir: str | os.PathLike, fit_config: FitConfig,
                  config: TabularConfig | None = None, *, labels: np.ndarray, split: np.ndarray,
                  source: str = "cohort", callbacks=()) -> Path:
    """Fit the preprocessing and the MLP on the train rows (early stopping on val); write ``out_dir``."""
    from alfia.multimodal.fit import fit
    from alfia.training.callbacks import EarlyStopping, JsonlHistory

    layout = RunLayout.of(out_dir)
    layout.root.mkdir(parents=True, exist_ok=True)
    train_rows, val_rows = np.flatnonzero(split == "train"), np.flatnonzero(split == "val")
    pre = TabularPreprocessor.fit(cohort.iloc[train_rows], variant, source)
    x = torch.from_numpy(pre.transform(cohort, source))
    config = replace(config or TabularConfig(), input_size=int(x.shape[1]))
    torch.manual_seed(fit_config.seed)
    model = TabularMLP(config)
    bce = nn.BCEWithLogitsLoss()

    def loss_fn(m, inputs, y):
        logit = m(inputs[0])
        return bce(logit, y), logit

    result = fit(model, [x[train_rows]], labels[train_rows], [x[val_rows]], labels[val_rows], fit_config,
                 loss_fn=loss_fn, predict=lambda m, inputs: m(inputs[0]),
                 callbacks=[EarlyStopping(fit_config.patience), JsonlHistory(layout.history), *callbacks])
    from safetensors.torch import save_file

    with atomic_path(layout.series_weights) as tmp:  # model.safetensors
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp))
    write_json_atomic(layout.preprocessing, pre.to_dict())
    write_json_atomic(layout.config, {"model_name": "lemof-tabular-mlp", "model_family": "lemof", "component": "tabular-encoder",
                                      "model": config.to_dict(), "train": fit_config.to_dict(), "variant": variant,
                                      "result": {"best_epoch": result.best_epoch, "best_val_auprc": result.best_score,
                                                 "epochs_run": len(result.history)}})
    return layout.root


def load_tabular(run_dir: str | os.PathLike) -> tuple[TabularMLP, TabularPreprocessor]:
    from safetensors.torch import load_file

    layout = RunLayout.of(run_dir).require()
    doc = read_json_object(layout.config)
    model = TabularMLP(TabularConfig.from_dict(doc.get("model"), source=f"{layout.config}: model"))
    if not layout.series_weights.is_file():
        raise AlfiaError(f"{layout.series_weights}: missing (the tabular encoder did not finish training)")
    model.load_state_dict(load_file(str(layout.series_weights)))
    model.eval()
    return model, TabularPreprocessor.from_dict(read_json_object(layout.preprocessing))


@torch.no_grad()
def tabular_levels(run_dir: str | os.PathLike, cohort: pd.DataFrame, *, source: str = "cohort") -> ModalityLevels:
    model, pre = load_tabular(run_dir)
    levels, logit = model.levels(torch.from_numpy(pre.transform(cohort, source)))
    names = ["input", *(f"hidden_{i}" for i in range(1, len(levels)))]
    return ModalityLevels("tabular", cohort[ID_COLUMN].to_numpy(), names, [v.numpy() for v in levels],
                          logit.numpy(), {"run": str(Path(run_dir).resolve()), "data": source})
