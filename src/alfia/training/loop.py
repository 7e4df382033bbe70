"""The functional core: ``train(model, train_data, val_data, config, callbacks)``.

Loss: BCE with logits (optional ``pos_weight``). Optimiser: AdamW. Schedule: linear warmup then linear
decay. Gradient clipping by global norm. After every epoch the validation AUPRC is the monitored score;
the best state is kept (in memory and, through callbacks, on disk) and restored at the end. Everything
the loop knows lives in one ``TrainState`` that callbacks read and that ``alfia.training.resume`` saves.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from scipy.special import expit
from sklearn.metrics import average_precision_score, roc_auc_score
from transformers import get_linear_schedule_with_warmup

from alfia.errors import AlfiaError
from alfia.runtime.batches import TokenizedTexts, pad_token_id_of
from alfia.runtime.device import autocast_context, resolve_device, seed_everything, set_threads
from alfia.runtime.forward import predict_logits  # noqa: F401  (re-exported)
from alfia.training import distributed
from alfia.training.config import TrainConfig
from alfia.training.resume import load_checkpoint
from alfia.training.state import (  # noqa: F401  (re-exported: the loop's public names)
    Callback, TrainingInterrupted, TrainResult, TrainState, check_trainable_match, load_trainable_state,
    trainable_named_parameters, trainable_state,
)


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


def _learning_rates(optimizer) -> dict[str, float]:
    """The epoch record's rates: ``lr`` of the encoder's LoRA (or of the head when nothing else trains) and
    ``head_lr`` of the pooler + head."""
    rates = {g.get("name", "head"): float(g["lr"]) for g in optimizer.param_groups}
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


def validation_scores(labels: np.ndarray, probs: np.ndarray) -> tuple[float, float]:
    """AUPRC (average precision) and AUROC for the per-epoch monitor; NaN when a class is absent."""
    if len(np.unique(labels)) < 2:
        return float("nan"), float("nan")
    return float(average_precision_score(labels, probs)), float(roc_auc_score(labels, probs))


def train(model, train_data: TokenizedTexts, val_data: TokenizedTexts, config: TrainConfig,
          callbacks: Sequence[Callback] = (), *, resume: Any = None,
          resume_fingerprint: dict | None = None) -> TrainResult:
    """Train ``model`` (an ``AlfiaModel``) in place; on return it holds the best validation state.

    ``resume``: a checkpoint folder (``alfia.training.resume``) to continue from.
    """
    if train_data.labels is None or val_data.labels is None:
        raise AlfiaError("training and validation rows need labels")
    if len(train_data) == 0 or len(val_data) == 0:
        raise AlfiaError("training needs at least one training and one validation row")
    seed_everything(config.seed)
    world = distributed.world()  # torchrun's processes (alfia.training.distributed); one process: every hook is a no-op
    set_threads(distributed.threads(config.num_threads, world))
    device = resolve_device(distributed.rank_device(config.device, world))
    model.to(device)
    pad_id = pad_token_id_of(model.tokenizer)
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
    state = TrainState(model, optimizer, scheduler, config, steps_per_epoch)
    if resume is not None:
        load_checkpoint(resume, state, fingerprint=resume_fingerprint)
    trainable = list(trainable_named_parameters(model).values())
    step = distributed.Step(model, device, world, loss_fn, train_data)  # DDP-wrapped in a distributed run
    callbacks = distributed.rank_callbacks(callbacks, world)  # only rank 0 writes

    for cb in callbacks:
        cb.on_train_begin(state)
    with _InterruptGuard() as guard:
        def interrupt() -> None:
            state.interrupted = True
            for cb in callbacks:
                cb.on_interrupt(state)
            raise TrainingInterrupted(state.checkpoint_path)

        while state.epoch < config.epochs and not state.stop:
            sampler.set_epoch(state.epoch)
            model.train()
            started = time.perf_counter()
            for i, batch in enumerate(loader):
                if i < state.step_in_epoch:  # resumed mid-epoch: these batches were already trained on
                    continue
                with autocast_context(config.precision, device):
                    logits = step.forward(batch)
                loss, loss_sum, n = step.loss(batch, logits)  # n, loss_sum: the global batch's
                if not torch.isfinite(loss):
                    raise AlfiaError(f"training diverged: loss is {loss.item()} at epoch {state.epoch + 1}, "
                                     f"batch {i + 1}; lower the learning rate")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if config.grad_clip:
                    torch.nn.utils.clip_grad_norm_(trainable, config.grad_clip)
                optimizer.step()
                scheduler.step()
                state.last_batch_loss = loss_sum / n
                state.epoch_loss_sum += loss_sum
                state.epoch_rows += n
                state.step_in_epoch = i + 1
                state.global_step += 1
                for cb in callbacks:
                    cb.on_batch_end(state)
                if guard.requested and state.step_in_epoch < steps_per_epoch:  # else: finish the epoch first
                    state.epoch_seconds += time.perf_counter() - started
                    interrupt()

            val_logits = distributed.val_logits(model, val_data, world, batch_size=config.eval_batch_size,
                                                pad_token_id=pad_id, device=device, precision=config.precision)
            val_probs = expit(val_logits)
            auprc, auroc = validation_scores(val_data.labels, val_probs)
            val_loss = float(loss_fn(torch.as_tensor(val_logits, dtype=torch.float32, device=device),
                                     torch.as_tensor(val_data.labels, dtype=torch.float32, device=device)))
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
                **_learning_rates(optimizer),
                "seconds": round(state.epoch_seconds, 3),
            }
            # nan > best is False: an epoch with an undefined AUPRC never becomes the best one.
            score = auprc if not math.isnan(auprc) else -math.inf
            record["best"] = bool(score > state.best_score or state.best_state is None)
            if record["best"]:
                state.best_score, state.best_epoch = score, state.epoch + 1
                state.best_state = trainable_state(model)
                state.best_val_probs = val_probs
            state.history.append(record)
            state.epoch += 1
            state.step_in_epoch = 0
            state.epoch_loss_sum, state.epoch_rows, state.epoch_seconds = 0.0, 0, 0.0
            for cb in callbacks:
                cb.on_epoch_end(state, record)
            state.stop = distributed.agree(state.stop, world)  # rank 0 decides, every rank follows
            if guard.requested and state.epoch < config.epochs and not state.stop:
                interrupt()

    if state.best_state is not None:
        load_trainable_state(model, state.best_state, "best state")
    for cb in callbacks:
        cb.on_train_end(state)
    return TrainResult(state.best_epoch, state.best_score, state.history,
                       stopped_early=state.stop and state.epoch < config.epochs, best_val_probs=state.best_val_probs)
