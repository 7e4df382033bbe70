"""Table-1 style summary of a cohort by outcome, as in the paper: survived / died / overall.

Continuous and integer variables show mean ± SD (with the count of missing values when any);
categorical variables show n (%) for each category, one row per category under a header row.
"""

from __future__ import annotations

import pandas as pd

from alfia.cohorts.schema import OUTCOME_COLUMN, get_schema
from alfia.errors import AlfiaError

GROUPS = (("Survived", 0), ("Died", 1))


def _mean_sd(s: pd.Series) -> str:
    s = pd.to_numeric(s, errors="coerce")
    n_missing = int(s.isna().sum())
    if n_missing == len(s):
        return "—"
    text = f"{s.mean():.2f} ± {s.std():.2f}" if s.notna().sum() > 1 else f"{s.mean():.2f}"
    return text + (f" ({n_missing:,} missing)" if n_missing else "")


def _n_pct(s: pd.Series, category: str) -> str:
    n = int((s == category).sum())
    return f"{n:,} ({100 * n / len(s):.2f}%)" if len(s) else "0"


def describe_cohort(df: pd.DataFrame, variant: str) -> pd.DataFrame:
    """One row per continuous variable and per category, columns ``Characteristic`` and
    ``Survived (N=..)``, ``Died (N=..)``, ``Overall (N=..)``."""
    schema = get_schema(variant)
    if OUTCOME_COLUMN not in df.columns:
        raise AlfiaError(f"missing required column {OUTCOME_COLUMN!r}: cannot split by outcome")
    parts = [(f"{name} (N={int((df[OUTCOME_COLUMN] == y).sum()):,})", df[df[OUTCOME_COLUMN] == y])
             for name, y in GROUPS]
    parts.append((f"Overall (N={len(df):,})", df))
    rows: list[dict[str, str]] = []
    for v in schema.predictors:
        if v.name not in df.columns:
            continue
        label = v.description + (f" ({v.unit})" if v.unit and not v.is_categorical else "")
        if v.is_categorical:
            rows.append({"Characteristic": f"{label}, n (%)", **{p: "" for p, _ in parts}})
            present = set(df[v.name].dropna().astype(str))
            cats = [c for c in v.categories if c in present] + sorted(present - set(v.categories))
            for cat in cats:
                rows.append({"Characteristic": f"    {cat}",
                             **{p: _n_pct(part[v.name].astype(str), cat) for p, part in parts}})
            n_missing = int(df[v.name].isna().sum())
            if n_missing:
                rows.append({"Characteristic": "    (missing)",
                             **{p: _n_pct(part[v.name].isna().map({True: "m", False: ""}), "m")
                                for p, part in parts}})
        else:
            rows.append({"Characteristic": f"{label}, mean ± SD",
                         **{p: _mean_sd(part[v.name]) for p, part in parts}})
    return pd.DataFrame(rows, columns=["Characteristic", *[p for p, _ in parts]])


def to_markdown(table: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table (category rows indented with non-breaking spaces)."""
    def cell(x: str) -> str:
        x = str(x).replace("|", "\\|")
        stripped = x.lstrip(" ")
        return "&nbsp;" * (len(x) - len(stripped)) + stripped

    header = "| " + " | ".join(table.columns) + " |"
    sep = "|" + "|".join(["---"] + ["---:"] * (len(table.columns) - 1)) + "|"
    body = ["| " + " | ".join(cell(x) for x in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join([header, sep, *body]) + "\n"
