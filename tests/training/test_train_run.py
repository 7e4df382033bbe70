"""Training end to end on a tiny random BERT: run directory, determinism, resume, Ctrl-C, bad input."""

from __future__ import annotations

import json
import os
import signal
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from alfia.errors import AlfiaError
from alfia.models import AlfiaConfig
from alfia.evaluation.thresholds import run_thresholds
from alfia.training import Callback, TrainConfig, TrainingInterrupted, train_run
from alfia.training.callbacks import EarlyStopping
from alfia.training.loop import resolve_pos_weight

from .conftest import make_text_frame, write_text_table

HISTORY_KEYS = {"epoch", "train_loss", "val_auprc", "val_auroc", "lr", "seconds"}


def _configs(backbone, **train):
    model = AlfiaConfig(backbone=backbone, n_fusion_layers=2, max_length=64, train_layers="all", finetune="lora")
    settings = dict(epochs=3, batch_size=8, lr=3e-3, num_threads=1, bucket_size=2, patience=5,
                    head_epochs=0)  # the LoRA loop itself
    settings.update(train)
    return model, TrainConfig(**settings)


def _history(run_dir):
    lines = (run_dir / "history.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k != "seconds"} for line in lines]


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory, tiny_backbone_dir):
    """One uninterrupted run that the determinism and resume tests compare against."""
    root = tmp_path_factory.mktemp("reference")
    table = write_text_table(make_text_frame(), root / "text.parquet")
    model, train = _configs(tiny_backbone_dir)
    # keep_checkpoint: the resume tests below start from copies of its checkpoint
    summary = train_run(table, root / "run", model, train, progress=False, keep_checkpoint=True)
    return SimpleNamespace(table=table, run=root / "run", summary=summary)


def test_run_directory_holds_everything_a_user_needs(reference_run):
    run = reference_run.run
    for name in ("config.json", "history.jsonl", "predictions.parquet", "fusion_head.safetensors",
                 "backbone.json", "adapter", "checkpoint/state.json"):
        assert (run / name).exists(), name
    config = json.loads((run / "config.json").read_text())
    assert config["model"]["n_fusion_layers"] == 2 and config["train"]["lr"] == 3e-3
    assert config["data"]["template"] == "test" and len(config["data"]["sha256"]) == 64
    assert config["data"]["path"] == str(reference_run.table)
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert all(HISTORY_KEYS <= set(h) for h in history)
    preds = pd.read_parquet(run / "predictions.parquet")
    assert set(preds["split"]) == {"val", "test"}
    df = pd.read_parquet(reference_run.table)
    assert len(preds) == int((df["split"] != "train").sum())
    assert preds["prob"].between(0, 1).all()
    point = run_thresholds(run)["f1"]  # the operating point comes from the val predictions (alfia.evaluation)
    assert point.chosen_on == "val" and 0 < point.threshold < 1
    best = max(history, key=lambda h: h["val_auprc"])
    assert reference_run.summary.best_epoch == best["epoch"] == config["result"]["best_epoch"]
    assert config["result"]["best_val_auprc"] == pytest.approx(best["val_auprc"])


def test_same_seed_same_machine_same_result(reference_run, tmp_path, tiny_backbone_dir):
    model, train = _configs(tiny_backbone_dir)
    train_run(reference_run.table, tmp_path / "again", model, train, progress=False)
    assert _history(tmp_path / "again") == _history(reference_run.run)
    a = pd.read_parquet(reference_run.run / "predictions.parquet")
    b = pd.read_parquet(tmp_path / "again" / "predictions.parquet")
    pd.testing.assert_frame_equal(a, b)


class _CtrlCAt(Callback):
    """Send ourselves SIGINT (what Ctrl-C does) after a given batch of a given epoch."""

    def __init__(self, epoch: int, batch: int):
        self.epoch, self.batch = epoch, batch

    def on_batch_end(self, state):
        if state.epoch == self.epoch and state.step_in_epoch == self.batch:
            os.kill(os.getpid(), signal.SIGINT)


