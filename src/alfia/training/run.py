"""The thin layer over the loop: a text table in, a complete run directory out (``alfia train``).

    train_run("text.parquet", "runs/alfia", AlfiaConfig(), TrainConfig())

runs these named phases, each a function below:

1. ``prepare_run``: read and check the table, resolve the configs, tokenise, write config.json;
2. ``cache_bottom``: with ``train_layers = K`` (0 < K < L), the frozen bottom's output H^(L-K) (and the frozen
   pooled layers below it) once per text, fp16, unpadded (``alfia.models.layers``);
3. ``cache_top``: the frozen encoder's top-N_f states, for the head warm start (or the whole training when
   ``train_layers = 0``), and the state standardisation fitted on 1,000 seeded training texts;
4. ``train_head``: ALF + ACH over the cached top states (phase "head" of history.jsonl);
5. ``train_encoder``: the trained encoder layers jointly with ALF + ACH, over the bottom cache (phase "joint");
6. ``finish_run``: the best model, val/test predictions, the calibrator, the operating thresholds
   (``alfia.evaluation.thresholds``) and the result, so that a direct call leaves a complete run directory.

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
from alfia.outputs import hold_output_dir
from alfia.progress import make_console, step
from alfia.runs import RunLayout, read_alfia_config, write_predictions
from alfia.evaluation.thresholds import write_run_thresholds
from alfia.training.callbacks import Checkpointing, EarlyStopping, JsonlHistory, ProgressDisplay
from alfia.training import distributed
from alfia.training.config import TrainConfig
from alfia.training.resume import STATE_FILE, checkpoint_dir_of, read_earlier_phase
from alfia.cohorts.validate import split_for_training
from alfia.models.calibrator import Calibrator
from alfia.runtime import (
    compute_frozen_states, pad_token_id_of, predict_logits, resolve_device, seed_everything, set_threads,
    tokenize_table,
)
from alfia.text.table import check_texts
from alfia.training.loop import load_trainable_state, train, trainable_state
from alfia.training.state import EarlierPhase
from alfia.training.recipes import RECIPES, resolve_recipe

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
                 model_options: dict, train_options: dict, lora_options: dict | None = None,
                 recipe: str | None = None):
    """The (text table, AlfiaConfig, TrainConfig, recipe name) of a run: the recipe (``auto``: the one the run
    config file names, else ``paper`` on a GPU and ``cpu`` otherwise; ``alfia.training.recipes``), then the run
    config file (``--config``, e.g. another run's config.json) if given, then every option that is not None on top."""
    from alfia.models import AlfiaConfig

    doc: dict[str, Any] = {}
    if config_path is not None:
        doc = read_json_object(config_path, missing="run config not found")
    if recipe in (None, "auto") and isinstance(doc.get("recipe"), str) and doc["recipe"] in RECIPES:
        recipe = doc["recipe"]  # a run config names its recipe: its settings are the base the file's own go over
    chosen = resolve_recipe(recipe, train_options.get("device"))
    model_doc: dict[str, Any] = dict(chosen.model)
    train_doc: dict[str, Any] = dict(chosen.train)
    if config_path is not None:
        for key in ("model", "train"):
            if key in doc and not isinstance(doc[key], dict):
                raise AlfiaError(f"{config_path}: '{key}' must be an object")
        unknown = sorted(set(doc) - {"model", "train", "data", "model_name", "model_type", "alfia_version",
                                     "created_at", "resumed_at", "result", "recipe", "encoder", "distributed",
                                     "federated", "centralised"})
        if unknown:
            raise AlfiaError(f"{config_path}: unknown key(s) {', '.join(unknown)}; a run config has 'model', "
                             f"'train' and optionally 'data'")
        model_doc.update(doc.get("model", {}))
        train_doc.update(doc.get("train", {}))
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
    return text_path, model_config, train_config, chosen.name


@dataclass
class RunPlan:
    """What ``prepare_run`` settled before any weight moves; every later phase reads it."""

    layout: RunLayout
    model_config: Any
    train_config: TrainConfig
    config_doc: dict[str, Any]
    parts: dict[str, pd.DataFrame]
    resume_from: Path | None
    device: Any
    console: Console
    progress: bool
    callbacks: tuple
    started: float

    @property
    def fingerprint(self) -> dict:
        return _fingerprint(self.config_doc)

    def cache_options(self, model) -> dict:
        return dict(batch_size=self.train_config.eval_batch_size, pad_token_id=pad_token_id_of(model.tokenizer),
                    device=self.device, precision=self.train_config.precision,
                    memory_limit_gb=self.train_config.state_cache_gb)


def _refuse_existing_run(layout: RunLayout) -> None:
    if layout.config.exists():
        raise AlfiaError(f"{layout.root}: already holds a run (config.json exists); continue it with --resume "
                         f"{layout.root} or choose another --out")


def prepare_run(text_path, out_dir, model_config, train_config, *, resume: bool, recipe: str | None,
                console: Console, progress: bool, callbacks) -> RunPlan:
    """Phase 1: check the table and the configs (before anything is written), and describe the run."""
    from alfia.models import AlfiaConfig

    layout = RunLayout.of(out_dir)
    doc: dict[str, Any] = {}
    if resume:
        doc = read_alfia_config(out_dir)
        model_config = AlfiaConfig.from_dict(doc["model"], source=f"{layout.config}: model")
        train_config = TrainConfig.from_dict(doc["train"], source=f"{layout.config}: train")
        recipe = doc.get("recipe")
        if doc.get("result") is not None and not any(
                (layout.root / name / STATE_FILE).exists() for name in ("checkpoint", "checkpoint.old")):
            raise AlfiaError(f"{layout.root}: this run has finished (config.json holds its result) and its "
                             f"checkpoint was deleted then; there is nothing to resume")
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
        if model_config is None and train_config is None:  # nothing chosen: the recipe for this machine
            _, model_config, train_config, recipe = configs_from(None, text_path, {}, {}, recipe=recipe)
        model_config = model_config or AlfiaConfig()
        train_config = train_config or TrainConfig()
        _refuse_existing_run(layout)
    if train_config.head_from is not None and not RunLayout.of(train_config.head_from).fusion_head.is_file():
        raise AlfiaError(f"{train_config.head_from}: --head-from names no finished run (no "
                         f"{RunLayout.of(train_config.head_from).fusion_head.name})")
    if not model_config.trains_encoder and train_config.head_epochs < 1:
        raise AlfiaError("train_layers=0 trains only ALF + the head, over cached states: head_epochs must be >= 1")
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
        "recipe": recipe if recipe in RECIPES else None,  # None: configs given directly, no named recipe
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
        "created_at": doc.get("created_at") if resume else datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    if resume:
        config_doc["resumed_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return RunPlan(layout, model_config, train_config, config_doc, parts,
                   checkpoint_dir_of(layout.root) if resume else None,  # load_checkpoint checks its fingerprint
                   resolve_device(train_config.device), console, progress, tuple(callbacks), time.perf_counter())


def describe_encoder_training(model) -> dict[str, Any]:
    """What of the encoder this run trains, as config.json records it."""
    encoder_params = sum(p.numel() for n, p in model.named_parameters() if p.requires_grad and n.startswith("encoder."))
    return {"layers": model.num_backbone_layers, "trained_layers": model.trained_layers,
            "finetune": model.config.finetune if model.trained_layers else None,
            "pruned": model.config.prune_layers,
            "cached_bottom": list(model.bottom_indices) if model.bottom_indices else None,
            "trainable_encoder_parameters": int(encoder_params),
            "trainable_head_parameters": int(sum(p.numel() for n, p in model.named_parameters()
                                                 if p.requires_grad and not n.startswith("encoder.")))}


def cache_bottom(model, plan: RunPlan, data: dict) -> dict:
    """Phase 2: the frozen bottom's states of the train and val rows, computed once (empty when no cache)."""
    if model.bottom_indices is None and 0 < model.trained_layers < model.num_backbone_layers:
        plan.console.print(f"[yellow]note[/]: the {model.backbone_reference.get('model_type')} encoder's layers "
                           "cannot run one by one; every step runs the whole encoder with its bottom frozen",
                           highlight=False)
    if model.bottom_indices is None:
        return {}
    options = plan.cache_options(model)
    with step(f"caching the frozen bottom (encoder layers 1-{model.bottom_indices[-1]} of "
              f"{model.num_backbone_layers}; H^{tuple(model.bottom_indices)})",
              len(data["train"]) + len(data["val"]), console=plan.console, unit="rows") as progress:
        return {s: compute_frozen_states(model, data[s], layers=model.bottom_indices, progress=progress, **options)
                for s in ("train", "val")}


def cache_top(model, plan: RunPlan, data: dict, bottom: dict) -> dict:
    """Phase 3: the frozen encoder's top-N_f states for the head phase, and the state standardisation."""
    config = plan.train_config
    options = plan.cache_options(model)
    source = bottom or data  # the top layers over the bottom cache cost K layers, not L
    warm = config.head_from is not None and model.config.trains_encoder
    states: dict = {}
    if warm:
        # The head (and its state standardisation) of a finished run on the same texts and backbone replaces
        # the warm start: LP-FT split across two runs, e.g. a cached-state run, then the encoder on top of it.
        model.load_fusion_head(RunLayout.of(config.head_from).fusion_head)
        plan.console.print(f"pooler + head initialised from {config.head_from}", highlight=False)
        return states
    if not model.config.trains_encoder or (config.head_epochs and plan.resume_from is None):
        with step(f"caching the frozen encoder's top {model.n_pooled_layers} layer states",
                  len(data["train"]) + len(data["val"]), console=plan.console, unit="rows") as progress:
            states = {s: compute_frozen_states(model, source[s], progress=progress, **options)
                      for s in ("train", "val")}
    if model.config.standardise_states:
        # The same (seeded) training rows whether or not the states were cached, so a resumed run gets the very
        # same standardisation before its checkpoint is loaded.
        rows = np.sort(np.random.default_rng(config.seed).permutation(len(data["train"]))[:STANDARDISE_ROWS])
        if states:
            fit_states = [states["train"].states[i] for i in rows]
        else:
            with step("encoder states for the state standardisation", len(rows), console=plan.console,
                      unit="rows") as progress:
                fit_states = compute_frozen_states(model, source["train"].subset(rows), progress=progress,
                                                   **options).states
        model.fit_state_standardisation(fit_states)
        del fit_states
    return states


def train_head(model, plan: RunPlan, states: dict):
    """Phase 4: ALF + ACH over cached top states (the warm start; all of training with train_layers=0)."""
    if not states:
        return None
    config, layout = plan.train_config, plan.layout
    head_config = replace(config, epochs=config.head_epochs, lr=config.head_lr_value, rows_per_epoch=None)
    is_run = not model.config.trains_encoder  # the head phase is the run: checkpoint it like any run
    cbs = [EarlyStopping(config.patience), JsonlHistory(layout.history, phase="head"),
           ProgressDisplay(plan.console, enabled=plan.progress), *plan.callbacks]
    if is_run:
        cbs.insert(2, Checkpointing(layout.checkpoint, save_best_to=layout.root, fingerprint=plan.fingerprint))
    plan.console.print(f"training the {model.config.pooler.upper()} pooler + head on cached states, up to "
                       f"{head_config.epochs} epochs", highlight=False)
    return train(model, states["train"], states["val"], head_config, cbs,
                 resume=plan.resume_from if is_run else None, resume_fingerprint=plan.fingerprint)


def train_encoder(model, plan: RunPlan, data: dict, bottom: dict, head_result):
    """Phase 5: the trained encoder layers jointly with ALF + ACH; keeps the better of this and the head phase.

    Returns (result, best_phase)."""
    config, layout = plan.train_config, plan.layout
    if not model.config.trains_encoder:
        return head_result, "head"
    if config.head_from is not None:  # the warm run's best val AUPRC is the score fine-tuning has to beat
        head_result = _warm_result(config.head_from)
    warm = EarlierPhase(head_result, trainable_state(model)) if head_result is not None else None
    if warm is None and plan.resume_from is not None:
        # A resumed run does not train its head again: the head phase's records and best state, which win
        # if fine-tuning never beats them, are in the checkpoint (Checkpointing's earlier= below).
        warm = read_earlier_phase(plan.resume_from)
    head_history = warm.result.history if warm is not None else []
    tagged = bool(config.head_epochs or config.head_from)
    cbs = [EarlyStopping(config.patience),
           JsonlHistory(layout.history, phase="joint" if tagged else None, earlier=head_history),
           ProgressDisplay(plan.console, enabled=plan.progress),
           Checkpointing(layout.checkpoint, save_best_to=layout.root, fingerprint=plan.fingerprint, earlier=warm),
           *plan.callbacks]
    what = ("every encoder layer" if model.trained_layers == model.num_backbone_layers else
            f"the top {model.trained_layers} of {model.num_backbone_layers} encoder layers")
    rows = min(config.rows_per_epoch or len(data["train"]), len(data["train"]))
    plan.console.print(f"training {plan.config_doc['model_name']} ({what}, {model.config.finetune}) on "
                       f"{len(data['train'])} rows ({rows} per epoch; val {len(data['val'])}), up to {config.epochs} "
                       f"epochs -> {layout.root}", highlight=False)
    source = bottom or data
    result = train(model, source["train"], source["val"], config, cbs, resume=plan.resume_from,
                   resume_fingerprint=plan.fingerprint)
    if warm is not None and warm.result.best_score > result.best_score:
        # Fine-tuning never beat the warm-started head on validation: keep the head's best state.
        load_trainable_state(model, warm.state, "head warm start")
        return replace(warm.result, history=[*head_history, *result.history]), "head"
    return replace(result, history=[*head_history, *result.history]), "joint"


def finish_run(model, plan: RunPlan, data: dict, result, best_phase: str,
               predict_splits=("val", "test")) -> RunSummary:
    """Phase 6: everything a run directory needs once the best state is in ``model``.

    The model, predictions of ``predict_splits`` (calibrated on val), calibration.json, thresholds.json and
    config.json's result; the predictions go through the whole model, as ``alfia predict`` does."""
    config, layout, config_doc = plan.train_config, plan.layout, plan.config_doc
    train_seconds = time.perf_counter() - plan.started  # this invocation; per-epoch seconds are in history.jsonl
    model.save_pretrained(layout.root)
    pad_id = pad_token_id_of(model.tokenizer)
    logits: dict[str, np.ndarray] = {}
    scored = [s for s in SPLITS if s in data and s in {*predict_splits, "val"}]
    with step(f"scoring the {' and '.join(scored)} rows with the best model", sum(len(data[s]) for s in scored),
              console=plan.console, unit="rows") as progress:
        for s in scored:
            logits[s] = predict_logits(model, data[s], batch_size=config.eval_batch_size, pad_token_id=pad_id,
                                       device=plan.device, precision=config.precision, progress=progress)
    # Post-hoc calibration on val (Platt by default): every probability the run writes goes through it.
    calibrator = Calibrator.fit(config.calibration, logits["val"], data["val"].labels)
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
    if "val" in kept and len(np.unique(data["val"].labels)) == 2:  # the rule needs deaths and survivors
        write_run_thresholds(layout.root)
    return RunSummary(layout.root, result.best_epoch, result.best_score, len(result.history),
                      result.stopped_early, train_seconds, {s: len(d) for s, d in data.items()}, model)


def train_run(text_path: str | os.PathLike | None, out_dir: str | os.PathLike, model_config=None,
              train_config: TrainConfig | None = None, *, resume: bool = False, console: Console | None = None,
              progress: bool = True, callbacks=(), predict_splits=("val", "test"),
              recipe: str | None = None, keep_checkpoint: bool = False) -> RunSummary:
    """Train ALFIA on a text table and write the complete run directory ``out_dir``.

    With neither config given, the recipe for this machine (``recipe``, default ``auto``) supplies both.
    ``resume=True`` continues the run in ``out_dir`` from its checkpoint; its config.json supplies the
    data path and every setting, and the data file must be unchanged (same SHA-256).
    ``keep_checkpoint``: keep ``checkpoint/`` (the optimizer state, ~4x the weights) once the run has finished;
    by default it is deleted then, since only an unfinished run resumes from it.
    """
    from alfia.models import build_model

    console = console or make_console(stderr=True)
    plan = prepare_run(text_path, out_dir, model_config, train_config, resume=resume, recipe=recipe,
                       console=console, progress=progress, callbacks=callbacks)
    world = _join_world(plan, resume)  # torchrun's processes (alfia.training.distributed); else one
    seed_everything(plan.train_config.seed)
    model = build_model(plan.model_config)
    data = {s: tokenize_table(p, model.tokenizer, model.max_length) for s, p in plan.parts.items() if not p.empty}
    plan.config_doc["encoder"] = describe_encoder_training(model)
    set_threads(distributed.threads(plan.train_config.num_threads, world))
    # The folder is this job's from the first file written to the last: a second job on it is refused. Only rank 0
    # writes; every rank caches and trains.
    with distributed.main_writes(world, hold_output_dir(plan.layout.root)):
        if not resume and world.is_main:
            _refuse_existing_run(plan.layout)  # another job may have finished one here since prepare_run
            write_json_atomic(plan.layout.config, plan.config_doc)
        bottom = cache_bottom(model, plan, data)
        top = cache_top(model, plan, data, bottom)
        head_result = train_head(model, plan, top)
        del top
        result, best_phase = train_encoder(model, plan, data, bottom, head_result)
        del bottom
        # Every rank has read the checkpoint before rank 0 may prune it: resuming a finished run trains no batch,
        # so no collective holds rank 0 back until here.
        distributed.barrier()
        summary = (finish_run(model, plan, data, result, best_phase, predict_splits) if world.is_main else
                   RunSummary(plan.layout.root, result.best_epoch, result.best_score, len(result.history),
                              result.stopped_early, time.perf_counter() - plan.started,
                              {s: len(d) for s, d in data.items()}, model))
        if not keep_checkpoint and world.is_main:
            prune_checkpoint(plan.layout)
    if world.distributed:
        distributed.finish()
    return summary


def prune_checkpoint(layout: RunLayout) -> None:
    """Delete a finished run's training state (``checkpoint/`` and a half-replaced ``checkpoint.old``)."""
    import shutil

    for folder in (layout.checkpoint, layout.checkpoint.with_name(layout.checkpoint.name + ".old")):
        if folder.is_dir():
            shutil.rmtree(folder)


def _join_world(plan: RunPlan, resume: bool):
    """Join torchrun's process group (after every rank's checks, before rank 0 writes), set this rank's device,
    console and config.json's ``distributed`` section; a resumed run needs the world size it was trained with."""
    world = distributed.world()
    if resume:
        saved = (read_alfia_config(plan.layout.root).get("distributed") or {}).get("world_size", 1)
        if saved != world.size:
            raise AlfiaError(f"{plan.layout.root}: trained with {saved} process(es); resume it with the same number "
                             f"(alfia train --resume {plan.layout.root} --nproc {saved}), not {world.size}")
    distributed.init(plan.train_config.device)
    if not world.distributed:
        plan.config_doc["distributed"] = distributed.describe(world, plan.train_config.batch_size, "cpu")
        return world
    plan.device = resolve_device(distributed.rank_device(plan.train_config.device, world))
    plan.config_doc["distributed"] = distributed.describe(world, plan.train_config.batch_size, str(plan.device))
    if not world.is_main:
        plan.console, plan.progress = Console(quiet=True), False
    distributed.barrier()
    return world
