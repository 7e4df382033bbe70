"""Fidelity: every number of a row can be read back from its text, at the stated precision, as the
right variable -- none lost, none invented (issue 3). The reader is tests/text/text_testkit.py, written
from the phrasing of the text rather than from the templates' code."""

from __future__ import annotations

import re

import pytest
from text_testkit import check_round_trip, parse_text, shared_dataset

from alfia.text import encode_cohort


@pytest.mark.parametrize("variant", ["mimic", "eicu"])
def test_round_trip_on_the_synthetic_cohort(variant):
    from alfia.cohorts.sources.synthetic import generate_synthetic

    df = generate_synthetic(variant, 2000, seed=11)
    texts = encode_cohort(df, variant)["text"].tolist()
    n_values = check_round_trip(df, texts, variant)
    assert n_values > 2000 * 15


@pytest.mark.parametrize("missing", ["omit", "state"])
@pytest.mark.parametrize("variant", ["mimic", "eicu", "physionet2012", "physionet2012_compact"])
def test_round_trip_on_random_rows_with_missing_values(variant, missing, random_cohorts):
    """Random schema-valid rows reach every phrasing: partial statistics, short series forms, gaps."""
    df = random_cohorts[variant]
    texts = encode_cohort(df, variant, missing)["text"].tolist()
    assert check_round_trip(df, texts, variant) > len(df) * 10


@pytest.mark.integration
@pytest.mark.parametrize("aggregates, variant, min_values", [("full", "physionet2012", 50),
                                                             ("compact", "physionet2012_compact", 25)])
def test_round_trip_on_physionet2012_set_a(aggregates, variant, min_values):
    from alfia.cohorts.sources.physionet2012 import build_physionet2012

    root = shared_dataset("physionet2012")
    df, report = build_physionet2012([root / "set-a.tar.gz"], [root / "Outcomes-a.txt"], aggregates=aggregates)
    assert len(df) > 3900 and report["variant"] == variant
    texts = encode_cohort(df, variant)["text"].tolist()
    n_values = check_round_trip(df, texts, variant)
    assert n_values > len(df) * min_values


def test_the_checker_catches_a_lost_a_wrong_and_an_invented_number(random_cohorts):
    df = random_cohorts["mimic"].head(1).copy()
    df["height"], df["weight"], df["meld"] = 170.0, 80.0, 14.5
    text = encode_cohort(df, "mimic")["text"].iloc[0]
    check_round_trip(df, [text], "mimic")
    with pytest.raises(AssertionError, match="lost"):
        check_round_trip(df, [re.sub(r" and Oxford [A-Za-z ]+\(OASIS\) \d+", "", text)], "mimic")
    with pytest.raises(AssertionError, match="meld reads"):
        check_round_trip(df, [text.replace("(MELD) 14.5", "(MELD) 14.4")], "mimic")
    with pytest.raises(AssertionError, match="not any variable's"):
        check_round_trip(df, [text + " Urine 300 mL."], "mimic")
    assert parse_text(text, "mimic").values["bmi"] == 27.7


@pytest.mark.integration
@pytest.mark.parametrize("variant, command, data, flag", [
    ("mimic", "mimic-iv", "mimic-iv-demo", "--mimic-dir"),
    ("eicu", "eicu", "eicu-demo", "--eicu-dir"),
])
def test_round_trip_on_the_real_demo_cohorts(variant, command, data, flag, tmp_path):
    """Real MIMIC-IV / eICU vocabulary and real gaps, through the project's own extraction."""
    from typer.testing import CliRunner

    from alfia.cli import _register, app
    from alfia.cohorts.io import read_table

    root = shared_dataset(data)
    _register()
    out = tmp_path / "cohort.parquet"
    res = CliRunner().invoke(app, ["cohort", command, flag, str(root), "--out", str(out)])
    assert res.exit_code == 0, res.output
    df, manifest = read_table(out)
    for missing in ("omit", "state"):
        texts = encode_cohort(df, manifest.variant, missing)["text"].tolist()
        assert check_round_trip(df, texts, variant) > len(df) * 5
