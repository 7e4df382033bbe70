"""`alfia train` maps its options onto the configs saved with the run."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from alfia.errors import AlfiaError


def test_cli_train_writes_a_run_with_the_requested_settings(text_table, tmp_path, tiny_backbone_dir):
    from alfia.cli import _register, app

    _register()
    run = tmp_path / "run"
    result = CliRunner().invoke(app, [
        "train", text_table, "--out", str(run), "--backbone", tiny_backbone_dir, "--fusion-layers", "2",
        "--no-gating", "--lora-r", "4", "--epochs", "1", "--batch-size", "8", "--max-length", "40",
        "--pos-weight", "auto", "--threads", "1", "--max-train-rows", "30", "--attention-dropout", "0",
        "--train-layers", "all", "--finetune", "lora", "--head-epochs", "1", "--head-lr", "0.002", "--calibration", "isotonic"])
    assert result.exit_code == 0, result.output
    config = json.loads((run / "config.json").read_text())
    assert config["model"]["gating"] is False and config["model"]["lora"]["r"] == 4
    assert config["model"]["max_length"] == 40 and config["train"]["pos_weight"] == "auto"
    assert config["model"]["attention_dropout"] == 0.0
    assert config["data"]["n_rows"]["train"] == 30
    assert config["train"]["head_lr"] == 0.002 and config["model"]["train_layers"] == "all"
    assert json.loads((run / "calibration.json").read_text())["method"] == "isotonic"
    assert (run / "predictions.parquet").exists() and (run / "adapter").exists()
    thresholds = json.loads((run / "thresholds.json").read_text())  # the operating points, chosen on val
    from alfia.evaluation.thresholds import run_thresholds

    assert thresholds["operating_points"]["f1"]["threshold"] == run_thresholds(run)["f1"].threshold
    assert f"threshold {thresholds['operating_points']['f1']['threshold']:.4f}" in " ".join(result.output.split())

    # The saved config.json reruns the run; an option on top overrides it.
    rerun = tmp_path / "rerun"
    result = CliRunner().invoke(app, ["train", "--config", str(run / "config.json"), "--out", str(rerun),
                                      "--calibration", "platt"])
    assert result.exit_code == 0, result.output
    again = json.loads((rerun / "config.json").read_text())
    assert again["model"] == config["model"] and again["data"]["path"] == config["data"]["path"]
    assert {k: v for k, v in again["train"].items() if k != "calibration"} == {
        k: v for k, v in config["train"].items() if k != "calibration"}
    assert again["train"]["calibration"] == "platt"


def test_cli_train_refuses_a_config_with_unknown_keys(text_table, tmp_path):
    from alfia.cli import _register, app

    _register()
    bad = tmp_path / "run.json"
    bad.write_text(json.dumps({"model": {"pooler": "alf"}, "train": {"epoch": 3}}))
    result = CliRunner().invoke(app, ["train", text_table, "--config", str(bad), "--out", str(tmp_path / "r")])
    assert isinstance(result.exception, AlfiaError) and "epoch" in str(result.exception)


def test_cli_refuses_a_wrong_train_layers_value_before_writing(text_table, tmp_path):
    from alfia.cli import _register, app

    _register()
    result = CliRunner().invoke(app, ["train", text_table, "--out", str(tmp_path / "r"), "--train-layers", "top"])
    assert isinstance(result.exception, AlfiaError) and "train_layers must be 0" in str(result.exception)
    assert not (tmp_path / "r").exists()


def test_resume_refuses_options_it_would_not_use(tmp_path):
    from alfia.cli import _register, app

    _register()
    (tmp_path / "run").mkdir()
    result = CliRunner().invoke(app, ["train", "--resume", str(tmp_path / "run"), "--head-epochs", "8"])
    assert isinstance(result.exception, AlfiaError) and "--head-epochs" in str(result.exception)
    assert "does not take" in str(result.exception)
