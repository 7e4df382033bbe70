"""Real data: fast baselines on the PhysioNet 2012 cohort (sets A and B) from ../shared/data."""

from __future__ import annotations

import json

import pytest

from shared_data import shared_dataset


@pytest.mark.integration
def test_fast_baselines_on_physionet2012(tmp_path):
    from alfia.baselines.runner import run_baselines
    from alfia.cohorts.schema import PHYSIONET2012
    from alfia.cohorts.sources.physionet2012 import build_physionet2012

    data = shared_dataset("physionet2012")
    df, _ = build_physionet2012([data / "set-a.tar.gz"], [data / "Outcomes-a.txt"], hours=24.0, aggregates="full")
    summary = run_baselines(df, "physionet2012", tmp_path, models=["LightGBM", "CatBoost"],
                            profile="fast", n_boot=20)
    config = json.loads((tmp_path / "CatBoost" / "config.json").read_text())
    assert config["features"]["categorical"] == PHYSIONET2012.categorical == ["gender", "icu_type"]
    assert len(config["features"]["numeric"]) == len(PHYSIONET2012.numeric)
    # Real signal on real data: even tiny models rank deaths well above chance (AUROC 0.5).
    assert (summary["test_auroc"] > 0.7).all(), summary[["model", "test_auroc"]]
