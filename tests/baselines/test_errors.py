"""Bad input gets one clear error naming what is wrong; nothing already written is lost."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from alfia.baselines.registry import DEFAULT_MODELS, resolve_models
from alfia.baselines.runner import run_baselines
from alfia.errors import AlfiaError


def test_unknown_model_name_lists_known_names(cohort, tmp_path):
    with pytest.raises(AlfiaError) as err:
        run_baselines(cohort, "mimic", tmp_path, models=["LightGBM", "RandomTrees"], profile="fast")
    message = str(err.value)
    assert "RandomTrees" in message
    for name in DEFAULT_MODELS:
        assert name in message
    assert not any(tmp_path.iterdir())  # refused before training anything


def test_model_names_are_case_insensitive_and_deduplicated():
    assert resolve_models(["lightgbm", "LightGBM", "catboost"]) == ["LightGBM", "CatBoost"]
    assert resolve_models(None) == list(DEFAULT_MODELS)


def test_cohort_without_split_is_refused(cohort, tmp_path):
    with pytest.raises(AlfiaError, match="no 'split' column"):
        run_baselines(cohort.drop(columns="split"), "mimic", tmp_path, models=["LightGBM"],
                      source="cohort.parquet")


def test_unknown_split_value_names_the_row(cohort, tmp_path):
    df = cohort.copy()
    df.loc[df.index[10], "split"] = "holdout"
    with pytest.raises(AlfiaError, match=r"cohort\.parquet: column 'split' holds 'holdout' at row 10"):
        run_baselines(df, "mimic", tmp_path, models=["LightGBM"], source="cohort.parquet")


def test_missing_predictor_column_is_named(cohort, tmp_path):
    with pytest.raises(AlfiaError, match="missing predictor column.*sapsii"):
        run_baselines(cohort.drop(columns="sapsii"), "mimic", tmp_path, models=["LightGBM"])


def test_empty_split_and_single_class_val_are_refused(cohort, tmp_path):
    with pytest.raises(AlfiaError, match="split 'test' has no rows"):
        run_baselines(cohort[cohort["split"] != "test"], "mimic", tmp_path, models=["LightGBM"])
    df = cohort.copy()
    df.loc[df["split"] == "val", "hospital_expire_flag"] = 0
    with pytest.raises(AlfiaError, match="split 'val' holds only label 0"):
        run_baselines(df, "mimic", tmp_path, models=["LightGBM"])


def test_ensemble_alone_is_refused(cohort, tmp_path):
    with pytest.raises(AlfiaError, match="at least one other model"):
        run_baselines(cohort, "mimic", tmp_path, models=["WeightedEnsemble"], profile="fast")


def test_missing_autogluon_gives_install_hint(cohort, tmp_path, monkeypatch):
    import sys

    from alfia.baselines.engine_autogluon import run_autogluon

    monkeypatch.setitem(sys.modules, "autogluon", None)  # as if not installed
    monkeypatch.setitem(sys.modules, "autogluon.tabular", None)
    with pytest.raises(AlfiaError, match=r'pip install "\.\[autogluon\]"'):
        run_autogluon(cohort, "mimic", tmp_path)


def test_cli_reports_errors_and_runs(cohort, tmp_path):
    from alfia.cli import app
    from alfia.cohorts.io import write_cohort
    import alfia.cli.baselines  # noqa: F401  (registers the commands)

    path = tmp_path / "cohort.parquet"
    write_cohort(cohort.drop(columns="split"), path, source="synthetic", variant="mimic")
    runner = CliRunner()
    result = runner.invoke(app, ["baselines", str(path), "--out", str(tmp_path / "out")])
    assert isinstance(result.exception, AlfiaError) and "no 'split' column" in str(result.exception)

    write_cohort(cohort, path, source="synthetic", variant="mimic")
    result = runner.invoke(app, ["baselines", str(path), "--out", str(tmp_path / "out"), "--models",
                                 "LinearModel,WeightedEnsemble", "--profile", "fast",
                                 "--n-boot", "10"])
    assert result.exit_code == 0, result.output
    assert "WeightedEnsemble" in result.output and "95% CI" in result.output
    assert (tmp_path / "out" / "WeightedEnsemble" / "metrics.json").exists()
    # Threads per model: the machine's cores unless --jobs says otherwise, recorded in each run's config.
    from alfia.machine import available_cores

    assert json.loads((tmp_path / "out" / "LinearModel" / "config.json").read_text())["n_jobs"] == available_cores()
    result = runner.invoke(app, ["baselines", str(path), "--out", str(tmp_path / "one"), "--models", "LinearModel",
                                 "--profile", "fast", "--n-boot", "10", "--jobs", "1"])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "one" / "LinearModel" / "config.json").read_text())["n_jobs"] == 1
    # --overwrite replaces what OUT held: its summary no longer lists the earlier call's ensemble.
    result = runner.invoke(app, ["baselines", str(path), "--out", str(tmp_path / "out"), "--models", "LinearModel",
                                 "--profile", "fast", "--n-boot", "10", "--overwrite"])
    assert result.exit_code == 0, result.output
    assert list(pd.read_csv(tmp_path / "out" / "summary.csv")["model"]) == ["LinearModel"]


@pytest.mark.parametrize("args, option, choices", [
    (["baselines", "--engine", "sklearn"], "--engine", "'native', 'autogluon'"),
    (["baselines", "--profile", "quick"], "--profile", "'full', 'fast'"),
    (["boost", "--embeddings", "e.parquet", "--profile", "quick"], "--profile", "'full', 'fast'"),
])
def test_cli_refuses_an_unknown_choice_naming_the_option(tmp_path, args, option, choices):
    from alfia.cli import app
    import alfia.cli.baselines  # noqa: F401  (registers the commands)

    out = tmp_path / "out"
    result = CliRunner().invoke(app, [args[0], str(tmp_path / "c.parquet"), "--out", str(out), *args[1:]])
    message = " ".join(result.output.replace("│", " ").split())  # rich draws a box and wraps
    assert result.exit_code == 2
    assert f"Invalid value for '{option}'" in message and choices in message
    assert not out.exists()


def test_cli_choices_are_the_library_s():
    from typing import get_args

    from alfia.baselines.registry import Profile
    from alfia.cli.baselines import Profile as ProfileChoice

    assert [p.value for p in ProfileChoice] == list(get_args(Profile))
