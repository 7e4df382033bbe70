"""Training ALFIA: the training loop, callbacks, resume, and the run directory it leaves.

- :func:`fit`: the one training loop, over any model family's batches (a :class:`LoopTask`); ALFIA, the series
  models and any new model train with it.
- :func:`train`: ALFIA's functional core over it (model, tokenised train/val data, :class:`TrainConfig`, callbacks).
- :func:`train_run`: a text table in, a complete run directory out (what ``alfia train`` calls).
"""

from alfia.training.callbacks import Checkpointing, EarlyStopping, JsonlHistory, ProgressDisplay
from alfia.training.config import TrainConfig
from alfia.training.loop import LoopTask, fit, prepare_training, train
from alfia.training.run import RunSummary, train_run
from alfia.training.state import Callback, TrainingInterrupted, TrainResult, TrainState

__all__ = ["Callback", "Checkpointing", "EarlyStopping", "JsonlHistory", "LoopTask", "ProgressDisplay", "RunSummary",
           "TrainConfig", "TrainResult", "TrainState", "TrainingInterrupted", "fit", "prepare_training", "train",
           "train_run"]
