"""The one training loop (alfia.training.loop.fit) with a model of its own: what a new model family relies on."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score, roc_auc_score

from alfia.errors import AlfiaError
from alfia.evaluation.metrics import discrimination
from alfia.training.callbacks import Checkpointing, EarlyStopping, JsonlHistory
from alfia.training.loop import LoopTask, fit, prepare_training
from alfia.training.resume import STATE_FILE
from alfia.training.state import Callback, TrainState


def _features(seed: int = 0, n: int = 120):
    rng = np.random.default_rng(seed)
    y = (np.arange(n) % 3 == 0).astype(np.float32)
    x = rng.normal(size=(n, 5)).astype(np.float32)
    x[:, 0] += 2.0 * y  # one informative feature, as a cached-feature fusion model would see
    return torch.from_numpy(x), torch.from_numpy(y)


def _run(epochs: int, callbacks=(), *, resume=None, fingerprint=None, lr: float = 0.05, data_seed: int = 0):
    """A logistic regression over features through the loop: its own model, batches and validation."""
    prepare_training(seed=7, num_threads=1, device="cpu")
    x, y = _features(data_seed)
    train_rows, val_rows = torch.arange(0, 80), torch.arange(80, 120)
    model = torch.nn.Linear(5, 1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)

    def batches(epoch):
        order = train_rows[torch.randperm(len(train_rows), generator=torch.Generator().manual_seed(epoch))]
        return [order[i:i + 16] for i in range(0, len(order), 16)]

    def forward(idx):
        return model(x[idx]).squeeze(-1), y[idx]

    def val_logits():
        model.eval()
        with torch.no_grad():
            return model(x[val_rows]).squeeze(-1).numpy()

    task = LoopTask(batches, forward, val_logits, y[val_rows].numpy(), torch.nn.BCEWithLogitsLoss(), grad_clip=1.0)
    state = TrainState(model, optimizer, None, None, steps_per_epoch=5, epochs=epochs)
    result = fit(state, task, callbacks, resume=resume, resume_fingerprint=fingerprint)
    return model, result


def test_a_model_of_its_own_trains_and_keeps_its_best_epoch(tmp_path):
    model, result = _run(6, [JsonlHistory(tmp_path / "history.jsonl")])
    history = [json.loads(line) for line in (tmp_path / "history.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == [1, 2, 3, 4, 5, 6] == [h["epoch"] for h in result.history]
    assert {"train_loss", "val_loss", "val_auprc", "val_auroc", "lr", "seconds", "best"} <= set(history[0])
    best = max(history, key=lambda h: h["val_auprc"])
    assert result.best_epoch == best["epoch"] and result.best_score == pytest.approx(best["val_auprc"])
    assert result.best_score > 0.8  # the planted feature
    x, y = _features()
    with torch.no_grad():  # the model returned holds the best epoch's weights
        prob = torch.sigmoid(model(x[80:]).squeeze(-1)).numpy()
    assert average_precision_score(y[80:].numpy(), prob) == pytest.approx(result.best_score)


def test_early_stopping_ends_training_after_patience_epochs_without_a_better_score():
    class NeverBetter(Callback):  # validation that never improves after epoch 1
        def on_epoch_end(self, state, record):
            state.best_epoch = 1

    _, result = _run(10, [NeverBetter(), EarlyStopping(patience=2)])
    assert len(result.history) == 3 and result.stopped_early


def test_resume_continues_to_the_uninterrupted_result_and_refuses_other_data(tmp_path):
    fingerprint = {"data_sha256": "abc", "model": "linear"}
    straight, _ = _run(4)
    _run(2, [Checkpointing(tmp_path / "checkpoint", fingerprint=fingerprint)])
    assert (tmp_path / "checkpoint" / STATE_FILE).exists()
    resumed, result = _run(4, resume=tmp_path / "checkpoint", fingerprint=fingerprint)
    assert [h["epoch"] for h in result.history] == [1, 2, 3, 4]
    for a, b in zip(straight.parameters(), resumed.parameters()):
        torch.testing.assert_close(a, b)
    with pytest.raises(AlfiaError, match="belongs to a different run \\(data_sha256 differs"):
        _run(4, resume=tmp_path / "checkpoint", fingerprint={**fingerprint, "data_sha256": "other"})


def test_a_checkpoint_without_a_fingerprint_is_refused(tmp_path):
    _run(1, [Checkpointing(tmp_path / "checkpoint", fingerprint={"data_sha256": "abc"})])
    meta_path = tmp_path / "checkpoint" / STATE_FILE
    meta = json.loads(meta_path.read_text())
    meta.pop("fingerprint")
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(AlfiaError, match="has no fingerprint"):
        _run(2, resume=tmp_path / "checkpoint", fingerprint={"data_sha256": "abc"})
    with pytest.raises(AlfiaError, match="needs a fingerprint"):
        Checkpointing(tmp_path / "c2", fingerprint={}).on_interrupt(None)


def test_a_diverging_loss_is_named():
    with pytest.raises(AlfiaError, match="training diverged: loss is (nan|inf) at epoch 1"):
        _run(2, lr=1e30)


def test_validation_scores_are_the_evaluation_metrics():
    rng = np.random.default_rng(3)
    y, p = rng.integers(0, 2, 200), np.round(rng.random(200), 2)  # ties included
    auprc, auroc = discrimination(y, p)
    assert auprc == pytest.approx(average_precision_score(y, p), abs=1e-12)
    assert auroc == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert all(np.isnan(discrimination([1, 1, 1], [0.1, 0.2, 0.3])))


def test_a_checkpoint_parked_by_an_interrupted_swap_is_found(tmp_path):
    from alfia.training.resume import checkpoint_dir_of

    _run(1, [Checkpointing(tmp_path / "checkpoint", fingerprint={"data_sha256": "abc"})])
    # A crash between the swap's two renames: the previous checkpoint waits in .checkpoint.*.old/checkpoint.
    parked = tmp_path / ".checkpoint.x1y2.old"
    parked.mkdir()
    (tmp_path / "checkpoint").rename(parked / "checkpoint")
    assert checkpoint_dir_of(tmp_path) == parked / "checkpoint"
    _, result = _run(2, resume=checkpoint_dir_of(tmp_path), fingerprint={"data_sha256": "abc"})
    assert [h["epoch"] for h in result.history] == [1, 2]
