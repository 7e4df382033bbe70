"""What a training run knows mid-flight, shared by the loop, its callbacks and resume (no import circle).

``TrainState`` holds everything the loop knows; callbacks read it; ``alfia.training.resume`` saves and
restores it. The parameter helpers copy, check and restore the trainable parameters of a model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from alfia.errors import AlfiaError


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during training; the state was saved (``checkpoint`` says where, if a callback saved it)."""

    def __init__(self, checkpoint=None):
        super().__init__("training interrupted")
        self.checkpoint = checkpoint


@dataclass
class TrainState:
    """Everything a run knows mid-training. Callbacks read it; resume saves and restores it."""

    model: Any
    optimizer: torch.optim.Optimizer
    scheduler: Any  # a torch LR scheduler stepped after every batch, or None (a constant learning rate)
    config: Any  # the caller's training config (TrainConfig for ALFIA, SeriesTrainConfig, ...), for callbacks
    steps_per_epoch: int
    epochs: int  # the most epochs this run trains
    epoch: int = 0  # epochs completed (the next epoch to run, 0-based)
    step_in_epoch: int = 0  # batches completed in the epoch in progress (non-zero only mid-epoch)
    global_step: int = 0
    epoch_loss_sum: float = 0.0  # sum of batch losses x batch size in the epoch in progress
    epoch_rows: int = 0
    epoch_seconds: float = 0.0
    last_train_seconds: float = 0.0  # the batches' seconds of the epoch last closed (its validation not included)
    history: list[dict] = field(default_factory=list)
    best_score: float = -math.inf
    best_epoch: int = 0  # 1-based epoch of the best score; 0 before any
    best_state: dict[str, torch.Tensor] | None = None
    best_val_probs: np.ndarray | None = None  # val probabilities of the best state (not checkpointed)
    stop: bool = False
    interrupted: bool = False
    last_batch_loss: float = float("nan")
    checkpoint_path: Any = None  # set by the checkpointing callback once it has saved


class Callback:
    """Hooks in LightGBM's spirit. Set ``state.stop = True`` to end training after this epoch."""

    def on_train_begin(self, state: TrainState) -> None: ...
    def on_batch_end(self, state: TrainState) -> None: ...
    def on_epoch_end(self, state: TrainState, record: dict) -> None: ...
    def on_interrupt(self, state: TrainState) -> None: ...
    def on_train_end(self, state: TrainState) -> None: ...


@dataclass
class TrainResult:
    best_epoch: int
    best_score: float
    history: list[dict]
    stopped_early: bool
    best_val_probs: np.ndarray | None = None


@dataclass
class EarlierPhase:
    """A phase that ran before this one in the same run (ALFIA's head warm start before the joint phase): its
    result and the trainable state it ended with. The checkpoint of the later phase keeps it, because a resumed
    run does not run that phase again but still needs its records and, if it scored best, its state."""

    result: TrainResult
    state: dict[str, torch.Tensor]


def trainable_named_parameters(model) -> dict[str, torch.nn.Parameter]:
    return {n: p for n, p in model.named_parameters() if p.requires_grad}


def trainable_state(model) -> dict[str, torch.Tensor]:
    """A detached CPU copy of the parameters that training changes."""
    return {n: p.detach().to("cpu", copy=True) for n, p in trainable_named_parameters(model).items()}


def check_trainable_match(model, tensors: dict[str, torch.Tensor], source: str) -> None:
    """Refuse saved tensors whose names or shapes differ from the model's trainable parameters."""
    params = trainable_named_parameters(model)
    missing = sorted(set(params) - set(tensors))
    unexpected = sorted(set(tensors) - set(params))
    if missing or unexpected:
        detail = (f"missing {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}; " if missing else "") + \
                 (f"unexpected {', '.join(unexpected[:3])}{' ...' if len(unexpected) > 3 else ''}" if unexpected else "")
        raise AlfiaError(f"{source}: checkpoint does not match this model ({detail.strip('; ')})")
    for name, p in params.items():
        if tuple(tensors[name].shape) != tuple(p.shape):
            raise AlfiaError(f"{source}: checkpoint does not match this model (parameter {name} has shape "
                             f"{tuple(tensors[name].shape)}, the model expects {tuple(p.shape)})")


def load_trainable_state(model, tensors: dict[str, torch.Tensor], source: str) -> None:
    check_trainable_match(model, tensors, source)
    params = trainable_named_parameters(model)
    with torch.no_grad():
        for name, p in params.items():
            p.copy_(tensors[name].to(p.device, dtype=p.dtype))
