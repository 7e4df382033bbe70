"""A LeMoF run: three inputs in, encoders trained (or reused), levels cached once, the fusion trained over them.

    train_lemof("text.parquet", "hourly.parquet", "cohort.parquet", "runs/lemof")
    run = load_lemof("runs/lemof"); pred = predict_lemof(run, read_inputs(text, hourly, cohort))

The run directory is an ordinary one (:class:`alfia.runs.RunLayout`), so ``alfia evaluate``, ``compare`` and
``card`` read it like any other::

    RUN/
      config.json            model_name "lemof", model_family "lemof", the task, the fusion's config ("model"),
                             its training ("train"), the inputs with their SHA-256 ("data"), the encoders
      model.safetensors      the fusion's weights (level standardisation included)
      predictions.parquet    val and test stays (calibrated on val; prob_uncalibrated beside it)
      calibration.json, thresholds.json, history.jsonl
      level_weights.json     alpha_m of eq. (2) per modality and level; figures/level_weights.png
      levels/                the level cache: <modality>.safetensors, stays.parquet (alfia.multimodal.levels)
      encoders/              the encoders trained here: text/ (an ALFIA run), series/ (a series run), tabular/
      ablations/<name>/      with --ablations: one run directory per ablation (alfia.multimodal.ablations)

Encoders are trained on the train split with early stopping on val, then the fusion on the same train split's
levels; the test split is touched only for predictions.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console

from alfia.atomic import read_json_object, write_json_atomic
from alfia.cohorts.schema import ID_COLUMN, OUTCOME_COLUMN, SPLIT_COLUMN
from alfia.errors import AlfiaError
from alfia.multimodal.fit import FitConfig
from alfia.multimodal.levels import MODALITIES, ModalityLevels, Stays, check_same_values, load_cache, match_stays, save_cache
from alfia.multimodal.fusion import MODEL_FAMILY, fit_and_write, fusion_logits, load_fusion
from alfia.multimodal.model import LemofConfig
from alfia.runs import RunLayout


def levels_dir(root: str | os.PathLike) -> Path:
    return Path(root) / "levels"


def encoders_dir(root: str | os.PathLike) -> Path:
    return Path(root) / "encoders"




# --- inputs -----------------------------------------------------------------------------------------------

@dataclass
class Inputs:
    """The three inputs of a set of stays, matched by stay_id, in the cohort's row order."""

    cohort: pd.DataFrame
    variant: str
    text: pd.DataFrame
    series: Any  # alfia.series.hourly.HourlyArrays
    stays: Stays
    task: str
    paths: dict[str, Path]

    @property
    def labelled(self) -> bool:
        return bool((self.stays.label >= 0).all())


def _task_of(manifest, path: Path, what: str, tasks: dict) -> None:
    from alfia.cohorts.tasks import task_of_manifest

    if manifest is not None:
        tasks[what] = (task_of_manifest(manifest), path)


