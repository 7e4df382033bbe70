"""The dynamic assessments of CW-24 (GCS and SOFA over the window: first, last, lowest, highest, mean,
standard deviation), shared by the MIMIC-IV and eICU templates."""

from __future__ import annotations

from alfia.cohorts.schema import AGGREGATES
from alfia.text.abbreviations import Abbreviations
from alfia.text.templates.common import not_recorded, trajectory, unit_after

SCORES = (("gcs", "GCS", "the {}"), ("sofa", "SOFA", "the {} score"))


def dynamic_sentences(v: dict, abbr: Abbreviations, state: bool) -> list[str]:
    """'Over the first day, the Glasgow Coma Scale (GCS) went from 14 to 15 points (range 13-15, ...).'

    A score that did not change reads 'the GCS stayed at 15 points' (first = last = lowest = highest =
    mean = 15, SD 0).
    """
    phrases, missing = [], []
    for stem, abbreviation, pattern in SCORES:
        value = {agg: v[f"{stem}_dynamic_{agg}"] for agg in AGGREGATES}
        # common.trajectory reads (first, last, lowest, highest, mean, SD)
        stats = [value["first"], value["last"], value["min"], value["max"], value["avg"], value["stddev"]]
        if all(s is None for s in stats):
            if state:
                missing.append((pattern, abbreviation))
            continue
        name = pattern.format(abbr(abbreviation))
        first, last, lowest, highest, mean, sd = stats
        if sd == "0" and first is not None and first == last == lowest == highest == mean:
            # Unchanged all window: the one value is every aggregate, and the SD is 0.
            phrases.append(f"{name} stayed at {first}{unit_after(first, 'points')}")
        else:
            phrases.append(trajectory(name, "points", stats, abbr, state, lead="went from "))
    out = []
    if phrases:
        out.append(f"Over the first day, {'; '.join(phrases)}.")
    if missing:  # named only now, so an abbreviation is expanded where the text first shows it
        out.append(not_recorded([pattern.format(abbr(a)) for pattern, a in missing]))
    return out
