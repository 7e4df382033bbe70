"""Medical abbreviations: each is expanded on its first mention in a text and used plainly afterwards.

``Abbreviations()`` is created once per rendered row; ``abbr("GCS")`` returns
``"Glasgow Coma Scale (GCS)"`` the first time and ``"GCS"`` every time after, so an expansion is never
repeated and never comes after a plain use, whatever values are missing and whatever order the template
visits them in.
"""

from __future__ import annotations

EXPANSIONS: dict[str, str] = {
    # severity scores
    "APACHE III": "Acute Physiology and Chronic Health Evaluation III",
    "APACHE IV": "Acute Physiology and Chronic Health Evaluation IV",
    "SAPS II": "Simplified Acute Physiology Score II",
    "SAPS-I": "Simplified Acute Physiology Score I",
    "SIRS": "Systemic Inflammatory Response Syndrome",
    "LODS": "Logistic Organ Dysfunction System",
    "MELD": "Model for End-Stage Liver Disease",
    "OASIS": "Oxford Acute Severity of Illness Score",
    "GCS": "Glasgow Coma Scale",
    "SOFA": "Sequential Organ Failure Assessment",
    # body and statistics
    "BMI": "body mass index",
    "SD": "standard deviation",
    # care units
    "CCU": "coronary care unit",
    "CVICU": "cardiac vascular intensive care unit",
    "MICU": "medical intensive care unit",
    "MICU/SICU": "medical/surgical intensive care unit",
    "Neuro SICU": "neurosurgical intensive care unit",
    "SICU": "surgical intensive care unit",
    "TSICU": "trauma surgical intensive care unit",
    "CCU-CTICU": "coronary and cardiothoracic intensive care unit",
    "CSICU": "cardiac surgery intensive care unit",
    "CTICU": "cardiothoracic intensive care unit",
    "CSRU": "cardiac surgery recovery unit",
    "PACU": "post-anesthesia care unit",
    # PhysioNet 2012 vitals and labs
    "MAP": "mean arterial pressure",
    "FiO2": "fraction of inspired oxygen",
    "SaO2": "arterial oxygen saturation",
    "PaO2": "arterial partial pressure of oxygen",
    "PaCO2": "arterial partial pressure of carbon dioxide",
    "BUN": "blood urea nitrogen",
    "WBC": "white blood cell count",
    "ALP": "alkaline phosphatase",
    "ALT": "alanine aminotransferase",
    "AST": "aspartate aminotransferase",
}


class Abbreviations:
    """Per-text state: which abbreviations have been expanded already."""

    __slots__ = ("_seen",)

    def __init__(self) -> None:
        self._seen: set[str] = set()

    def __call__(self, abbreviation: str) -> str:
        if abbreviation in self._seen:
            return abbreviation
        self._seen.add(abbreviation)
        return f"{EXPANSIONS[abbreviation]} ({abbreviation})"


class PlainAbbreviations(Abbreviations):
    """Never expands: for compact texts, whose readers (and token budget) take 'GCS', 'BUN' as written."""

    __slots__ = ()

    def __call__(self, abbreviation: str) -> str:
        if abbreviation not in EXPANSIONS:
            raise KeyError(abbreviation)
        return abbreviation
