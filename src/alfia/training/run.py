"""The thin layer over the loop: a text table in, a complete run directory out (``alfia train``).

    train_run("text.parquet", "runs/alfia", AlfiaConfig(), TrainConfig())

reads and checks the table, builds the model, trains with early stopping on validation AUPRC, and
leaves the run directory of ``alfia.runs``: config.json, history.jsonl, the best model
(``save_pretrained``), predictions.parquet (val and test rows), thresholds.json, checkpoint/.
``train_run(resume="runs/alfia")`` continues an interrupted run from its own config.json.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from sklearn.metrics import precision_recall_curve

from alfia import __version__
from alfia.atomic import read_json_object, write_json_atomic
from alfia.cohorts.io import read_table, sha256_file
from alfia.cohorts.schema import OUTCOME_COLUMN, SPLIT_COLUMN, SPLITS
from alfia.errors import AlfiaError
from alfia.runs import RunLayout, write_predictions
from alfia.training.callbacks import Checkpointing, EarlyStopping, JsonlHistory, ProgressDisplay
from alfia.training.config import TrainConfig
from alfia.training.data import check_labels, check_texts, pad_token_id_of, tokenize_table
from alfia.training.loop import predict_logits, resolve_device, seed_everything, sigmoid, train

THRESHOLDS_FILE = "thresholds.json"


@dataclass
class RunSummary:
    run_dir: Path
    best_epoch: int
    best_val_auprc: float
    epochs_run: int
    stopped_early: bool
    train_seconds: float
    threshold: float
    n_rows: dict[str, int]
    model: Any = None  # the trained AlfiaModel (best state), for callers that go on using it


def model_name_for(model_config) -> str:
    return "ALFIA" if model_config.pooler == "alf" else f"ALFIA ({model_config.pooler} pooling)"


def max_f1_threshold(labels: np.ndarray, probs: np.ndarray) -> tuple[float, float]:
    """The threshold (``prob >= threshold`` is positive) with the highest F1 on these rows, and that F1."""
    if len(np.unique(labels)) < 2:
        return 0.5, float("nan")
    precision, recall, thresholds = precision_recall_curve(labels, probs)
    p, r = precision[:-1], recall[:-1]
    f1 = np.divide(2 * p * r, p + r, out=np.zeros_like(p), where=(p + r) > 0)
    best = int(np.argmax(f1))
    return float(thresholds[best]), float(f1[best])


def _split_frame(df: pd.DataFrame, source: str) -> dict[str, pd.DataFrame]:
    if SPLIT_COLUMN not in df.columns:
        raise AlfiaError(f"{source}: no '{SPLIT_COLUMN}' column; training needs the fixed train/val/test split "
                         f"of the cohort")
    unknown = sorted(set(df[SPLIT_COLUMN].astype(str)) - set(SPLITS))
    if unknown:
        raise AlfiaError(f"{source}: column '{SPLIT_COLUMN}' holds unknown value(s) {', '.join(unknown[:5])}; "
                         f"expected {', '.join(SPLITS)}")
    parts = {s: df[df[SPLIT_COLUMN].astype(str) == s].reset_index(drop=True) for s in SPLITS}
    for s in ("train", "val"):
        if parts[s].empty:
            raise AlfiaError(f"{source}: no '{s}' rows in column '{SPLIT_COLUMN}'")
        classes = sorted(pd.to_numeric(parts[s][OUTCOME_COLUMN]).unique())
        if len(classes) < 2:  # no loss signal (train) or no AUPRC for early stopping (val)
            raise AlfiaError(f"{source}: every '{s}' row has {OUTCOME_COLUMN}={classes[0]:g}; training needs "
                             f"deaths and survivors in both train and val")
    return parts


def _subsample_train(train: pd.DataFrame, n: int | None, seed: int) -> pd.DataFrame:
    """A seeded, outcome-stratified subsample of the training rows (quick runs)."""
    if n is None or n >= len(train):
        return train
    from sklearn.model_selection import train_test_split

    from alfia.cohorts.schema import OUTCOME_COLUMN

    y = train[OUTCOME_COLUMN].to_numpy()
    stratify = y if np.bincount(y.astype(int)).min() >= 2 else None
    keep, _ = train_test_split(np.arange(len(train)), train_size=n, stratify=stratify, random_state=seed)
    return train.iloc[np.sort(keep)].reset_index(drop=True)


def _fingerprint(config_doc: dict) -> dict:
    return {"model": config_doc["model"], "train": config_doc["train"], "data_sha256": config_doc["data"]["sha256"]}


def read_run_config(run_dir: str | os.PathLike) -> dict:
    layout = RunLayout.of(run_dir).require()
    doc = read_json_object(layout.config)
    for key in ("model", "train", "data"):
        if key not in doc:
            raise AlfiaError(f"{layout.config}: not an ALFIA run config (no '{key}' section)")
    return doc


def train_run(text_path: str | os.PathLike | None, out_dir: str | os.PathLike, model_config=None,
              train_config: TrainConfig | None = None, *, resume: bool = False, console: Console | None = None,
              progress: bool = True, callbacks=(), predict_splits=("val", "test")) -> RunSummary:
    """Train ALFIA on a text table and write the run directory ``out_dir``.

    ``resume=True`` continues the run in ``out_dir`` from its checkpoint; its config.json supplies the
    data path and every setting, and the data file must be unchanged (same SHA-256).
    """
    from alfia.models import AlfiaConfig, build_model

    console = console or Console(stderr=True)
    layout = RunLayout.of(out_dir)
    if resume:
        doc = read_run_config(out_dir)
        model_config = AlfiaConfig.from_dict(doc["model"], source=f"{layout.config}: model")
        train_config = TrainConfig.from_dict(doc["train"], source=f"{layout.config}: train")
        saved_path = Path(doc["data"]["path"])
        if text_path is not None and Path(text_path).resolve() != saved_path:
            raise AlfiaError(f"{text_path}: --resume continues {out_dir}, which was trained on {saved_path}; "
                             f"leave out the data argument or pass that file")
        text_path = saved_path
        if not text_path.exists():
            raise AlfiaError(f"{text_path}: the run's data file is gone; cannot resume {out_dir}")
        if sha256_file(text_path) != doc["data"]["sha256"]:
            raise AlfiaError(f"{text_path}: changed since {out_dir} was started (SHA-256 differs); cannot resume")
    else:
        if text_path is None:
            raise AlfiaError("train needs a text table (TEXT.parquet)")
        model_config = model_config or AlfiaConfig()
        train_config = train_config or TrainConfig()
        if layout.config.exists():
            raise AlfiaError(f"{out_dir}: already holds a run (config.json exists); continue it with --resume "
                             f"{out_dir} or choose another --out")
    if train_config.max_length is not None and train_config.max_length != model_config.max_length:
        model_config.max_length = train_config.max_length  # one truncation length for train and inference
    text_path = Path(text_path).resolve()
    source = str(text_path)

    df, manifest = read_table(text_path)
    check_texts(df, source)
    check_labels(df, source)
    parts = _split_frame(df, source)
    parts["train"] = _subsample_train(parts["train"], train_config.max_train_rows, train_config.seed)
    template = (manifest.extra.get("template") if manifest is not None else None)

    config_doc: dict[str, Any] = {
        "model_name": model_name_for(model_config),
        "model_type": "alfia",
        "alfia_version": __version__,
        "model": model_config.to_dict(),
        "train": train_config.to_dict(),
        "data": {
            "path": str(text_path),
            "sha256": sha256_file(text_path),
            "template": template,
            "source": manifest.source if manifest is not None else None,
            "variant": manifest.variant if manifest is not None else None,
            "n_rows": {s: int(len(p)) for s, p in parts.items()},
        },
    }
    if resume:
        config_doc["created_at"] = doc.get("created_at")
        config_doc["resumed_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    else:
        config_doc["created_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")

    seed_everything(train_config.seed)
    model = build_model(model_config)
    tokenizer = model.tokenizer
    data = {s: tokenize_table(p, tokenizer, model.max_length, f"{source} ({s} rows)")
            for s, p in parts.items() if not p.empty}
    layout.root.mkdir(parents=True, exist_ok=True)
    if not resume:
        write_json_atomic(layout.config, config_doc)

    cbs = [EarlyStopping(train_config.patience), JsonlHistory(layout.history),
           ProgressDisplay(console, enabled=progress),
           Checkpointing(layout.checkpoint, save_best_to=layout.root, fingerprint=_fingerprint(config_doc)),
           *callbacks]
    console.print(f"training {config_doc['model_name']} on {len(data['train'])} rows "
                  f"(val {len(data['val'])}), up to {train_config.epochs} epochs -> {layout.root}", highlight=False)
    started = time.perf_counter()
    resume_from = None
    if resume:
        from alfia.training.resume import checkpoint_dir_of, check_fingerprint, read_checkpoint_meta

        resume_from = checkpoint_dir_of(layout.root)
        check_fingerprint(read_checkpoint_meta(resume_from), _fingerprint(config_doc), str(resume_from))
    result = train(model, data["train"], data["val"], train_config, cbs, resume=resume_from)
    train_seconds = time.perf_counter() - started  # this invocation; per-epoch seconds are in history.jsonl

    model.save_pretrained(layout.root)
    device = resolve_device(train_config.device)
    pad_id = pad_token_id_of(tokenizer)
    probs: dict[str, np.ndarray] = {}
    if result.best_val_probs is not None:  # the best epoch's own val pass: same weights, same batches
        probs["val"] = result.best_val_probs
    for s in predict_splits:
        if s in data and s not in probs:
            probs[s] = sigmoid(predict_logits(model, data[s], batch_size=train_config.eval_batch_size,
                                              pad_token_id=pad_id, device=device))
    if "val" not in probs:
        probs["val"] = sigmoid(predict_logits(model, data["val"], batch_size=train_config.eval_batch_size,
                                              pad_token_id=pad_id, device=device))
    threshold, val_f1 = max_f1_threshold(data["val"].labels, probs["val"])
    write_json_atomic(layout.root / THRESHOLDS_FILE, {
        "threshold": threshold, "rule": "a stay is predicted to die when prob >= threshold",
        "chosen_on": "val", "criterion": "max F1", "val_f1": val_f1, "best_epoch": result.best_epoch,
        "best_val_auprc": result.best_score,
    })
    kept = [s for s in SPLITS if s in probs and s in predict_splits]
    write_predictions(layout.predictions,
                      np.concatenate([data[s].stay_id for s in kept]),
                      np.concatenate([data[s].split for s in kept]),
                      np.concatenate([data[s].labels for s in kept]),
                      np.concatenate([probs[s] for s in kept]))
    config_doc["result"] = {"best_epoch": result.best_epoch, "best_val_auprc": result.best_score,
                            "epochs_run": len(result.history), "stopped_early": result.stopped_early,
                            "train_seconds_this_invocation": round(train_seconds, 1),
                            "train_seconds_total": round(sum(r["seconds"] for r in result.history), 1)}
    write_json_atomic(layout.config, config_doc)
    return RunSummary(layout.root, result.best_epoch, result.best_score, len(result.history),
                      result.stopped_early, train_seconds, threshold, {s: len(d) for s, d in data.items()}, model)

