"""External validation of the zoo and ALFIA-boost: external cohorts are scored whole, after training and
selection on the training cohort alone; their labels never change a prediction."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from alfia.baselines.runner import ExternalInput, run_baselines
from alfia.cli import _register, app
from alfia.cohorts.io import write_cohort
from alfia.cohorts.sources.synthetic import generate_synthetic
from alfia.errors import AlfiaError
from alfia.runs import RunLayout, read_predictions

MODELS = "LinearModel,LightGBM,WeightedEnsemble"
_register()


@pytest.fixture(scope="module")
def cohorts(tmp_path_factory):
    root = tmp_path_factory.mktemp("external")
    train = generate_synthetic("mimic", 500, seed=11)
    ext = generate_synthetic("eicu", 160, seed=12)
    ext["split"] = "train"  # an external cohort's split is ignored: it is scored whole
    write_cohort(train, root / "train.parquet", source="synthetic", variant="mimic")
    write_cohort(ext, root / "eicu_ext.parquet", source="synthetic", variant="eicu")
    return root, train, ext


@pytest.fixture(scope="module")
def cli_run(cohorts):
    root, _, _ = cohorts
    out = root / "zoo"
    result = CliRunner().invoke(app, ["baselines", str(root / "train.parquet"), "--out", str(out), "--models", MODELS,
                                      "--profile", "fast", "--n-boot", "20",
                                      "--external", str(root / "eicu_ext.parquet")])
    assert result.exit_code == 0, result.output
    return out, result.output


def test_every_model_scores_the_whole_external_cohort(cli_run, cohorts):
    out, output = cli_run
    _, _, ext = cohorts
    assert "External cohort eicu_ext: 160 stays" in output
    for model in MODELS.split(","):
        layout = RunLayout.of(out / model).external("eicu_ext")
        pred = read_predictions(layout.predictions)
        assert sorted(pred["stay_id"]) == sorted(ext["stay_id"]) and (pred["split"] == "external").all()
        metrics = json.loads(layout.metrics.read_text())
        assert metrics["n"] == 160 and metrics["thresholds"]["chosen_on"] == "val"
        auprc = metrics["metrics"]["auprc"]
        assert auprc["ci_low"] <= auprc["value"] <= auprc["ci_high"]
        assert metrics["calibration_in_the_large"]["observed_rate"] == pytest.approx(ext["hospital_expire_flag"].mean())
        shift = json.loads(layout.shift.read_text())
        assert shift["outcome_rate_external"] == pytest.approx(ext["hospital_expire_flag"].mean())
        assert {r["variable"] for r in shift["imputed"]} >= {"apsiii", "marital_status", "lods"}
    summary = pd.read_csv(out / "external_summary.csv")
    assert set(summary["model"]) == set(MODELS.split(",")) and (summary["external"] == "eicu_ext").all()


def test_permuting_external_labels_leaves_every_prediction_bit_identical(cli_run, cohorts, tmp_path):
    out, _ = cli_run
    root, train, ext = cohorts
    permuted = ext.copy()
    permuted["hospital_expire_flag"] = np.random.default_rng(0).permutation(ext["hospital_expire_flag"].to_numpy())
    permuted.loc[permuted.index[:10], "hospital_expire_flag"] = 1 - permuted.loc[permuted.index[:10],
                                                                                  "hospital_expire_flag"]
    assert (permuted["hospital_expire_flag"] != ext["hospital_expire_flag"]).any()
    run_baselines(train, "mimic", tmp_path, MODELS.split(","), profile="fast", n_boot=20,
                  externals=[ExternalInput("eicu_ext", permuted, "eicu", "permuted")])
    for model in MODELS.split(","):
        for layout in (RunLayout.of(out / model), RunLayout.of(out / model).external("eicu_ext")):
            a = read_predictions(layout.predictions)
            b = read_predictions(RunLayout.of(tmp_path / model).root / layout.root.relative_to(out / model)
                                 / "predictions.parquet")
            assert np.array_equal(a["stay_id"].to_numpy(), b["stay_id"].to_numpy())
            assert np.array_equal(a["prob"].to_numpy(), b["prob"].to_numpy())  # bit-identical
    weights = [json.loads((d / "WeightedEnsemble" / "config.json").read_text())["weights"] for d in (out, tmp_path)]
    assert weights[0] == weights[1]


def test_compare_reports_each_external_cohort_beside_the_internal_results(cli_run, tmp_path):
    out, _ = cli_run
    result = CliRunner().invoke(app, ["compare", str(out), "--out", str(tmp_path / "report"), "--n-boot", "20"])
    assert result.exit_code == 0, result.output
    comparison = json.loads((tmp_path / "report" / "comparison.json").read_text())
    assert comparison["n_runs"] == 3  # external/<name>/ folders are not runs of their own
    ext = comparison["external"]["eicu_ext"]
    assert ext["n"] == 160 and set(ext["order"]) == set(MODELS.split(","))
    assert ext["shift"]["predictors"] and "predictors imputed" in ext["headline"]
    html = (tmp_path / "report" / "report.html").read_text()
    assert "External cohort eicu_ext: 160 stays" in html and "How eicu_ext differs from the training cohort" in html
    for fig in ("forest_external_eicu_ext.png", "shift_eicu_ext.png"):
        assert (tmp_path / "report" / "figures" / fig).stat().st_size > 1000
    table = pd.read_csv(tmp_path / "report" / "external_eicu_ext.csv")
    assert {"auprc", "auprc_ci_low", "internal_auprc", "citl_observed_rate"} <= set(table.columns)


def test_evaluate_rescores_a_baselines_external_folder(cli_run):
    out, _ = cli_run
    result = CliRunner().invoke(app, ["evaluate", str(out / "LightGBM"), "--n-boot", "20", "--external",
                                      "somewhere/eicu_ext.parquet"])
    assert result.exit_code == 0, result.output
    assert "external eicu_ext: 160 stays" in result.output
    result = CliRunner().invoke(app, ["evaluate", str(out / "LightGBM"), "--n-boot", "20", "--external",
                                      "other.parquet"])
    assert isinstance(result.exception, AlfiaError)
    assert "alfia baselines/boost ... --external other.parquet" in str(result.exception)


def test_boost_scores_external_cohorts_with_their_own_embeddings(cohorts, tmp_path):
    from alfia.baselines.boost import run_boost
    from .test_boost import fake_embed

    _, train, _ = cohorts
    ext = generate_synthetic("mimic", 120, seed=13)
    ext["stay_id"] += 10**7
    run_boost(train, fake_embed(train), "mimic", tmp_path, ["lightgbm"], profile="fast", n_boot=10,
              externals=[ExternalInput("other_site", ext, "mimic", "other_site.parquet", fake_embed(ext))])
    pred = read_predictions(RunLayout.of(tmp_path / "ALFIA-boost-LightGBM").external("other_site").predictions)
    assert len(pred) == 120
    with pytest.raises(AlfiaError, match="only with its ALF embeddings"):
        run_boost(train, fake_embed(train), "mimic", tmp_path / "x", ["lightgbm"], profile="fast", n_boot=10,
                  externals=[ExternalInput("other_site", ext, "mimic", "other_site.parquet")])
