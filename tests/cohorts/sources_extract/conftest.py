"""Module-scoped extractions of the real demos (each extracted once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared_data import shared_dataset


@pytest.fixture(scope="session")
def mimic_demo() -> Path:
    return shared_dataset("mimic-iv-demo")


@pytest.fixture(scope="session")
def eicu_demo() -> Path:
    return shared_dataset("eicu-demo")


def mirror(src: Path, dst: Path, skip: tuple[str, ...] = ()) -> Path:
    """Symlink every file of ``src`` into ``dst`` (same sub-folders), except relative paths in skip."""
    for p in src.rglob("*"):
        rel = p.relative_to(src)
        if p.is_dir() or str(rel) in skip:
            continue
        target = dst / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(p)
    return dst
