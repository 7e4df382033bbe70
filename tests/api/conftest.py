"""Fixtures of the API tests: a small synthetic cohort, its text, a tiny offline BERT, one trained run.

The run is trained once per session and made read-only: a test that wrote into it (metrics.json,
external/, a saved copy's bookkeeping) would change what the next test reads, so every test that scores,
evaluates or saves gets its own copy (``fitted``), and a write into the shared run fails loudly.
"""

from __future__ import annotations

import os
import shutil
import stat

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


def _set_writable(root, writable: bool) -> None:
    for folder, _, files in os.walk(root):
        for path in [folder, *(os.path.join(folder, f) for f in files)]:
            mode = os.stat(path).st_mode
            write = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH
            os.chmod(path, (mode | stat.S_IWUSR) if writable else (mode & ~write))


@pytest.fixture(scope="session")
def trained(api_data, tiny_backbone_dir, tmp_path_factory):
    """The estimator ``fit`` returned, over a read-only run directory (see the module docstring)."""
    import alfia

    _, texts = api_data
    run_dir = tmp_path_factory.mktemp("runs") / "alfia"
    model = alfia.ALFIAClassifier(backbone=tiny_backbone_dir, run_dir=run_dir, **TINY).fit(texts)
    _set_writable(run_dir, False)
    yield model
    _set_writable(run_dir, True)


@pytest.fixture
def fitted(trained, tmp_path):
    """This test's own copy of the trained run, loaded with ``from_pretrained``."""
    import alfia

    copy = tmp_path / "alfia"
    shutil.copytree(trained.run_dir_, copy)
    _set_writable(copy, True)
    return alfia.ALFIAClassifier.from_pretrained(copy)
