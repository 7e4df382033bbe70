"""One row -> text, for callers that have a single record (a dict, a Series) rather than a table."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from alfia.text.encode import MISSING_MODES, MissingMode, get_template, prepare_columns
from alfia.errors import AlfiaError


def render_row(row: Mapping, template: str, missing: MissingMode = "omit") -> str:
    """Render one cohort row (predictor name -> value) with the named template.

    Uses the same validation and formatting as :func:`alfia.text.encode_cohort`, so a row gives the same
    text either way.
    """
    tmpl = get_template(template, source="row")
    if missing not in MISSING_MODES:
        raise AlfiaError(f"missing must be one of {', '.join(MISSING_MODES)}, not {missing!r}")
    frame = pd.DataFrame([dict(row)])
    columns = prepare_columns(frame, tmpl.schema, source="row")
    return tmpl.render({name: values[0] for name, values in columns.items()}, missing == "state")
