"""The real chain: tiny ALFIA trained on the train split -> `embed` -> ALFIA-boost.

With one epoch there is no best-epoch choice, so validation labels cannot steer the weights either:
permuting every validation and test label must leave every embedding, hence every ALFIA-boost
feature, bit-for-bit the same.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from .test_boost import permute_labels

N_PER_SPLIT = {"train": 64, "val": 24, "test": 24}


def _small_cohort(cohort: pd.DataFrame) -> pd.DataFrame:
    parts = []
    for split, n in N_PER_SPLIT.items():
        rows = cohort[cohort["split"] == split]
        deaths, alive = rows[rows["hospital_expire_flag"] == 1], rows[rows["hospital_expire_flag"] == 0]
        k = max(6, n // 5)
        parts += [deaths.iloc[:k], alive.iloc[:n - k]]
    return pd.concat(parts).sort_values("stay_id").reset_index(drop=True)


def _train_and_embed(cohort: pd.DataFrame, tmp, backbone: str) -> pd.DataFrame:
    from alfia.cohorts.io import write_cohort
    from alfia.inference.predict import embed, load_run, read_inference_input
    from alfia.models import AlfiaConfig
    from alfia.text.encode import encode_file
    from alfia.training.config import TrainConfig
    from alfia.training.run import train_run

    write_cohort(cohort, tmp / "cohort.parquet", source="synthetic", variant="mimic")
    encode_file(tmp / "cohort.parquet", tmp / "text.parquet")
    train_run(tmp / "text.parquet", tmp / "alfia", AlfiaConfig(backbone=backbone, max_length=48, train_layers=0),  # one head epoch: no val-chosen phase
              TrainConfig(epochs=1, batch_size=16, device="cpu", num_threads=2, seed=3, head_epochs=1),
              progress=False)
    run = load_run(tmp / "alfia", device="cpu", num_threads=2)
    emb, _ = embed(run, read_inference_input(tmp / "text.parquet", run))
    return emb


def test_alfia_boost_features_ignore_val_and_test_labels_end_to_end(cohort, tmp_path):
    pytest.importorskip("alfia.inference.predict")
    from alfia.baselines.boost import build_boost_frame
    from alfia.models.testing import tiny_backbone

    backbone = str(tiny_backbone(tmp_path / "backbone", layers=4))
    small = _small_cohort(cohort)
    permuted = permute_labels(small, ["val", "test"], seed=11)
    assert (permuted["hospital_expire_flag"] != small["hospital_expire_flag"]).any()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    emb_a = _train_and_embed(small, tmp_path / "a", backbone)
    emb_b = _train_and_embed(permuted, tmp_path / "b", backbone)
    cols = [c for c in emb_a.columns if c.startswith("alf_")]
    assert cols and len(emb_a) == len(small)
    np.testing.assert_array_equal(emb_a[cols].to_numpy(), emb_b[cols].to_numpy())

    joined_a, feat = build_boost_frame(small, emb_a)
    joined_b, _ = build_boost_frame(permuted, emb_b)
    pd.testing.assert_frame_equal(joined_a[feat], joined_b[feat])
