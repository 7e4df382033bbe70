"""The one training loop: :func:`fit`, over any model family's batches; :func:`train` runs it for ALFIA.

``fit(state, task, callbacks)`` is the loop every model trains with: ALFIA (``train`` below, over token ids or
cached encoder states), the series models (``alfia.series.train``) and any model to come (e.g. a fusion model
over cached features). A caller brings

- a :class:`TrainState` (``alfia.training.state``): its model, optimiser, scheduler (or None), config,
  ``steps_per_epoch`` and ``epochs``; and
- a :class:`LoopTask`: ``batches(epoch)`` (that epoch's training batches, the same ones in the same order on every
  call, so a resumed epoch can skip the batches it trained), ``forward(batch) -> (logits, labels)`` (one logit per
  row, labels as float, on the loss's device; the model is in train mode), ``val_logits()`` (the validation rows'
  logits, computed in eval mode), ``val_labels``, the ``loss_fn`` (``BCEWithLogitsLoss``, also the validation
  loss) and ``grad_clip``;

and callbacks (``alfia.training.callbacks``: ``EarlyStopping``, ``JsonlHistory``, ``Checkpointing``,
``ProgressDisplay``, or its own). ``resume=`` a checkpoint folder continues a run; its fingerprint must match
the caller's, which names the data (SHA-256) and the settings. :func:`prepare_training` seeds, sets the threads
(``machine.resolve_jobs``) and picks the device, the same way for every caller.

Each epoch: :func:`run_epoch` (the batches: loss, finite-loss check, backward, clipping, optimiser and scheduler
steps), :func:`close_epoch` (validation AUPRC and AUROC from ``alfia.evaluation.metrics``, the epoch record, the
best state), the callbacks' ``on_epoch_end``, then :func:`stop_decided`, the one place the early-stopping decision
is read (a distributed run agrees on it there). The validation AUPRC is the monitored score; the best state is
kept (in memory and, through callbacks, on disk) and restored at the end.

ALFIA's loss is BCE with logits (optional ``pos_weight``), its optimiser AdamW with two learning rates (head and
encoder), its schedule a linear warmup then linear decay, its gradients clipped by global norm.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy.special import expit
from transformers import get_linear_schedule_with_warmup

from alfia.errors import AlfiaError
from alfia.evaluation.metrics import discrimination
from alfia.runtime.batches import TokenizedTexts, pad_token_id_of
from alfia.runtime.device import autocast_context, resolve_device, seed_everything, set_threads
from alfia.runtime.forward import predict_logits
from alfia.training import distributed
from alfia.training.config import TrainConfig
from alfia.training.resume import load_checkpoint
from alfia.training.state import (  # noqa: F401  (re-exported: the loop's public names)
    Callback, TrainingInterrupted, TrainResult, TrainState, check_trainable_match, load_trainable_state,
    trainable_named_parameters, trainable_state,
)


@dataclass
class LoopTask:
    """What a model family hands :func:`fit` (see the module's docstring)."""

    batches: Callable[[int], Iterable[Any]]  # epoch (0-based) -> that epoch's training batches, always the same
    forward: Callable[[Any], tuple[torch.Tensor, torch.Tensor]]  # batch -> (logits (B,), float labels (B,))
    val_logits: Callable[[], np.ndarray]  # the validation rows' logits (N_val,), in eval mode
    val_labels: np.ndarray  # (N_val,) 0/1
    loss_fn: torch.nn.Module  # BCEWithLogitsLoss on the training device; also the validation loss
    grad_clip: float | None = None  # global-norm clipping of the trainable parameters (None or 0: none)
    # batch -> (the loss to minimise, the batch's loss sum, its rows) where the training loss is more than BCE on
    # one logit of this process's rows: LeMoF adds its modality heads' losses, a distributed run reports the
    # global batch (alfia.training.distributed.Step). None: ``loss_fn(*forward(batch))``.
    train_loss: Callable[[Any], tuple[torch.Tensor, float, int]] | None = None
    # The early-stopping decision made once and shared (a distributed run: rank 0's, broadcast); None: as is.
    agree_stop: Callable[[bool], bool] | None = None


def prepare_training(seed: int, num_threads: int | None, device: str) -> torch.device:
    """Seed every generator, set torch's threads (``machine.resolve_jobs``: None = the machine's cores) and
    resolve the device: what every training does before it builds its model."""
    seed_everything(seed)
    set_threads(num_threads)
    return resolve_device(device)


def _learning_rates(optimizer) -> dict[str, float]:
    """The epoch record's rates: ``lr`` of the encoder's LoRA (or of the head when nothing else trains) and
    ``head_lr`` of the pooler + head; an optimiser whose groups have no names has one ``lr``."""
    rates = {g.get("name"): float(g["lr"]) for g in optimizer.param_groups}
    if None in rates:
        return {"lr": rates[None]}
    return {"lr": rates.get("encoder", rates.get("head")), "head_lr": rates.get("head", rates.get("encoder"))}


class _InterruptGuard:
    """Turn the first Ctrl-C into a flag the loop checks between batches, so the state saved is whole.

    A second Ctrl-C raises at once.
    """

    def __init__(self):
        self.requested = False
        self._previous = None

    def _handler(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False


def fit(state: TrainState, task: LoopTask, callbacks: Sequence[Callback] = (), *, resume: Any = None,
        resume_fingerprint: dict | None = None) -> TrainResult:
    """Train ``state.model`` in place for up to ``state.epochs`` epochs; on return it holds the best validation
    state (see the module's docstring for ``task``). ``resume``: a checkpoint folder to continue from, whose
    fingerprint must equal ``resume_fingerprint``."""
    if resume is not None:
        load_checkpoint(resume, state, fingerprint=resume_fingerprint)
    trainable = list(trainable_named_parameters(state.model).values())
    if not trainable:
        raise AlfiaError("the model has no trainable parameters")
    for cb in callbacks:
        cb.on_train_begin(state)
    with _InterruptGuard() as guard:
        while state.epoch < state.epochs and not state.stop:
            started = time.perf_counter()
            run_epoch(state, task, trainable, callbacks, guard, started)
            record = close_epoch(state, task, started)
            for cb in callbacks:
                cb.on_epoch_end(state, record)
            state.stop = stop_decided(state, task)
            if guard.requested and state.epoch < state.epochs and not state.stop:
                _interrupt(state, callbacks)

    if state.best_state is not None:
        load_trainable_state(state.model, state.best_state, "best state")
    for cb in callbacks:
        cb.on_train_end(state)
    return TrainResult(state.best_epoch, state.best_score, state.history,
                       stopped_early=state.stop and state.epoch < state.epochs, best_val_probs=state.best_val_probs)


def _interrupt(state: TrainState, callbacks: Sequence[Callback]) -> None:
    state.interrupted = True
    for cb in callbacks:
        cb.on_interrupt(state)
    raise TrainingInterrupted(state.checkpoint_path)


def run_epoch(state: TrainState, task: LoopTask, trainable: list[torch.nn.Parameter],
              callbacks: Sequence[Callback], guard: _InterruptGuard, started: float) -> None:
    """The training batches of epoch ``state.epoch`` (after a resume mid-epoch: those not yet trained)."""
    state.model.train()
    for i, batch in enumerate(task.batches(state.epoch)):
        if i < state.step_in_epoch:  # resumed mid-epoch: these batches were already trained on
            continue
        if task.train_loss is not None:
            loss, loss_sum, n = task.train_loss(batch)
        else:
            logits, labels = task.forward(batch)
            loss = task.loss_fn(logits.float().reshape(-1), labels)
            loss_sum, n = None, len(labels)
        if not torch.isfinite(loss):
            raise AlfiaError(f"training diverged: loss is {loss.item()} at epoch {state.epoch + 1}, "
                             f"batch {i + 1}; lower the learning rate")
        state.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if task.grad_clip:
            torch.nn.utils.clip_grad_norm_(trainable, task.grad_clip)
        state.optimizer.step()
        if state.scheduler is not None:
            state.scheduler.step()
        loss_sum = float(loss.item()) * n if loss_sum is None else loss_sum
        state.last_batch_loss = loss_sum / max(n, 1)
        state.epoch_loss_sum += loss_sum
        state.epoch_rows += n
        state.step_in_epoch = i + 1
        state.global_step += 1
        for cb in callbacks:
            cb.on_batch_end(state)
        if guard.requested and state.step_in_epoch < state.steps_per_epoch:  # else: finish the epoch first
            state.epoch_seconds += time.perf_counter() - started
            _interrupt(state, callbacks)


def close_epoch(state: TrainState, task: LoopTask, started: float) -> dict:
    """Validate the epoch just trained, keep the best state, and return the epoch's record (history.jsonl)."""
    state.last_train_seconds = state.epoch_seconds + time.perf_counter() - started
    val_logits = np.asarray(task.val_logits(), dtype=np.float64)
    val_probs = expit(val_logits)
    auprc, auroc = discrimination(task.val_labels, val_probs)
    device = next(iter(trainable_named_parameters(state.model).values())).device
    with torch.no_grad():
        val_loss = float(task.loss_fn(torch.as_tensor(val_logits, dtype=torch.float32, device=device),
                                      torch.as_tensor(task.val_labels, dtype=torch.float32, device=device)))
    state.epoch_seconds += time.perf_counter() - started
    record = {
        "epoch": state.epoch + 1,
        "train_loss": state.epoch_loss_sum / max(state.epoch_rows, 1),
        "train_rows": state.epoch_rows,  # every training row once per epoch (rows_per_epoch: that many)
        "val_loss": val_loss,
        "val_auprc": auprc,
        "val_auroc": auroc,
        # Spread of the val probabilities across patients: 0 is the collapse of issue 10.
        "val_prob_sd": float(np.std(val_probs)),
        **_learning_rates(state.optimizer),
        "seconds": round(state.epoch_seconds, 3),
    }
    # nan > best is False: an epoch with an undefined AUPRC never becomes the best one.
    score = auprc if not math.isnan(auprc) else -math.inf
    record["best"] = bool(score > state.best_score or state.best_state is None)
    if record["best"]:
        state.best_score, state.best_epoch = score, state.epoch + 1
        state.best_state = trainable_state(state.model)
        state.best_val_probs = val_probs
    state.history.append(record)
    state.epoch += 1
    state.step_in_epoch = 0
    state.epoch_loss_sum, state.epoch_rows, state.epoch_seconds = 0.0, 0, 0.0
    return record


def stop_decided(state: TrainState, task: LoopTask) -> bool:
    """Whether training ends after this epoch: what the callbacks decided (``EarlyStopping`` sets
    ``state.stop``). The one place the decision is read; a distributed run agrees on it here (``agree_stop``)."""
    return bool(state.stop) if task.agree_stop is None else bool(task.agree_stop(bool(state.stop)))


# --- ALFIA: text (or cached encoder states) in, the loop above -----------------------------------------

def resolve_pos_weight(config: TrainConfig, labels: np.ndarray) -> float | None:
    if config.pos_weight is None:
        return None
    if config.pos_weight == "auto":
        pos = int(labels.sum())
        if pos == 0:
            raise AlfiaError("pos_weight='auto': the training rows hold no positive label")
        return float((len(labels) - pos) / pos)
    return float(config.pos_weight)


_NEW_MODULES = ("pooler.", "head.")  # the freshly initialised ALF + ACH, as opposed to the encoder's LoRA


def _optimizer(model, config: TrainConfig) -> torch.optim.Optimizer:
    params = trainable_named_parameters(model)
    if not params:
        raise AlfiaError("the model has no trainable parameters")
    # Two learning rates: the new pooler + head (``head_lr``) and the encoder's LoRA/weights (``lr``).
    # Biases and normalisation weights are not decayed (standard AdamW practice for transformers).
    groups = []
    for new_module, lr in ((True, config.head_lr_value), (False, config.lr)):
        members = {n: p for n, p in params.items() if n.startswith(_NEW_MODULES) == new_module}
        name = "head" if new_module else "encoder"
        groups += [{"params": [p for p in members.values() if p.ndim >= 2], "weight_decay": config.weight_decay,
                    "lr": lr, "name": name},
                   {"params": [p for p in members.values() if p.ndim < 2], "weight_decay": 0.0, "lr": lr, "name": name}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=config.lr)


def train(model, train_data: TokenizedTexts, val_data: TokenizedTexts, config: TrainConfig,
          callbacks: Sequence[Callback] = (), *, resume: Any = None,
          resume_fingerprint: dict | None = None) -> TrainResult:
    """Train ``model`` (an ``AlfiaModel``) in place with :func:`fit`; on return it holds the best validation state.

    ``train_data`` / ``val_data``: token ids (``TokenizedTexts``) or cached encoder states (``FrozenStates``).
    ``resume``: a checkpoint folder (``alfia.training.resume``) to continue from.
    """
    if train_data.labels is None or val_data.labels is None:
        raise AlfiaError("training and validation rows need labels")
    if len(train_data) == 0 or len(val_data) == 0:
        raise AlfiaError("training needs at least one training and one validation row")
    world = distributed.world()  # torchrun's processes (alfia.training.distributed); one process: every hook is a no-op
    device = prepare_training(config.seed, distributed.threads(config.num_threads, world),
                              distributed.rank_device(config.device, world))
    model.to(device)
    pad_id = pad_token_id_of(model.tokenizer)
    # One process: the length-bucketed loader; under torchrun each rank takes its shard of the same global batches.
    loader, sampler = distributed.train_loader(train_data, config.batch_size, pad_id, world, seed=config.seed,
                                               bucket_size=config.bucket_size, num_workers=config.num_workers,
                                               rows_per_epoch=config.rows_per_epoch)
    steps_per_epoch = len(sampler)
    total_steps = steps_per_epoch * config.epochs
    optimizer = _optimizer(model, config)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(config.warmup_ratio * total_steps), total_steps)
    pos_weight = resolve_pos_weight(config, train_data.labels)
    loss_fn = torch.nn.BCEWithLogitsLoss(
        pos_weight=None if pos_weight is None else torch.tensor(pos_weight, device=device))
    step = distributed.Step(model, device, world, loss_fn, train_data)  # DDP-wrapped in a distributed run
    callbacks = distributed.rank_callbacks(callbacks, world)  # only rank 0 writes

    def batches(epoch: int):
        sampler.set_epoch(epoch)
        return loader

    def forward(batch) -> tuple[torch.Tensor, torch.Tensor]:
        with autocast_context(config.precision, device):
            logits = step.forward(batch)
        return logits, batch["labels"].to(device)

    def train_loss(batch) -> tuple[torch.Tensor, float, int]:
        logits, _ = forward(batch)
        return step.loss(batch, logits)  # the loss sum and rows of the global batch

    def val_logits() -> np.ndarray:
        # every rank's share of the val rows, gathered: the metric is the whole val split's
        return distributed.val_logits(model, val_data, world, batch_size=config.eval_batch_size,
                                      pad_token_id=pad_id, device=device, precision=config.precision)

    task = LoopTask(batches, forward, val_logits, val_data.labels, loss_fn, grad_clip=config.grad_clip,
                    train_loss=train_loss, agree_stop=lambda stop: distributed.agree(stop, world))
    state = TrainState(model, optimizer, scheduler, config, steps_per_epoch, config.epochs)
    return fit(state, task, callbacks, resume=resume, resume_fingerprint=resume_fingerprint)