def read_inputs(text_path, series_path, cohort_path, *, variant: str | None = None) -> Inputs:
    """Read the cohort, the text table and the hourly table; check that they hold the same stays (by stay_id),
    and, where they carry them, the same labels, splits and task."""
    from alfia.cohorts.io import read_cohort, read_table
    from alfia.series.hourly import read_hourly
    from alfia.text.table import check_texts

    paths = {"cohort": Path(cohort_path), "text": Path(text_path), "series": Path(series_path)}
    cohort, cohort_manifest, variant = read_cohort(paths["cohort"], variant)
    text, text_manifest = read_table(paths["text"])
    check_texts(text, str(paths["text"]))
    arrays = read_hourly(paths["series"])
    from alfia.cohorts.io import read_manifest

    tasks: dict[str, tuple[str, Path]] = {}
    _task_of(cohort_manifest, paths["cohort"], "cohort", tasks)
    _task_of(text_manifest, paths["text"], "text", tasks)
    _task_of(read_manifest(paths["series"]), paths["series"], "series", tasks)
    if len({t for t, _ in tasks.values()}) > 1:
        raise AlfiaError("the inputs were built for different tasks: " + ", ".join(
            f"{p} ({what}) for {t!r}" for what, (t, p) in tasks.items()) + "; build all three with the same --task")
    task = next(iter(tasks.values()))[0] if tasks else "mortality"

    for df, path in ((cohort, paths["cohort"]), (text, paths["text"])):
        if ID_COLUMN not in df.columns:
            raise AlfiaError(f"{path}: no '{ID_COLUMN}' column; stays are matched across modalities by it")
    cohort_ids = cohort[ID_COLUMN].to_numpy()
    match_stays(cohort_ids, str(paths["cohort"]), {"text": (text[ID_COLUMN].to_numpy(), str(paths["text"])),
                                                   "series": (arrays.stay_id, str(paths["series"]))})
    label = _labels(cohort, paths["cohort"])
    split = (cohort[SPLIT_COLUMN].astype(str).to_numpy(object) if SPLIT_COLUMN in cohort.columns
             else np.full(len(cohort), "", dtype=object))
    reference = {"label": pd.Series(np.where(label >= 0, label, np.nan), index=cohort_ids),
                 "split": pd.Series(np.where(split == "", None, split), index=cohort_ids)}
    text_label = (pd.to_numeric(text[OUTCOME_COLUMN], errors="coerce") if OUTCOME_COLUMN in text.columns
                  else pd.Series(np.nan, index=text.index))
    others = {"text": ({"label": pd.Series(text_label.to_numpy(), index=text[ID_COLUMN].to_numpy()),
                        "split": pd.Series(text[SPLIT_COLUMN].to_numpy() if SPLIT_COLUMN in text.columns else None,
                                           index=text[ID_COLUMN].to_numpy(), dtype=object)}, paths["text"]),
              "series": ({"label": pd.Series(np.where(arrays.label >= 0, arrays.label, np.nan), index=arrays.stay_id),
                          "split": pd.Series(np.where(arrays.split == "", None, arrays.split), index=arrays.stay_id,
                                             dtype=object)}, paths["series"])}
    for _, (values, path) in others.items():
        for what in ("label", "split"):
            ref = reference[what] if what == "split" else reference[what].astype(float)
            other = values[what] if what == "split" else values[what].astype(float)
            check_same_values(ref, other, what, str(paths["cohort"]), str(path))
    text = text.set_index(ID_COLUMN).loc[cohort_ids].reset_index()
    series = arrays.subset(pd.Index(arrays.stay_id).get_indexer(cohort_ids))
    return Inputs(cohort.reset_index(drop=True), variant, text, series, Stays(cohort_ids.astype(np.int64), split, label),
                  task, paths)


def _labels(cohort: pd.DataFrame, path: Path) -> np.ndarray:
    """The cohort's labels (checked: 0 or 1), or -1 for every stay of a table without any."""
    from alfia.cohorts.validate import check_labels

    if OUTCOME_COLUMN not in cohort.columns or cohort[OUTCOME_COLUMN].isna().all():
        return np.full(len(cohort), -1, dtype=np.int64)
    return check_labels(cohort, str(path)).astype(np.int64)


def compute_levels(inputs: Inputs, encoders: dict[str, Path], *, device: str = "cpu") -> dict[str, ModalityLevels]:
    """Every modality's levels for the inputs' stays, in their order (``encoders``: modality -> run folder)."""
    from alfia.multimodal.encoders import series_levels, text_levels
    from alfia.multimodal.tabular import tabular_levels

    out = {"text": text_levels(encoders["text"], inputs.text, device=device, source=str(inputs.paths["text"])),
           "series": series_levels(encoders["series"], inputs.series, source=str(inputs.paths["series"])),
           "tabular": tabular_levels(encoders["tabular"], inputs.cohort, source=str(inputs.paths["cohort"]))}
    return {m: lv.take(inputs.stays.stay_id, source=str(inputs.paths.get(m, m))) for m, lv in out.items()}


# --- the whole run -------------------------------------------------------------------------------------------

@dataclass
class EncoderSettings:
    """How `alfia lemof train` trains the encoders it is not given."""

    text_config: str | None = None  # a run config for the ALFIA run (as `alfia train --config`); None: the recipe
    series_model: str = "bilstm-transformer"
    series_epochs: int = 30
    series_settings: dict | None = None
    tabular_hidden: tuple[int, ...] = (64, 32)
    device: str = "cpu"


def _relative(path: Path, root: Path) -> str:
    """A path inside the run as relative (the run folder can move), else absolute."""
    path, root = Path(path).resolve(), root.resolve()
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def _resolve(path: str, root: Path) -> Path:
    p = Path(path)
    return p if p.is_absolute() else root / p


def check_held_out(run_dir: str | os.PathLike, stays: Stays, modality: str) -> None:
    """A reused encoder run must have held out this fusion's val and test stays, in the same splits: its
    predictions.parquet lists the stays it did not train on. Otherwise the fusion's val/test levels would come
    from an encoder that trained on those very stays."""
    from alfia.runs import read_predictions

    layout = RunLayout.of(run_dir).require()
    held = read_predictions(layout.predictions).set_index(ID_COLUMN)[SPLIT_COLUMN]
    for split in ("val", "test"):
        ids = stays.stay_id[stays.split == split]
        recorded = held.reindex(ids)
        bad = recorded.isna() | (recorded != split)
        if bad.any():
            stay = ids[np.flatnonzero(bad.to_numpy())[0]]
            raise AlfiaError(f"{layout.root}: the {modality} run did not hold out stay_id {stay} ({split} here, "
                             f"{recorded[stay] if pd.notna(recorded[stay]) else 'not among its val/test stays'} there; "
                             f"{int(bad.sum())} {split} stays in all); reuse only runs trained on the same split")


