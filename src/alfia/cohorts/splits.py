"""Stratified 75 / 12.5 / 12.5 train/val/test split, grouped by patient where a patient id exists."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold, train_test_split

from alfia.cohorts.schema import ID_COLUMN, OUTCOME_COLUMN, PATIENT_ID_COLUMN, SPLIT_COLUMN

DEFAULT_SEED = 42


def assign_splits(df: pd.DataFrame, seed: int = DEFAULT_SEED,
                  group_column: str | None = PATIENT_ID_COLUMN) -> pd.Series:
    """Return the ``split`` column ("train"/"val"/"test") for ``df``, index-aligned.

    Deterministic: rows are ordered by ``stay_id`` before splitting, so the same rows and seed give the
    same assignment whatever order they arrive in. With a patient id column, all stays of a patient
    land in one split (8 stratified group folds: 6 train, 1 val, 1 test).
    """
    order = df.sort_values(ID_COLUMN, kind="mergesort").index
    y = df.loc[order, OUTCOME_COLUMN].to_numpy().astype(int)
    out = pd.Series("train", index=order, dtype=object)
    if group_column and group_column in df.columns and df[group_column].notna().all():
        groups = df.loc[order, group_column].to_numpy()
        folds = StratifiedGroupKFold(n_splits=8, shuffle=True, random_state=seed)
        fold_of = np.empty(len(order), dtype=int)
        for k, (_, test_idx) in enumerate(folds.split(np.zeros(len(order)), y, groups)):
            fold_of[test_idx] = k
        out.iloc[fold_of == 6] = "val"
        out.iloc[fold_of == 7] = "test"
    elif len(order) < 8:
        # Too few rows to stratify (sklearn cannot split them): a seeded shuffle, cut 75/12.5/12.5.
        perm = np.random.default_rng(seed).permutation(len(order))
        n_hold = len(order) - int(np.ceil(0.75 * len(order)))
        out.iloc[perm[len(order) - n_hold:len(order) - n_hold // 2]] = "val"
        out.iloc[perm[len(order) - n_hold // 2:]] = "test"
    else:
        positions = np.arange(len(order))
        stratify = y if np.bincount(y).min() >= 2 else None
        train, hold = train_test_split(positions, test_size=0.25, random_state=seed,
                                       stratify=stratify)
        stratify_hold = y[hold] if stratify is not None and np.bincount(y[hold]).min() >= 2 else None
        val, test = train_test_split(hold, test_size=0.5, random_state=seed, stratify=stratify_hold)
        out.iloc[val] = "val"
        out.iloc[test] = "test"
    return out.reindex(df.index).rename(SPLIT_COLUMN)
