"""``checkpoint/``: the full training state, written atomically, so ``--resume`` continues exactly.

    checkpoint/
      state.json               epoch, batch within the epoch, history, best score, RNG states, fingerprint
      trainable.safetensors    the parameters training changes, as they are now
      best.safetensors         the same parameters at the best validation AUPRC so far
      optimizer.pt             AdamW and scheduler state and torch's RNG (loaded with weights_only=True)
      earlier.safetensors      the state an earlier phase of the run ended with (ALFIA's head warm start), if any;
                               its result is in state.json's ``earlier``

A new checkpoint is built in a temporary folder and swapped in (``alfia.atomic.atomic_directory``), so a crash
mid-write leaves the previous checkpoint whole. The fingerprint (for ALFIA: model config, training config, data
hash; every caller's includes the SHA-256 of its data) refuses a checkpoint from a different run, and a checkpoint
without one is refused too: nothing could tell whose it is.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from alfia.atomic import atomic_directory, parked_directory, read_json_object
from alfia.errors import AlfiaError
from alfia.training.state import (
    EarlierPhase, TrainResult, TrainState, check_trainable_match, load_trainable_state, trainable_state,
)

STATE_FILE = "state.json"
TRAINABLE_FILE = "trainable.safetensors"
BEST_FILE = "best.safetensors"
OPTIMIZER_FILE = "optimizer.pt"
EARLIER_FILE = "earlier.safetensors"
FORMAT_VERSION = 1


def _numpy_rng_state() -> dict:
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {"name": name, "keys": keys.tolist(), "pos": int(pos), "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached)}


def _set_numpy_rng_state(d: dict) -> None:
    np.random.set_state((d["name"], np.asarray(d["keys"], dtype=np.uint32), d["pos"], d["has_gauss"],
                         d["cached_gaussian"]))


def _python_rng_state() -> list:
    version, internal, gauss = random.getstate()
    return [version, list(internal), gauss]


def _set_python_rng_state(d: list) -> None:
    random.setstate((d[0], tuple(d[1]), d[2]))


def save_checkpoint(directory: str | os.PathLike, state: TrainState, *, fingerprint: dict,
                    earlier: EarlierPhase | None = None) -> Path:
    """Write ``state`` to the checkpoint folder ``directory``; ``fingerprint`` says whose run it is (resume
    compares it, so it must name at least the data: e.g. its SHA-256). ``earlier``: a phase that ran before this
    one, which a resume does not run again (:func:`read_earlier_phase`)."""
    if not fingerprint:
        raise AlfiaError(f"{directory}: a checkpoint needs a fingerprint (what run it belongs to)")
    directory = Path(directory)
    with atomic_directory(directory) as tmp:
        save_file(trainable_state(state.model), tmp / TRAINABLE_FILE)
        if state.best_state is not None:
            save_file(state.best_state, tmp / BEST_FILE)
        torch_state = {"optimizer": state.optimizer.state_dict(),
                       "scheduler": None if state.scheduler is None else state.scheduler.state_dict(),
                       "torch_rng": torch.get_rng_state()}
        if torch.cuda.is_available():
            torch_state["cuda_rng"] = torch.cuda.get_rng_state_all()
        torch.save(torch_state, tmp / OPTIMIZER_FILE)
        if earlier is not None:
            save_file(earlier.state, tmp / EARLIER_FILE)
        meta = {
            "format_version": FORMAT_VERSION,
            "epoch": state.epoch,
            "step_in_epoch": state.step_in_epoch,
            "steps_per_epoch": state.steps_per_epoch,
            "global_step": state.global_step,
            "epoch_loss_sum": state.epoch_loss_sum,
            "epoch_rows": state.epoch_rows,
            "epoch_seconds": state.epoch_seconds,
            "history": state.history,
            "best_score": state.best_score,
            "best_epoch": state.best_epoch,
            "stop": state.stop,
            "python_rng": _python_rng_state(),
            "numpy_rng": _numpy_rng_state(),
            "fingerprint": fingerprint,
            "earlier": None if earlier is None else {
                "best_epoch": earlier.result.best_epoch, "best_score": earlier.result.best_score,
                "history": earlier.result.history, "stopped_early": earlier.result.stopped_early},
        }
        (tmp / STATE_FILE).write_text(json.dumps(meta) + "\n")
    return directory


def checkpoint_dir_of(path: str | os.PathLike) -> Path:
    """A checkpoint folder given either itself or the run directory holding it."""
    path = Path(path)
    if (path / STATE_FILE).exists():
        return path
    # A crash in the instant between the swap's two renames leaves the previous checkpoint parked.
    for candidate in (path / "checkpoint", parked_directory(path / "checkpoint"), parked_directory(path)):
        if candidate is not None and (candidate / STATE_FILE).exists():
            return candidate
    raise AlfiaError(f"{path}: no checkpoint to resume from (expected {path / 'checkpoint' / STATE_FILE})")


def read_checkpoint_meta(path: str | os.PathLike) -> dict:
    directory = checkpoint_dir_of(path)
    meta = read_json_object(directory / STATE_FILE, missing="corrupt checkpoint state (file is missing)",
                            invalid="corrupt checkpoint state")
    if meta.get("format_version") != FORMAT_VERSION:
        raise AlfiaError(f"{directory / STATE_FILE}: not a checkpoint this version of ALFIA can read")
    return meta


def _load_tensors(path: Path) -> dict[str, torch.Tensor]:
    if not path.exists():
        raise AlfiaError(f"{path}: missing from the checkpoint")
    try:
        return load_file(path)
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise AlfiaError(f"{path}: corrupt checkpoint weights ({e})") from None


def check_fingerprint(meta: dict, fingerprint: dict, source: str) -> None:
    """Refuse a checkpoint of another run: every key of ``fingerprint`` must be saved, with the same value."""
    saved = meta.get("fingerprint")
    if not isinstance(saved, dict) or not saved:
        raise AlfiaError(f"{source}: the checkpoint has no fingerprint, so nothing says it belongs to this run "
                         f"(its data, model and settings); cannot resume from it")
    for key, value in fingerprint.items():
        if key not in saved:
            raise AlfiaError(f"{source}: the checkpoint's fingerprint does not record {key}; cannot tell whether it "
                             f"belongs to this run")
        if saved[key] != value:
            raise AlfiaError(f"{source}: checkpoint belongs to a different run ({key} differs: "
                             f"checkpoint {saved[key]!r}, now {value!r})")


def load_checkpoint(path: str | os.PathLike, state: TrainState, *, fingerprint: dict) -> dict:
    """Restore ``state`` (model, optimiser, scheduler, RNGs, counters) from a checkpoint folder, once its
    fingerprint matches ``fingerprint`` (which must name at least the data)."""
    directory = checkpoint_dir_of(path)
    meta = read_checkpoint_meta(directory)
    if not fingerprint:
        raise AlfiaError(f"{directory}: resuming needs this run's fingerprint to compare the checkpoint with")
    check_fingerprint(meta, fingerprint, str(directory))
    if meta.get("steps_per_epoch") != state.steps_per_epoch:
        raise AlfiaError(f"{directory}: checkpoint was taken with {meta.get('steps_per_epoch')} batches per "
                         f"epoch, this run has {state.steps_per_epoch} (different data or batch size)")
    load_trainable_state(state.model, _load_tensors(directory / TRAINABLE_FILE), str(directory / TRAINABLE_FILE))
    best = None
    if (directory / BEST_FILE).exists():
        best = _load_tensors(directory / BEST_FILE)
        check_trainable_match(state.model, best, str(directory / BEST_FILE))
    try:
        torch_state = torch.load(directory / OPTIMIZER_FILE, map_location="cpu", weights_only=True)
        state.optimizer.load_state_dict(torch_state["optimizer"])
        if state.scheduler is not None:
            state.scheduler.load_state_dict(torch_state["scheduler"])
        torch.set_rng_state(torch_state["torch_rng"])
        if "cuda_rng" in torch_state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(torch_state["cuda_rng"])
    except FileNotFoundError:
        raise AlfiaError(f"{directory / OPTIMIZER_FILE}: missing from the checkpoint") from None
    except Exception as e:  # noqa: BLE001
        # torch.load raises a zoo of types on damaged files (UnpicklingError, RuntimeError, EOFError, ...).
        raise AlfiaError(f"{directory / OPTIMIZER_FILE}: corrupt or mismatched optimizer state ({e})") from None
    try:
        state.epoch = int(meta["epoch"])
        state.step_in_epoch = int(meta["step_in_epoch"])
        state.global_step = int(meta["global_step"])
        state.epoch_loss_sum = float(meta["epoch_loss_sum"])
        state.epoch_rows = int(meta["epoch_rows"])
        state.epoch_seconds = float(meta["epoch_seconds"])
        state.history = list(meta["history"])
        state.best_score = float(meta["best_score"])
        state.best_epoch = int(meta["best_epoch"])
        state.stop = bool(meta.get("stop", False))
        state.best_state = best
        _set_python_rng_state(meta["python_rng"])
        _set_numpy_rng_state(meta["numpy_rng"])
    except (KeyError, TypeError, ValueError) as e:
        raise AlfiaError(f"{directory / STATE_FILE}: corrupt checkpoint state ({e!r})") from None
    state.checkpoint_path = directory
    return meta


def read_earlier_phase(path: str | os.PathLike) -> EarlierPhase | None:
    """The earlier phase a checkpoint keeps (``save_checkpoint(earlier=...)``), or None when it keeps none."""
    directory = checkpoint_dir_of(path)
    saved = read_checkpoint_meta(directory).get("earlier")
    if saved is None:
        return None
    try:
        result = TrainResult(int(saved["best_epoch"]), float(saved["best_score"]), list(saved["history"]),
                             stopped_early=bool(saved["stopped_early"]))
    except (KeyError, TypeError, ValueError) as e:
        raise AlfiaError(f"{directory / STATE_FILE}: corrupt checkpoint state ({e!r})") from None
    return EarlierPhase(result, _load_tensors(directory / EARLIER_FILE))
