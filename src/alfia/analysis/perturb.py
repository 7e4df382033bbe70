"""Clinically meaningful edits of a stay, made on its cohort row and re-rendered by the run's template.

The four axes of LAPD (Vijayaraj 2025, "Embeddings to Diagnosis: Latent Fragility under Agentic Perturbations in
Clinical LLMs"): masking, negation, synonyms and numeric variation, plus two of ours: the sentence order and
directional edits whose effect on the risk is known. Every edit but two is made on the **row** (a value set
missing, a flag flipped, a number scaled) and the text is rendered again by the template, so a perturbed text
is one the template can write: its values pass the schema's checks (range, integer kinds), are written at the
template's precision, and the round-trip reader of the tests (tests/text/text_testkit.py) reads them back. The
same edited rows feed the tabular models, so text and tabular models are judged on equal edits. The two edits
of the text itself (synonyms, sentence order) work on the template's output: a synonym replaces a name from
the template's own vocabulary (``SYNONYMS``) where it occurs exactly once; the order shuffles the template's
sentences. Tabular models do not see them.

A stay's *items* (:func:`items_of`) are what a clinician reads as one finding: one series of PhysioNet 2012
(all its statistics: ``lactate_min`` and ``lactate_max`` are one item), the GCS or SOFA dynamics, a score,
height, weight. Demographics and categories are not items. Which item an edit takes is drawn per stay from a
seeded generator, in row order, so the same rows and seed give the same edits to every model.

- ``mask``: one present item of the stay is set missing (its count to 0): its phrase leaves the text.
- ``negation``: one present yes/no finding is flipped: mechanical ventilation (PhysioNet 2012: "on mechanical
  ventilation" <-> "not on mechanical ventilation") or a Yes/No history (MIMIC-IV/eICU: smoker, alcohol and drug
  abuse, obesity).
- ``synonym``: one name the template wrote is replaced by a synonym ("heart rate" -> "pulse").
- ``numeric_+5%`` ... ``numeric_-10%``: every continuous measurement of the stay (body, vital signs, labs) times
  the factor, all statistics of an item together (its SD by the factor's size), rounded to the precision the
  cohort and template keep for it, and clipped to the schema's range: a varied value is still a valid value.
- ``shuffle``: the template's sentences in a seeded random order (never the original order).
- ``gcs_to_3``, ``lactate_x3``, ``urine_output_div4``: directional edits (GCS -> 3 points, its SD 0; lactate
  times 3; the urine output divided by 4), each of which should raise the risk of death.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from alfia.cohorts.schema import (
    COMPACT_DECIMALS, PHYSIONET_SERIES, SERIES_STATS, CohortSchema, Variable, get_schema, series_column,
)
from alfia.errors import AlfiaError
from alfia.text.encode import MissingMode, get_template, prepare_columns, render_prepared
from alfia.text.numbers import decimals_for

ROW, TEXT = "row", "text"  # where an edit is made: the cohort row (re-rendered), or the template's text


@dataclass(frozen=True)
class Perturbation:
    name: str
    axis: str  # masking, negation, synonym, numeric, order, directional
    level: str  # ROW or TEXT
    description: str
    expected_direction: int = 0  # +1: should raise the risk of death; 0: no known direction
    factor: float | None = None  # numeric and scaling edits


PERTURBATIONS: tuple[Perturbation, ...] = (
    Perturbation("mask", "masking", ROW, "one measured item of the stay left out (set missing)"),
    Perturbation("negation", "negation", ROW, "one yes/no finding flipped (ventilation, a history)"),
    Perturbation("synonym", "synonym", TEXT, "one name the template wrote replaced by a synonym"),
    *(Perturbation(f"numeric_{sign}{pct}%", "numeric", ROW,
                   f"every continuous measurement x {1 + (1 if sign == '+' else -1) * pct / 100:g}, rounded as "
                   f"the template rounds, clipped to the schema's range",
                   factor=1 + (1 if sign == "+" else -1) * pct / 100)
      for pct in (5, 10) for sign in ("+", "-")),
    Perturbation("shuffle", "order", TEXT, "the template's sentences in a random order"),
    Perturbation("gcs_to_3", "directional", ROW, "GCS set to 3 points (deep coma)", expected_direction=1),
    Perturbation("lactate_x3", "directional", ROW, "lactate x 3", expected_direction=1, factor=3.0),
    Perturbation("urine_output_div4", "directional", ROW, "urine output / 4", expected_direction=1, factor=0.25),
)
BY_NAME = {p.name: p for p in PERTURBATIONS}
_DIRECTIONAL_ITEM = {"gcs_to_3": "gcs", "lactate_x3": "lactate", "urine_output_div4": "urine_output"}
_MEASUREMENT_GROUPS = ("body", "vitals", "labs")

# Names the templates write, with a synonym a clinician would use instead. Each phrase is one the template
# renders verbatim (its SERIES_TEXT / COMPACT_NAMES, or the CW-24 sentences); it is replaced only where it
# occurs exactly once as whole words.
_PHYSIONET_SYNONYMS = {
    "heart rate": "pulse", "respiratory rate": "breathing rate", "temperature": "body temperature",
    "urine output": "urine volume", "creatinine": "serum creatinine", "sodium": "serum sodium",
    "potassium": "serum potassium", "glucose": "blood glucose", "bicarbonate": "serum bicarbonate",
    "platelets": "platelet count", "hematocrit": "haematocrit", "lactate": "lactic acid",
    "albumin": "serum albumin", "bilirubin": "total bilirubin", "magnesium": "serum magnesium",
    "arterial pH": "blood pH", "weighs": "has a body weight of",
}
_CW24_SYNONYMS = {
    "Glasgow Coma Scale": "Glasgow Coma Score", "weighs": "has a body weight of", "alcohol abuse": "alcohol misuse",
    "drug abuse": "drug misuse", "Severity scores": "Illness severity scores",
}
SYNONYMS: dict[str, dict[str, str]] = {"physionet2012": _PHYSIONET_SYNONYMS, "physionet2012_compact": _PHYSIONET_SYNONYMS,
                                       "mimic": _CW24_SYNONYMS, "eicu": _CW24_SYNONYMS}
_SENTENCE_BREAK = re.compile(r"(?<=\.) (?=[A-Z])")  # templates end every sentence with '.' and start with a capital


@dataclass(frozen=True)
class Item:
    """One finding of a stay: the cohort columns that hold it."""

    name: str
    group: str
    values: tuple[str, ...]  # first/last/min/max/mean/total: scale together
    spreads: tuple[str, ...] = ()  # SD columns: scale by |factor|, 0 for a constant
    count: str | None = None  # readings (PhysioNet 2012 full): 0 when masked

    @property
    def columns(self) -> tuple[str, ...]:
        return (*self.values, *self.spreads, *((self.count,) if self.count else ()))


_SERIES_COLUMNS = {series_column(p, stat): (p.stem, stat) for p in PHYSIONET_SERIES for stat in (*SERIES_STATS, "total")}


def _stem_and_stat(name: str) -> tuple[str, str]:
    if name in _SERIES_COLUMNS:  # PhysioNet 2012 series, and the GCS dynamics both sources name alike
        return _SERIES_COLUMNS[name]
    if name.startswith("sofa_dynamic_"):  # CW-24's SOFA over the first day
        return "sofa_dynamic", name[len("sofa_dynamic_"):]
    return name, "value"


def items_of(schema: CohortSchema) -> tuple[Item, ...]:
    """The stay's findings under ``schema``, in schema order (module docstring)."""
    grouped: dict[str, list[tuple[Variable, str]]] = {}
    for var in schema.predictors:
        if var.is_categorical or var.group == "demographics":
            continue
        stem, stat = _stem_and_stat(var.name)
        grouped.setdefault(stem, []).append((var, stat))
    items = []
    for stem, members in grouped.items():
        values = tuple(v.name for v, s in members if s not in ("std", "stddev", "count"))
        spreads = tuple(v.name for v, s in members if s in ("std", "stddev"))
        count = next((v.name for v, s in members if s == "count"), None)
        if values:
            items.append(Item(stem, members[0][0].group, values, spreads, count))
    return tuple(items)


