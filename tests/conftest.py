"""Shared test settings. Area-specific fixtures live in each tests/<area>/conftest.py; the real-data
skip lives in tests/shared_data.py."""

from __future__ import annotations

import os

# Tests never touch a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
