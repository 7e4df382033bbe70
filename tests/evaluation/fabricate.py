"""Fabricated predictions and run directories: a known logistic model, no other area's code."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from scipy.special import expit

from alfia.runs import write_predictions


def synthetic_predictions(n_val: int = 600, n_test: int = 800, *, signal: float = 1.5, seed: int = 0,
                          prevalence_logit: float = -2.0, ids_offset: int = 0):
    """Labels drawn from a logistic model of a latent score; prob = that model (calibrated) when signal
    is the true coefficient. Returns (stay_id, split, label, prob, latent)."""
    rng = np.random.default_rng(seed)
    n = n_val + n_test
    latent = rng.normal(size=n)
    label = rng.binomial(1, expit(prevalence_logit + signal * latent))
    prob = expit(prevalence_logit + signal * latent)
    split = np.array(["val"] * n_val + ["test"] * n_test, dtype=object)
    stay_id = np.arange(ids_offset, ids_offset + n)
    return stay_id, split, label, prob, latent


def make_run(root: Path, name: str, prob, *, stay_id, split, label, config: dict | None = None,
             history: list[dict] | None = None) -> Path:
    run = root / name
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps(config if config is not None else {"model_name": name}))
    write_predictions(run / "predictions.parquet", stay_id, split, label, prob)
    if history is not None:
        (run / "history.jsonl").write_text("".join(json.dumps(h) + "\n" for h in history))
    return run
