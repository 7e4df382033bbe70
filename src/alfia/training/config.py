"""Training hyperparameters as a typed config that saves to and loads from JSON (``alfia.config_base``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from alfia.config_base import JsonConfig, require
from alfia.models.calibrator import METHODS as CALIBRATORS

PRECISIONS = ("auto", "fp32", "bf16")


@dataclass
class TrainConfig(JsonConfig):
    """How ALFIA is optimised. The model's own shape, including what of the encoder trains (``train_layers``)
    and the tokens kept per text (``max_length``), lives in ``alfia.models.AlfiaConfig``.

    The defaults are the CPU recipe (``alfia.training.recipes``): with the model's defaults, the top 2 encoder
    layers fine-tune over a cached bottom after a short head warm start.

    ``lr``: AdamW peak learning rate of the encoder's trained part (weights or LoRA).
    ``pos_weight``: None (plain BCE), a float, or "auto" (negatives / positives of the training rows).
    ``rows_per_epoch``: training rows per epoch (None: all). Each epoch takes the next rows of a stream of
    seeded permutations, so validation, early stopping and the checkpoints come every that many rows.
    ``state_cache_gb``: a cache of encoder states larger than this is memory-mapped on disk, not held in RAM.
    ``bucket_size``: batches per length bucket; texts of similar length share a batch, buckets are
    shuffled, so batches stay random while padding stays small.
    ``max_train_rows``: a seeded, outcome-stratified subsample of the training rows for quick runs.
    ``head_lr``: learning rate of the new pooler + head (None: ``lr``); ``lr`` then drives the LoRA.
    ``head_epochs``: the head's warm start on cached frozen-encoder states before the encoder trains
    (linear-probe-then-fine-tune, LP-FT); 0 skips it. With ``train_layers=0`` it is the whole training.
    ``precision``: "auto" (bf16 autocast where the hardware runs bf16 natively, else fp32), "fp32", "bf16".
    ``calibration``: post-hoc calibrator fitted on the validation split: "platt", "isotonic" or "none".
    """

    file_missing = "cannot read a training config (no such file)"
    file_invalid = "cannot read a training config"

    lr: float = 2e-5
    batch_size: int = 16
    eval_batch_size: int = 64
    epochs: int = 8
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    grad_clip: float | None = 1.0
    pos_weight: float | str | None = None
    patience: int = 5
    seed: int = 42
    rows_per_epoch: int | None = 3000
    state_cache_gb: float = 8.0
    bucket_size: int = 50
    num_workers: int = 0
    num_threads: int | None = None
    device: str = "auto"
    max_train_rows: int | None = None
    head_lr: float | None = 2e-4
    head_epochs: int = 3
    precision: str = "auto"
    head_from: str | None = None  # a finished run whose pooler + head start this one (its warm start)
    calibration: str = "platt"

    @property
    def head_lr_value(self) -> float:
        return self.lr if self.head_lr is None else self.head_lr

    def __post_init__(self) -> None:
        if isinstance(self.pos_weight, str) and self.pos_weight != "auto":  # "3.5" from a CLI option
            try:
                self.pos_weight = float(self.pos_weight)
            except ValueError:
                pass  # named by validate
        super().__post_init__()

    def validate(self) -> None:
        checks = [
            (self.lr > 0, "lr must be > 0"),
            (self.batch_size >= 1, "batch_size must be >= 1"),
            (self.eval_batch_size >= 1, "eval_batch_size must be >= 1"),
            (self.epochs >= 1, "epochs must be >= 1"),
            (0.0 <= self.warmup_ratio < 1.0, "warmup_ratio must be in [0, 1)"),
            (self.weight_decay >= 0, "weight_decay must be >= 0"),
            (self.grad_clip is None or self.grad_clip > 0, "grad_clip must be > 0 (or None)"),
            (self.patience >= 1, "patience must be >= 1"),
            (self.rows_per_epoch is None or self.rows_per_epoch >= 1, "rows_per_epoch must be >= 1 (or None: all)"),
            (self.state_cache_gb >= 0, "state_cache_gb must be >= 0"),
            (self.bucket_size >= 1, "bucket_size must be >= 1"),
            (self.num_workers >= 0, "num_workers must be >= 0"),
            (self.num_threads is None or self.num_threads >= 1,
             "num_threads (--threads) must be >= 1 (or None: the cores available)"),
            (self.max_train_rows is None or self.max_train_rows >= 2, "max_train_rows must be >= 2"),
            (self.head_lr is None or self.head_lr > 0, "head_lr must be > 0 (or None: the lr)"),
            (self.head_epochs >= 0, "head_epochs must be >= 0"),
            (self.precision in PRECISIONS, f"precision must be one of {', '.join(PRECISIONS)}"),
            (self.calibration in CALIBRATORS,
             f"calibration must be one of {', '.join(CALIBRATORS)}"),
            (not isinstance(self.pos_weight, str) or self.pos_weight == "auto",
             f"pos_weight must be a number, 'auto' or None, got {self.pos_weight!r}"),
            (not isinstance(self.pos_weight, (int, float)) or self.pos_weight > 0, "pos_weight must be > 0"),
        ]
        for ok, message in checks:
            require(ok, f"TrainConfig: {message}")

    @classmethod
    def upgrade(cls, data: dict[str, Any]) -> dict[str, Any]:
        # Runs saved before train_layers: these two now live in the model config (max_length) or are gone
        # (freeze_backbone, replaced by the model's train_layers).
        for moved in ("max_length", "freeze_backbone"):
            data.pop(moved, None)
        return data
