"""Where the real data sets live, and the skip every test that reads them uses.

A plain module (not a conftest): every test folder has its own ``conftest`` module, so ``from conftest
import ...`` resolves to whichever was imported first. ``tests/`` is on ``sys.path`` through the
``pythonpath`` setting in pyproject.toml.
"""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared_dataset(name: str) -> Path:
    """Path of a real data set under ../shared/data, or skip the test with a clear reason."""
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"real data absent: {path} (needs ../shared/data beside the repository)")
    return path
