"""Operating thresholds: chosen on validation, applied unchanged to test.

A threshold tuned on the rows it is scored on flatters the model; choosing it on validation and
carrying it to test gives the number a deployed model would reach. The test-optimal "best F1/F2"
the paper reports are computed too (``metrics.best_fbeta``), and labelled as such.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from alfia.evaluation.metrics import RankedScores, best_fbeta

# The operating points reported at a fixed threshold: name -> beta of the F-score it maximises.
OPERATING_POINTS = {"f1": 1.0, "f2": 2.0}


def choose_threshold(y, prob, beta: float) -> tuple[float, float]:
    """The threshold (``prob >= threshold`` is positive) that maximises F-beta on (y, prob), and that F-beta.

    Candidates are the distinct scores; among equally good ones the highest wins.
    """
    ranked = RankedScores.of(y, prob)
    tps, fps = ranked.cumulative_counts(np.ones((1, len(ranked.order))))
    score, index = best_fbeta(tps, fps, beta)
    return float(ranked.thresholds[index[0]]), float(score[0])


@dataclass(frozen=True)
class ChosenThreshold:
    name: str            # "f1" or "f2"
    threshold: float
    chosen_on: str       # the split whose rows chose it
    score_there: float   # the F-beta it reached on those rows

    def to_dict(self) -> dict:
        return asdict(self)


def select_thresholds(y, prob, chosen_on: str) -> dict[str, ChosenThreshold]:
    """The max-F1 and max-F2 thresholds on the given rows."""
    chosen = {}
    for name, beta in OPERATING_POINTS.items():
        threshold, score = choose_threshold(y, prob, beta)
        chosen[name] = ChosenThreshold(name=name, threshold=threshold, chosen_on=chosen_on, score_there=score)
    return chosen
