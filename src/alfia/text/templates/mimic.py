"""Template for CW-24 MIMIC-IV cohort rows.

'A 71-year-old widowed Black or African American woman, English-speaking and insured by Medicare, was
admitted as an emergency from the emergency department to the medical intensive care unit (MICU). She is
160 cm tall and weighs 72.5 kg, giving a body mass index (BMI) of 28.3 kg/m². ...'

MIMIC-IV writes categories in its own vocabulary ('EW EMER.', 'BLACK/AFRICAN AMERICAN'); the tables below
turn each into words a clinician would write.
"""

from __future__ import annotations

from alfia.cohorts.schema import MIMIC_IV
from alfia.text.abbreviations import Abbreviations
from alfia.text.templates.common import (
    NOUN, PRONOUN, body_sentence, join_and, lifestyle_sentence, not_recorded, place_descriptor,
    scores_sentence, subject_phrase,
)
from alfia.text.templates.dynamic import dynamic_sentences

VERSION = "1.0"

MARITAL = {"Divorced": "divorced", "Married": "married", "Single": "single", "Widowed": "widowed"}
MARITAL_AFTER = {"Unknown": "of unknown marital status"}

# Race: an adjective before the noun, or (RACE_AFTER) a phrase after it.
RACE = {
    "AMERICAN INDIAN/ALASKA NATIVE": "American Indian or Alaska Native",
    "ASIAN": "Asian",
    "ASIAN - ASIAN INDIAN": "Asian Indian",
    "ASIAN - CHINESE": "Chinese",
    "ASIAN - KOREAN": "Korean",
    "ASIAN - SOUTH EAST ASIAN": "Southeast Asian",
    "BLACK/AFRICAN": "Black African",
    "BLACK/AFRICAN AMERICAN": "Black or African American",
    "BLACK/CAPE VERDEAN": "Black Cape Verdean",
    "BLACK/CARIBBEAN ISLAND": "Black Caribbean",
    "HISPANIC OR LATINO": "Hispanic or Latino",
    "HISPANIC/LATINO - CENTRAL AMERICAN": "Central American Hispanic",
    "HISPANIC/LATINO - COLUMBIAN": "Colombian Hispanic",
    "HISPANIC/LATINO - CUBAN": "Cuban Hispanic",
    "HISPANIC/LATINO - DOMINICAN": "Dominican Hispanic",
    "HISPANIC/LATINO - GUATEMALAN": "Guatemalan Hispanic",
    "HISPANIC/LATINO - HONDURAN": "Honduran Hispanic",
    "HISPANIC/LATINO - MEXICAN": "Mexican Hispanic",
    "HISPANIC/LATINO - PUERTO RICAN": "Puerto Rican Hispanic",
    "HISPANIC/LATINO - SALVADORAN": "Salvadoran Hispanic",
    "MULTIPLE RACE/ETHNICITY": "multiracial",
    "NATIVE HAWAIIAN OR OTHER PACIFIC ISLANDER": "Native Hawaiian or Pacific Islander",
    "PORTUGUESE": "Portuguese",
    "SOUTH AMERICAN": "South American",
    "WHITE": "White",
    "WHITE - BRAZILIAN": "White Brazilian",
    "WHITE - EASTERN EUROPEAN": "White Eastern European",
    "WHITE - OTHER EUROPEAN": "White European",
    "WHITE - RUSSIAN": "White Russian",
}
RACE_AFTER = {
    "OTHER": "of another race",
    "PATIENT DECLINED TO ANSWER": "who declined to state a race",
    "UNABLE TO OBTAIN": "whose race could not be obtained",
    "UNKNOWN": "of unknown race",
}

LANGUAGE_SPECIAL = {
    "English": "English-speaking",
    "American Sign Language": "using American Sign Language",
    "Other": "speaking another language",
    "Unknown": "of unknown language",
}

INSURANCE = {
    "Medicaid": "insured by Medicaid",
    "Medicare": "insured by Medicare",
    "No Charge": "treated free of charge",
    "Other": "with other insurance",
    "Private": "privately insured",
    "Unknown": "with unknown insurance",
}

ADMISSION_TYPE = {
    "AMBULATORY OBSERVATION": "for ambulatory observation",
    "DIRECT EMER.": "as a direct emergency",
    "DIRECT OBSERVATION": "for direct observation",
    "ELECTIVE": "electively",
    "EU OBSERVATION": "for emergency-unit observation",
    "EW EMER.": "as an emergency",
    "OBSERVATION ADMIT": "for observation",
    "SURGICAL SAME DAY ADMISSION": "as a same-day surgical admission",
    "URGENT": "urgently",
}

