"""Numbers in the text keep the precision of the source.

The rule is decided per variable from its schema kind, so it is the same for every cohort source:

- ``integer`` variables (observed scores, counts) are written as integers; a non-integral value in
  such a column is bad input and is refused by the encoder.
- ``continuous`` variables are written with up to two decimals, and trailing zeros are dropped, so a
  source value of ``80`` reads ``80``, ``80.5`` reads ``80.5`` and ``0.35`` reads ``0.35``. A value
  with more decimals than that is rounded to two.
- Ages are written with up to one decimal (sources record whole years), and the derived body mass index
  with one decimal, as ``round(weight / (height / 100) ** 2, 1)``.

Rounding is Python's correctly rounded ``round(value, decimals)`` (the same digits as
``format(value, ".2f")``), which is what the round-trip tests compare against.
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
    """``value`` rounded to ``decimals``, trailing zeros dropped (``72.50`` -> ``72.5``).

    ``round`` is correctly rounded, and ``repr`` of the rounded float is its shortest exact decimal,
    i.e. the rounded number without trailing zeros (values here are far from repr's exponent range).
    """
    if decimals == 0:
        text = str(int(round(value)))
    else:
        text = repr(round(value, decimals))
        if text.endswith(".0"):
            text = text[:-2]
    return "0" if text == "-0" else text


def format_column(values: np.ndarray, decimals: int) -> list[str | None]:
    """Format a float column; NaN becomes ``None`` (missing).

    Columns repeat values a lot (scores, counts, vital signs), so each distinct value is formatted once
    and the strings are gathered back by index, in C.
    """
    values = np.asarray(values, dtype=float)
    distinct, inverse = np.unique(values, return_inverse=True)
    formatted = np.empty(len(distinct), dtype=object)
    fmt = format_number
    formatted[:] = [None if v != v else fmt(v, decimals) for v in distinct.tolist()]
    return formatted[inverse.reshape(-1)].tolist()


def body_mass_index(height_cm: np.ndarray | float, weight_kg: np.ndarray | float):
    """BMI in kg/m², NaN where height or weight is missing."""
    h = np.asarray(height_cm, dtype=float) / 100.0
    return np.asarray(weight_kg, dtype=float) / (h * h)
