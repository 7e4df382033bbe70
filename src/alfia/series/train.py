"""Train a time-series model into a run directory (:class:`alfia.runs.RunLayout`).

Adam with weight decay on binary cross-entropy; after every epoch the validation AUPRC decides the
best weights, and training stops after ``patience`` epochs without improvement. The last epoch's full
state (weights, optimizer, shuffling generator, best weights, history) is checkpointed atomically, so
``resume=True`` continues an interrupted run where it stopped. The run ends with ``model.safetensors``
(best epoch), ``preprocessing.json``, ``history.jsonl`` and ``predictions.parquet`` (val and test stays),
which ``alfia evaluate`` and ``alfia compare`` read like any other run.
"""

from __future__ import annotations

import copy
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch

from alfia.atomic import atomic_path, read_json_object, write_json_atomic, write_text_atomic
from alfia.errors import AlfiaError
from alfia.runs import RunLayout, write_predictions
from alfia.series.hourly import HourlyArrays, check_splits
from alfia.series.models import MODELS, build_model, config_to_dict, default_config
from alfia.series.predict import logits_of
from alfia.series.preprocess import HourlyPreprocessor

MODEL_FAMILY = "series"
CHECKPOINT_FILE = "state.pt"


@dataclass
class SeriesTrainConfig:
    """Everything a training run was asked to do; saved in config.json (``train``)."""

    model: str = "bilstm-transformer"
    model_settings: dict = field(default_factory=dict)  # overrides of the model's config dataclass
    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    patience: int = 5
    grad_clip: float = 1.0
    seed: int = 42
    device: str = "cpu"
    threads: int | None = None
    hourly: str = ""  # the hourly table trained on (for the record)
    init_from: str | None = None  # a run whose weights and preprocessing start this one (fine-tuning)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "SeriesTrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise AlfiaError(f"train config has unknown key(s) {', '.join(sorted(unknown))}")
        return cls(**d)

    def validate(self) -> None:
        if self.model not in MODELS:
            raise AlfiaError(f"unknown series model {self.model!r}; choose one of {', '.join(MODELS)}")
        for name in ("epochs", "batch_size", "patience"):
            if getattr(self, name) < 1:
                raise AlfiaError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise AlfiaError(f"lr must be positive, got {self.lr}")


def _auprc_auroc(y: np.ndarray, prob: np.ndarray) -> tuple[float, float]:
    from sklearn.metrics import average_precision_score, roc_auc_score

    if len(set(y)) < 2:
        return float("nan"), float("nan")
    return float(average_precision_score(y, prob)), float(roc_auc_score(y, prob))


def _finite(record: dict) -> dict:
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in record.items()}


def _save_checkpoint(layout: RunLayout, state: dict) -> None:
    with atomic_path(layout.checkpoint / CHECKPOINT_FILE) as tmp:
        torch.save(state, tmp)


def _load_checkpoint(layout: RunLayout) -> dict | None:
    path = layout.checkpoint / CHECKPOINT_FILE
    if not path.exists():
        return None
    try:
        return torch.load(path, weights_only=True)
    except Exception as e:  # a torn or foreign file: say which
        raise AlfiaError(f"{path}: not a readable checkpoint ({e})") from None


def run_config(cfg: SeriesTrainConfig, model_config, arrays: HourlyArrays) -> dict:
    return {"model_name": f"series-{cfg.model}", "model_family": MODEL_FAMILY,
            "description": MODELS[cfg.model][2], "train": cfg.to_dict(),
            "model": config_to_dict(cfg.model, model_config),
            "data": {"source": arrays.source, "hours": arrays.hours, "n_variables": len(arrays.variables),
                     "n_stays": {s: int((arrays.split == s).sum()) for s in ("train", "val", "test")}}}


def train_series(arrays: HourlyArrays, out_dir: str | os.PathLike, cfg: SeriesTrainConfig, *,
                 resume: bool = False, log: Callable[[str], None] | None = None) -> dict:
    """Fit ``cfg.model`` on the train stays of ``arrays``; select on val AUPRC; write the run. Returns a
    summary (best epoch, val AUPRC, seconds per epoch, epochs run).

    The run folder is this job's from its checks to its last file (``alfia.outputs.hold_output_dir``): a second
    job on it is refused, and a refused run leaves no new folder."""
    from alfia.outputs import hold_output_dir

    cfg.validate()
    with hold_output_dir(RunLayout.of(out_dir).root):
        return _train_series(arrays, RunLayout.of(out_dir), cfg, resume=resume, log=log)


