"""Greedy ensemble selection (Caruana et al. 2004) on data with a known answer."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from alfia.baselines.ensemble import GreedyEnsembleSelection
from alfia.errors import AlfiaError


def _members(seed=0, n=600):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.15).astype(int)
    noise = rng.normal(size=(n, 4))
    # Four members with different strengths and independent errors.
    P = 1 / (1 + np.exp(-(np.outer(y, [2.0, 1.5, 1.0, 0.0]) + noise * [1.0, 1.0, 1.0, 1.0])))
    return P, y


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_val_auprc_at_least_best_member(seed):
    P, y = _members(seed)
    ens = GreedyEnsembleSelection(n_iterations=25).fit(P, y, ["a", "b", "c", "noise"])
    best_member = max(average_precision_score(y, P[:, j]) for j in range(P.shape[1]))
    achieved = average_precision_score(y, ens.predict_proba(P)[:, 1])
    assert ens.val_auprc_ == pytest.approx(achieved)
    assert achieved >= best_member
    assert ens.weights_.sum() == pytest.approx(1.0)
    assert (ens.weights_ >= 0).all()


def test_independent_members_combine_beyond_the_best_one():
    P, y = _members(0, n=3000)
    ens = GreedyEnsembleSelection(n_iterations=50).fit(P, y, ["a", "b", "c", "noise"])
    best_member = max(average_precision_score(y, P[:, j]) for j in range(P.shape[1]))
    assert ens.val_auprc_ > best_member + 0.01
    assert ens.weights_[0] > 0 and ens.weights_[1] > 0  # both strong members are used
    assert ens.weights_by_name().get("noise", 0.0) < ens.weights_[0]


def test_a_perfect_member_takes_all_the_weight():
    P, y = _members(3)
    P = np.column_stack([P, y * 0.9 + 0.05])
    ens = GreedyEnsembleSelection(n_iterations=10).fit(P, y)
    assert ens.val_auprc_ == pytest.approx(1.0)
    assert ens.weights_[-1] == pytest.approx(1.0)


def test_bad_shapes_are_refused():
    with pytest.raises(AlfiaError, match="at least one member"):
        GreedyEnsembleSelection().fit(np.zeros((5, 0)), np.zeros(5))
    with pytest.raises(AlfiaError, match="3 prediction rows for 4 labels"):
        GreedyEnsembleSelection().fit(np.zeros((3, 2)), np.zeros(4))
