"""Fixtures of the evaluation tests: fabricated run directories (see fabricate.py)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit

from .fabricate import make_run, synthetic_predictions


@pytest.fixture
def cohort():
    return synthetic_predictions()


@pytest.fixture
def runs_folder(tmp_path, cohort):
    """A folder of four runs on the same stays: an ALFIA run, an ALFIA-boost run and two baselines."""
    stay_id, split, label, prob, latent = cohort
    rng = np.random.default_rng(1)
    folder = tmp_path / "runs"
    common = dict(stay_id=stay_id, split=split, label=label)
    make_run(folder, "alfia_run", prob, config={"model_name": "ALFIA", "model_family": "alfia"},
             history=[{"epoch": e, "train_loss": 0.5 / (e + 1), "val_auprc": 0.3 + 0.02 * e, "val_auroc": 0.7 + 0.01 * e,
                       "lr": 1e-4 * (1 - e / 6)} for e in range(6)], **common)
    make_run(folder, "boost", expit(-2 + 1.4 * latent + rng.normal(0, 0.3, latent.size)),
             config={"model_name": "ALFIA-boost (LightGBM)", "model_family": "alfia-boost"}, **common)
    make_run(folder, "lightgbm", expit(-2 + 1.0 * latent + rng.normal(0, 0.8, latent.size)), **common)
    make_run(folder, "logistic_regression", expit(-2 + 0.8 * latent + rng.normal(0, 1.2, latent.size)),
             config={}, **common)
    return folder
