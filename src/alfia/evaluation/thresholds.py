"""Operating thresholds: the one home of every rule that turns a probability into a decision.

A threshold tuned on the rows it is scored on flatters the model; choosing it on validation and
carrying it to test gives the number a deployed model would reach. The test-optimal "best F1/F2"
the paper reports are computed too (``metrics.best_fbeta``), and labelled as such.

A run's operating points live in ``RunLayout.thresholds`` (thresholds.json): chosen on the run's own
val predictions, written by ``alfia train`` and ``alfia evaluate``, and read by ``alfia predict``. The
file records the SHA-256 of the predictions it was chosen on; a stale file is never used.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from alfia.atomic import read_json_object, sha256_file, write_json_atomic
from alfia.cohorts.schema import SPLIT_COLUMN
from alfia.errors import AlfiaError
from alfia.evaluation.metrics import RankedScores, best_fbeta
from alfia.runs import RunLayout, read_predictions

THRESHOLD_RULE = "a stay is predicted to die when prob >= threshold"
# The operating points reported at a fixed threshold: name -> beta of the F-score it maximises.
OPERATING_POINTS = {"f1": 1.0, "f2": 2.0}
DECISION_POINT = "f1"  # the operating point behind predicted labels (alfia predict, ALFIAClassifier.predict)


def choose_threshold(y, prob, beta: float) -> tuple[float, float]:
    """The threshold (``prob >= threshold`` is positive) that maximises F-beta on (y, prob), and that F-beta.

    Candidates are the distinct scores; among equally good ones the highest wins.
    """
    ranked = RankedScores.of(y, prob)
    tps, fps = ranked.cumulative_counts(np.ones((1, len(ranked.order))))
    score, index = best_fbeta(tps, fps, beta)
    return float(ranked.thresholds[index[0]]), float(score[0])


def rule_out_threshold(y, prob, target_sensitivity: float = 0.9) -> float:
    """Highest threshold t such that flagging ``prob >= t`` catches at least ``target_sensitivity`` of the
    deaths in (y, prob); stays below t are ruled out."""
    y, prob = np.asarray(y), np.asarray(prob, dtype=float)
    pos = np.sort(prob[y == 1])[::-1]
    if pos.size == 0:
        raise AlfiaError("choosing a rule-out threshold needs at least one death in the validation rows")
    if not 0 < target_sensitivity <= 1:
        raise AlfiaError(f"target sensitivity must lie in (0, 1], got {target_sensitivity}")
    k = math.ceil(target_sensitivity * pos.size)
    return float(pos[k - 1])


@dataclass(frozen=True)
class ChosenThreshold:
    name: str                      # "f1" or "f2"
    threshold: float
    chosen_on: str                 # the split whose rows chose it
    score_on_chosen_split: float   # the F-beta it reached on those rows

    def to_dict(self) -> dict:
        return asdict(self)


def select_thresholds(y, prob, chosen_on: str) -> dict[str, ChosenThreshold]:
    """The max-F1 and max-F2 thresholds on the given rows."""
    chosen = {}
    for name, beta in OPERATING_POINTS.items():
        threshold, score = choose_threshold(y, prob, beta)
        chosen[name] = ChosenThreshold(name, threshold, chosen_on, score)
    return chosen


def _chosen_on_val(layout: RunLayout, pred=None) -> dict[str, ChosenThreshold]:
    pred = read_predictions(layout.predictions) if pred is None else pred
    val = pred[pred[SPLIT_COLUMN] == "val"]
    if val.empty or val["label"].nunique() < 2:
        raise AlfiaError(f"{layout.predictions}: the run's val rows "
                         f"{'are missing' if val.empty else 'hold a single class'}; no threshold can be chosen")
    return select_thresholds(val["label"].to_numpy(), val["prob"].to_numpy(), "val")


def run_thresholds(run_dir) -> dict[str, ChosenThreshold]:
    """The run's operating points: thresholds.json when it belongs to the current predictions, else
    chosen now (the same rule) on the run's val predictions."""
    layout = RunLayout.of(run_dir)
    if layout.thresholds.exists() and layout.predictions.exists():
        doc = read_json_object(layout.thresholds)
        if doc.get("predictions_sha256") == sha256_file(layout.predictions):
            try:
                points = {name: ChosenThreshold(name, float(point["threshold"]), str(point["chosen_on"]),
                                                float(point["score_on_chosen_split"]))
                          for name, point in doc["operating_points"].items()}
                _check_points(points)
            except (KeyError, TypeError, ValueError, AttributeError) as e:
                raise AlfiaError(f"{layout.thresholds}: malformed operating points ({e}); delete the file "
                                 f"and run `alfia evaluate {layout.root}` to choose them again") from None
            return points
    return _chosen_on_val(layout)


def _check_points(points: dict[str, ChosenThreshold]) -> None:
    """Every operating point is there, with a threshold and a score that are probabilities (ValueError)."""
    missing = sorted(set(OPERATING_POINTS) - set(points))
    if missing:
        raise ValueError(f"no operating point {', '.join(map(repr, missing))}")
    for name, point in points.items():
        for what, value in (("threshold", point.threshold), ("score_on_chosen_split", point.score_on_chosen_split)):
            if not (math.isfinite(value) and 0.0 <= value <= 1.0):
                raise ValueError(f"{name}: {what} must lie in [0, 1], got {value!r}")


def write_run_thresholds(run_dir, pred=None) -> dict[str, ChosenThreshold]:
    """Choose the run's operating points on its val predictions and write thresholds.json.

    ``pred``: the run's predictions.parquet, already read (and so validated) by the caller."""
    layout = RunLayout.of(run_dir)
    chosen = _chosen_on_val(layout, pred)
    write_json_atomic(layout.thresholds, {
        "rule": THRESHOLD_RULE, "decision_point": DECISION_POINT,
        "criterion": {name: f"max F{beta:g}" for name, beta in OPERATING_POINTS.items()},
        "predictions_sha256": sha256_file(layout.predictions),
        "operating_points": {name: ct.to_dict() for name, ct in chosen.items()},
    })
    return chosen
