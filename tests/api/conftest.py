"""Fixtures of the API tests: a small synthetic cohort, its text, a tiny offline BERT."""

from __future__ import annotations

import pytest

# Settings that make ALFIA train in seconds on the tiny BERT (the API passes them to the configs).
TINY = dict(epochs=1, head_epochs=1, batch_size=16, max_length=48, num_threads=1, lora_r=2, n_fusion_layers=2, fusion_heads=2,
            classifier_heads=2, seed=0)


@pytest.fixture(scope="session")
def tiny_backbone_dir(tmp_path_factory):
    from alfia.models.testing import tiny_backbone

    return str(tiny_backbone(tmp_path_factory.mktemp("backbone"), layers=2))


@pytest.fixture(scope="session")
def api_data(tmp_path_factory):
    import alfia

    folder = tmp_path_factory.mktemp("api")
    cohort = alfia.cohort.synthetic(n=240, seed=1, out=folder / "cohort.parquet")
    texts = alfia.encode(cohort)
    return cohort, texts


@pytest.fixture(scope="session")
def fitted(api_data, tiny_backbone_dir, tmp_path_factory):
    import alfia

    _, texts = api_data
    run_dir = tmp_path_factory.mktemp("runs") / "alfia"
    return alfia.ALFIAClassifier(backbone=tiny_backbone_dir, run_dir=run_dir, **TINY).fit(texts)
