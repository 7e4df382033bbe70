"""Each perturbation on a tiny cohort: it changes what it says it changes, nothing else, and the perturbed text is
still one the template writes (the round-trip reader of tests/text reads the edited row back from it)."""

from __future__ import annotations

import difflib
import re

import numpy as np
import pandas as pd
import pytest
from text_testkit import check_round_trip, parse_text

from alfia.analysis.perturb import PERTURBATIONS, ROW, SYNONYMS, items_of, perturb_rows, value_decimals
from alfia.cohorts.schema import get_schema
from alfia.errors import AlfiaError

from .conftest import compact_cohort

VARIANTS = ("physionet2012_compact", "physionet2012", "mimic")


@pytest.fixture(scope="module")
def cohorts():
    from text_testkit import random_cohort

    return {"physionet2012_compact": compact_cohort(30), "physionet2012": random_cohort("physionet2012", 12, seed=2),
            "mimic": random_cohort("mimic", 24, seed=2), "eicu": random_cohort("eicu", 24, seed=2)}


def _changed_columns(before: pd.DataFrame, after: pd.DataFrame, columns) -> list[set[str]]:
    """Per row, the columns whose value differs (missing on both sides is no difference)."""
    columns = [c for c in columns if c in before.columns]
    b, a = before[columns].reset_index(drop=True), after[columns].reset_index(drop=True)
    differs = ~((b.isna() & a.isna()) | (b == a)).to_numpy()
    names = np.asarray(columns)
    return [set(names[row]) for row in differs]


def _edits(a: str, b: str) -> list[tuple[str, str]]:
    """The word-level regions where two texts differ."""
    wa, wb = a.split(), b.split()
    return [(" ".join(wa[i1:i2]), " ".join(wb[j1:j2]))
            for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=wa, b=wb, autojunk=False).get_opcodes()
            if tag != "equal"]


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("name", [p.name for p in PERTURBATIONS if p.level == ROW])
def test_row_edits_re_render_to_texts_that_read_back_as_the_edited_rows(cohorts, variant, name):
    edited = perturb_rows(cohorts[variant], variant, name, seed=3)
    check_round_trip(edited.rows, edited.texts, variant)  # every number of the edited row, none lost or invented
    unchanged = ~edited.applied
    assert [t for t, o, keep in zip(edited.texts, edited.original_texts, unchanged) if keep and t != o] == []
    if name not in ("lactate_x3", "urine_output_div4") or variant.startswith("physionet"):
        assert edited.applied.any(), f"{name} applied to no stay of the {variant} cohort"


@pytest.mark.parametrize("variant", VARIANTS)
def test_masking_drops_exactly_one_item(cohorts, variant):
    df = cohorts[variant]
    schema = get_schema(variant)
    edited = perturb_rows(df, variant, "mask", seed=1)
    items = {item.name: item for item in items_of(schema)}
    changes = _changed_columns(df, edited.rows, schema.predictor_names)
    for i in np.flatnonzero(edited.applied):
        changed = changes[i]
        item = items[edited.changes[i].removesuffix(" left out")]
        assert changed and changed <= set(item.columns), (changed, item)
        assert edited.rows.iloc[i][list(item.values)].isna().all()
        read_before = parse_text(edited.original_texts[i], variant).values
        read_after = parse_text(edited.texts[i], variant).values
        lost = set(read_before) - set(read_after) - {"bmi"}  # height or weight also takes the BMI with it
        assert lost and lost <= set(item.columns) and not set(read_after) - set(read_before)


@pytest.mark.parametrize("variant, phrase", [("physionet2012_compact", "mechanical ventilation"),
                                             ("mimic", None), ("eicu", None)])
def test_negation_changes_exactly_one_phrase(cohorts, variant, phrase):
    edited = perturb_rows(cohorts[variant], variant, "negation", seed=4)
    assert edited.applied.sum() >= 5
    changes = _changed_columns(cohorts[variant], edited.rows, get_schema(variant).predictor_names)
    for i in np.flatnonzero(edited.applied):
        edits = _edits(edited.original_texts[i], edited.texts[i])
        if variant.startswith("physionet"):
            assert len(edits) == 1 and {"".join(e) for e in edits} <= {"not"}, edits  # "on" <-> "not on"
            assert phrase in edited.texts[i]
        else:
            column = edited.changes[i].split(":")[0]
            assert changes[i] == {column}
            # Exactly one phrase: the lifestyle sentence, which the template may regroup ("has no history of X or Y"
            # -> "has a history of X but not of Y"); every other sentence is untouched.
            split = re.compile(r"(?<=\.) (?=[A-Z])")
            before, after = split.split(edited.original_texts[i]), split.split(edited.texts[i])
            assert len(before) == len(after) and sum(a != b for a, b in zip(before, after)) == 1, edits


