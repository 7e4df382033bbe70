"""Train a time-series model into a run directory (:class:`alfia.runs.RunLayout`).

AdamW on binary cross-entropy, in the package's one training loop (``alfia.training.loop.fit``): after every
epoch the validation AUPRC decides the best weights (``EarlyStopping``: training stops after ``patience`` epochs
without improvement), ``JsonlHistory`` writes history.jsonl and ``Checkpointing`` saves the full state to
``checkpoint/``, so ``resume=True`` continues an interrupted run where it stopped. The checkpoint's fingerprint
holds the model, seed, settings and the SHA-256 of the hourly data: resuming on another table is refused. The run
ends with ``model.safetensors`` (best epoch), ``preprocessing.json``, ``history.jsonl`` and ``predictions.parquet``
(val and test stays), which ``alfia evaluate`` and ``alfia compare`` read like any other run.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from scipy.special import expit

from alfia.atomic import atomic_path, write_json_atomic
from alfia.config_base import JsonConfig, require
from alfia.errors import AlfiaError
from alfia.runs import RunLayout, write_predictions
from alfia.series.hourly import HourlyArrays, check_splits
from alfia.series.models import MODELS, build_model, config_to_dict, default_config
from alfia.series.predict import logits_of
from alfia.series.preprocess import HourlyPreprocessor
from alfia.training.callbacks import Checkpointing, EarlyStopping, JsonlHistory
from alfia.training.loop import LoopTask, fit, prepare_training
from alfia.training.resume import STATE_FILE, check_fingerprint, read_checkpoint_meta
from alfia.training.state import Callback, TrainState

MODEL_FAMILY = "series"
OLD_CHECKPOINT_FILE = "state.pt"  # the checkpoint of runs written before the shared loop (not resumable)


@dataclass
class SeriesTrainConfig(JsonConfig):
    """Everything a training run was asked to do; saved in config.json (``train``)."""

    config_name = "train config"

    model: str = "bilstm-transformer"
    model_settings: dict = field(default_factory=dict)  # overrides of the model's config dataclass
    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    patience: int = 5
    grad_clip: float | None = 1.0
    seed: int = 42
    device: str = "cpu"
    threads: int | None = None  # torch CPU threads (None: the machine's cores, machine.resolve_jobs)
    hourly: str = ""  # the hourly table trained on (for the record)
    init_from: str | None = None  # a run whose weights and preprocessing start this one (fine-tuning)

    def validate(self) -> None:
        require(self.model in MODELS, f"unknown series model {self.model!r}; choose one of {', '.join(MODELS)}")
        for name in ("epochs", "batch_size", "patience"):
            require(getattr(self, name) >= 1, f"{name} must be at least 1, got {getattr(self, name)}")
        require(self.lr > 0, f"lr must be positive, got {self.lr}")
        require(self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay}")
        require(self.grad_clip is None or self.grad_clip >= 0, f"grad_clip must be >= 0, got {self.grad_clip}")
        require(self.threads is None or self.threads >= 1, f"threads must be at least 1, got {self.threads}")


def hourly_sha256(arrays: HourlyArrays) -> str:
    """The SHA-256 of an hourly table's content (stays, labels, splits, variables, values): what a resumed run
    must train on again."""
    digest = hashlib.sha256()
    for part in (arrays.stay_id, arrays.label, arrays.split.astype(str), np.asarray(arrays.names, dtype=str),
                 np.ascontiguousarray(arrays.values)):
        digest.update(str(part.dtype).encode() + str(part.shape).encode())
        digest.update(np.ascontiguousarray(part).tobytes())
    return digest.hexdigest()


def run_config(cfg: SeriesTrainConfig, model_config, arrays: HourlyArrays, data_sha256: str) -> dict:
    return {"model_name": f"series-{cfg.model}", "model_family": MODEL_FAMILY,
            "description": MODELS[cfg.model][2], "train": cfg.to_dict(),
            "model": config_to_dict(cfg.model, model_config),
            "data": {"source": arrays.source, "sha256": data_sha256, "hours": arrays.hours,
                     "n_variables": len(arrays.variables),
                     "n_stays": {s: int((arrays.split == s).sum()) for s in ("train", "val", "test")}}}


def train_series(arrays: HourlyArrays, out_dir: str | os.PathLike, cfg: SeriesTrainConfig, *,
                 resume: bool = False, log: Callable[[str], None] | None = None) -> dict:
    """Fit ``cfg.model`` on the train stays of ``arrays``; select on val AUPRC; write the run. Returns a
    summary (best epoch, val AUPRC, seconds per epoch, epochs run).

    The run folder is this job's from its checks to its last file (``alfia.outputs.hold_output_dir``): a second
    job on it is refused, and a refused run leaves no new folder."""
    from alfia.outputs import hold_output_dir

    with hold_output_dir(RunLayout.of(out_dir).root):
        return _train_series(arrays, RunLayout.of(out_dir), cfg, resume=resume, log=log)


class _EpochLines(Callback):
    """One line per epoch through ``log``, and the batches' own seconds in the record (``train_seconds``)."""

    def __init__(self, say: Callable[[str], None]):
        self.say = say

    def on_epoch_end(self, state: TrainState, record: dict) -> None:
        record["train_seconds"] = round(state.last_train_seconds, 3)
        self.say(f"epoch {record['epoch']:>3}  train loss {record['train_loss']:.4f}  val loss {record['val_loss']:.4f}  "
                 f"val AUPRC {record['val_auprc']:.4f}  val AUROC {record['val_auroc']:.4f}  {record['seconds']:.1f}s"
                 + ("  best" if record["best"] else ""))


