"""The ablations of a LeMoF run, all on the same stays and the same level cache, each its own run directory.

    RUN/ablations/
      text/, series/, tabular/   each modality alone: its encoder's own logit (Platt-calibrated on val)
      late-fusion/               the mean of the three modalities' calibrated probabilities
      early-fusion/              the top levels concatenated, one MLP (model.EarlyFusion)
      single-level/              LeMoF over each modality's top level only
      lemof-no-global/           LeMoF without its global modality heads (eqs. 6-7 off)

The LeMoF run itself (RUN/) completes the table. Every folder holds config.json, predictions.parquet,
calibration.json and thresholds.json, so ``alfia compare RUN RUN/ablations/*`` pairs them stay by stay.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console

from alfia.multimodal.fit import FitConfig
from alfia.multimodal.levels import ModalityLevels, Stays
from alfia.multimodal.model import LemofConfig

ABLATIONS = ("text", "series", "tabular", "late-fusion", "early-fusion", "single-level", "lemof-no-global")
DESCRIPTIONS = {
    "text": "the text encoder alone (its ALFIA run's own logit)",
    "series": "the hourly-series encoder alone (its own logit)",
    "tabular": "the tabular MLP alone (its own logit)",
    "late-fusion": "late fusion: the mean of the three modalities' calibrated probabilities",
    "early-fusion": "early fusion: the modalities' top levels concatenated, one MLP",
    "single-level": "LeMoF over each modality's top level only",
    "lemof-no-global": "LeMoF without its global modality heads",
}


def ablations_dir(root: str | os.PathLike) -> Path:
    return Path(root) / "ablations"


def _doc(name: str, config_doc: dict | None = None) -> dict:
    # model_family "lemof" (one run kind for the fusion and its ablations); "ablation" says which
    return {"model_name": f"lemof-ablation-{name}", "model_family": "lemof", "component": "ablation", "ablation": name,
            "description": DESCRIPTIONS[name], **(config_doc or {})}


def run_ablations(root: str | os.PathLike, stays: Stays, levels: dict[str, ModalityLevels], config: LemofConfig,
                  fit_config: FitConfig, *, names=ABLATIONS, console: Console | None = None) -> dict[str, pd.DataFrame]:
    """Write RUN/ablations/<name>/ for each of ``names``; return each one's predictions."""
    from scipy.special import logit as to_logit

    from alfia.multimodal.fusion import fit_and_write, write_prediction_run

    from alfia.atomic import read_json_object
    from alfia.runs import RunLayout

    folder = ablations_dir(root)
    base = read_json_object(RunLayout.of(root).config)
    shared = {k: base[k] for k in ("task", "variant", "cohort", "data") if k in base}  # the same stays and task
    out: dict[str, pd.DataFrame] = {}
    singles = {m: write_prediction_run(folder / m, stays, lv.own_logit.astype(np.float64), _doc(m, shared))
               for m, lv in levels.items() if m in names or "late-fusion" in names}
    out.update({m: p for m, p in singles.items() if m in names})
    if "late-fusion" in names:
        # the mean of calibrated probabilities, for every stay: each modality's Platt map applied to its logit
        from alfia.models.calibrator import Calibrator

        probs = [Calibrator.load_json(folder / m / "calibration.json").transform(lv.own_logit) for m, lv in levels.items()]
        mean = np.clip(np.mean(probs, axis=0), 1e-7, 1 - 1e-7)
        out["late-fusion"] = write_prediction_run(folder / "late-fusion", stays, to_logit(mean), _doc("late-fusion", shared))
    fusions = {"early-fusion": ("early", levels, config),
               "single-level": ("lemof", {m: lv.last_only() for m, lv in levels.items()}, config),
               "lemof-no-global": ("lemof", levels, replace(config, global_heads=False))}
    for name, (kind, lv, cfg) in fusions.items():
        if name not in names:
            continue
        if console is not None:
            console.print(f"ablation {name}", highlight=False)
        fit_and_write(Path(folder / name), stays, lv, cfg, fit_config, _doc(name, shared), kind=kind)
        from alfia.runs import read_predictions

        out[name] = read_predictions(Path(folder / name) / "predictions.parquet")
    return out