def _train_series(arrays: HourlyArrays, layout: RunLayout, cfg: SeriesTrainConfig, *, resume: bool,
                  log: Callable[[str], None] | None) -> dict:
    from alfia.runtime.device import resolve_device, seed_everything

    say = log or (lambda _msg: None)
    check_splits(arrays, cfg.hourly or arrays.source or "hourly table")
    if layout.config.exists() and not resume:
        raise AlfiaError(f"{layout.root}: already holds a run (config.json); pass --resume to continue it "
                         f"or choose another --out")
    if resume and layout.config.exists():
        saved = SeriesTrainConfig.from_dict(read_json_object(layout.config)["train"])
        if (saved.model, saved.seed, saved.model_settings) != (cfg.model, cfg.seed, cfg.model_settings):
            raise AlfiaError(f"{layout.config}: the run was started with model {saved.model!r}, seed {saved.seed}, "
                             f"settings {saved.model_settings}; resume it with the same")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device)
    seed_everything(cfg.seed)

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
    generator = torch.Generator().manual_seed(cfg.seed)
    train_rows = torch.from_numpy(arrays.rows_of("train"))
    val_rows = arrays.rows_of("val")
    x_val, y_val = x_all[val_rows], arrays.label[val_rows]
    loss_fn = torch.nn.BCEWithLogitsLoss()

    history: list[dict] = []
    start_epoch, best_epoch, best_auprc = 0, 0, -1.0
    best_state = copy.deepcopy(model.state_dict())
    state = _load_checkpoint(layout) if resume else None
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"])
        best_state = state["best_model"]
        start_epoch, best_epoch, best_auprc = int(state["epoch"]), int(state["best_epoch"]), float(state["best_auprc"])
        history = json.loads(state["history"])
        say(f"resuming after epoch {start_epoch} (best so far: epoch {best_epoch}, val AUPRC {best_auprc:.4f})")
    write_json_atomic(layout.config, run_config(cfg, model_config, arrays))
    write_json_atomic(layout.preprocessing, pre.to_dict())

    stopped = start_epoch - best_epoch >= cfg.patience and start_epoch > 0
    for epoch in range(start_epoch, cfg.epochs):
        if stopped:
            break
        t0 = time.perf_counter()
        model.train()
        order = train_rows[torch.randperm(len(train_rows), generator=generator)]
        loss_sum, n_seen = 0.0, 0
        for i in range(0, len(order), cfg.batch_size):
            idx = order[i:i + cfg.batch_size]
            xb, yb = x_all[idx].to(device), y_all[idx].to(device)
            loss = loss_fn(model(xb), yb)
            optimizer.zero_grad()
            loss.backward()
            if cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            loss_sum += float(loss.detach()) * len(idx)
            n_seen += len(idx)
        train_seconds = time.perf_counter() - t0
        model.cpu()
        val_logit = logits_of(model, x_val)
        model.to(device)
        val_prob = 1.0 / (1.0 + np.exp(-val_logit.astype(np.float64)))
        val_loss = float(loss_fn(torch.from_numpy(val_logit), torch.from_numpy(y_val.astype(np.float32))))
        auprc, auroc = _auprc_auroc(y_val, val_prob)
        better = math.isfinite(auprc) and auprc > best_auprc
        if better:
            best_auprc, best_epoch = auprc, epoch + 1
            best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        record = {"epoch": epoch + 1, "train_loss": loss_sum / max(n_seen, 1), "val_loss": val_loss,
                  "val_auprc": auprc, "val_auroc": auroc, "lr": cfg.lr,
                  "seconds": round(time.perf_counter() - t0, 3), "train_seconds": round(train_seconds, 3),
                  "best": bool(better)}
        history.append(record)
        write_text_atomic(layout.history, "".join(json.dumps(_finite(r)) + "\n" for r in history))
        _save_checkpoint(layout, {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                  "generator": generator.get_state(), "best_model": best_state,
                                  "epoch": epoch + 1, "best_epoch": best_epoch, "best_auprc": best_auprc,
                                  "history": json.dumps([_finite(r) for r in history])})
        say(f"epoch {epoch + 1:>3}  train loss {record['train_loss']:.4f}  val loss {val_loss:.4f}  "
            f"val AUPRC {auprc:.4f}  val AUROC {auroc:.4f}  {record['seconds']:.1f}s" + ("  best" if better else ""))
        if epoch + 1 - best_epoch >= cfg.patience:
            break

    model.cpu()
    model.load_state_dict(best_state)
    _save_weights(layout, model)
    rows = np.flatnonzero(np.isin(arrays.split, ("val", "test")))
    prob = 1.0 / (1.0 + np.exp(-logits_of(model, x_all[rows]).astype(np.float64)))
    write_predictions(layout.predictions, arrays.stay_id[rows], arrays.split[rows], arrays.label[rows], prob)
    epoch_seconds = [r["train_seconds"] for r in history]
    return {"run_dir": str(layout.root), "model": cfg.model, "best_epoch": best_epoch, "val_auprc": best_auprc,
            "epochs_run": len(history), "mean_train_seconds_per_epoch":
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
