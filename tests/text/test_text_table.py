"""The text table's check: a text column with a visible text in every row, named when not."""

from __future__ import annotations

import pandas as pd
import pytest

from alfia.errors import AlfiaError
from alfia.text.table import check_texts


def test_missing_text_column_is_named():
    df = pd.DataFrame({"stay_id": [1], "note": ["x"]})
    with pytest.raises(AlfiaError, match=r"data\.parquet: no 'text' column"):
        check_texts(df, "data.parquet")


@pytest.mark.parametrize("bad", ["", "   ", None])
def test_empty_text_names_row_and_stay(bad):
    df = pd.DataFrame({"stay_id": [11, 12, 13], "text": ["fine", bad, "fine"]})
    with pytest.raises(AlfiaError, match=r"t\.parquet: column 'text' is empty at row 1 \(stay_id=12\)"):
        check_texts(df, "t.parquet")
