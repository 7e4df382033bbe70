"""The one small loop that trains LeMoF's models over in-memory tensors (the tabular MLP, the fusion).

It drives the training package's state and callbacks (``alfia.training``: ``TrainState``, ``EarlyStopping``,
``JsonlHistory``, ``ProgressDisplay``) and its validation monitor (AUPRC, ``validation_scores``); the best
val-AUPRC state is restored at the end. Only the batches differ from the text loop: rows of cached tensors
instead of tokenised texts, so this file holds no more than that and can move into a shared loop.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields

import numpy as np
import torch
from scipy.special import expit

from alfia.errors import AlfiaError


@dataclass
class FitConfig:
    """How a model over cached tensors is optimised (AdamW, BCE, early stopping on val AUPRC)."""

    epochs: int = 60
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 1e-4
    patience: int = 8
    grad_clip: float = 1.0
    seed: int = 42
    threads: int | None = None

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "patience"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise AlfiaError(f"{name} must be an integer >= 1, got {getattr(self, name)!r}")
        if not self.lr > 0 or self.weight_decay < 0:
            raise AlfiaError(f"lr must be > 0 and weight_decay >= 0, got {self.lr!r}, {self.weight_decay!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict, source: str = "train config") -> "FitConfig":
        unknown = sorted(set(d) - {f.name for f in fields(cls)})
        if unknown:
            raise AlfiaError(f"{source}: unknown key(s) {', '.join(unknown)}")
        return cls(**d)


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
    from alfia.runtime.device import seed_everything, set_threads
    from alfia.training import TrainConfig, TrainResult, TrainState
    from alfia.training.loop import validation_scores
    from alfia.training.state import load_trainable_state, trainable_state

    if len(np.unique(val_y)) < 2 or len(np.unique(train_y)) < 2:
        raise AlfiaError("the train and val stays need both labels (events and non-events)")
    seed_everything(config.seed)
    set_threads(config.threads)
    y = torch.as_tensor(np.asarray(train_y), dtype=torch.float32)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.lr,
                                  weight_decay=config.weight_decay)
    steps = math.ceil(len(y) / config.batch_size)
    # The training package's state: its callbacks read the epoch, the best epoch and the history from it.
    state = TrainState(model, optimizer, None, TrainConfig(epochs=config.epochs, batch_size=config.batch_size,
                                                           lr=config.lr, seed=config.seed, patience=config.patience,
                                                           rows_per_epoch=None, head_epochs=0), steps)
    generator = torch.Generator().manual_seed(config.seed)
    bce = torch.nn.BCEWithLogitsLoss()
    for cb in callbacks:
        cb.on_train_begin(state)
    while state.epoch < config.epochs and not state.stop:
        started = time.perf_counter()
        model.train()
        order = torch.randperm(len(y), generator=generator)
        for i in range(steps):
            idx = order[i * config.batch_size:(i + 1) * config.batch_size]
            loss, _ = loss_fn(model, [x[idx] for x in train_inputs], y[idx])
            if not torch.isfinite(loss):
                raise AlfiaError(f"training diverged: loss is {loss.item()} at epoch {state.epoch + 1}; lower the lr")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            state.epoch_loss_sum += float(loss.detach()) * len(idx)
            state.epoch_rows += len(idx)
            state.step_in_epoch, state.global_step = i + 1, state.global_step + 1
            for cb in callbacks:
                cb.on_batch_end(state)
        val_logit = _logits(model, val_inputs, predict, 4 * config.batch_size)
        val_prob = expit(val_logit)
        auprc, auroc = validation_scores(np.asarray(val_y), val_prob)
        val_loss = float(bce(torch.as_tensor(val_logit), torch.as_tensor(np.asarray(val_y), dtype=torch.float64)))
        record = {"epoch": state.epoch + 1, "train_loss": state.epoch_loss_sum / max(state.epoch_rows, 1),
                  "val_loss": val_loss, "val_auprc": auprc, "val_auroc": auroc, "val_prob_sd": float(np.std(val_prob)),
                  "lr": config.lr, "seconds": round(time.perf_counter() - started, 3)}
        score = auprc if not math.isnan(auprc) else -math.inf
        record["best"] = bool(score > state.best_score or state.best_state is None)
        if record["best"]:
            state.best_score, state.best_epoch = score, state.epoch + 1
            state.best_state, state.best_val_probs = trainable_state(model), val_prob
        state.history.append(record)
        state.epoch += 1
        state.step_in_epoch, state.epoch_loss_sum, state.epoch_rows = 0, 0.0, 0
        for cb in callbacks:
            cb.on_epoch_end(state, record)
    load_trainable_state(model, state.best_state, "best state")
    model.eval()
    for cb in callbacks:
        cb.on_train_end(state)
    return TrainResult(state.best_epoch, state.best_score, state.history,
                       stopped_early=state.stop and state.epoch < config.epochs, best_val_probs=state.best_val_probs)


def predict_logits(model, inputs: Sequence[torch.Tensor], predict, batch_size: int = 1024) -> np.ndarray:
    """Eval-mode logits over in-memory inputs, batch by batch."""
    return _logits(model, inputs, predict, batch_size)
