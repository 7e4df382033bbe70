"""Tiny inputs for the LeMoF tests: a synthetic cohort, its text table, an hourly table of the same stays, a tiny
random BERT and a text-run config for it; and synthetic levels with a signal planted in one middle layer.
(A module of its own: every test folder has a ``conftest``, so ``from conftest import`` would be ambiguous.)"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from alfia.cohorts.io import write_cohort
from alfia.cohorts.sources.synthetic import generate_synthetic
from alfia.multimodal.levels import ModalityLevels, Stays
from alfia.series.hourly import frame_from_arrays, write_hourly
from alfia.series.variables import SeriesVariable

SERIES_VARIABLES = [SeriesVariable("heart_rate", "bpm", "mean", "HR"),
                    SeriesVariable("lactate", "mmol/L", "mean", "lactate")]


def write_inputs(root: Path, n: int = 64, hours: int = 4, seed: int = 0) -> dict[str, Path]:
    """cohort.parquet, text.parquet and hourly.parquet of the same ``n`` synthetic stays (with manifests)."""
    from alfia.text import encode_file

    cohort = generate_synthetic("mimic", n, seed)
    write_cohort(cohort, root / "cohort.parquet", source="synthetic", variant="mimic")
    encode_file(root / "cohort.parquet", root / "text.parquet")
    rng = np.random.default_rng(seed)
    label = cohort["hospital_expire_flag"].to_numpy()
    hr = rng.normal(80, 5, (n, hours)) + 25 * label[:, None]
    lac = np.where(rng.random((n, hours)) < 0.5, rng.normal(2, 0.5, (n, hours)) + label[:, None], np.nan)
    frame = frame_from_arrays(cohort["stay_id"].to_numpy(), label, cohort["split"].to_numpy(),
                              np.stack([hr, lac], axis=2), [v.name for v in SERIES_VARIABLES])
    write_hourly(frame, root / "hourly.parquet", source="synthetic", variables=SERIES_VARIABLES, hours=hours)
    return {"cohort": root / "cohort.parquet", "text": root / "text.parquet", "series": root / "hourly.parquet"}


def tiny_text_config(root: Path) -> Path:
    """A run config for the text encoder: tiny 2-layer BERT, frozen, ALF + head for one epoch."""
    from alfia.models.testing import tiny_backbone

    path = root / "text_config.json"
    path.write_text(json.dumps({
        "model": {"backbone": str(tiny_backbone(root, layers=2)), "n_fusion_layers": 2, "max_length": 48,
                  "train_layers": 0},
        "train": {"epochs": 1, "head_epochs": 1, "batch_size": 16, "num_threads": 1, "device": "cpu",
                  "rows_per_epoch": None}}))
    return path


def planted_levels(n: int = 1200, seed: int = 0, width: int = 8) -> tuple[Stays, dict[str, ModalityLevels]]:
    """Three modalities of four levels each; the label lives only in level 2 (0-based 1) of "series"; every
    top level, and every other level, is noise."""
    rng = np.random.default_rng(seed)
    label = rng.random(n) < 0.3
    split = np.array(["train"] * n, dtype=object)
    split[np.arange(n) % 5 == 3] = "val"
    split[np.arange(n) % 5 == 4] = "test"
    ids = np.arange(5000, 5000 + n)
    levels = {}
    for modality in ("text", "series", "tabular"):
        arrays = [rng.normal(size=(n, width)).astype(np.float32) for _ in range(4)]
        if modality == "series":
            arrays[1][:, :2] += 1.5 * label[:, None]  # the planted signal: a middle layer only
        levels[modality] = ModalityLevels(modality, ids, [f"layer_{i + 1}" for i in range(4)], arrays,
                                          rng.normal(size=n), {"data": "planted"})
    return Stays(ids, split, label.astype(np.int64)), levels
