"""What a user sees (issue 20): progress of long steps in a terminal and in a log, whole lines in a log, the
training estimate, progress on by default in Python, a finished run without its optimizer state, a model that
moves instead of being copied."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest
from rich.table import Table

from alfia.progress import LOG_WIDTH, make_console, step, track


def _log():
    buffer = io.StringIO()
    return buffer, make_console(file=buffer)


def test_a_step_in_a_log_prints_start_progress_and_end_lines():
    buffer, console = _log()
    with step("caching encoder states", 40, console=console, unit="rows", log_every_s=0) as s:
        for _ in range(4):
            s.advance(10)
    lines = buffer.getvalue().splitlines()
    assert lines[0] == "caching encoder states: 40 rows"
    assert any(line.startswith("caching encoder states: 20/40 rows (50%)") and "left" in line for line in lines)
    assert lines[-1].startswith("caching encoder states: done, 40 rows in ")


def test_a_step_in_a_terminal_is_a_live_bar_that_goes_away():
    buffer = io.StringIO()
    from rich.console import Console

    console = Console(file=buffer, force_terminal=True, width=100)
    assert list(track(range(3), "scoring", console=console, unit="texts")) == [0, 1, 2]
    assert "scoring: done, 3 texts" in buffer.getvalue()


def test_a_quiet_console_shows_nothing():
    buffer = io.StringIO()
    with step("silent", 3, console=make_console(file=buffer, quiet=True)) as s:
        s.advance(3)
    assert buffer.getvalue() == ""


def test_a_log_gets_whole_table_rows_not_80_columns():
    """Rich cut CIs at 80 columns in a log ("0.243–0.…"); a console that is no terminal writes whole lines."""
    buffer, console = _log()
    table = Table()
    for i in range(8):
        table.add_column(f"column {i}")
    table.add_row(*[f"0.243–0.{i}99 [0.201, 0.301]" for i in range(8)])
    console.print(table)
    console.print("x" * 300)
    text = buffer.getvalue()
    assert "…" not in text and "0.243–0.799 [0.201, 0.301]" in text
    assert "x" * 300 in text and console.width == LOG_WIDTH


def test_training_prints_an_estimate_and_the_card_says_what_was_trained(assets, tmp_path):
    from alfia.evaluation.card import CardWarning, card_markdown
    from alfia.models import AlfiaConfig
    from alfia.training import TrainConfig, train_run

    buffer, console = _log()
    run = tmp_path / "run"
    train_run(assets.text_path, run,
              AlfiaConfig(backbone=str(assets.backbone), n_fusion_layers=2, max_length=48, train_layers=0),
              TrainConfig(head_epochs=2, batch_size=8, num_threads=1, max_train_rows=30), console=console)
    text = buffer.getvalue()
    estimate = [line for line in text.splitlines() if line.startswith("estimate: ")]
    assert len(estimate) == 1 and "per epoch of 4 batches" in estimate[0] and "for the 2 epoch(s)" in estimate[0]
    assert text.index("estimate: ") < text.index("epoch   1 ")  # before the first epoch ends
    assert "caching the frozen encoder's top 2 layer states: done" in text
    assert "scoring the val and test rows with the best model: done" in text
    assert not (run / "checkpoint").exists()  # pruned: the run finished

    # The card of this frozen-encoder, subsampled run (issue 20: it said "LoRA r=16 ... up to 8 epochs", "all
    # eligible stays were used", no calibrator, "deciles")
    card = card_markdown(run)
    body = {part.split(".", 1)[0]: part for part in card.split("\n### ")[1:]}
    assert "encoder frozen" in body["12c"] and "LoRA" not in body["12c"] and "r=16" not in body["12c"]
    assert "for up to 2 epochs" in body["12c"] and "up to 8" not in body["12c"]
    assert "2 epochs were run" in body["12c"]
    assert "subsample of 30 of the 45 training stays" in body["10"] and "--max-train-rows" in body["10"]
    assert "Platt scaling fitted on val" in body["12f"] and "Platt" not in body["24"]
    assert "decile" not in card
    assert {"6a–6b", "9a–9b"} <= set(body) and not {"6b", "9b"} & set(body)
    assert body["7"].split("\n", 1)[1] != body["12b"].split("\n", 1)[1]  # no repeated item
    bare = tmp_path / "bare.parquet"
    shutil.copy(assets.text_path, bare)  # the table without its manifest
    with pytest.warns(CardWarning, match=r"bare.parquet has no manifest \(bare.manifest.json\)"):
        card_markdown(run, cohort=bare)


def test_keep_checkpoint_keeps_the_training_state(assets, tmp_path, capsys):
    from cli_process import run_alfia

    args = ["train", assets.text_path, "--backbone", assets.backbone, "--train-layers", "0", "--head-epochs", "1",
            "--fusion-layers", "2", "--max-length", "48", "--threads", "1"]
    code, _, err = run_alfia([*args, "--out", tmp_path / "kept", "--keep-checkpoint"], capsys)
    assert code == 0, err
    assert (tmp_path / "kept" / "checkpoint" / "state.json").exists()
    code, _, err = run_alfia([*args, "--out", tmp_path / "pruned"], capsys)
    assert code == 0, err
    assert not (tmp_path / "pruned" / "checkpoint").exists()
    assert "Loading weights" not in err  # Hugging Face's bar stays out of a log
    code, _, err = run_alfia(["train", "--resume", tmp_path / "pruned"], capsys)
    assert code == 2 and "has finished" in err


def test_the_classifier_shows_progress_by_default_and_moves_its_temporary_run(assets, tmp_path, capfd):
    from alfia.api.classifier import ALFIAClassifier

    clf = ALFIAClassifier(backbone=str(assets.backbone), n_fusion_layers=2, max_length=48, train_layers=0,
                          head_epochs=1, num_threads=1)
    assert clf.progress is True
    clf.fit(assets.text_path)
    assert "epoch   1" in capfd.readouterr().err
    temporary = Path(clf.run_dir_)
    saved = clf.save_pretrained(tmp_path / "saved")
    assert not temporary.exists() and not temporary.parent.exists()  # moved, and its temporary folder gone
    assert json.loads((saved / "config.json").read_text())["model_type"] == "alfia"
    assert clf.predict_proba(assets.text_path).shape[1] == 2


def test_series_train_resumes_as_alfia_train_does_and_defaults_to_auto(tmp_path, capsys):
    """`alfia series train --resume RUN_DIR` (the form of `alfia train`), and device auto as there (issue 20)."""
    from cli_process import run_alfia
    from test_cli_contract import _series_assets

    hourly, _ = _series_assets(tmp_path)
    code, _, err = run_alfia(["series", "train", hourly, "--model", "gru", "--epochs", "1", "--threads", "1",
                              "--out", tmp_path / "run"], capsys)
    assert code == 0, err
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["train"]["device"] == "auto" and config["train"]["hourly"] == str(hourly.resolve())
    code, out, err = run_alfia(["series", "train", "--resume", tmp_path / "run"], capsys)
    assert code == 0, err
    assert f"wrote {tmp_path / 'run'}" in out


def test_training_progress_in_a_log_names_the_epoch_batches_and_time_left():
    from types import SimpleNamespace

    from alfia.training.callbacks import ProgressDisplay

    buffer, console = _log()
    display = ProgressDisplay(console, log_every_s=0)
    state = SimpleNamespace(epoch=0, epochs=2, steps_per_epoch=4, step_in_epoch=0, epoch_loss_sum=0.0,
                            epoch_rows=0, global_step=0, stop=False)
    display.on_train_begin(state)
    for done in (1, 2):
        state.step_in_epoch, state.global_step = done, done
        state.epoch_loss_sum, state.epoch_rows = 0.5 * 8 * done, 8 * done
        display.on_batch_end(state)
    display.on_train_end(state)
    lines = buffer.getvalue().splitlines()
    assert "epoch 1/2, train loss 0.5000: 2/4 batches (50%)" in lines[-1] and lines[-1].endswith("left")
