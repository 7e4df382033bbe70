"""Clinical text encoding of CW-24 cohort rows (paper §2.2, Figure 1B).

Each ICU stay becomes a fluent description in a clinician's order -- demographics, admission, body
measurements with BMI, lifestyle, severity scores, dynamic assessments (and, for PhysioNet 2012, vitals
and labs) -- with every abbreviation expanded once and every number of the row kept at its precision.
"""

from alfia.text.encode import (
    MISSING_MODES, TextEncodingWarning, encode_cohort, encode_file, get_template,
)
from alfia.text.table import TEXT_COLUMN, check_texts
from alfia.text.render import render_row
from alfia.text.templates import TEMPLATES, Template

__all__ = [
    "MISSING_MODES", "TEMPLATES", "TEXT_COLUMN", "Template", "TextEncodingWarning", "check_texts", "encode_cohort",
    "encode_file", "get_template", "render_row",
]
