"""A small trained ALFIA run (tiny BERT, synthetic MIMIC-like cohort text) shared by the inference tests."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from alfia.cohorts.io import write_cohort
from alfia.cohorts.sources.synthetic import generate_synthetic


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    from alfia.models import AlfiaConfig
    from alfia.models.testing import tiny_backbone
    from alfia.text import encode_file
    from alfia.training import TrainConfig, train_run

    root = tmp_path_factory.mktemp("inference")
    cohort = generate_synthetic("mimic", 60, 42)
    write_cohort(cohort, root / "cohort.parquet", source="synthetic", variant="mimic")
    encode_file(root / "cohort.parquet", root / "text.parquet")
    backbone = tiny_backbone(root, layers=2)
    summary = train_run(root / "text.parquet", root / "run",
                        AlfiaConfig(backbone=str(backbone), n_fusion_layers=2, max_length=48, train_layers="all",
                                    finetune="lora"),
                        TrainConfig(epochs=1, batch_size=8, lr=1e-3, num_threads=1, head_epochs=0), progress=False)
    return SimpleNamespace(root=root, run=root / "run", cohort=cohort, cohort_path=root / "cohort.parquet",
                           text_path=root / "text.parquet", summary=summary)
