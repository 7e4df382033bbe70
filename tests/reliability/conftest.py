"""Fixtures of the reliability tests: a small valid cohort, its text table, a tiny trained run. The input
makers are in reliability_testkit.py; tests/cli_process.py runs ``alfia`` in-process."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest


@pytest.fixture(scope="session")
def assets(tmp_path_factory):
    """A valid mimic cohort (Parquet + manifest), its text table, and a tiny trained ALFIA run."""
    from alfia.cohorts.io import write_cohort
    from alfia.cohorts.sources.synthetic import generate_synthetic
    from alfia.models import AlfiaConfig
    from alfia.models.testing import tiny_backbone
    from alfia.text import encode_file
    from alfia.training import TrainConfig, train_run

    root = tmp_path_factory.mktemp("reliability")
    cohort = generate_synthetic("mimic", 60, 42)
    write_cohort(cohort, root / "cohort.parquet", source="synthetic", variant="mimic")
    text, _ = encode_file(root / "cohort.parquet", root / "text.parquet")
    backbone = tiny_backbone(root, layers=2)
    train_run(root / "text.parquet", root / "run",
              AlfiaConfig(backbone=str(backbone), n_fusion_layers=2, max_length=48, train_layers="all", finetune="lora"),
              TrainConfig(epochs=1, batch_size=16, lr=1e-3, num_threads=1, head_epochs=0), progress=False,
              keep_checkpoint=True)  # cases that damage or resume a run need its checkpoint
    return SimpleNamespace(root=root, cohort=cohort, cohort_path=root / "cohort.parquet", text=text,
                           text_path=root / "text.parquet", run=root / "run", backbone=backbone)


@pytest.fixture()
def cwd_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    return tmp_path
