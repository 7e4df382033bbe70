"""Sentence pieces shared by the source templates.

Templates receive one row as a dict of already formatted strings (``None`` = missing), so no template
does number formatting of its own: precision is decided once, in :mod:`alfia.text.numbers`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from alfia.text.abbreviations import Abbreviations

PRONOUN = {"Female": "She", "Male": "He"}
NOUN = {"Female": "woman", "Male": "man"}
NOT_RECORDED = "not recorded"


def join_and(items: Sequence[str], conj: str = "and") -> str:
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {conj} {items[-1]}"


def capitalize(text: str) -> str:
    return text[:1].upper() + text[1:]


def article(phrase: str) -> str:
    """'A' or 'An' before ``phrase`` (numbers by how they are spoken: an 8, an 11, an 18, an 80...)."""
    head = phrase.split("-", 1)[0].split(".", 1)[0].split(" ", 1)[0]
    if head.isdigit():
        return "An" if head.startswith("8") or head in ("11", "18") else "A"
    return "An" if head[:1].lower() in "aeiou" else "A"


def not_recorded(labels: Sequence[str]) -> str:
    """'Height and weight were not recorded.'"""
    verb = "was" if len(labels) == 1 else "were"
    return f"{capitalize(join_and(labels))} {verb} {NOT_RECORDED}."


def body_sentence(v: dict, pronoun: str, abbr: Abbreviations, state: bool) -> list[str]:
    """Height, weight and the BMI derived from them (kg/m², one decimal)."""
    height, weight, bmi = v["height"], v["weight"], v["bmi"]
    verb_phrases = []
    if height is not None:
        verb_phrases.append(f"is {height} cm tall")
    if weight is not None:
        verb_phrases.append(f"weighs {weight} kg")
    out = []
    if verb_phrases:
        sentence = f"{pronoun} {join_and(verb_phrases)}"
        if bmi is not None:
            sentence += f", giving a {abbr('BMI')} of {bmi} kg/m²"
        out.append(sentence + ".")
    if state:
        missing = [label for label, value in (("height", height), ("weight", weight)) if value is None]
        if missing:
            out.append(not_recorded(missing))
    return out


def scores_sentence(items: Sequence[tuple[Callable[[], str], str | None]], state: bool) -> list[str]:
    """'Severity scores (points): Simplified Acute Physiology Score II (SAPS II) 38 and OASIS 31.'

    ``items`` pairs a label factory (called only when the score is mentioned, so an abbreviation is
    expanded where it first appears) with the formatted value.
    """
    present, missing = [], []
    for label, value in items:
        if value is not None:
            present.append(f"{label()} {value}")
        elif state:
            missing.append(label)
    out = []
    if present:
        out.append(f"Severity scores (points): {join_and(present)}.")
    if missing:  # labelled only now, so an abbreviation is expanded where the text first shows it
        out.append(not_recorded([label() for label in missing]))
    return out


STAT_LABELS = ("first", "last", "lowest", "highest", "mean")


def unit_after(value: str, unit: str | None) -> str:
    """' points', or ' point' after a 1 ('went from 3 to 1 point')."""
    if not unit:
        return ""
    return " point" if unit == "points" and value == "1" else f" {unit}"


def trajectory(name: str, unit: str | None, stats: Sequence[str | None], abbr: Abbreviations,
               state: bool, *, lead: str = "", count: str | None = None) -> str:
    """One score or series over the window.

    ``stats`` = (first, last, lowest, highest, mean, SD). With all six present the phrase is positional,
    '<name> <lead><first> to <last> <unit> ([<n> readings, ]range <lowest>-<highest>, mean <m>, SD <s>)';
    otherwise every value is labelled, '<name> in <unit>: first 14, lowest 13, ...'.
    """
    first, last, lowest, highest, mean, sd = stats
    if None not in stats:
        inner = [f"{count} readings"] if count is not None else []
        inner += [f"range {lowest}-{highest}", f"mean {mean}", f"{abbr('SD')} {sd}"]
        return f"{name} {lead}{first} to {last}{unit_after(last, unit)} ({', '.join(inner)})"
    items = [f"{count} readings"] if count is not None else []
    for label, value in zip(STAT_LABELS, stats[:5]):
        if value is not None:
            items.append(f"{label} {value}")
        elif state:
            items.append(f"{label} {NOT_RECORDED}")
    if sd is not None:
        items.append(f"{abbr('SD')} {sd}")
    elif state:
        items.append(f"{abbr('SD')} {NOT_RECORDED}")
    unit_text = f" in {unit}" if unit else ""
    return f"{name}{unit_text}: {', '.join(items)}"


def lifestyle_sentence(pronoun: str, smoker: str | None, history: Sequence[tuple[str, str | None]],
                       obesity: str | None, state: bool, *, has_obesity: bool = False) -> list[str]:
    """'She is a non-smoker, has no history of alcohol or drug abuse and is not obese.'

    ``history`` pairs a condition ('alcohol abuse') with its Yes/No value.
    """
    clauses, missing = [], []
    if smoker == "Yes":
        clauses.append("is a smoker")
    elif smoker == "No":
        clauses.append("is a non-smoker")
    elif smoker == "Unknown":
        clauses.append("has an unknown smoking status")
    elif state:
        missing.append("smoking status")
    yes = [c for c, value in history if value == "Yes"]
    no = [c for c, value in history if value == "No"]
    if yes and no:
        clauses.append(f"has a history of {join_and(yes)} but not of {join_and(no, 'or')}")
    elif yes:
        clauses.append(f"has a history of {join_and(yes)}")
    elif no:
        clauses.append(f"has no history of {join_and(no, 'or')}")
    if state:
        missing += [f"history of {c}" for c, value in history if value is None]
    if has_obesity:
        if obesity == "Yes":
            clauses.append("is obese")
        elif obesity == "No":
            clauses.append("is not obese")
        elif state:
            missing.append("obesity")
    out = []
    if clauses:
        out.append(f"{pronoun} {join_and(clauses)}.")
    if missing:
        out.append(not_recorded(missing))
    return out


def place_descriptor(value: str | None, before_words: dict[str, str], after_words: dict[str, str],
                     label: str, before: list[str], after: list[str], missing: list[str],
                     state: bool) -> None:
    """Put a category's words in front of the noun ('a widowed woman') or after it ('a woman of
    unknown marital status'), or note it as missing; shared by every template's subject phrase."""
    if value in before_words:
        before.append(before_words[value])
    elif value is not None:
        after.append(after_words[value])
    elif state:
        missing.append(label)


def subject_phrase(age: str | None, before: Sequence[str], noun: str, after: Sequence[str],
                   *, age_capped: bool = False) -> str:
    """'A 71-year-old widowed White woman' (+ ' of unknown race', ...)."""
    words = []
    if age is not None:
        words.append(f"{age}-year-old")
        if age_capped:
            words.append("(or older)")
    words += list(before)
    words.append(noun)
    phrase = " ".join(words)
    phrase = f"{article(phrase)} {phrase}"
    if after:
        phrase += " " + " and ".join(after)
    return phrase