def _is_binary(item: Item, limits: dict) -> bool:
    return all(limits[c][:2] == (0.0, 1.0) for c in item.values)


def value_decimals(schema: CohortSchema, column: str) -> int:
    """Decimals a value of ``column`` keeps: the compact cohort's chart precision, else the template's."""
    var = schema[column]
    stem, stat = _stem_and_stat(column)
    if schema.variant == "physionet2012_compact" and column in _SERIES_COLUMNS and var.kind != "integer":
        return COMPACT_DECIMALS.get(stem, 0)
    return decimals_for(var)


@dataclass
class PerturbedStays:
    """One perturbation of every stay: the edited rows, the texts (when rendered), and what changed."""

    perturbation: Perturbation
    rows: pd.DataFrame  # every stay; unchanged where the edit does not apply
    applied: np.ndarray  # (n,) bool
    changes: list[str]  # per stay: what was edited ("" where nothing)
    texts: list[str] | None = None  # the perturbed texts (None: no template given)
    original_texts: list[str] | None = None


def render_rows(rows: pd.DataFrame, variant: str, missing: MissingMode = "omit", *, source: str = "rows") -> list[str]:
    """The texts of cohort rows, as ``alfia text`` writes them (the variant's template); bad values raise."""
    template = get_template(variant, source=source)
    return render_prepared(prepare_columns(rows, template.schema, source), template, missing)


