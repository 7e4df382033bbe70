"""Greedy ensemble selection with replacement (Caruana et al. 2004), on validation AUPRC.

Start from an empty bag; at each step add (with replacement) the member whose inclusion gives the
highest validation AUPRC of the averaged probabilities; keep the bag of the best step. The first step
picks the single best member, so the ensemble's validation AUPRC is never below its best member's.
Weights are selection counts over bag size; as in AutoGluon's WeightedEnsemble, this is how the
paper's "Autogluon Ensemble" is built.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.metrics import average_precision_score

from alfia.errors import AlfiaError


class GreedyEnsembleSelection(BaseEstimator):
    """Fit on a ``(n_rows, n_members)`` matrix of validation probabilities and the validation labels."""

    def __init__(self, n_iterations: int = 100):
        self.n_iterations = n_iterations

    def fit(self, member_probs: np.ndarray, y: np.ndarray, member_names: list[str] | None = None):
        P = np.asarray(member_probs, dtype=float)
        y = np.asarray(y).astype(int)
        if P.ndim != 2 or P.shape[1] == 0:
            raise AlfiaError("ensemble selection needs at least one member's validation predictions")
        if P.shape[0] != len(y):
            raise AlfiaError(f"ensemble selection: {P.shape[0]} prediction rows for {len(y)} labels")
        n_members = P.shape[1]
        counts = np.zeros(n_members, dtype=int)
        running_sum = np.zeros(len(y))
        best_score, best_counts = -np.inf, counts.copy()
        self.trajectory_ = []
        for step in range(1, self.n_iterations + 1):
            # Score every candidate bag "current + member j" at once; ties go to the lower index.
            scores = [average_precision_score(y, (running_sum + P[:, j]) / step)
                      for j in range(n_members)]
            j = int(np.argmax(scores))
            counts[j] += 1
            running_sum += P[:, j]
            self.trajectory_.append(float(scores[j]))
            if scores[j] > best_score:
                best_score, best_counts = float(scores[j]), counts.copy()
        self.counts_ = best_counts
        self.weights_ = best_counts / best_counts.sum()
        self.val_auprc_ = best_score
        self.member_names_ = list(member_names) if member_names is not None else None
        return self

    def predict_proba(self, member_probs: np.ndarray) -> np.ndarray:
        p1 = np.clip(np.asarray(member_probs, dtype=float) @ self.weights_, 0.0, 1.0)
        return np.column_stack([1.0 - p1, p1])

    def weights_by_name(self) -> dict[str, float]:
        names = self.member_names_ or [str(i) for i in range(len(self.weights_))]
        return {n: float(w) for n, w in zip(names, self.weights_) if w > 0}
