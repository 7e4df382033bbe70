"""Template for CW-24 eICU-CRD cohort rows.

'A 67-year-old Caucasian man was admitted to the medical intensive care unit (MICU) of a hospital in
the Midwest. He is 178 cm tall and weighs 90.3 kg, giving a body mass index (BMI) of 28.5 kg/m². He has
an unknown smoking status, has no history of alcohol or drug abuse and is not obese. ...'
"""

from __future__ import annotations

from alfia.cohorts.schema import EICU
from alfia.text.abbreviations import Abbreviations
from alfia.text.templates.common import (
    NOUN, PRONOUN, body_sentence, lifestyle_sentence, not_recorded, place_descriptor, scores_sentence,
    subject_phrase,
)
from alfia.text.templates.dynamic import dynamic_sentences

VERSION = "1.0"

ETHNICITY = {
    "African American": "African American", "Asian": "Asian", "Caucasian": "Caucasian",
    "Hispanic": "Hispanic", "Native American": "Native American",
}
ETHNICITY_AFTER = {
    "Other/Unknown": "of other or unknown ethnicity",
    "Unknown": "of unknown ethnicity",
}
GENDER_AFTER = {"Unknown": "of unknown sex"}

UNITTYPE = {
    "CCU-CTICU": lambda abbr: f"the {abbr('CCU-CTICU')}",
    "CSICU": lambda abbr: f"the {abbr('CSICU')}",
    "CTICU": lambda abbr: f"the {abbr('CTICU')}",
    "Cardiac ICU": "the cardiac intensive care unit",
    "MICU": lambda abbr: f"the {abbr('MICU')}",
    "Med-Surg ICU": "the medical-surgical intensive care unit",
    "Neuro ICU": "the neurological intensive care unit",
    "SICU": lambda abbr: f"the {abbr('SICU')}",
}
REGION = {
    "Midwest": "of a hospital in the Midwest", "Northeast": "of a hospital in the Northeast",
    "South": "of a hospital in the South", "West": "of a hospital in the West",
    "Unknown": "of a hospital in an unknown region",
}

SCORES = (("apacheiv", "APACHE IV"), ("sapsii", "SAPS II"), ("oasis", "OASIS"))

CATEGORY_PHRASES = {
    "ethnicity": {**ETHNICITY, **ETHNICITY_AFTER},
    "gender": {**NOUN, **GENDER_AFTER},
    "unittype": UNITTYPE,
    "region": REGION,
}


def render(v: dict, state: bool) -> str:
    abbr = Abbreviations()
    sex = v["gender"]
    before, after, missing = [], [], []
    if v["age"] is None and state:
        missing.append("age")
    if sex in GENDER_AFTER:
        after.append(GENDER_AFTER[sex])
    elif sex is None and state:
        missing.append("sex")
    place_descriptor(v["ethnicity"], ETHNICITY, ETHNICITY_AFTER, "ethnicity", before, after, missing,
                     state)
    age = v["age"]
    # eICU writes every age above 89 as 90.
    subject = subject_phrase(age, before, NOUN.get(sex, "patient"), after,
                             age_capped=age is not None and float(age) >= 90)
    sentence = f"{subject} was admitted to "
    unit = v["unittype"]
    if unit is not None:
        p = UNITTYPE[unit]
        sentence += p(abbr) if callable(p) else p
    else:
        sentence += "intensive care"
        if state:
            missing.append("unit type")
    if v["region"] is not None:
        sentence += " " + REGION[v["region"]]
    elif state:
        missing.append("hospital region")
    out = [sentence + "."]
    if missing:
        out.append(not_recorded(missing))

    pronoun = PRONOUN.get(sex, "The patient")
    out += body_sentence(v, pronoun, abbr, state)
    out += lifestyle_sentence(
        pronoun, v["smoker"],
        (("alcohol abuse", v["alcohol_abuse"]), ("drug abuse", v["drug_abuse"])),
        v["obesity"], state, has_obesity=True,
    )
    out += scores_sentence([((lambda a=a: abbr(a)), v[c]) for c, a in SCORES], state)
    out += dynamic_sentences(v, abbr, state)
    return " ".join(out)


TEMPLATE_ARGS = dict(name="eicu", version=VERSION, schema=EICU, render=render,
                     category_phrases=CATEGORY_PHRASES)
