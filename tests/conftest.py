"""Shared test fixtures. Area-specific fixtures live in each tests/<area>/conftest.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Tests never touch a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared_dataset(name: str) -> Path:
    """Path of a real data set under ../shared/data, or skip the test with a clear reason."""
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"real data absent: {path} (needs ../shared/data beside the repository)")
    return path
