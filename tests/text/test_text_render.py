"""What the text says: order, wording, categories, abbreviations, precision, missing values."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest

from alfia.cohorts.schema import get_schema
from alfia.text import TEMPLATES, encode_cohort, render_row
from alfia.text.abbreviations import EXPANSIONS
from alfia.text.numbers import format_number


def test_mimic_text_reads_like_a_clinician_wrote_it(mimic_row):
    text = render_row(mimic_row, "mimic")
    assert text.startswith(
        "A 71-year-old widowed Black or African American woman, English-speaking and insured by "
        "Medicare, was admitted as an emergency from the emergency department to the medical "
        "intensive care unit (MICU). She is 160 cm tall and weighs 72.5 kg, giving a body mass index "
        "(BMI) of 28.3 kg/m².")
    assert "She is a non-smoker and has a history of alcohol abuse." in text
    assert "Over the first day, the Glasgow Coma Scale (GCS) went from 14 to 15 points (range 13-15, " \
           "mean 14.33, standard deviation (SD) 0.58); the Sequential Organ Failure Assessment (SOFA) " \
           "score went from 4 to 3 points (range 2-5, mean 3.5, SD 1.05)." in text
    # no key: value dumps, no raw MIMIC vocabulary
    assert "EW EMER." not in text and "BLACK/" not in text and "_" not in text


@pytest.mark.parametrize("name", list(TEMPLATES))
def test_sections_come_in_clinical_order(name, random_cohorts):
    df = random_cohorts[name]
    text = encode_cohort(df.head(50), name)["text"]
    markers = ["-year-old", " tall", "Severity scores", "Over the first day"]
    if name == "physionet2012":
        markers += ["Vital signs:", "Laboratory results:"]
    for t in text:
        positions = [t.find(m) for m in markers if m in t]
        assert positions == sorted(positions), t


@pytest.mark.parametrize("name", list(TEMPLATES))
def test_every_category_reads_in_natural_words(name, random_cohorts):
    template = TEMPLATES[name]
    base = random_cohorts[name].iloc[0].to_dict()
    for var in template.schema.predictors:
        if not var.is_categorical:
            continue
        phrases = []
        for category in var.categories:
            text = render_row({**base, var.name: category}, name)
            raw = category.isupper() and len(category) > 4 and category not in EXPANSIONS
            if raw:  # raw EHR vocabulary, e.g. 'EW EMER.' (an abbreviation is expanded instead)
                assert category not in text, (var.name, category, text)
            phrases.append(text)
        # distinct categories give distinct texts: nothing is lost in the wording
        assert len(set(phrases)) == len(var.categories), var.name


@pytest.mark.parametrize("name", list(TEMPLATES))
def test_category_phrases_are_distinct(name):
    for column, table in TEMPLATES[name].category_phrases.items():
        rendered = [p if isinstance(p, str) else p(lambda a: a) for p in table.values()]
        assert len(set(rendered)) == len(rendered), column


def _abbreviation_problems(text: str) -> list[str]:
    problems = []
    for abbr, full in EXPANSIONS.items():
        marked = f"({abbr})"
        n_expanded = text.count(f"{full} {marked}")
        if text.count(marked) > 1 or n_expanded > 1:
            problems.append(f"{abbr} expanded twice")
        plain = [m.start() for m in re.finditer(
            rf"(?<![\w(/-]){re.escape(abbr)}(?![\w)/-])", text)]
        if plain:
            first_expansion = text.find(marked)
            if first_expansion < 0 or first_expansion > plain[0]:
                problems.append(f"{abbr} used before it is expanded")
    return problems


@pytest.mark.parametrize("missing", ["omit", "state"])
def test_the_compact_text_writes_abbreviations_plainly(missing, random_cohorts):
    """Its token budget (p95 <= 256 was the aim) leaves no room for 'blood urea nitrogen (BUN)'."""
    from alfia.text.abbreviations import EXPANSIONS

    texts = encode_cohort(random_cohorts["physionet2012_compact"], "physionet2012_compact", missing)["text"]
    joined = " ".join(texts)
    for abbreviation in ("GCS", "BUN", "WBC", "SAPS-I", "FiO2"):
        assert abbreviation in joined
    assert not [e for e in EXPANSIONS.values() if f"{e} (" in joined]


@pytest.mark.parametrize("missing", ["omit", "state"])
@pytest.mark.parametrize("name", [n for n in TEMPLATES if n != "physionet2012_compact"])
def test_each_abbreviation_is_expanded_once_at_first_mention(name, missing, random_cohorts):
    texts = encode_cohort(random_cohorts[name], name, missing)["text"]
    for text in texts:
        assert not _abbreviation_problems(text), (_abbreviation_problems(text), text)
    joined = " ".join(texts)
    assert "(SD)" in joined and " SD " in joined  # expanded once, then used plainly


def test_abbreviation_check_catches_a_second_expansion():
    bad = "The Glasgow Coma Scale (GCS) was 15; later the Glasgow Coma Scale (GCS) was 14."
    assert _abbreviation_problems(bad) == ["GCS expanded twice"]
    assert _abbreviation_problems("GCS 15, then Glasgow Coma Scale (GCS) 14.") == [
        "GCS used before it is expanded"]


def test_abbreviation_moves_to_its_first_mention_when_values_are_missing(mimic_row):
    row = {**mimic_row, **{c: np.nan for c in mimic_row if c.startswith("gcs_dynamic")}}
    omit = render_row(row, "mimic")
    assert "GCS" not in omit
    state = render_row(row, "mimic", "state")
    assert state.count("Glasgow Coma Scale (GCS)") == 1
    assert "The Glasgow Coma Scale (GCS) was not recorded." in state


def test_unchanged_score_is_said_once(mimic_row):
    row = {**mimic_row, "gcs_dynamic_first": 15, "gcs_dynamic_last": 15, "gcs_dynamic_min": 15,
           "gcs_dynamic_max": 15, "gcs_dynamic_avg": 15.0, "gcs_dynamic_stddev": 0.0}
    text = render_row(row, "mimic")
    assert "Over the first day, the Glasgow Coma Scale (GCS) stayed at 15 points; the Sequential " \
           "Organ Failure Assessment (SOFA) score went from 4 to 3 points (range 2-5, mean 3.5, " \
           "standard deviation (SD) 1.05)." in text


def test_one_point_is_singular(mimic_row):
    sofa = {"sofa_dynamic_first": 1, "sofa_dynamic_last": 1, "sofa_dynamic_min": 1,
            "sofa_dynamic_max": 1, "sofa_dynamic_avg": 1.0, "sofa_dynamic_stddev": 0.0}
    assert "(SOFA) score stayed at 1 point." in render_row({**mimic_row, **sofa}, "mimic")
    falling = {**sofa, "sofa_dynamic_first": 3, "sofa_dynamic_max": 3, "sofa_dynamic_avg": 2.0,
               "sofa_dynamic_stddev": 1.0}
    assert "(SOFA) score went from 3 to 1 point (range 1-3," in render_row({**mimic_row, **falling},
                                                                            "mimic")


def test_bmi_has_one_decimal_and_needs_height_and_weight(mimic_row):
    text = render_row({**mimic_row, "height": 175.0, "weight": 81.0}, "mimic")
    assert f"(BMI) of {round(81 / 1.75 ** 2, 1)} kg/m²" in text  # 26.4
    for gone in ("height", "weight"):
        text = render_row({**mimic_row, gone: np.nan}, "mimic")
        assert "BMI" not in text and "body mass index" not in text


def test_missing_values_are_omitted_or_stated(mimic_row):
    row = {**mimic_row, "height": np.nan, "insurance": None, "meld": np.nan}
    omit = render_row(row, "mimic")
    assert "not recorded" not in omit and "MELD" not in omit and "insured" not in omit
    assert "weighs 72.5 kg" in omit
    state = render_row(row, "mimic", "state")
    assert "Height was not recorded." in state
    assert "Insurance was not recorded." in state
    assert "Model for End-Stage Liver Disease (MELD) was not recorded." in state


def test_numbers_keep_source_precision(mimic_row):
    text = render_row({**mimic_row, "weight": 72.50, "height": 160.25, "meld": 12.0,
                       "gcs_dynamic_avg": 14.0, "sofa_dynamic_stddev": 1.006}, "mimic")
    assert "weighs 72.5 kg" in text and "160.25 cm" in text
    assert "(MELD) 12 " in text  # integral value, written as an integer
    assert "mean 14," in text and "SD 1.01)" in text  # two decimals at most
    assert format_number(2.675, 2) == f"{round(2.675, 2)}"  # same rounding as round()
    assert format_number(-0.001, 2) == "0"


def test_eicu_ages_above_89_are_written_as_such(random_cohorts):
    row = random_cohorts["eicu"].iloc[0].to_dict()
    assert "A 90-year-old (or older) " in render_row({**row, "age": 90}, "eicu")
    assert "(or older)" not in render_row({**row, "age": 64}, "eicu")
    assert render_row({**row, "age": 81}, "eicu").startswith("An 81-year-old")


def test_text_is_deterministic_and_render_row_matches_encode(random_cohorts):
    for name, df in random_cohorts.items():
        a = encode_cohort(df.head(40), name)["text"].tolist()
        b = encode_cohort(df.head(40).copy(), name)["text"].tolist()
        assert a == b
        assert render_row(df.iloc[3].to_dict(), name) == a[3]


def _physionet_row(random_cohorts, **series):
    row = random_cohorts["physionet2012"].iloc[0].to_dict()
    for stem, values in series.items():
        v = np.asarray(values, dtype=float)
        stats = dict(first=v[0], last=v[-1], min=v.min(), max=v.max(), mean=v.mean(),
                     std=v.std(ddof=1) if len(v) > 1 else np.nan, count=len(v))
        for s, x in stats.items():
            row[f"{stem}_{s}"] = x
    return row


def test_physionet_series_use_the_shortest_lossless_form(random_cohorts):
    row = _physionet_row(random_cohorts, sodium=[139], potassium=[4.1, 3.7], temperature=[37.2] * 3,
                         heart_rate=[88, 80, 101, 92])
    row["lactate_count"] = 0
    for s in ("first", "last", "min", "max", "mean", "std"):
        row[f"lactate_{s}"] = np.nan
    text = render_row(row, "physionet2012")
    assert "sodium 139 mmol/L;" in text
    assert "potassium 4.1 then 3.7 mmol/L;" in text
    assert "temperature 37.2 °C in all 3 readings;" in text
    hr_sd = format_number(float(np.std([88, 80, 101, 92], ddof=1)), 2)
    assert f"heart rate 88 to 92 bpm (4 readings, range 80-101, mean 90.25, SD {hr_sd});" in text
    assert "lactate" not in text
    assert re.search(r"\b[Ll]actate\b[^.]* not recorded\.", render_row(row, "physionet2012", "state"))


def test_physionet_short_form_only_when_it_gives_the_cohort_values_back(random_cohorts):
    row = _physionet_row(random_cohorts, potassium=[4.1, 3.7])
    row["potassium_std"] = abs(4.1 - 3.7) / 2  # population SD: not what 'then' implies
    text = render_row(row, "physionet2012")
    assert "potassium 4.1 to 3.7 mmol/L (2 readings, range 3.7-4.1, mean 3.9, SD 0.2)" in text


def test_physionet_partial_statistics_are_labelled(random_cohorts):
    row = _physionet_row(random_cohorts, glucose=[120, 180, 150])
    row["glucose_mean"] = np.nan
    assert "glucose in mg/dL: 3 readings, first 120, last 150, lowest 120, highest 180, SD 30;" in \
        render_row(row, "physionet2012")
    assert "mean not recorded" in render_row(row, "physionet2012", "state")


def test_text_table_keeps_ids_label_split_and_predictors(random_cohorts):
    df = random_cohorts["eicu"]
    out = encode_cohort(df, "eicu")
    assert list(out.columns[:4]) == ["stay_id", "split", "hospital_expire_flag", "text"]
    schema = get_schema("eicu")
    assert list(out.columns[4:]) == schema.predictor_names
    pd.testing.assert_series_equal(out["age"], df["age"].reset_index(drop=True), check_names=False)
    assert (out["stay_id"].to_numpy() == df["stay_id"].to_numpy()).all()
    assert all(isinstance(t, str) and len(t) > 100 for t in out["text"])
    assert not math.isnan(out["hospital_expire_flag"].astype(float).sum())


def test_nullable_and_categorical_dtypes_give_the_same_text(random_cohorts):
    df = random_cohorts["eicu"].head(100)
    converted = df.convert_dtypes()  # Int64 / Float64 / string with pd.NA
    converted["gender"] = converted["gender"].astype("category")
    assert encode_cohort(converted, "eicu")["text"].tolist() == encode_cohort(df, "eicu")["text"].tolist()
