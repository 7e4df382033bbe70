"""The thin layer over the loop: a text table in, a complete run directory out (``alfia train``).

    train_run("text.parquet", "runs/alfia", AlfiaConfig(), TrainConfig())

reads and checks the table, builds the model, trains with early stopping on validation AUPRC, and
leaves the run directory of ``alfia.runs``: config.json, history.jsonl, the best model
(``save_pretrained``), calibration.json, predictions.parquet (val and test rows), checkpoint/. The
operating threshold is chosen from the val predictions by ``alfia.evaluation.thresholds``.
``train_run(resume="runs/alfia")`` continues an interrupted run from its own config.json.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from scipy.special import expit

from alfia import __version__
from alfia.atomic import read_json_object, sha256_file, write_json_atomic
from alfia.cohorts.io import read_table
from alfia.cohorts.schema import OUTCOME_COLUMN, SPLITS
from alfia.errors import AlfiaError
from alfia.runs import RunLayout, read_alfia_config, write_predictions
from alfia.training.callbacks import Checkpointing, EarlyStopping, JsonlHistory, ProgressDisplay
from alfia.training.config import TrainConfig
from alfia.training.resume import checkpoint_dir_of
from alfia.cohorts.validate import split_for_training
from alfia.models.calibrator import Calibrator
from alfia.runtime import (
    compute_frozen_states, pad_token_id_of, predict_logits, resolve_device, seed_everything, set_threads,
    tokenize_table,
)
from alfia.text.table import check_texts
from alfia.training.loop import load_trainable_state, train, trainable_state

STANDARDISE_ROWS = 1000  # training texts whose encoder states fix the state standardisation


@dataclass
class RunSummary:
    run_dir: Path
    best_epoch: int
    best_val_auprc: float
    epochs_run: int
    stopped_early: bool
    train_seconds: float
    n_rows: dict[str, int]
    model: Any = None  # the trained AlfiaModel (best state), for callers that go on using it


def model_name_for(model_config) -> str:
    return "ALFIA" if model_config.pooler == "alf" else f"ALFIA ({model_config.pooler} pooling)"


def _subsample_train(train: pd.DataFrame, n: int | None, seed: int) -> pd.DataFrame:
    """A seeded, outcome-stratified subsample of the training rows (quick runs)."""
    if n is None or n >= len(train):
        return train
    from sklearn.model_selection import train_test_split

    y = train[OUTCOME_COLUMN].to_numpy()
    stratify = y if np.bincount(y.astype(int)).min() >= 2 else None
    keep, _ = train_test_split(np.arange(len(train)), train_size=n, stratify=stratify, random_state=seed)
    return train.iloc[np.sort(keep)].reset_index(drop=True)


def _fingerprint(config_doc: dict) -> dict:
    return {"model": config_doc["model"], "train": config_doc["train"], "data_sha256": config_doc["data"]["sha256"]}


def _warm_result(run_dir):
    """The head-from run's best val AUPRC as a TrainResult: the score the LoRA phase has to beat.

    Its epochs were not run here, so this run's history does not repeat them."""
    from alfia.training.state import TrainResult

    best = read_alfia_config(run_dir).get("result", {})
    return TrainResult(best.get("best_epoch", 0), float(best.get("best_val_auprc", float("-inf"))), [],
                       stopped_early=bool(best.get("stopped_early")))


