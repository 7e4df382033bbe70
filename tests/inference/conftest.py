"""A small trained ALFIA run (tiny BERT, synthetic MIMIC-like cohort text) shared by the inference tests."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from alfia.cohorts.io import write_cohort
from alfia.cohorts.sources.synthetic import generate_synthetic


def synthetic_text_and_backbone(root, n_stays: int):
    """A synthetic MIMIC-like cohort of ``n_stays`` in ``root``, its text table and a 2-layer tiny BERT."""
    from alfia.models.testing import tiny_backbone
    from alfia.text import encode_file

    cohort = generate_synthetic("mimic", n_stays, 42)
    write_cohort(cohort, root / "cohort.parquet", source="synthetic", variant="mimic")
    encode_file(root / "cohort.parquet", root / "text.parquet")
    return cohort, tiny_backbone(root, layers=2)


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    from alfia.models import AlfiaConfig
    from alfia.training import TrainConfig, train_run

    root = tmp_path_factory.mktemp("inference")
    cohort, backbone = synthetic_text_and_backbone(root, 60)
    summary = train_run(root / "text.parquet", root / "run",
                        AlfiaConfig(backbone=str(backbone), n_fusion_layers=2, max_length=48, train_layers="all",
                                    finetune="lora"),
                        TrainConfig(epochs=1, batch_size=8, lr=1e-3, num_threads=1, head_epochs=0), progress=False)
    return SimpleNamespace(root=root, run=root / "run", cohort=cohort, cohort_path=root / "cohort.parquet",
                           text_path=root / "text.parquet", summary=summary)
