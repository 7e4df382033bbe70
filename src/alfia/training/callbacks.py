"""Callbacks for ``alfia.training.loop.train``: early stopping, JSONL history, progress, checkpoints."""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

from rich.console import Console

from alfia.atomic import write_text_atomic
from alfia.progress import LOG_EVERY_S, duration, make_console, step
from alfia.training.resume import save_checkpoint
from alfia.training.state import Callback, EarlierPhase, TrainState


class EarlyStopping(Callback):
    """Stop when the validation AUPRC has not improved for ``patience`` epochs (paper §2.4: 5)."""

    def __init__(self, patience: int = 5):
        self.patience = int(patience)

    def on_epoch_end(self, state: TrainState, record: dict) -> None:
        if state.epoch - state.best_epoch >= self.patience:
            state.stop = True


class JsonlHistory(Callback):
    """``history.jsonl``: one JSON object per epoch (epoch, train_loss, val_auprc, val_auroc, lr, seconds).

    The whole file is rewritten atomically from the state's history each epoch, so after a resume it
    holds exactly the epochs the run has completed, never a duplicate or a torn line.
    """

    def __init__(self, path: str | os.PathLike, *, phase: str | None = None, earlier: list[dict] = ()):
        self.path = Path(path)
        self.phase = phase  # tags each record ("head": warm start on cached states, "joint": with LoRA)
        self.earlier = list(earlier)  # records of an earlier phase, kept at the top of the file

    def _write(self, state: TrainState) -> None:
        lines = "".join(json.dumps(_finite(r)) + "\n" for r in [*self.earlier, *state.history])
        write_text_atomic(self.path, lines)

    def on_train_begin(self, state: TrainState) -> None:
        self._write(state)

    def on_epoch_end(self, state: TrainState, record: dict) -> None:
        if self.phase is not None:
            record["phase"] = self.phase
        self._write(state)


def _finite(record: dict) -> dict:
    # JSON has no NaN; an undefined AUPRC (one class only in validation) is written as null.
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in record.items()}


class ProgressDisplay(Callback):
    """The batches of each epoch as an ``alfia.progress`` step (a bar in a terminal, a line every
    ``log_every_s`` seconds in a log), one summary line per epoch, and, after the first few batches, an
    estimate of the whole training (``ESTIMATE_BATCHES``)."""

    def __init__(self, console: Console | None = None, *, enabled: bool = True, log_every_s: float = LOG_EVERY_S):
        self.console = console or make_console(stderr=True)
        self.enabled = enabled
        self.log_every_s = float(log_every_s)
        self._steps = self._step = None
        self._estimate = _TrainingEstimate()

    def on_train_begin(self, state: TrainState) -> None:
        if self.enabled:
            self._estimate = _TrainingEstimate()
            self._new_step(state)

    @staticmethod
    def _description(state: TrainState, loss: str = "-") -> str:
        return f"epoch {state.epoch + 1}/{state.epochs}, train loss {loss}"

    def _new_step(self, state: TrainState) -> None:
        self._close()
        self._steps = step(self._description(state), state.steps_per_epoch, console=self.console, unit="batches",
                           log_every_s=self.log_every_s, announce=False)
        self._step = self._steps.__enter__()
        self._step.completed = state.step_in_epoch  # a resumed epoch starts part-way

    def on_batch_end(self, state: TrainState) -> None:
        if not self.enabled:
            return
        line = self._estimate.on_batch(state)
        if line:
            self.console.print(line, highlight=False)
        loss = f"{state.epoch_loss_sum / max(state.epoch_rows, 1):.4f}"
        if self._step is not None:
            self._step.update(completed=state.step_in_epoch, description=self._description(state, loss))

    def on_epoch_end(self, state: TrainState, record: dict) -> None:
        if not self.enabled:
            return
        self._close()
        mark = " [green]best[/]" if record.get("best") else ""
        self.console.print(
            f"epoch {record['epoch']:>3}  train loss {record['train_loss']:.4f}  val loss {record['val_loss']:.4f}  "
            f"val AUPRC {record['val_auprc']:.4f}  val AUROC {record['val_auroc']:.4f}  "
            f"lr {record['lr']:.2e}  {record['seconds']:.0f}s{mark}", highlight=False)
        if state.epoch < state.epochs and not state.stop:
            self._new_step(state)

    def _close(self) -> None:
        if self._step is not None:
            self._step.quiet_end = True  # the epoch's line says it
            self._steps.__exit__(None, None, None)
            self._steps = self._step = None

    def on_interrupt(self, state: TrainState) -> None:
        self._close()

    def on_train_end(self, state: TrainState) -> None:
        self._close()


ESTIMATE_BATCHES = 4  # batches timed before the estimate of the whole training is printed


class _TrainingEstimate:
    """Times the first batches of a ``train`` call (the first one, which warms caches up, left out when there
    are more) and then says once how long the epochs would take at that pace."""

    def __init__(self):
        self.times: list[float] = []
        self.done = False

    def on_batch(self, state: TrainState) -> str | None:
        if self.done:
            return None
        self.times.append(time.perf_counter())
        wanted = min(ESTIMATE_BATCHES, state.steps_per_epoch - 1) + 1  # batch ends; the first is the warm-up
        if len(self.times) < wanted and state.step_in_epoch < state.steps_per_epoch:
            return None
        self.done = True
        if len(self.times) < 2:
            return None  # a single batch: nothing to time against
        per_batch = (self.times[-1] - self.times[0]) / (len(self.times) - 1)
        epochs_left = state.config.epochs - state.epoch
        batches_left = state.steps_per_epoch - state.step_in_epoch + state.steps_per_epoch * (epochs_left - 1)
        return (f"estimate: {per_batch:.2f} s per batch of {state.config.batch_size}, so "
                f"~{duration(per_batch * state.steps_per_epoch)} per epoch of {state.steps_per_epoch} batches and "
                f"~{duration(per_batch * batches_left)} for the {epochs_left} epoch(s) to run, plus validation "
                f"after each (early stopping may end sooner)")


class Checkpointing(Callback):
    """Save the full training state to ``checkpoint/`` after every epoch and on Ctrl-C.

    ``fingerprint`` says whose run the checkpoint is (at least its data's SHA-256, and the settings a resume must
    share); a resume compares it. With ``save_best_to`` (an ``AlfiaModel.save_pretrained`` target folder) the best
    model so far is also written there whenever the validation AUPRC improves, so a crash never loses the best state.
    ``earlier``: a phase of the run before this one (ALFIA's head warm start), kept in every checkpoint.
    """

    def __init__(self, checkpoint_dir: str | os.PathLike, *, fingerprint: dict,
                 save_best_to: str | os.PathLike | None = None, earlier: EarlierPhase | None = None):
        self.checkpoint_dir = Path(checkpoint_dir)
        self.save_best_to = None if save_best_to is None else Path(save_best_to)
        self.fingerprint = dict(fingerprint)
        self.earlier = earlier

    def _save(self, state: TrainState) -> None:
        save_checkpoint(self.checkpoint_dir, state, fingerprint=self.fingerprint, earlier=self.earlier)
        state.checkpoint_path = self.checkpoint_dir

    def on_epoch_end(self, state: TrainState, record: dict) -> None:
        if record.get("best") and self.save_best_to is not None:
            state.model.save_pretrained(self.save_best_to)
        self._save(state)

    def on_interrupt(self, state: TrainState) -> None:
        self._save(state)
