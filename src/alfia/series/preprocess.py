"""Imputation and normalisation of hourly values, fitted on the train split only and saved with the run.

Per variable: forward fill within a stay (the last value measured at or before the hour), then the
train median where nothing was measured yet; then standardise with the train mean and SD of measured
values. Each hour's model input is ``[normalised values, measured mask, time since last / H]`` for
every variable. All three are computed from hours <= h only, so the features of hour h never depend on
later hours (the basis of hour-by-hour prediction).

A table from another source is read through :func:`alfia.series.variables.align_variables`: a model
variable the table lacks is masked as never measured (value: the train median), never a silent zero.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from alfia.errors import AlfiaError
from alfia.series.hourly import HourlyArrays, time_since_last
from alfia.series.variables import Alignment, SeriesVariable, align_variables

CLIP = 10.0  # normalised values beyond +-10 SD are clipped (implausible outliers would dominate)


def forward_fill(values: np.ndarray) -> np.ndarray:
    """(N, H, V) values with each NaN replaced by the latest earlier value of the same stay and variable."""
    n, h, v = values.shape
    measured = ~np.isnan(values)
    idx = np.where(measured, np.arange(h)[None, :, None], 0)
    idx = np.maximum.accumulate(idx, axis=1)
    filled = np.take_along_axis(values, idx, axis=1)
    ever = np.maximum.accumulate(measured, axis=1)
    return np.where(ever, filled, np.nan)


@dataclass
class HourlyPreprocessor:
    """Forward fill, train-median imputation and train standardisation (scikit-learn style)."""

    variables: list[SeriesVariable] = field(default_factory=list)
    median_: np.ndarray | None = None
    mean_: np.ndarray | None = None
    scale_: np.ndarray | None = None
    hours_: int = 0

    def fit(self, arrays: HourlyArrays, rows: np.ndarray) -> "HourlyPreprocessor":
        """Learn medians, means and SDs from the measured values of ``rows`` (the train stays)."""
        if len(rows) == 0:
            raise AlfiaError("cannot fit the preprocessing on zero stays")
        self.variables = list(arrays.variables)
        flat = arrays.values[rows].reshape(-1, len(self.variables))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: handled below
            median = np.nanmedian(flat, axis=0)
            mean = np.nanmean(flat, axis=0)
            sd = np.nanstd(flat, axis=0)
        never = np.isnan(median)  # a variable never measured in train carries no information
        self.median_ = np.where(never, 0.0, median)
        self.mean_ = np.where(never, 0.0, mean)
        self.scale_ = np.where(never | ~(sd > 1e-8), 1.0, sd)
        self.hours_ = arrays.hours
        return self

    @property
    def n_features(self) -> int:
        return 3 * len(self.variables)

    def align(self, arrays: HourlyArrays) -> tuple[np.ndarray, Alignment]:
        """The table's values in the model's variable order and units; absent variables all NaN."""
        alignment = align_variables(self.variables, arrays.variables)
        index = {name: j for j, name in enumerate(arrays.names)}
        out = np.full(arrays.values.shape[:2] + (len(self.variables),), np.nan)
        for k, v in enumerate(self.variables):
            if v.name in alignment.matched:
                out[:, :, k] = arrays.values[:, :, index[v.name]] * alignment.matched[v.name]
        return out, alignment

    def transform(self, arrays: HourlyArrays) -> np.ndarray:
        """(N, H, 3V) float32 model input."""
        if self.median_ is None:
            raise AlfiaError("the preprocessing is not fitted")
        values, _ = self.align(arrays)
        return self.transform_values(values)

    def transform_values(self, values: np.ndarray) -> np.ndarray:
        measured = ~np.isnan(values)
        filled = forward_fill(values)
        filled = np.where(np.isnan(filled), self.median_[None, None, :], filled)
        z = np.clip((filled - self.mean_) / self.scale_, -CLIP, CLIP)
        tsl = time_since_last(measured) / max(self.hours_, 1)
        return np.concatenate([z, measured, tsl], axis=2).astype(np.float32)

    def to_dict(self) -> dict:
        return {"method": "forward fill, then train median; standardised with train mean and SD of measured "
                          "values; fitted on the train split only",
                "hours": self.hours_, "clip_sd": CLIP,
                "variables": [v.to_dict() for v in self.variables],
                "median": [float(x) for x in self.median_], "mean": [float(x) for x in self.mean_],
                "scale": [float(x) for x in self.scale_]}

    @classmethod
    def from_dict(cls, d: dict) -> "HourlyPreprocessor":
        try:
            return cls(variables=[SeriesVariable.from_dict(v) for v in d["variables"]],
                       median_=np.asarray(d["median"], dtype=float), mean_=np.asarray(d["mean"], dtype=float),
                       scale_=np.asarray(d["scale"], dtype=float), hours_=int(d["hours"]))
        except (KeyError, TypeError, ValueError) as e:
            raise AlfiaError(f"preprocessing record is incomplete ({e})") from None