def _train_series(arrays: HourlyArrays, layout: RunLayout, cfg: SeriesTrainConfig, *, resume: bool,
                  log: Callable[[str], None] | None) -> dict:
    say = log or (lambda _msg: None)
    check_splits(arrays, cfg.hourly or arrays.source or "hourly table")
    if layout.config.exists() and not resume:
        raise AlfiaError(f"{layout.root}: already holds a run (config.json); pass --resume to continue it "
                         f"or choose another --out")
    if resume and (layout.checkpoint / OLD_CHECKPOINT_FILE).exists():
        raise AlfiaError(f"{layout.checkpoint / OLD_CHECKPOINT_FILE}: a checkpoint of an older ALFIA, which "
                         f"this version cannot resume; train the run again into a new --out")
    device = prepare_training(cfg.seed, cfg.threads, cfg.device)

    init = None
    if cfg.init_from:
        from alfia.series.predict import load_series_run

        init = load_series_run(cfg.init_from)
        if init.name != cfg.model:
            raise AlfiaError(f"{cfg.init_from}: a {init.name} run; cannot start a {cfg.model} from it")
        pre = init.preprocessor  # fine-tuning keeps the source's preprocessing (and its variables)
    else:
        pre = HourlyPreprocessor().fit(arrays, arrays.rows_of("train"))
    x_all = torch.from_numpy(pre.transform(arrays))
    y_all = torch.from_numpy(arrays.label.astype(np.float32))
    model_config = init.model_config if init is not None else _model_config(cfg, pre, arrays)
    model = build_model(cfg.model, model_config)
    if init is not None:
        model.load_state_dict(init.model.state_dict())
    model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    train_rows = torch.from_numpy(arrays.rows_of("train"))
    val_rows = arrays.rows_of("val")
    x_val, y_val = x_all[val_rows], arrays.label[val_rows]

    def batches(epoch: int):
        # Epoch e's order is the (e+1)-th permutation of one seeded generator, replayed, so a resumed run needs
        # no generator state and shuffles exactly as an uninterrupted one.
        generator = torch.Generator().manual_seed(cfg.seed)
        for _ in range(epoch):
            torch.randperm(len(train_rows), generator=generator)
        order = train_rows[torch.randperm(len(train_rows), generator=generator)]
        return (order[i:i + cfg.batch_size] for i in range(0, len(order), cfg.batch_size))

    def forward(idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return model(x_all[idx].to(device)), y_all[idx].to(device)

    def val_logits() -> np.ndarray:
        model.cpu()
        logits = logits_of(model, x_val)
        model.to(device)
        return logits

    data_sha256 = hourly_sha256(arrays)
    fingerprint = {"model": cfg.model, "seed": cfg.seed, "model_settings": cfg.model_settings,
                   "data_sha256": data_sha256}
    steps_per_epoch = -(-len(train_rows) // cfg.batch_size)
    state = TrainState(model, optimizer, None, cfg, steps_per_epoch, cfg.epochs)
    task = LoopTask(batches, forward, val_logits, y_val, torch.nn.BCEWithLogitsLoss(), grad_clip=cfg.grad_clip)
    resume_from = layout.checkpoint if resume and (layout.checkpoint / STATE_FILE).exists() else None
    callbacks = [_EpochLines(say), EarlyStopping(cfg.patience), JsonlHistory(layout.history),
                 Checkpointing(layout.checkpoint, fingerprint=fingerprint)]
    if resume_from is not None:  # refused before anything of the run is rewritten
        check_fingerprint(read_checkpoint_meta(resume_from), fingerprint, str(resume_from))
        say("resuming from the checkpoint")
    write_json_atomic(layout.config, run_config(cfg, model_config, arrays, data_sha256))
    write_json_atomic(layout.preprocessing, pre.to_dict())
    result = fit(state, task, callbacks, resume=resume_from, resume_fingerprint=fingerprint)

    model.cpu()
    _save_weights(layout, model)
    rows = np.flatnonzero(np.isin(arrays.split, ("val", "test")))
    prob = expit(logits_of(model, x_all[rows]).astype(np.float64))
    write_predictions(layout.predictions, arrays.stay_id[rows], arrays.split[rows], arrays.label[rows], prob)
    epoch_seconds = [r["train_seconds"] for r in result.history if "train_seconds" in r]
    return {"run_dir": str(layout.root), "model": cfg.model, "best_epoch": result.best_epoch,
            "val_auprc": result.best_score, "epochs_run": len(result.history), "mean_train_seconds_per_epoch":
                float(np.mean(epoch_seconds)) if epoch_seconds else float("nan"),
            "n_parameters": int(sum(p.numel() for p in model.parameters()))}


def _model_config(cfg: SeriesTrainConfig, pre: HourlyPreprocessor, arrays: HourlyArrays):
    settings = dict(cfg.model_settings)
    config = default_config(cfg.model, pre.n_features, **settings)
    if hasattr(config, "max_hours") and "max_hours" not in settings:
        config.max_hours = max(arrays.hours, 1)
    return config


def _save_weights(layout: RunLayout, model: torch.nn.Module) -> Path:
    from safetensors.torch import save_file

    with atomic_path(layout.series_weights) as tmp:
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp))
    return layout.series_weights
