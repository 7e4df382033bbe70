"""Fixtures of the analysis tests: a tiny PhysioNet 2012 (compact) cohort, its text, and a tiny trained ALFIA run."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "text"))  # text_testkit: random rows and the round-trip reader

from text_testkit import compact_from_full, random_cohort  # noqa: E402


def compact_cohort(n: int, seed: int = 5):
    """Schema-valid compact rows where GCS, lactate and urine output carry the outcome (so a model can learn it)."""
    df = compact_from_full(random_cohort("physionet2012", n, seed=seed))
    rng = np.random.default_rng(seed)
    risk = (15 - df["gcs_dynamic_min"].fillna(15)) / 12 + df["lactate_max"].fillna(1) / 10
    df["hospital_expire_flag"] = (risk + rng.normal(0, 0.2, n) > np.median(risk)).astype(int)
    df["split"] = np.array(["train", "val", "test"])[np.arange(n) % 3]
    return df


@pytest.fixture(scope="session")
def analysis_data(tmp_path_factory):
    from alfia.cohorts.io import write_cohort
    from alfia.models import AlfiaConfig
    from alfia.models.testing import tiny_backbone
    from alfia.text import encode_file
    from alfia.training import TrainConfig, train_run

    root = tmp_path_factory.mktemp("analysis")
    cohort = compact_cohort(90)
    write_cohort(cohort, root / "cohort.parquet", source="synthetic", variant="physionet2012_compact")
    encode_file(root / "cohort.parquet", root / "text.parquet")
    backbone = tiny_backbone(root, layers=2)
    train_run(root / "text.parquet", root / "run",
              AlfiaConfig(backbone=str(backbone), n_fusion_layers=2, max_length=96, train_layers=0),
              TrainConfig(epochs=1, batch_size=16, lr=1e-3, num_threads=1, head_epochs=1), progress=False)
    return SimpleNamespace(root=root, run=root / "run", cohort=cohort, cohort_path=root / "cohort.parquet",
                           text_path=root / "text.parquet")


def invoke(*args):
    """The ``alfia`` command, as a user runs it."""
    from typer.testing import CliRunner

    from alfia.cli import _register, app

    _register()
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="session")
def analysed(analysis_data):
    """`alfia analyze RUN --input TEXT` with the default --out (RUN/analysis, where the card looks)."""
    result = invoke("analyze", analysis_data.run, "--input", analysis_data.text_path, "--profile", "fast",
                    "--n-boot", 50, "--jobs", 1)
    assert result.exit_code == 0, result.output
    return analysis_data.run / "analysis"


@pytest.fixture(scope="session")
def robust(analysis_data):
    """`alfia robustness RUN --input TEXT` with the default --out (RUN/robustness)."""
    result = invoke("robustness", analysis_data.run, "--input", analysis_data.text_path, "--n-boot", 50)
    assert result.exit_code == 0, result.output
    return analysis_data.run / "robustness"
