"""Fixtures for training and inference tests: a tiny offline BERT and small text tables with signal."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alfia.cohorts.io import Manifest, mortality_by_split, write_table

_DEATH_WORDS = "sepsis lactate ventilated intubated emergency urgent".split()
_SURVIVAL_WORDS = "elective surgical history smoker alcohol stay".split()
_FILLER = "patient heart rate blood pressure glucose sodium potassium hemoglobin platelets urine".split()


def make_text_frame(n: int = 96, seed: int = 0, death_rate: float = 0.3) -> pd.DataFrame:
    """Rows whose text carries the label through a few words, with noise and varying length."""
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < death_rate).astype(int)
    labels[:2] = [0, 1]
    texts = []
    for y in labels:
        cue = _DEATH_WORDS if (y == 1) == (rng.random() < 0.9) else _SURVIVAL_WORDS
        words = list(rng.choice(_FILLER, size=int(rng.integers(3, 30)))) + list(rng.choice(cue, size=3))
        rng.shuffle(words)
        texts.append(f"{int(rng.integers(18, 90))} year old " + " ".join(words) + ".")
    split = np.array(["train"] * n, dtype=object)
    split[int(0.6 * n):int(0.8 * n)] = "val"
    split[int(0.8 * n):] = "test"
    order = rng.permutation(n)  # splits interleaved, each with both classes
    df = pd.DataFrame({"stay_id": np.arange(1000, 1000 + n), "split": split[order],
                       "hospital_expire_flag": labels, "text": texts, "age": rng.integers(18, 90, n)})
    for s in ("train", "val", "test"):
        rows = df.index[df.split == s]
        df.loc[rows[:2], "hospital_expire_flag"] = [0, 1]
    return df


def write_text_table(df: pd.DataFrame, path, template: str = "test") -> str:
    write_table(df, path, Manifest(kind="text", source="test", variant="", n_rows=len(df),
                                   splits=mortality_by_split(df), extra={"template": template}))
    return str(path)


@pytest.fixture(scope="session")
def tiny_backbone_dir(tmp_path_factory):
    from alfia.models.testing import tiny_backbone

    return str(tiny_backbone(tmp_path_factory.mktemp("backbone"), layers=2))


@pytest.fixture()
def text_table(tmp_path):
    return write_text_table(make_text_frame(), tmp_path / "text.parquet")
