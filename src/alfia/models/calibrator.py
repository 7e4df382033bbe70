"""Post-hoc probability calibration: a monotone map from the model's logit to a calibrated probability.

Fitted on the validation split after training and saved with the run (``calibration.json``), it is
applied by ``alfia predict`` and by every prediction the run writes. Weighting the classes in the loss
(``pos_weight``) shifts every probability towards 0.5, and a network can be over- or under-confident; the
calibrator corrects both without changing the ranking (AUROC/AUPRC are unchanged by Platt scaling).

- ``platt``: P(y=1) = sigmoid(a + b * logit), fitted by (almost unpenalised) logistic regression (Platt, 1999).
- ``isotonic``: a non-decreasing step function of the logit (scikit-learn's IsotonicRegression),
  interpolated linearly between its knots and clipped at the ends.
- ``none``: the identity, P = sigmoid(logit).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.special import expit

from alfia.atomic import read_json_object, write_json_atomic
from alfia.errors import AlfiaError

METHODS = ("platt", "isotonic", "none")


@dataclass
class Calibrator:
    """``method`` plus its fitted parameters; ``transform(logits) -> probabilities``."""

    method: str = "none"
    intercept: float = 0.0  # platt: a
    slope: float = 1.0  # platt: b
    knots_x: list[float] = field(default_factory=list)  # isotonic: logits
    knots_y: list[float] = field(default_factory=list)  # isotonic: probabilities
    fitted_on: str = ""  # e.g. "val (1000 stays, 140 deaths)"

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise AlfiaError(f"unknown calibration method {self.method!r}; choose one of {', '.join(METHODS)}")
        # A hand-edited or damaged file must not turn every probability into NaN or move it out of [0, 1].
        for name in ("intercept", "slope"):
            if not _is_finite_number(getattr(self, name)):
                raise AlfiaError(f"'{name}' must be a finite number, got {getattr(self, name)!r}")
        for name in ("knots_x", "knots_y"):
            knots = getattr(self, name)
            if not isinstance(knots, (list, tuple)) or not all(_is_finite_number(v) for v in knots):
                raise AlfiaError(f"'{name}' must be a list of finite numbers")
        if self.method == "isotonic" and (len(self.knots_x) < 1 or len(self.knots_x) != len(self.knots_y)):
            raise AlfiaError("isotonic calibration needs matching, non-empty knots_x and knots_y")
        if np.any(np.diff(self.knots_x) < 0):
            raise AlfiaError("'knots_x' must be non-decreasing (isotonic knots are sorted logits)")
        if any(not 0.0 <= v <= 1.0 for v in self.knots_y):
            raise AlfiaError("'knots_y' must be probabilities in [0, 1]")
        if not isinstance(self.fitted_on, str):
            raise AlfiaError(f"'fitted_on' must be a string, got {self.fitted_on!r}")

    @classmethod
    def fit(cls, method: str, logits, labels) -> "Calibrator":
        logits = np.asarray(logits, dtype=np.float64).reshape(-1)
        labels = np.asarray(labels).reshape(-1)
        if method not in METHODS:
            raise AlfiaError(f"unknown calibration method {method!r}; choose one of {', '.join(METHODS)}")
        described = f"val ({len(labels)} stays, {int(labels.sum())} events)"
        if method == "none":
            return cls("none", fitted_on=described)
        if len(np.unique(labels)) < 2:
            raise AlfiaError(f"cannot fit {method} calibration: the validation rows hold one class only")
        if method == "platt":
            from sklearn.linear_model import LogisticRegression

            # C large: plain maximum likelihood; the two parameters need no shrinkage with >= 100 rows.
            lr = LogisticRegression(C=1e6, max_iter=1000).fit(logits[:, None], labels)
            return cls("platt", intercept=float(lr.intercept_[0]), slope=float(lr.coef_[0, 0]), fitted_on=described)
        from sklearn.isotonic import IsotonicRegression

        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(logits, labels)
        return cls("isotonic", knots_x=[float(x) for x in iso.X_thresholds_],
                   knots_y=[float(y) for y in iso.y_thresholds_], fitted_on=described)

    def transform(self, logits) -> np.ndarray:
        logits = np.asarray(logits, dtype=np.float64)
        if self.method == "platt":
            return expit(self.intercept + self.slope * logits)
        if self.method == "isotonic":
            return np.interp(logits, self.knots_x, self.knots_y)
        return expit(logits)

    def to_dict(self) -> dict:
        return {"method": self.method, "intercept": self.intercept, "slope": self.slope,
                "knots_x": list(self.knots_x), "knots_y": list(self.knots_y), "fitted_on": self.fitted_on}

    def save_json(self, path: str | os.PathLike) -> Path:
        return write_json_atomic(path, self.to_dict())

    @classmethod
    def load_json(cls, path: str | os.PathLike) -> "Calibrator":
        data = read_json_object(path, missing="calibration file not found")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise AlfiaError(f"{path}: unknown key(s) {', '.join(unknown)}")
        try:
            return cls(**data)
        except (TypeError, AlfiaError) as e:
            raise AlfiaError(f"{path}: {e}") from None

    @classmethod
    def load_for_run(cls, path: str | os.PathLike, method: str | None) -> "Calibrator":
        """The calibrator of a run whose config.json names ``method`` (its ``train.calibration``): the file
        must be there and hold that method, since the run's thresholds were chosen on calibrated
        probabilities. ``method=None``: a run trained before calibration existed; without a file its
        probabilities stay sigmoid(logit)."""
        path = Path(path)
        if method is None and not path.exists():
            return cls("none")
        if not path.is_file():
            raise AlfiaError(f"{path}: missing, but the run's config.json names a {method!r} calibrator (its "
                             f"thresholds were chosen on calibrated probabilities); restore the file, or train "
                             f"the run again")
        calibrator = cls.load_json(path)
        if method is not None and calibrator.method != method:
            raise AlfiaError(f"{path}: holds a {calibrator.method!r} calibrator, but the run's config.json names "
                             f"{method!r}; restore the run's own file, or train the run again")
        return calibrator


def _is_finite_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and bool(np.isfinite(value))