def configs_from(config_path: str | os.PathLike | None, text_path: str | os.PathLike | None,
                 model_options: dict, train_options: dict, lora_options: dict | None = None):
    """The (text table, AlfiaConfig, TrainConfig) of a run: a run config file (``--config``, e.g. another
    run's config.json) if given, then every option that is not None on top. Unset means the dataclass
    default, which is the benchmark recipe."""
    from alfia.models import AlfiaConfig

    model_doc: dict[str, Any] = {}
    train_doc: dict[str, Any] = {}
    if config_path is not None:
        doc = read_json_object(config_path, missing="run config not found")
        for key in ("model", "train"):
            if key in doc and not isinstance(doc[key], dict):
                raise AlfiaError(f"{config_path}: '{key}' must be an object")
        unknown = sorted(set(doc) - {"model", "train", "data", "model_name", "model_type", "alfia_version",
                                     "created_at", "resumed_at", "result"})
        if unknown:
            raise AlfiaError(f"{config_path}: unknown key(s) {', '.join(unknown)}; a run config has 'model', "
                             f"'train' and optionally 'data'")
        model_doc, train_doc = dict(doc.get("model", {})), dict(doc.get("train", {}))
        if text_path is None and isinstance(doc.get("data"), dict) and doc["data"].get("path"):
            text_path = doc["data"]["path"]
    model_doc.update({k: v for k, v in model_options.items() if v is not None})
    if lora_options:
        model_doc["lora"] = {**model_doc.get("lora", {}), **lora_options}
    train_doc.update({k: v for k, v in train_options.items() if v is not None or k == "pos_weight"})
    source = str(config_path) if config_path is not None else "options"
    model_config = AlfiaConfig.from_dict(model_doc, source=f"{source}: model")
    try:
        train_config = TrainConfig.from_dict(train_doc)
    except TypeError as e:
        raise AlfiaError(f"{source}: train: {e}") from None
    return text_path, model_config, train_config


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
        doc = read_alfia_config(out_dir)
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
        model_config = replace(model_config, max_length=train_config.max_length)  # one truncation length
    if train_config.freeze_backbone == "auto":
        on_gpu = resolve_device(train_config.device).type == "cuda"
        train_config = replace(train_config, freeze_backbone=not on_gpu)
        if not on_gpu and train_config.head_epochs < 1:
            raise AlfiaError("training on a CPU defaults to the cached frozen-state mode, which needs head_epochs "
                             ">= 1; pass --no-freeze-backbone to fine-tune with LoRA instead")
    if train_config.freeze_backbone and model_config.finetune != "frozen":
        model_config = replace(model_config, finetune="frozen")  # nothing of the encoder is trained or saved
    text_path = Path(text_path).resolve()
    source = str(text_path)

    df, manifest = read_table(text_path)
    check_texts(df, source)
    parts = split_for_training(df, source, need_test=False)
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
    data = {s: tokenize_table(p, tokenizer, model.max_length) for s, p in parts.items() if not p.empty}
    layout.root.mkdir(parents=True, exist_ok=True)
    if not resume:
        write_json_atomic(layout.config, config_doc)

    started = time.perf_counter()
    resume_from = None
    if resume:
        resume_from = checkpoint_dir_of(layout.root)  # load_checkpoint checks its fingerprint
    device = resolve_device(train_config.device)
    pad_id = pad_token_id_of(tokenizer)
    set_threads(train_config.num_threads)

    # Phase 1, the head's warm start (LP of LP-FT; all of training with --freeze-backbone): the encoder's
    # top-layer states are computed once and the pooler + head train over them for many cheap epochs.
    # A resumed joint phase restores the head from its checkpoint, so this phase is not run again.
    head_history: list[dict] = []
    head_result = None
    states: dict = {}
    cache = dict(batch_size=train_config.eval_batch_size, pad_token_id=pad_id, device=device,
                 precision=train_config.precision)
    warm_from = train_config.head_from
    if warm_from is not None and not train_config.freeze_backbone:
        # The head (and its state standardisation) of a finished run on the same texts and backbone replaces
        # the warm start: LP-FT split across two runs, e.g. a cached-state run, then LoRA on top of it.
        model.load_fusion_head(RunLayout.of(warm_from).fusion_head)
        console.print(f"pooler + head initialised from {warm_from}", highlight=False)
    elif train_config.freeze_backbone or (train_config.head_epochs and resume_from is None):
        console.print(f"caching the frozen encoder's top {model.n_pooled_layers} layer states of "
                      f"{len(data['train'])} + {len(data['val'])} rows", highlight=False)
        states = {s: compute_frozen_states(model, data[s], **cache) for s in ("train", "val")}
    # The standardisation of the pooled states comes from the same (seeded) training rows whether or not
    # the states were cached, so a resumed run gets the very same one before its checkpoint is loaded.
    if warm_from is None or train_config.freeze_backbone:
        fit_rows = np.sort(np.random.default_rng(train_config.seed).permutation(len(data["train"]))[:STANDARDISE_ROWS])
        fit_states = ([states["train"].states[i] for i in fit_rows] if states else
                      compute_frozen_states(model, data["train"].subset(fit_rows), **cache).states)
        model.fit_state_standardisation(fit_states)
        del fit_states
    if states:
        head_config = replace(train_config, epochs=train_config.head_epochs, lr=train_config.head_lr_value)
        head_cbs = [EarlyStopping(train_config.patience), JsonlHistory(layout.history, phase="head"),
                    ProgressDisplay(console, enabled=progress), *callbacks]
        if train_config.freeze_backbone:  # the head phase is the run: checkpoint it like any run
            head_cbs.insert(2, Checkpointing(layout.checkpoint, save_best_to=layout.root,
                                             fingerprint=_fingerprint(config_doc)))
        console.print(f"training the {model_config.pooler.upper()} pooler + head on cached states, up to "
                      f"{head_config.epochs} epochs", highlight=False)
        head_result = train(model, states["train"], states["val"], head_config, head_cbs,
                            resume=resume_from if train_config.freeze_backbone else None,
                            resume_fingerprint=_fingerprint(config_doc))
        head_history = head_result.history
        del states
    best_phase = "head" if train_config.head_epochs or warm_from else "joint"
    if train_config.freeze_backbone and head_result is not None:
        result = head_result
    else:
        if warm_from is not None:  # the warm run's best val AUPRC is the score LoRA has to beat
            head_result = _warm_result(warm_from)
        cbs = [EarlyStopping(train_config.patience),
               JsonlHistory(layout.history, phase="joint" if train_config.head_epochs or warm_from else None,
                            earlier=head_history),
               ProgressDisplay(console, enabled=progress),
               Checkpointing(layout.checkpoint, save_best_to=layout.root, fingerprint=_fingerprint(config_doc)),
               *callbacks]
        console.print(f"training {config_doc['model_name']} on {len(data['train'])} rows "
                      f"(val {len(data['val'])}), up to {train_config.epochs} epochs -> {layout.root}",
                      highlight=False)
        warm_state = trainable_state(model) if head_result is not None else None
        result = train(model, data["train"], data["val"], train_config, cbs, resume=resume_from,
                       resume_fingerprint=_fingerprint(config_doc))
        if head_result is not None and head_result.best_score > result.best_score:
            # Fine-tuning never beat the warm-started head on validation: keep the head's best state.
            load_trainable_state(model, warm_state, "head warm start")
            result = replace(head_result, history=[*head_history, *result.history])
        else:
            result = replace(result, history=[*head_history, *result.history])
            best_phase = "joint"
    train_seconds = time.perf_counter() - started  # this invocation; per-epoch seconds are in history.jsonl

    model.save_pretrained(layout.root)
    logits: dict[str, np.ndarray] = {}
    for s in {*predict_splits, "val"}:
        if s in data:
            logits[s] = predict_logits(model, data[s], batch_size=train_config.eval_batch_size,
                                       pad_token_id=pad_id, device=device, precision=train_config.precision)
    # Post-hoc calibration on val (Platt by default): every probability the run writes goes through it.
    calibrator = Calibrator.fit(train_config.calibration, logits["val"], data["val"].labels)
    calibrator.save_json(layout.calibration)
    probs = {s: calibrator.transform(x) for s, x in logits.items()}
    raw_probs = {s: expit(x) for s, x in logits.items()}
    kept = [s for s in SPLITS if s in probs and s in predict_splits]
    write_predictions(layout.predictions,
                      np.concatenate([data[s].stay_id for s in kept]),
                      np.concatenate([data[s].split for s in kept]),
                      np.concatenate([data[s].labels for s in kept]),
                      np.concatenate([probs[s] for s in kept]),
                      prob_uncalibrated=np.concatenate([raw_probs[s] for s in kept]))
    config_doc["result"] = {"best_epoch": result.best_epoch, "best_val_auprc": result.best_score,
                            "best_phase": best_phase,
                            "calibration": calibrator.to_dict() | {"knots_x": len(calibrator.knots_x),
                                                                   "knots_y": len(calibrator.knots_y)},
                            "epochs_run": len(result.history), "stopped_early": result.stopped_early,
                            "train_seconds_this_invocation": round(train_seconds, 1),
                            "train_seconds_total": round(sum(r["seconds"] for r in result.history), 1)}
    write_json_atomic(layout.config, config_doc)
    return RunSummary(layout.root, result.best_epoch, result.best_score, len(result.history),
                      result.stopped_early, train_seconds, {s: len(d) for s, d in data.items()}, model)

