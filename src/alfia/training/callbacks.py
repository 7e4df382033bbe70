"""Callbacks for ``alfia.training.loop.train``: early stopping, JSONL history, progress, checkpoints."""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from alfia.atomic import write_text_atomic
from alfia.training.resume import save_checkpoint
from alfia.training.state import Callback, TrainState


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
    """A rich progress bar over the batches of each epoch, and one summary line per epoch.

    When the console is not a terminal (``nohup``, a batch job, a log file) a live bar shows nothing, so a
    plain line with the batch count, running loss and time left is printed every ``log_every_s`` seconds.
    """

    def __init__(self, console: Console | None = None, *, enabled: bool = True, log_every_s: float = 60.0):
        self.console = console or Console(emoji=False, stderr=True)
        self.enabled = enabled
        self.log_every_s = float(log_every_s)
        self._progress: Progress | None = None
        self._task = None
        self._epoch_started = self._last_log = 0.0
        self._first_step = 0

    def on_train_begin(self, state: TrainState) -> None:
        if not self.enabled:
            return
        if self.console.is_terminal:
            self._progress = Progress(
                TextColumn("[bold]epoch {task.fields[epoch]}/{task.fields[epochs]}"), BarColumn(),
                MofNCompleteColumn(), TextColumn("loss {task.fields[loss]}"), TimeElapsedColumn(),
                TimeRemainingColumn(), console=self.console, transient=True)
            self._progress.start()
        self._new_task(state)

    def _new_task(self, state: TrainState) -> None:
        self._epoch_started = self._last_log = time.monotonic()
        self._first_step = state.step_in_epoch  # a resumed epoch starts part-way
        if self._progress is None:
            return
        if self._task is not None:
            self._progress.remove_task(self._task)
        self._task = self._progress.add_task("train", total=state.steps_per_epoch,
                                             completed=state.step_in_epoch, epoch=state.epoch + 1,
                                             epochs=state.epochs, loss="-")

    def on_batch_end(self, state: TrainState) -> None:
        if not self.enabled:
            return
        loss = f"{state.epoch_loss_sum / max(state.epoch_rows, 1):.4f}"
        if self._progress is not None:
            self._progress.update(self._task, completed=state.step_in_epoch, loss=loss)
            return
        now = time.monotonic()
        if now - self._last_log < self.log_every_s and state.step_in_epoch < state.steps_per_epoch:
            return
        self._last_log = now
        elapsed = now - self._epoch_started
        done = state.step_in_epoch - self._first_step
        left = elapsed / done * (state.steps_per_epoch - state.step_in_epoch) if done > 0 else float("nan")
        self.console.print(f"epoch {state.epoch + 1}/{state.epochs}: batch {state.step_in_epoch}/"
                           f"{state.steps_per_epoch}  train loss {loss}  {_minutes(elapsed)} elapsed, "
                           f"~{_minutes(left)} left in the epoch", highlight=False)

    def on_epoch_end(self, state: TrainState, record: dict) -> None:
        if not self.enabled:
            return
        mark = " [green]best[/]" if record.get("best") else ""
        self.console.print(
            f"epoch {record['epoch']:>3}  train loss {record['train_loss']:.4f}  val loss {record['val_loss']:.4f}  "
            f"val AUPRC {record['val_auprc']:.4f}  val AUROC {record['val_auroc']:.4f}  "
            f"lr {record['lr']:.2e}  {record['seconds']:.0f}s{mark}", highlight=False)
        if state.epoch < state.epochs:
            self._new_task(state)

    def _stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
            self._task = None

    def on_interrupt(self, state: TrainState) -> None:
        self._stop()

    def on_train_end(self, state: TrainState) -> None:
        self._stop()


def _minutes(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}:{secs:02d}"


class Checkpointing(Callback):
    """Save the full training state to ``checkpoint/`` after every epoch and on Ctrl-C.

    ``fingerprint`` says whose run the checkpoint is (at least its data's SHA-256, and the settings a resume must
    share); a resume compares it. With ``save_best_to`` (an ``AlfiaModel.save_pretrained`` target folder) the best
    model so far is also written there whenever the validation AUPRC improves, so a crash never loses the best state.
    """

    def __init__(self, checkpoint_dir: str | os.PathLike, *, fingerprint: dict,
                 save_best_to: str | os.PathLike | None = None):
        self.checkpoint_dir = Path(checkpoint_dir)
        self.save_best_to = None if save_best_to is None else Path(save_best_to)
        self.fingerprint = dict(fingerprint)

    def _save(self, state: TrainState) -> None:
        save_checkpoint(self.checkpoint_dir, state, fingerprint=self.fingerprint)
        state.checkpoint_path = self.checkpoint_dir

    def on_epoch_end(self, state: TrainState, record: dict) -> None:
        if record.get("best") and self.save_best_to is not None:
            state.model.save_pretrained(self.save_best_to)
        self._save(state)

    def on_interrupt(self, state: TrainState) -> None:
        self._save(state)