def test_ctrl_c_saves_state_and_resume_matches_uninterrupted_run(reference_run, tmp_path, tiny_backbone_dir):
    model, train = _configs(tiny_backbone_dir)
    run = tmp_path / "interrupted"
    with pytest.raises(TrainingInterrupted) as caught:
        train_run(reference_run.table, run, model, train, progress=False, callbacks=[_CtrlCAt(epoch=1, batch=3)])
    assert caught.value.checkpoint == run / "checkpoint"
    state = json.loads((run / "checkpoint" / "state.json").read_text())
    assert (state["epoch"], state["step_in_epoch"]) == (1, 3)  # one epoch done, three batches into the next
    assert len(_history(run)) == 1 and not (run / "predictions.parquet").exists()

    summary = train_run(None, run, resume=True, progress=False)
    assert summary.epochs_run == 3
    assert _history(run) == _history(reference_run.run)
    pd.testing.assert_frame_equal(pd.read_parquet(run / "predictions.parquet"),
                                  pd.read_parquet(reference_run.run / "predictions.parquet"))


def test_ctrl_c_on_the_last_batch_finishes_the_epoch_first(reference_run, tmp_path, tiny_backbone_dir):
    model, train = _configs(tiny_backbone_dir)
    run = tmp_path / "r"
    steps = json.loads((reference_run.run / "checkpoint" / "state.json").read_text())["steps_per_epoch"]
    with pytest.raises(TrainingInterrupted):
        train_run(reference_run.table, run, model, train, progress=False, callbacks=[_CtrlCAt(epoch=1, batch=steps)])
    state = json.loads((run / "checkpoint" / "state.json").read_text())
    assert (state["epoch"], state["step_in_epoch"]) == (2, 0)
    assert len(_history(run)) == 2
    train_run(None, run, resume=True, progress=False)
    pd.testing.assert_frame_equal(pd.read_parquet(run / "predictions.parquet"),
                                  pd.read_parquet(reference_run.run / "predictions.parquet"))


def _interrupted_run(reference_run, tmp_path, backbone):
    model, train = _configs(backbone, epochs=2)
    run = tmp_path / "broken"
    with pytest.raises(TrainingInterrupted):
        train_run(reference_run.table, run, model, train, progress=False, callbacks=[_CtrlCAt(epoch=0, batch=2)])
    return run


def test_resume_refuses_corrupt_checkpoint(reference_run, tmp_path, tiny_backbone_dir):
    run = _interrupted_run(reference_run, tmp_path, tiny_backbone_dir)
    weights = run / "checkpoint" / "trainable.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(AlfiaError, match=r"trainable\.safetensors: corrupt checkpoint weights"):
        train_run(None, run, resume=True, progress=False)


def test_resume_refuses_corrupt_optimizer_state(reference_run, tmp_path, tiny_backbone_dir):
    run = _interrupted_run(reference_run, tmp_path, tiny_backbone_dir)
    (run / "checkpoint" / "optimizer.pt").write_bytes(b"not a torch file")
    with pytest.raises(AlfiaError, match=r"optimizer\.pt: corrupt or mismatched optimizer state"):
        train_run(None, run, resume=True, progress=False)


def test_resume_refuses_checkpoint_of_another_model(reference_run, tmp_path, tiny_backbone_dir):
    run = _interrupted_run(reference_run, tmp_path, tiny_backbone_dir)
    config = json.loads((run / "config.json").read_text())
    config["model"]["lora"]["r"] = 4  # the run now describes a different model than its checkpoint
    (run / "config.json").write_text(json.dumps(config))
    with pytest.raises(AlfiaError, match=r"checkpoint belongs to a different run \(model differs"):
        train_run(None, run, resume=True, progress=False)


def test_resume_refuses_changed_data(reference_run, tmp_path, tiny_backbone_dir):
    model, train = _configs(tiny_backbone_dir, epochs=1)
    table = write_text_table(make_text_frame(), tmp_path / "text.parquet")
    run = tmp_path / "run"
    with pytest.raises(TrainingInterrupted):
        train_run(table, run, model, train, progress=False, callbacks=[_CtrlCAt(epoch=0, batch=1)])
    write_text_table(make_text_frame(seed=5), table)
    with pytest.raises(AlfiaError, match=r"changed since .* was started \(SHA-256 differs\)"):
        train_run(None, run, resume=True, progress=False)


