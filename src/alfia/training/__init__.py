"""Training ALFIA: the training loop, callbacks, resume, and the run directory it leaves.

- :func:`train`: the functional core (model, tokenised train/val data, :class:`TrainConfig`, callbacks).
- :func:`train_run`: a text table in, a complete run directory out (what ``alfia train`` calls).
"""

from alfia.training.callbacks import Checkpointing, EarlyStopping, JsonlHistory, ProgressDisplay
from alfia.training.config import TrainConfig
from alfia.training.loop import train
from alfia.training.run import RunSummary, train_run
from alfia.training.state import Callback, TrainingInterrupted, TrainResult, TrainState

__all__ = ["Callback", "Checkpointing", "EarlyStopping", "JsonlHistory", "ProgressDisplay", "RunSummary",
           "TrainConfig", "TrainResult", "TrainState", "TrainingInterrupted", "train", "train_run"]