@pytest.mark.parametrize("variant", ["physionet2012_compact", "mimic", "eicu"])
def test_a_synonym_replaces_exactly_one_template_name(cohorts, variant):
    edited = perturb_rows(cohorts[variant], variant, "synonym", seed=5)
    assert edited.applied.all()
    table = SYNONYMS[variant]
    for i in range(len(edited.texts)):
        phrase, synonym = edited.changes[i].split(" -> ")
        assert table[phrase] == synonym
        assert edited.texts[i] == edited.original_texts[i].replace(phrase, synonym, 1)
        assert len(re.findall(rf"(?<![\w-]){re.escape(phrase)}(?![\w-])", edited.original_texts[i])) == 1
    assert edited.rows.equals(cohorts[variant].reset_index(drop=True))  # the row itself is untouched


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("name", ["numeric_+5%", "numeric_-5%", "numeric_+10%", "numeric_-10%"])
def test_numeric_variation_stays_within_range_and_precision(cohorts, variant, name):
    df = cohorts[variant].reset_index(drop=True)
    schema = get_schema(variant)
    p = next(p for p in PERTURBATIONS if p.name == name)
    edited = perturb_rows(df, variant, p, seed=6)
    assert edited.applied.sum() >= len(df) - 2
    n_checked = 0
    for column in schema.numeric:
        before, after = df[column].astype(float), edited.rows[column].astype(float)
        changed = (before != after) & before.notna()
        assert (before.isna() == after.isna()).all(), column  # nothing appears or disappears
        if not changed.any():
            continue
        var = schema[column]
        assert var.group in ("body", "vitals", "labs") and var.kind == "continuous", column
        lo, hi = var.valid_range
        d = value_decimals(schema, column)
        x, v = before[changed].to_numpy(), after[changed].to_numpy()
        assert ((v >= lo) & (v <= hi)).all(), column
        assert np.allclose(v, np.round(v, d)), f"{column}: more than {d} decimals"
        spread = column.endswith("_std")
        target = x * (abs(p.factor) if spread else p.factor)
        clipped = (v == lo) | (v == hi)
        assert (np.abs(v - target)[~clipped] <= 0.5 * 10.0 ** -d + 1e-9).all(), column  # rounded, never more
        # the relative change is the factor's, up to rounding
        n_checked += int(changed.sum())
    assert n_checked > len(df)


def test_shuffle_reorders_the_template_sentences_and_nothing_else(cohorts):
    variant = "physionet2012_compact"
    edited = perturb_rows(cohorts[variant], variant, "shuffle", seed=7)
    assert edited.applied.all()
    for original, shuffled in zip(edited.original_texts, edited.texts):
        split = re.compile(r"(?<=\.) (?=[A-Z])")
        assert shuffled != original and sorted(split.split(shuffled)) == sorted(split.split(original))
    check_round_trip(cohorts[variant], edited.texts, variant)  # every value still reads back


@pytest.mark.parametrize("variant", ["physionet2012_compact", "physionet2012"])
def test_directional_edits_change_the_intended_value(cohorts, variant):
    df = cohorts[variant].reset_index(drop=True)
    schema = get_schema(variant)
    items = {item.name: item for item in items_of(schema)}
    for name, stem in (("gcs_to_3", "gcs"), ("lactate_x3", "lactate"), ("urine_output_div4", "urine_output")):
        edited = perturb_rows(df, variant, name, seed=8)
        item = items[stem]
        assert edited.applied.sum() >= 3
        changes = _changed_columns(df, edited.rows, schema.predictor_names)
        for i in np.flatnonzero(edited.applied):
            changed = changes[i]
            assert changed and changed <= set(item.columns), (name, changed)
            for column in item.values:
                x, v = float(df.loc[i, column]), float(edited.rows.loc[i, column])
                if pd.isna(x):
                    assert pd.isna(v)
                elif name == "gcs_to_3":
                    assert v == 3
                else:
                    factor = 3.0 if name == "lactate_x3" else 0.25
                    lo, hi = schema[column].valid_range
                    d = value_decimals(schema, column)
                    assert v == min(hi, max(lo, round(x * factor, d))), (column, x, v)
        check_round_trip(edited.rows, edited.texts, variant)


def test_edits_are_the_same_for_the_same_rows_and_seed(cohorts):
    df = cohorts["physionet2012_compact"]
    a, b = (perturb_rows(df, "physionet2012_compact", "mask", seed=9) for _ in range(2))
    assert a.changes == b.changes and a.texts == b.texts
    assert perturb_rows(df, "physionet2012_compact", "mask", seed=10).changes != a.changes


def test_an_unknown_perturbation_names_the_known_ones():
    from alfia.analysis.perturb import resolve_perturbations

    with pytest.raises(AlfiaError, match="known: mask, negation"):
        resolve_perturbations(["mask", "typo"])
