"""Numbers in the text keep the precision of the source.

The rule is decided per variable from its schema kind, so it is the same for every cohort source:

- ``integer`` variables (observed scores, counts) are written as integers; a non-integral value in
  such a column is bad input and is refused by the encoder.
- ``continuous`` variables are written with up to two decimals, and trailing zeros are dropped, so a
  source value of ``80`` reads ``80``, ``80.5`` reads ``80.5`` and ``0.35`` reads ``0.35``. A value
  with more decimals than that is rounded to two.
- Ages are written with up to one decimal (sources record whole years), and the derived body mass index
  with one decimal, as ``round(weight / (height / 100) ** 2, 1)``.

Rounding is Python's correctly rounded ``format``; ``round(value, decimals)`` gives the same number,
which is what the round-trip tests compare against.
"""

from __future__ import annotations

import numpy as np

from alfia.cohorts.schema import Variable

AGE_COLUMNS = frozenset({"admission_age", "age"})
CONTINUOUS_DECIMALS = 2
AGE_DECIMALS = 1
BMI_DECIMALS = 1


def decimals_for(variable: Variable) -> int:
    """How many decimals the text gives ``variable`` at most (see the module docstring)."""
    if variable.kind == "integer":
        return 0
    if variable.name in AGE_COLUMNS:
        return AGE_DECIMALS
    return CONTINUOUS_DECIMALS


def format_number(value: float, decimals: int) -> str:
    """``value`` rounded to ``decimals``, trailing zeros dropped (``72.50`` -> ``72.5``, ``3.0`` -> ``3``)."""
    text = f"{value:.{decimals}f}"
    if decimals and "." in text:
        text = text.rstrip("0").rstrip(".")
    if text == "-0":
        text = "0"
    return text


def format_column(values: np.ndarray, decimals: int) -> list[str | None]:
    """Format a float column; NaN becomes ``None`` (missing)."""
    spec = f".{decimals}f"
    out: list[str | None] = []
    append = out.append
    for v in values.tolist():
        if v != v:  # NaN
            append(None)
            continue
        text = format(v, spec)
        if decimals and "." in text:
            text = text.rstrip("0").rstrip(".")
        append("0" if text == "-0" else text)
    return out


def body_mass_index(height_cm: np.ndarray | float, weight_kg: np.ndarray | float):
    """BMI in kg/m², NaN where height or weight is missing."""
    h = np.asarray(height_cm, dtype=float) / 100.0
    return np.asarray(weight_kg, dtype=float) / (h * h)
