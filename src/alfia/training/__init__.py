"""Training ALFIA: tokenised datasets with length-bucketed batches, the training loop, callbacks, resume.

- :func:`train`: the functional core (model, tokenised train/val data, :class:`TrainConfig`, callbacks).
- :func:`train_run`: a text table in, a complete run directory out (what ``alfia train`` calls).
"""

from alfia.training.callbacks import Checkpointing, EarlyStopping, JsonlHistory, ProgressDisplay
from alfia.training.config import TrainConfig
from alfia.training.data import LengthBucketedBatchSampler, PadToLongest, TokenizedTexts, tokenize_table, tokenize_texts
from alfia.training.loop import Callback, TrainingInterrupted, TrainResult, TrainState, train
from alfia.training.run import RunSummary, max_f1_threshold, read_run_config, train_run

__all__ = ["Callback", "Checkpointing", "EarlyStopping", "JsonlHistory", "LengthBucketedBatchSampler",
           "PadToLongest", "ProgressDisplay", "RunSummary", "TokenizedTexts", "TrainConfig", "TrainResult",
           "TrainState", "TrainingInterrupted", "max_f1_threshold", "read_run_config", "tokenize_table",
           "tokenize_texts", "train", "train_run"]
