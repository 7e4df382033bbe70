"""Every family of the zoo fits on train, selects on val and leaves a run directory the evaluation reads.

The zoo is trained once per session (``zoo_run``: all 14 models + the ensemble, fast profile, the test rows
carrying a careunit never seen in training); each test below checks one side of it and fails on its own.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score

from alfia.baselines.registry import DEFAULT_MODELS, ENSEMBLE_NAME, MODELS
from alfia.runs import PREDICTION_COLUMNS, RunLayout, read_predictions

from .conftest import UNSEEN


def test_every_model_leaves_a_complete_run_directory(zoo_run, cohort_with_unseen):
    out, summary = zoo_run
    assert sorted(summary["model"]) == sorted(DEFAULT_MODELS)
    expected = cohort_with_unseen[cohort_with_unseen["split"].isin(["val", "test"])]
    for name in DEFAULT_MODELS:
        layout = RunLayout.of(out / name).require()
        pred = read_predictions(layout.predictions)
        assert tuple(pred.columns) == PREDICTION_COLUMNS
        # val AND test rows, every one of them, with the cohort's own labels; no train row.
        merged = pred.merge(expected, on="stay_id", validate="one_to_one")
        assert len(merged) == len(expected) == len(pred)
        assert (merged["split_x"] == merged["split_y"]).all()
        assert (merged["label"] == merged["hospital_expire_flag"]).all()
        assert pred["prob"].between(0.0, 1.0).all() and np.isfinite(pred["prob"]).all()
        assert pred["prob"].nunique() > 1, f"{name} predicts a constant"
        config = json.loads(layout.config.read_text())
        assert config["model_name"] == name
        assert config["model_family"] == ("ensemble" if name == ENSEMBLE_NAME else "baseline")
        assert config["train_time_seconds"] >= 0
        assert config["features"]["categorical"]  # schema categoricals reach every model
        assert (layout.baseline_model / "model.json").is_file(), f"{name} saved no model"
        metrics = json.loads(layout.metrics.read_text())
        assert metrics["split"] == "test"
        for key in ("auprc", "auroc", "best_f1", "best_f2"):
            m = metrics["metrics"][key]
            assert m["ci_low"] <= m["value"] <= m["ci_high"]


def test_models_learn_signal(zoo_run):
    """Even tiny fast-profile models rank deaths above survivors on the synthetic cohort."""
    _, summary = zoo_run
    prevalence_auprc_floor = 0.2  # mortality is ~11%; AUPRC of a random ranking is about that
    strong = summary[summary["model"].isin(["LinearModel", "CatBoost", "LightGBM", ENSEMBLE_NAME])]
    assert (strong["test_auroc"] > 0.75).all(), strong[["model", "test_auroc"]]
    assert (strong["test_auprc"] > prevalence_auprc_floor).all()


def test_summary_sorted_by_test_auprc_and_written(zoo_run):
    out, summary = zoo_run
    assert list(summary["test_auprc"]) == sorted(summary["test_auprc"], reverse=True)
    on_disk = pd.read_csv(out / "summary.csv")
    assert list(on_disk["model"]) == list(summary["model"])
    assert "| Model |" in (out / "summary.md").read_text()


def test_ensemble_val_auprc_at_least_best_member(zoo_run):
    out, _ = zoo_run
    config = json.loads(RunLayout.of(out / ENSEMBLE_NAME).config.read_text())
    assert set(config["members"]) == set(MODELS)
    assert pytest.approx(sum(config["weights"].values())) == 1.0

    def val_auprc(name):
        p = read_predictions(out / name / "predictions.parquet")
        p = p[p["split"] == "val"]
        return average_precision_score(p["label"], p["prob"])

    best_member = max(val_auprc(n) for n in MODELS)
    assert val_auprc(ENSEMBLE_NAME) >= best_member - 1e-12


def test_selection_recorded_in_config(zoo_run):
    """What validation AUPRC chose is saved, so a run can be understood and repeated."""
    out, _ = zoo_run
    knn = json.loads((out / "KNeighborsDist" / "config.json").read_text())
    assert knn["selected_hyperparameters"]["n_neighbors"] in (5, 15)
    assert len(knn["selection"]["grid"]) == 2
    best = max(g["val_auprc"] for g in knn["selection"]["grid"])
    assert knn["selection"]["val_auprc"] == pytest.approx(best)
    lgbm = json.loads((out / "LightGBM" / "config.json").read_text())
    assert 1 <= lgbm["selected_hyperparameters"]["n_estimators"] <= 40
    ftt = json.loads((out / "FTTransformer" / "config.json").read_text())
    assert [h["epoch"] for h in ftt["selection"]["history"]][0] == 1


def test_every_family_predicts_rows_with_an_unseen_category(zoo_run, cohort_with_unseen):
    """Every test row carries a careunit never seen in training; every family still predicts it."""
    out, summary = zoo_run
    test_ids = set(cohort_with_unseen.loc[cohort_with_unseen["split"] == "test", "stay_id"])
    assert (cohort_with_unseen.loc[cohort_with_unseen["split"] == "train", "careunit"] != UNSEEN).all()
    for name in summary["model"]:
        pred = read_predictions(out / name / "predictions.parquet")
        rows = pred[pred["split"] == "test"]
        assert set(rows["stay_id"]) == test_ids, name
        assert rows["prob"].between(0, 1).all(), name


def test_seeded_runs_are_reproducible(cohort, tmp_path):
    from alfia.baselines.runner import run_baselines

    a = run_baselines(cohort, "mimic", tmp_path / "a", models=["LightGBM", "NeuralNetMLP"],
                      profile="fast", n_boot=10)
    b = run_baselines(cohort, "mimic", tmp_path / "b", models=["LightGBM", "NeuralNetMLP"],
                      profile="fast", n_boot=10)
    for name in ("LightGBM", "NeuralNetMLP"):
        pa = read_predictions(tmp_path / "a" / name / "predictions.parquet")
        pb = read_predictions(tmp_path / "b" / name / "predictions.parquet")
        np.testing.assert_array_equal(pa["prob"], pb["prob"])
    assert list(a["model"]) == list(b["model"])


def test_resume_keeps_finished_models_and_retrains_changed_ones(cohort, tmp_path):
    from alfia.baselines.runner import run_baselines

    first = run_baselines(cohort, "mimic", tmp_path, models=["LightGBM", "KNeighborsUnif"],
                          profile="fast", n_boot=10)
    stamp = json.loads((tmp_path / "LightGBM" / "config.json").read_text())["created_at"]
    (tmp_path / "KNeighborsUnif" / "metrics.json").unlink()  # as if interrupted before it finished
    again = run_baselines(cohort, "mimic", tmp_path, models=["LightGBM", "KNeighborsUnif",
                                                              "WeightedEnsemble"],
                          profile="fast", n_boot=10, resume=True)
    assert json.loads((tmp_path / "LightGBM" / "config.json").read_text())["created_at"] == stamp
    assert (tmp_path / "KNeighborsUnif" / "metrics.json").exists()
    assert (tmp_path / "WeightedEnsemble" / "metrics.json").exists()
    reused = again.set_index("model").loc["LightGBM"]
    assert reused["test_auprc"] == pytest.approx(first.set_index("model").loc["LightGBM", "test_auprc"])
    # another seed is another experiment: retrained, not reused
    run_baselines(cohort, "mimic", tmp_path, models=["LightGBM"], seed=1, profile="fast", n_boot=10,
                  resume=True)
    config = json.loads((tmp_path / "LightGBM" / "config.json").read_text())
    assert config["seed"] == 1
