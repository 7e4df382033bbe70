"""LeMoF's models over in-memory tensors (the tabular MLP, the fusion), trained by the one training loop.

``fit`` hands ``alfia.training.loop.fit`` a ``TrainState`` and a ``LoopTask`` whose batches are rows of cached
tensors (a seeded permutation per epoch) instead of tokenised texts; the loop, its callbacks (``EarlyStopping``,
``JsonlHistory``, ``ProgressDisplay``), its validation monitor (AUPRC, ``alfia.evaluation.metrics``) and the
restoring of the best val-AUPRC state are the ones ALFIA and the series models train with.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from alfia.config_base import JsonConfig, require
from alfia.errors import AlfiaError


@dataclass
class FitConfig(JsonConfig):
    """How a model over cached tensors is optimised (AdamW, BCE, early stopping on val AUPRC)."""

    config_name = "train config"

    epochs: int = 60
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 1e-4
    patience: int = 8
    grad_clip: float = 1.0
    seed: int = 42
    threads: int | None = None

    def validate(self) -> None:
        for name in ("epochs", "batch_size", "patience"):
            require(getattr(self, name) >= 1, f"{name} must be an integer >= 1, got {getattr(self, name)!r}")
        require(self.lr > 0 and self.weight_decay >= 0,
                f"lr must be > 0 and weight_decay >= 0, got {self.lr!r}, {self.weight_decay!r}")


# (model, batch inputs, batch labels) -> (loss to minimise, the logit that is monitored)
LossFn = Callable[[torch.nn.Module, Sequence[torch.Tensor], torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def _logits(model, inputs: Sequence[torch.Tensor], predict, batch_size: int) -> np.ndarray:
    model.eval()
    with torch.no_grad():
        out = [predict(model, [x[i:i + batch_size] for x in inputs]).float()
               for i in range(0, len(inputs[0]), batch_size)]
    return torch.cat(out).numpy().astype(np.float64)


def fit(model: torch.nn.Module, train_inputs: Sequence[torch.Tensor], train_y: np.ndarray,
        val_inputs: Sequence[torch.Tensor], val_y: np.ndarray, config: FitConfig, *, loss_fn: LossFn,
        predict: Callable[[torch.nn.Module, Sequence[torch.Tensor]], torch.Tensor], callbacks=()):
    """Train ``model`` in place (on return it holds the best val-AUPRC state); returns the TrainResult."""
    from alfia.training import TrainState
    from alfia.training.loop import LoopTask, fit as loop_fit, prepare_training

    if len(np.unique(val_y)) < 2 or len(np.unique(train_y)) < 2:
        raise AlfiaError("the train and val stays need both labels (events and non-events)")
    prepare_training(config.seed, config.threads, "cpu")
    y = torch.as_tensor(np.asarray(train_y), dtype=torch.float32)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.lr,
                                  weight_decay=config.weight_decay)
    steps = math.ceil(len(y) / config.batch_size)
    state = TrainState(model, optimizer, None, config, steps, config.epochs)

    def batches(epoch: int):
        # The same permutation for an epoch on every call (the loop's contract), different across epochs.
        order = torch.randperm(len(y), generator=torch.Generator().manual_seed(config.seed + epoch))
        return [order[i * config.batch_size:(i + 1) * config.batch_size] for i in range(steps)]

    def train_loss(idx):
        loss, _ = loss_fn(model, [x[idx] for x in train_inputs], y[idx])
        return loss, float(loss.detach()) * len(idx), len(idx)

    task = LoopTask(batches=batches, forward=lambda idx: (predict(model, [x[idx] for x in train_inputs]), y[idx]),
                    val_logits=lambda: _logits(model, val_inputs, predict, 4 * config.batch_size),
                    val_labels=np.asarray(val_y), loss_fn=torch.nn.BCEWithLogitsLoss(),
                    grad_clip=config.grad_clip or None, train_loss=train_loss)
    result = loop_fit(state, task, callbacks)
    model.eval()
    return result


def predict_logits(model, inputs: Sequence[torch.Tensor], predict, batch_size: int = 1024) -> np.ndarray:
    """Eval-mode logits over in-memory inputs, batch by batch."""
    return _logits(model, inputs, predict, batch_size)
