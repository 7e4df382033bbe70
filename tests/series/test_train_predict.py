"""Training into a run directory, resume, hour-by-hour prediction, transfer, and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from alfia.errors import AlfiaError
from alfia.evaluation.report import evaluate_predictions
from alfia.runs import RunLayout, read_predictions
from alfia.series.models import MODELS, build_model, default_config
from alfia.series.predict import hourly_probabilities, load_series_run, predict_hourly, predict_stays
from alfia.series.preprocess import HourlyPreprocessor
from alfia.series.train import SeriesTrainConfig, hourly_sha256, train_series
from alfia.evaluation.thresholds import rule_out_threshold
from alfia.series.transfer import transfer
from cli_process import run_alfia
from series_testkit import make_arrays, write_yaib

TINY = {"bilstm-transformer": {"hidden_size": 8, "d_model": 8, "n_heads": 2, "dim_feedforward": 16},
        "bilstm": {"hidden_size": 8}, "transformer": {"d_model": 8, "n_heads": 2, "dim_feedforward": 16},
        "gru": {"hidden_size": 8}, "tcn": {"channels": 8}}


def _cfg(model="gru", **kw):
    return SeriesTrainConfig(model=model, model_settings=TINY[model], epochs=kw.pop("epochs", 3),
                             batch_size=16, lr=1e-2, patience=kw.pop("patience", 10), threads=1, **kw)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    arrays = make_arrays()
    root = tmp_path_factory.mktemp("runs")
    train_series(arrays, root / "gru", _cfg("gru", epochs=2))
    return arrays, root


def test_run_directory_is_complete_and_readable(trained):
    arrays, root = trained
    layout = RunLayout.of(root / "gru")
    for path in (layout.config, layout.preprocessing, layout.series_weights,
                 layout.history, layout.predictions):
        assert path.exists(), path
    config = json.loads(layout.config.read_text())
    assert config["model_family"] == "series" and config["model_name"] == "series-gru"
    pred = read_predictions(layout.predictions)
    assert set(pred["split"]) == {"val", "test"} and len(pred) == len(arrays.rows_of("val")) + len(arrays.rows_of("test"))
    assert evaluate_predictions(pred, n_boot=20)["metrics"]["auroc"]["value"] > 0.9  # the planted signal
    assert len(layout.history.read_text().splitlines()) == 2


def test_a_run_is_not_overwritten(trained):
    arrays, root = trained
    with pytest.raises(AlfiaError, match="already holds a run"):
        train_series(arrays, root / "gru", _cfg())


def test_resume_continues_to_the_same_weights(tmp_path):
    arrays = make_arrays()
    train_series(arrays, tmp_path / "full", _cfg(epochs=3))
    train_series(arrays, tmp_path / "part", _cfg(epochs=2))
    train_series(arrays, tmp_path / "part", _cfg(epochs=3), resume=True)
    a = read_predictions(RunLayout.of(tmp_path / "full").predictions)
    b = read_predictions(RunLayout.of(tmp_path / "part").predictions)
    np.testing.assert_allclose(a["prob"], b["prob"], rtol=1e-5)
    assert len((tmp_path / "part" / "history.jsonl").read_text().splitlines()) == 3


def test_resume_on_another_hourly_table_is_refused(tmp_path):
    train_series(make_arrays(), tmp_path / "run", _cfg(epochs=1))
    other = make_arrays(seed=1)  # the same stays and splits, other values
    with pytest.raises(AlfiaError, match="belongs to a different run \\(data_sha256 differs"):
        train_series(other, tmp_path / "run", _cfg(epochs=2), resume=True)
    config = json.loads(RunLayout.of(tmp_path / "run").config.read_text())
    assert config["data"]["sha256"] == hourly_sha256(make_arrays()) != hourly_sha256(other)


def test_bad_train_and_model_settings_are_named():
    with pytest.raises(AlfiaError, match="train config: epochs must be an integer, got 'x'"):
        SeriesTrainConfig(epochs="x")
    with pytest.raises(AlfiaError, match="batch_size must be at least 1, got 0"):
        SeriesTrainConfig(batch_size=0)
    with pytest.raises(AlfiaError, match="dropout must be in \\[0, 1\\), got 1.5"):
        default_config("gru", 4, dropout=1.5)
    with pytest.raises(AlfiaError, match="d_model \\(8\\) must be a multiple of n_heads \\(3\\)"):
        default_config("transformer", 4, d_model=8, n_heads=3)


@pytest.mark.parametrize("name", list(MODELS))
def test_hour_k_risk_ignores_later_hours(name):
    torch.manual_seed(0)
    arrays = make_arrays(n=12)
    pre = HourlyPreprocessor().fit(arrays, arrays.rows_of("train"))
    model = build_model(name, default_config(name, pre.n_features, **TINY[name])).eval()
    base = hourly_probabilities(model, pre.transform(arrays))
    edited = arrays.subset(slice(None))
    edited.values = arrays.values.copy()
    edited.values[:, 3:, :] = 500.0  # hours 4..6 change wildly
    edited.values[:, 4, 1] = np.nan
    after = hourly_probabilities(model, pre.transform(edited))
    np.testing.assert_allclose(base[:, :3], after[:, :3], rtol=1e-6)
    assert not np.allclose(base[:, 3:], after[:, 3:])


def test_hourly_output_of_a_run(trained):
    arrays, root = trained
    run = load_series_run(root / "gru")
    hourly, _ = predict_hourly(run, arrays)
    stays, _ = predict_stays(run, arrays)
    assert list(hourly.columns) == ["stay_id", "hour", "prob", "hospital_expire_flag", "split"]
    assert len(hourly) == 96 * 6
    last = hourly[hourly["hour"] == 6]
    np.testing.assert_allclose(last["prob"].to_numpy(), stays["prob"], rtol=1e-6)  # hour H = the per-stay risk
    assert (last["split"].to_numpy() == stays["split"]).all()  # issue 20: split and label on every hour
    assert (last["hospital_expire_flag"].to_numpy() == stays["hospital_expire_flag"]).all()


def test_rule_out_threshold_reaches_the_sensitivity():
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    p = np.array([0.9, 0.8, 0.3, 0.2, 0.5, 0.4, 0.1, 0.1, 0.05, 0.01])
    assert rule_out_threshold(y, p, 0.75) == 0.3  # flags 3 of 4 deaths
    assert rule_out_threshold(y, p, 1.0) == 0.2


def test_transfer_masks_absent_variables_and_writes_two_runs(trained, tmp_path):
    _, root = trained
    target = make_arrays(n=160, seed=3, drop="lactate")
    result = transfer(root / "gru", target, tmp_path / "t", epochs=2, n_boot=50)
    assert result["alignment"]["absent"] == {"lactate": "not in the table"}
    for name in ("zero_shot", "fine_tuned"):
        assert result[name]["n"] == len(target.rows_of("test"))
        assert {"auroc", "auprc", "npv", "sensitivity"} <= set(result[name])
    assert (tmp_path / "t" / "zero-shot" / "predictions.parquet").exists()
    assert (tmp_path / "t" / "fine-tuned" / "model.safetensors").exists()
    assert json.loads((tmp_path / "t" / "transfer.json").read_text())["source_model"] == "gru"


def test_cli_build_train_predict_hourly_and_compare(tmp_path, capsys):
    h = tmp_path / "h.parquet"
    assert run_alfia(["series", "build", "yaib-eicu", "--yaib-dir", write_yaib(tmp_path / "y", n=48),
                    "--out", h], capsys)[0] == 0
    code, out, err = run_alfia(["series", "train", h, "--model", "tcn", "--epochs", "1", "--set", "channels=4",
                              "--out", tmp_path / "run"], capsys)
    assert code == 0, err
    code, _, err = run_alfia(["series", "predict", tmp_path / "run", "--input", h, "--out", tmp_path / "p.parquet",
                            "--hourly"], capsys)
    assert code == 0, err
    p = pd.read_parquet(tmp_path / "p.parquet")
    assert list(p.columns) == ["stay_id", "hour", "prob", "hospital_expire_flag", "split"] and len(p) == 48 * 24
    code, _, err = run_alfia(["series", "predict", tmp_path / "run", "--input", h, "--out", tmp_path / "q.parquet"],
                           capsys)
    assert code == 0 and list(pd.read_parquet(tmp_path / "q.parquet").columns)[:2] == ["stay_id", "prob"]
    code, _, err = run_alfia(["series", "predict", tmp_path / "run", "--input", h, "--out", h, "--overwrite"],
                             capsys)
    assert code == 2 and "would overwrite an input" in err
    code, _, err = run_alfia(["series", "train", h, "--model", "lstm9", "--out", tmp_path / "x"], capsys)
    assert code == 2 and "unknown series model" in err
    code, out, err = run_alfia(["compare", tmp_path / "run", "--out", tmp_path / "cmp", "--n-boot", "20"], capsys)
    assert code == 0, err
