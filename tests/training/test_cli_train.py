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
        "--pos-weight", "auto", "--threads", "1", "--max-train-rows", "30", "--attention-dropout", "0"])
    assert result.exit_code == 0, result.output
    config = json.loads((run / "config.json").read_text())
    assert config["model"]["gating"] is False and config["model"]["lora"]["r"] == 4
    assert config["model"]["max_length"] == 40 and config["train"]["pos_weight"] == "auto"
    assert config["model"]["attention_dropout"] == 0.0
    assert json.loads((run / "model_config.json").read_text())["attention_dropout"] == 0.0
    assert config["data"]["n_rows"]["train"] == 30
    assert (run / "predictions.parquet").exists()


def test_cli_refuses_contradictory_finetune_options(text_table, tmp_path):
    from alfia.cli import _register, app

    _register()
    result = CliRunner().invoke(app, ["train", text_table, "--out", str(tmp_path / "r"), "--no-lora",
                                      "--full-finetune"])
    assert isinstance(result.exception, AlfiaError) and "exclude each other" in str(result.exception)
