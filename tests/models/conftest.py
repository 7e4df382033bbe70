"""Fixtures for the model tests: a tiny random BERT written to a folder once per test session."""

from __future__ import annotations

import pytest
import torch

from alfia.models.testing import tiny_backbone

TEXTS = [
    "72 year old male admitted to the icu with sepsis; heart rate 112 bpm, lactate 4.1 mmol/l.",
    "female, 45 years, elective surgical admission",
    "patient ventilated, gcs 7",
    "no history of diabetes",
]


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory):
    """Folder of a 4-layer, hidden-32 BERT with its tokenizer (usable as AlfiaConfig(backbone=...))."""
    return tiny_backbone(tmp_path_factory.mktemp("backbones"), layers=4)


@pytest.fixture(scope="session")
def tiny_bert_wide(tmp_path_factory):
    """A different encoder (hidden 48), for mismatch tests."""
    return tiny_backbone(tmp_path_factory.mktemp("backbones-wide"), layers=4, hidden=48)


@pytest.fixture
def texts():
    return list(TEXTS)


@pytest.fixture(autouse=True)
def _seeded_single_thread():
    # One thread per test worker: the tiny models gain nothing from more, and CI runs pytest -n 2 on
    # 2 cores, where extra intra-op threads only oversubscribe the CPU.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(threads)
