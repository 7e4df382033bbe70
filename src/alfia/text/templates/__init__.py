"""Text templates, one per cohort source, in a registry keyed by the cohort variant.

A template turns one row -- a dict of formatted values, ``None`` where missing -- into clinical text.
Its ``version`` goes into the manifest of every text file, so a change of wording that would change
what a model reads is visible; bump it whenever a template's output changes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from alfia.cohorts.schema import CohortSchema
from alfia.text.templates import eicu, mimic, physionet2012

# Derived values the encoder adds to each row before rendering.
DERIVED = ("bmi",)


@dataclass(frozen=True)
class Template:
    name: str
    version: str
    schema: CohortSchema
    render: Callable[[dict, bool], str] = field(repr=False)
    # column -> {category: phrase}: how each category reads (tests check these are distinct).
    category_phrases: Mapping[str, Mapping[str, object]] = field(default_factory=dict, repr=False)

    @property
    def variant(self) -> str:
        return self.schema.variant


TEMPLATES: dict[str, Template] = {
    t.name: t for t in (
        Template(**mimic.TEMPLATE_ARGS), Template(**eicu.TEMPLATE_ARGS),
        Template(**physionet2012.TEMPLATE_ARGS), Template(**physionet2012.COMPACT_TEMPLATE_ARGS),
    )
}
