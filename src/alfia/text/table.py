"""The text table: the column that holds each stay's description, and the check of it.

A text table is what ``alfia encode`` writes and what ``alfia train`` / ``alfia predict`` read: the
cohort's ``stay_id``, ``split`` and outcome columns next to ``text``. Its texts are checked once, where
the table enters a command.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from alfia.cohorts.validate import row_name
from alfia.errors import AlfiaError

TEXT_COLUMN = "text"
_VISIBLE = re.compile(r"[^\s\x00-\x1f\x7f-\x9f]")  # a text of only spaces and control characters is empty


def is_empty_text(text) -> bool:
    """True for a value that is no text: not a string, or only spaces and control characters."""
    return not (isinstance(text, str) and _VISIBLE.search(text))


def check_texts(df: pd.DataFrame, source: str) -> None:
    """Every row needs a non-empty text. ``source`` names the file in the message."""
    if TEXT_COLUMN not in df.columns:
        raise AlfiaError(f"{source}: no '{TEXT_COLUMN}' column (columns: {', '.join(map(str, df.columns[:12]))}"
                         f"{', ...' if len(df.columns) > 12 else ''}); encode the cohort with `alfia encode` first")
    texts = df[TEXT_COLUMN]
    bad = texts.map(is_empty_text).astype(bool)
    if bad.any():
        position = int(np.flatnonzero(bad.to_numpy())[0])
        raise AlfiaError(f"{source}: column '{TEXT_COLUMN}' is empty at {row_name(df, position)}"
                         f"{f' and {int(bad.sum()) - 1} more row(s)' if bad.sum() > 1 else ''}")