def train_encoders(inputs: Inputs, root: Path, settings: EncoderSettings, fit_config: FitConfig, *,
                   text_run=None, series_run=None, console: Console) -> dict[str, Path]:
    """The encoder run folders: the ones given, and the others trained into ``root/encoders/``."""
    from alfia.multimodal.tabular import TabularConfig, train_tabular

    encoders: dict[str, Path] = {}
    for modality, run in (("text", text_run), ("series", series_run)):
        if run is not None:
            check_held_out(run, inputs.stays, modality)
    if text_run is not None:
        encoders["text"] = Path(text_run)
    else:
        from alfia.training import train_run
        from alfia.training.run import configs_from

        console.print("training the text encoder (ALFIA)", highlight=False)
        model_config = train_config = None
        recipe = None
        if settings.text_config is not None:
            _, model_config, train_config, recipe = configs_from(settings.text_config, inputs.paths["text"], {}, {})
        encoders["text"] = encoders_dir(root) / "text"
        train_run(inputs.paths["text"], encoders["text"], model_config, train_config, console=console,
                  progress=False, recipe=recipe)
    if series_run is not None:
        encoders["series"] = Path(series_run)
    else:
        from alfia.series.hourly import read_hourly
        from alfia.series.train import SeriesTrainConfig, train_series

        console.print(f"training the series encoder ({settings.series_model})", highlight=False)
        encoders["series"] = encoders_dir(root) / "series"
        cfg = SeriesTrainConfig(model=settings.series_model, model_settings=dict(settings.series_settings or {}),
                                epochs=settings.series_epochs, seed=fit_config.seed, threads=fit_config.threads,
                                hourly=str(inputs.paths["series"]))
        train_series(read_hourly(inputs.paths["series"]), encoders["series"], cfg,
                     log=lambda m: console.print(m, highlight=False))
    console.print("training the tabular encoder (MLP)", highlight=False)
    encoders["tabular"] = train_tabular(inputs.cohort, inputs.variant, encoders_dir(root) / "tabular", fit_config,
                                        TabularConfig(hidden=tuple(settings.tabular_hidden)),
                                        labels=inputs.stays.label, split=inputs.stays.split,
                                        source=str(inputs.paths["cohort"]))
    return encoders


def train_lemof(text_path, series_path, cohort_path, out_dir, *, config: LemofConfig | None = None,
                fit_config: FitConfig | None = None, encoders: EncoderSettings | None = None,
                text_run=None, series_run=None, ablations: bool = False, n_boot: int = 0,
                console: Console | None = None) -> dict:
    """Train a LeMoF run into ``out_dir`` (see the module docstring); returns its summary (config.json's result)."""
    from alfia.outputs import hold_output_dir

    console = console or Console(emoji=False, stderr=True)
    config, fit_config, encoders = config or LemofConfig(), fit_config or FitConfig(), encoders or EncoderSettings()
    inputs = read_inputs(text_path, series_path, cohort_path)
    if not inputs.labelled:
        raise AlfiaError(f"{cohort_path}: training needs the label ({OUTCOME_COLUMN}) of every stay")
    from alfia.cohorts.validate import split_for_training

    split_for_training(pd.DataFrame({ID_COLUMN: inputs.stays.stay_id, OUTCOME_COLUMN: inputs.stays.label,
                                     SPLIT_COLUMN: inputs.stays.split}), str(cohort_path))
    layout = RunLayout.of(out_dir)
    with hold_output_dir(layout.root):
        if layout.config.exists():
            raise AlfiaError(f"{layout.root}: already holds a run (config.json); choose another --out")
        started = time.perf_counter()
        runs = train_encoders(inputs, layout.root, encoders, fit_config, text_run=text_run, series_run=series_run,
                              console=console)
        encoder_seconds = time.perf_counter() - started
        console.print("caching the levels", highlight=False)
        t0 = time.perf_counter()
        levels = compute_levels(inputs, runs, device=encoders.device)
        save_cache(levels_dir(layout.root), inputs.stays, levels)
        cache_seconds = time.perf_counter() - t0
        stays, levels = load_cache(levels_dir(layout.root))  # the fusion trains from the cache, as a rerun would
        doc = _config_doc(inputs, runs, layout.root, config.with_levels(levels), fit_config, encoders)
        result = fit_and_write(layout.root, stays, levels, config, fit_config, doc, console=console)
        result.update({"encoder_seconds": round(encoder_seconds, 1), "level_cache_seconds": round(cache_seconds, 1)})
        write_json_atomic(layout.config, {**read_json_object(layout.config), "result": result})
        if ablations:
            from alfia.multimodal.ablations import run_ablations

            run_ablations(layout.root, stays, levels, config, fit_config, console=console)
    return result


