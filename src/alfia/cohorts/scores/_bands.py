"""Vectorised CASE WHEN for score tables: the first matching rule wins, missing inputs stay missing.

Every score in this package is a list of rules read straight from its published table. ``cases`` keeps
the SQL semantics the community code (MIT-LCP mimic-code) relies on: a comparison with a missing value
is false, and a rule list may start with an explicit "missing -> missing" guard.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


def col(df: pd.DataFrame, name: str) -> pd.Series:
    """Column ``name`` as float (all-missing if the input frame lacks it)."""
    if name in df.columns:
        return pd.to_numeric(df[name], errors="coerce").astype(float)
    return pd.Series(np.nan, index=df.index, dtype=float)


def cases(index: pd.Index, rules: Sequence[tuple[pd.Series | np.ndarray | bool, float]],
          default: float = np.nan) -> pd.Series:
    """``CASE WHEN rule_1 THEN v_1 ... ELSE default END`` over aligned boolean masks."""
    out = np.full(len(index), np.nan if default is None else default, dtype=float)
    decided = np.zeros(len(index), dtype=bool)
    for mask, value in rules:
        m = np.broadcast_to(np.asarray(mask, dtype=bool), (len(index),))
        hit = m & ~decided
        out[hit] = np.nan if value is None else value
        decided |= m
    return pd.Series(out, index=index)


def total(components: pd.DataFrame, require_any: bool = True) -> pd.Series:
    """Sum of component points, missing components counted as normal (0).

    All published scores here impute a missing component as normal. With ``require_any`` a row where
    every component is missing gets a missing total instead of an invented 0.
    """
    s = components.fillna(0).sum(axis=1)
    if require_any:
        s[components.isna().all(axis=1)] = np.nan
    return s
