"""Fixtures for the text-encoding tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # text_testkit

from text_testkit import compact_from_full, random_cohort  # noqa: E402


@pytest.fixture(scope="session")
def mimic_row() -> dict:
    return dict(
        stay_id=1, gender="Female", admission_age=71, marital_status="Widowed",
        race="BLACK/AFRICAN AMERICAN", insurance="Medicare", language="English",
        admission_type="EW EMER.", admission_location="EMERGENCY ROOM",
        careunit="Medical Intensive Care Unit (MICU)", height=160.0, weight=72.5, smoker="No",
        alcohol_abuse="Yes", apsiii=45, sapsii=38, sirs=3, lods=5, meld=12.5, oasis=31,
        gcs_dynamic_first=14, gcs_dynamic_last=15, gcs_dynamic_min=13, gcs_dynamic_max=15,
        gcs_dynamic_avg=14.333333, gcs_dynamic_stddev=0.57735, sofa_dynamic_first=4,
        sofa_dynamic_last=3, sofa_dynamic_min=2, sofa_dynamic_max=5, sofa_dynamic_avg=3.5,
        sofa_dynamic_stddev=1.0488,
    )


@pytest.fixture(scope="session")
def random_cohorts() -> dict:
    """Schema-valid random rows with missing cells, for every template."""
    cohorts = {v: random_cohort(v, 300, seed=7) for v in ("mimic", "eicu", "physionet2012")}
    cohorts["physionet2012_compact"] = compact_from_full(cohorts["physionet2012"])
    return cohorts