# Locations that name an abbreviation are callables of the per-text Abbreviations.
ADMISSION_LOCATION = {
    "AMBULATORY SURGERY TRANSFER": "on transfer from ambulatory surgery",
    "CLINIC REFERRAL": "on clinic referral",
    "EMERGENCY ROOM": "from the emergency department",
    "INFORMATION NOT AVAILABLE": "from a location not documented",
    "INTERNAL TRANSFER TO OR FROM PSYCH": "on internal transfer from psychiatry",
    "PACU": lambda abbr: f"from the {abbr('PACU')}",
    "PHYSICIAN REFERRAL": "on physician referral",
    "PROCEDURE SITE": "from a procedure site",
    "TRANSFER FROM HOSPITAL": "on transfer from another hospital",
    "TRANSFER FROM SKILLED NURSING FACILITY": "on transfer from a skilled nursing facility",
    "WALK-IN/SELF REFERRAL": "as a walk-in or self-referral",
    "Unknown": "from an unknown location",
}

CAREUNIT = {
    "Cardiac Vascular Intensive Care Unit (CVICU)": lambda abbr: f"the {abbr('CVICU')}",
    "Coronary Care Unit (CCU)": lambda abbr: f"the {abbr('CCU')}",
    "Medical Intensive Care Unit (MICU)": lambda abbr: f"the {abbr('MICU')}",
    "Medical/Surgical Intensive Care Unit (MICU/SICU)": lambda abbr: f"the {abbr('MICU/SICU')}",
    "Neuro Intermediate": "the neurological intermediate care unit",
    "Neuro Stepdown": "the neurological step-down unit",
    "Neuro Surgical Intensive Care Unit (Neuro SICU)": lambda abbr: f"the {abbr('Neuro SICU')}",
    "Surgical Intensive Care Unit (SICU)": lambda abbr: f"the {abbr('SICU')}",
    "Trauma SICU (TSICU)": lambda abbr: f"the {abbr('TSICU')}",
}

SCORES = (
    ("apsiii", "APACHE III"), ("sapsii", "SAPS II"), ("sirs", "SIRS"), ("lods", "LODS"),
    ("meld", "MELD"), ("oasis", "OASIS"),
)

CATEGORY_PHRASES = {
    "marital_status": {**MARITAL, **MARITAL_AFTER},
    "race": {**RACE, **RACE_AFTER},
    "insurance": INSURANCE,
    "admission_type": ADMISSION_TYPE,
    "admission_location": ADMISSION_LOCATION,
    "careunit": CAREUNIT,
}


def _phrase(table: dict, key: str, abbr: Abbreviations) -> str:
    p = table[key]
    return p(abbr) if callable(p) else p


def language_phrase(language: str) -> str:
    return LANGUAGE_SPECIAL.get(language) or f"speaking {language}"


def render(v: dict, state: bool) -> str:
    abbr = Abbreviations()
    sex = v["gender"]
    before, after, missing = [], [], []
    if v["admission_age"] is None and state:
        missing.append("age")
    if sex is None and state:
        missing.append("sex")
    place_descriptor(v["marital_status"], MARITAL, MARITAL_AFTER, "marital status", before, after,
                     missing, state)
    place_descriptor(v["race"], RACE, RACE_AFTER, "race", before, after, missing, state)
    subject = subject_phrase(v["admission_age"], before, NOUN.get(sex, "patient"), after)

    extras = []
    if v["language"] is not None:
        extras.append(language_phrase(v["language"]))
    elif state:
        missing.append("language")
    if v["insurance"] is not None:
        extras.append(INSURANCE[v["insurance"]])
    elif state:
        missing.append("insurance")
    sentence = subject + (f", {join_and(extras)}," if extras else "") + " was admitted"
    for column, table, label in (
        ("admission_type", ADMISSION_TYPE, "admission type"),
        ("admission_location", ADMISSION_LOCATION, "admission location"),
    ):
        if v[column] is not None:
            sentence += " " + _phrase(table, v[column], abbr)
        elif state:
            missing.append(label)
    if v["careunit"] is not None:
        sentence += " to " + _phrase(CAREUNIT, v["careunit"], abbr)
    else:
        sentence += " to intensive care"
        if state:
            missing.append("care unit")
    out = [sentence + "."]
    if missing:
        out.append(not_recorded(missing))

    pronoun = PRONOUN.get(sex, "The patient")
    out += body_sentence(v, pronoun, abbr, state)
    out += lifestyle_sentence(pronoun, v["smoker"], (("alcohol abuse", v["alcohol_abuse"]),),
                              None, state)
    out += scores_sentence(
        [(_label(abbr, a, " score" if column == "sirs" else ""), v[column]) for column, a in SCORES],
        state,
    )
    out += dynamic_sentences(v, abbr, state)
    return " ".join(out)


def _label(abbr: Abbreviations, abbreviation: str, suffix: str = ""):
    return lambda: abbr(abbreviation) + suffix


TEMPLATE_ARGS = dict(name="mimic", version=VERSION, schema=MIMIC_IV, render=render,
                     category_phrases=CATEGORY_PHRASES)