def _rng(seed: int, name: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


class _Columns:
    """The items' columns as float arrays (row-by-row edits on a wide frame would copy a Series per row)."""

    def __init__(self, rows: pd.DataFrame, items: Sequence[Item]):
        self.values = {c: pd.to_numeric(rows[c], errors="coerce").to_numpy(dtype=float, copy=True)
                       for item in items for c in item.columns if c in rows.columns}

    def present(self, i: int, columns: Sequence[str]) -> bool:
        return any(c in self.values and not np.isnan(self.values[c][i]) for c in columns)

    def write(self, rows: pd.DataFrame) -> None:
        for column, values in self.values.items():
            rows[column] = values


def _limits(schema: CohortSchema) -> dict[str, tuple[float, float, int]]:
    """column -> (lowest, highest, decimals) of every numeric predictor, looked up once per call."""
    out = {}
    for var in schema.predictors:
        if not var.is_categorical:
            lo, hi = var.valid_range or (-np.inf, np.inf)
            out[var.name] = (lo, hi, value_decimals(schema, var.name))
    return out


def _scale(cols: _Columns, i: int, item: Item, factor: float, limits: dict) -> bool:
    """Multiply one item of row ``i`` by ``factor`` (its SDs by |factor|), rounded and clipped; True if it changed."""
    changed = False
    for column in (*item.values, *item.spreads):
        values = cols.values.get(column)
        if values is None or np.isnan(values[i]):
            continue
        x = float(values[i])
        lo, hi, decimals = limits[column]
        spread = column in item.spreads
        new = min(hi, max(0.0 if spread else lo, round(x * abs(factor) if spread else x * factor, decimals)))
        changed |= new != x
        values[i] = new
    return changed


def perturb_rows(rows: pd.DataFrame, variant: str, perturbation: Perturbation | str, *, seed: int = 42,
                 missing: MissingMode = "omit", render: bool = True, source: str = "rows",
                 original_texts: list[str] | None = None) -> PerturbedStays:
    """Apply one perturbation to every stay of ``rows`` (cohort rows of ``variant``; extra columns pass through).

    With ``render`` the original and perturbed texts are rendered with the variant's template (``missing``
    as the text table was written); edits of the text itself (synonym, shuffle) need it. ``original_texts``: the
    rows' texts, already rendered (by a caller that perturbs the same rows many times)."""
    p = BY_NAME[perturbation] if isinstance(perturbation, str) else perturbation
    if p.name not in BY_NAME:
        raise AlfiaError(f"unknown perturbation {p.name!r}; known: {', '.join(BY_NAME)}")
    schema = get_schema(variant)
    items = items_of(schema)
    by_name = {item.name: item for item in items}
    out = rows.copy().reset_index(drop=True)
    n = len(out)
    applied = np.zeros(n, dtype=bool)
    changes = [""] * n
    rng = _rng(seed, p.name)
    if render and original_texts is None:
        original_texts = render_rows(rows.reset_index(drop=True), variant, missing, source=source)
    limits = _limits(schema)
    texts = None
    cols = _Columns(out, items)
    if p.name == "mask":
        for i in range(n):
            present = [item for item in items if cols.present(i, item.values)]
            if not present:
                continue
            item = present[int(rng.integers(len(present)))]
            for column in item.columns:
                if column in cols.values:
                    cols.values[column][i] = 0.0 if column == item.count else np.nan
            applied[i], changes[i] = True, f"{item.name} left out"
    elif p.name == "negation":
        binary = [item for item in items if _is_binary(item, limits)]
        yes_no = [v.name for v in schema.predictors if v.is_categorical and {"Yes", "No"} <= set(v.categories or ())]
        categories = {c: out[c].astype(object).to_numpy(copy=True) for c in yes_no if c in out.columns}
        for i in range(n):
            choices = [("item", item) for item in binary if cols.present(i, item.values)]
            choices += [("category", c) for c, values in categories.items() if values[i] in ("Yes", "No")]
            if not choices:
                continue
            kind, what = choices[int(rng.integers(len(choices)))]
            if kind == "category":
                before = categories[what][i]
                categories[what][i] = "No" if before == "Yes" else "Yes"
                changes[i] = f"{what}: {before} -> {categories[what][i]}"
            else:
                before = {c: float(cols.values[c][i]) for c in what.values if c in cols.values}
                for c in before:  # 1 - x, and the lowest becomes the highest
                    partner = c[:-4] + "_max" if c.endswith("_min") else c[:-4] + "_min" if c.endswith("_max") else c
                    cols.values[c][i] = 1.0 - before.get(partner, before[c])
                changes[i] = f"{what.name} flipped"
            applied[i] = True
        for column, values in categories.items():
            out[column] = values
    elif p.axis == "numeric":
        kinds = {v.name: v.kind for v in schema.predictors}
        measured = [item for item in items if item.group in _MEASUREMENT_GROUPS and not _is_binary(item, limits)
                    and all(kinds[c] == "continuous" for c in item.values)]
        for i in range(n):
            edited = [item.name for item in measured if _scale(cols, i, item, p.factor, limits)]
            if edited:
                shown = ", ".join(edited[:4]) + (", ..." if len(edited) > 4 else "")
                applied[i], changes[i] = True, f"x{p.factor:g} on {len(edited)} item(s): {shown}"
    elif p.axis == "directional":
        item = by_name.get(_DIRECTIONAL_ITEM[p.name])
        for i in range(n) if item is not None else ():
            if not cols.present(i, item.values):
                continue
            if p.name == "gcs_to_3":
                recorded = [c for c in (*item.values, *item.spreads) if c in cols.values and not np.isnan(cols.values[c][i])]
                if all(cols.values[c][i] == (3.0 if c in item.values else 0.0) for c in recorded):
                    continue
                for c in recorded:
                    cols.values[c][i] = 3.0 if c in item.values else 0.0  # a constant 3: its SD is 0
                applied[i], changes[i] = True, "GCS -> 3"
            elif _scale(cols, i, item, p.factor, limits):
                applied[i], changes[i] = True, p.description
    elif p.name == "synonym":
        table = SYNONYMS.get(variant, {})
        texts = list(original_texts)
        for i, text in enumerate(original_texts):
            found = [(phrase, m) for phrase in table
                     for m in [list(re.finditer(rf"(?<![\w-]){re.escape(phrase)}(?![\w-])", text))] if len(m) == 1]
            if not found:
                continue
            phrase, (match,) = found[int(rng.integers(len(found)))]
            texts[i] = text[:match.start()] + table[phrase] + text[match.end():]
            applied[i], changes[i] = True, f"{phrase} -> {table[phrase]}"
    elif p.name == "shuffle":
        texts = list(original_texts)
        for i, text in enumerate(original_texts):
            sentences = _SENTENCE_BREAK.split(text)
            if len(set(sentences)) < 2:
                continue
            order = np.arange(len(sentences))
            while (order == np.arange(len(sentences))).all():
                order = rng.permutation(len(sentences))
            texts[i] = " ".join(sentences[j] for j in order)
            applied[i], changes[i] = True, f"order {' '.join(map(str, order))}"
    if p.level == ROW:
        cols.write(out)
    if p.level == ROW and render:  # the template's checks run here: an edit that left the schema raises
        texts = render_rows(out, variant, missing, source=f"{source} ({p.name})")
    return PerturbedStays(p, out, applied, changes, texts, original_texts)


def resolve_perturbations(names: Sequence[str] | None) -> list[Perturbation]:
    """The named perturbations (all when none are named); an unknown name lists the known ones."""
    if not names:
        return list(PERTURBATIONS)
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        raise AlfiaError(f"unknown perturbation(s) {', '.join(unknown)}; known: {', '.join(BY_NAME)}")
    return [BY_NAME[n] for n in dict.fromkeys(names)]