def _config_doc(inputs: Inputs, runs: dict[str, Path], root: Path, config: LemofConfig, fit_config: FitConfig,
                encoders: EncoderSettings) -> dict:
    from alfia.cohorts.tasks import get_task
    from alfia.multimodal.encoders import file_record

    return {"model_name": "lemof", "model_family": MODEL_FAMILY, "component": "fusion", "kind": "lemof",
            "description": "LeMoF: level-guided fusion of the text, hourly series and tabular encoders",
            "task": get_task(inputs.task).to_dict(), "variant": inputs.variant,
            "cohort": str(inputs.paths["cohort"]),  # where evaluate/compare find the subgroup columns
            "model": config.to_dict(), "train": fit_config.to_dict(),
            "data": {m: file_record(p) for m, p in inputs.paths.items()}
            | {"n_stays": {s: int((inputs.stays.split == s).sum()) for s in ("train", "val", "test")}},
            "encoders": {m: {"run": _relative(p, root), "trained_here": Path(p).resolve().is_relative_to(root.resolve())}
                         for m, p in runs.items()},
            "encoder_settings": {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(encoders).items()},
            "levels": {m: config.level_names[m] for m in config.modalities}}


# --- loading and predicting -----------------------------------------------------------------------------------

@dataclass
class LoadedLemof:
    root: Path
    model: Any
    config: dict
    encoders: dict[str, Path]
    calibrator: Any
    threshold: float


def load_lemof(run_dir: str | os.PathLike) -> LoadedLemof:
    from alfia.evaluation.thresholds import DECISION_POINT, run_thresholds
    from alfia.models.calibrator import Calibrator

    layout = RunLayout.of(run_dir).require()
    doc = read_json_object(layout.config)
    if doc.get("model_family") != MODEL_FAMILY:
        raise AlfiaError(f"{layout.root}: not a LeMoF run (config.json model_family is {doc.get('model_family')!r}; "
                         f"train one with `alfia lemof train`)")
    if doc.get("component", "fusion") != "fusion":
        raise AlfiaError(f"{layout.root}: the {doc.get('component')} of a LeMoF run, not the run itself; give "
                         f"`alfia lemof predict` the run folder above it")
    for key in ("model", "encoders"):
        if not isinstance(doc.get(key), dict):
            raise AlfiaError(f"{layout.config}: no '{key}' section")
    config = LemofConfig.from_dict(doc["model"], source=f"{layout.config}: model")
    if not layout.series_weights.is_file():
        raise AlfiaError(f"{layout.series_weights}: missing (the run did not finish training)")
    model = load_fusion(doc.get("kind", "lemof"), config, layout.series_weights)
    encoders = {m: _resolve(e["run"], layout.root) for m, e in doc["encoders"].items()}
    for m in MODALITIES:
        if m not in encoders:
            raise AlfiaError(f"{layout.config}: no {m} encoder listed under 'encoders'")
    point = run_thresholds(layout)[DECISION_POINT]
    return LoadedLemof(layout.root, model, doc, encoders, Calibrator.load_for_run(layout.calibration, "platt"),
                       point.threshold)


def predict_lemof(run: LoadedLemof, inputs: Inputs, *, device: str = "cpu") -> pd.DataFrame:
    """stay_id, prob (calibrated), pred_label at the run's threshold (+ split and label where known)."""
    from scipy.special import expit

    from alfia.evaluation.metrics import predicted_death

    levels = compute_levels(inputs, run.encoders, device=device)
    fed = {}
    for m in run.model.config.modalities:
        want, lv = list(run.model.config.level_names[m]), levels[m]
        if lv.names != want and lv.names[-1:] != want:  # a single-level run reads the top level only
            raise AlfiaError(f"{run.encoders[m]}: gives the levels {lv.names}; the run was trained on {want}")
        fed[m] = (lv if lv.names == want else lv.last_only()).as_cached()
    logit = fusion_logits(run.model, fed)
    prob = run.calibrator.transform(logit)
    out = pd.DataFrame({ID_COLUMN: inputs.stays.stay_id})
    if (inputs.stays.split != "").all():
        out[SPLIT_COLUMN] = inputs.stays.split
    out["prob"] = prob
    out["prob_uncalibrated"] = expit(logit)
    out["pred_label"] = predicted_death(prob, run.threshold).astype(np.int8)
    if inputs.labelled:
        out[OUTCOME_COLUMN] = inputs.stays.label.astype(np.int8)
    return out