def test_existing_run_is_never_overwritten(reference_run, tiny_backbone_dir):
    model, train = _configs(tiny_backbone_dir)
    before = (reference_run.run / "predictions.parquet").read_bytes()
    with pytest.raises(AlfiaError, match=r"already holds a run .* --resume"):
        train_run(reference_run.table, reference_run.run, model, train, progress=False)
    assert (reference_run.run / "predictions.parquet").read_bytes() == before


def test_fusion_layers_deeper_than_backbone_is_refused(reference_run, tmp_path, tiny_backbone_dir):
    model, train = _configs(tiny_backbone_dir)
    model.n_fusion_layers = 3  # the tiny BERT has 2 layers
    with pytest.raises(AlfiaError, match=r"n_fusion_layers=3 is greater than the backbone's depth \(2"):
        train_run(reference_run.table, tmp_path / "deep", model, train, progress=False)


@pytest.mark.parametrize("edit, message", [
    (lambda df: df.drop(columns="text"), r"no 'text' column"),
    (lambda df: df.assign(text=df["text"].where(df.index != 4, "")), r"column 'text' is empty at row 4 \(stay_id=1004\)"),
    (lambda df: df.assign(hospital_expire_flag=df["hospital_expire_flag"].astype(float).where(df.index != 7)),
     r"missing \(NaN\).*row 7 \(stay_id=1007\)"),
    (lambda df: df.assign(hospital_expire_flag=df["hospital_expire_flag"].where(df.index != 9, 3)),
     r"must be 0 or 1, got 3 at row 9 \(stay_id=1009\)"),
])
def test_bad_text_tables_are_refused_before_anything_is_written(tmp_path, tiny_backbone_dir, edit, message):
    table = write_text_table(edit(make_text_frame()), tmp_path / "bad.parquet")
    model, train = _configs(tiny_backbone_dir)
    with pytest.raises(AlfiaError, match=r"bad\.parquet.*" + message):
        train_run(table, tmp_path / "run", model, train, progress=False)
    assert not (tmp_path / "run").exists()


def test_early_stopping_counts_epochs_since_the_best():
    stopper = EarlyStopping(patience=2)
    state = SimpleNamespace(epoch=2, best_epoch=1, stop=False)
    stopper.on_epoch_end(state, {})
    assert not state.stop
    state.epoch = 3
    stopper.on_epoch_end(state, {})
    assert state.stop


def test_auto_pos_weight_is_negatives_over_positives():
    labels = np.array([0, 0, 0, 1])
    assert resolve_pos_weight(TrainConfig(pos_weight="auto"), labels) == 3.0
    assert resolve_pos_weight(TrainConfig(pos_weight=2.5), labels) == 2.5
    assert resolve_pos_weight(TrainConfig(), labels) is None
    with pytest.raises(AlfiaError, match="pos_weight"):
        TrainConfig(pos_weight="heavy")


def test_progress_in_a_log_file_is_plain_throttled_lines(tmp_path, tiny_backbone_dir):
    # Under nohup or a batch job the console is no terminal: a live bar would print nothing for a whole epoch.
    import io
    import re

    from rich.console import Console

    log = io.StringIO()
    model, train = _configs(tiny_backbone_dir, epochs=2)
    table = write_text_table(make_text_frame(), tmp_path / "text.parquet")
    train_run(table, tmp_path / "run", model, train, console=Console(file=log, force_terminal=False, width=200))
    text = log.getvalue()
    assert "\x1b[" not in text  # no terminal control codes in the log
    # Throttled to one line every LOG_EVERY_S seconds: a seconds-long epoch logs no batch line, only its summary.
    assert not re.findall(r"epoch \d/2, train loss [\d.-]+: \d+/\d+ batches", text)
    assert len(re.findall(r"^estimate: [\d.]+ s per batch of 8, so ~\d+:\d\d per epoch", text, re.M)) == 1
    assert len(re.findall(r"val AUPRC \d\.\d{4}", text)) == 2
