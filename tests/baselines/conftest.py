"""Fixtures of the baselines tests: one small synthetic cohort and one fast run of the whole zoo."""

from __future__ import annotations

import pytest

from alfia.cohorts.sources.synthetic import generate_synthetic

N_STAYS = 1500
UNSEEN = "A CATEGORY NEVER SEEN IN TRAINING"


@pytest.fixture(scope="session")
def cohort():
    """Synthetic CW-24 MIMIC-IV cohort, 1,500 stays, with its own train/val/test split."""
    return generate_synthetic("mimic", N_STAYS, seed=7)


@pytest.fixture(scope="session")
def cohort_with_unseen(cohort):
    """The cohort with a category no training row has, injected into every test row's 'careunit'."""
    df = cohort.copy()
    df.loc[df["split"] == "test", "careunit"] = UNSEEN
    return df


@pytest.fixture(scope="session")
def zoo_run(cohort_with_unseen, tmp_path_factory):
    """Every model of the zoo and the ensemble, fast profile, on the cohort with unseen categories."""
    from alfia.baselines.runner import run_baselines

    out = tmp_path_factory.mktemp("zoo")
    summary = run_baselines(cohort_with_unseen, "mimic", out, models=None, seed=42, profile="fast",
                            n_boot=20)
    return out, summary
