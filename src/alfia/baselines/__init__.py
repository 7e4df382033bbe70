"""The tabular baseline zoo of the paper's Table 3, the greedy ensemble, ALFIA-boost and ALFIA-nn.

    import alfia.baselines
    summary = alfia.baselines.fit("cohort.parquet", models=["LightGBM", "LinearModel"], out="runs/baselines")

``fit`` is what ``alfia baselines`` runs (``alfia.baselines.runner.run_baselines``); heavy libraries load
on first use.
"""

from __future__ import annotations

import os
from typing import get_args


def fit(cohort, models: list[str] | None = None, *, out: str | os.PathLike = "runs/baselines", seed: int = 42,
        profile: str = "full", n_boot: int = 1000, resume: bool = False, callback=None):
    """Train the zoo on a cohort's own split (``alfia baselines``); one run directory per model in ``out``.

    ``cohort``: a cohort file or a table from ``alfia.cohort``. Returns the summary table (also
    ``out/summary.csv``), sorted by test AUPRC.
    """
    from alfia.baselines.registry import Profile
    from alfia.baselines.runner import run_baselines
    from alfia.cohorts.io import read_cohort
    from alfia.errors import AlfiaError

    if not isinstance(cohort, (str, os.PathLike)):
        raise AlfiaError(f"alfia.baselines.fit needs a cohort file or a table from alfia.cohort, "
                         f"got {type(cohort).__name__}")
    # Recorded absolute in every model's config.json, so evaluation finds the cohort's subgroup columns later.
    path = os.path.abspath(os.fspath(cohort))
    if profile not in get_args(Profile):
        raise AlfiaError(f"profile must be {' or '.join(map(repr, get_args(Profile)))}, not {profile!r}")
    df, _, variant = read_cohort(path, csv=False)
    table = run_baselines(df, variant, out, models, seed, profile=profile, n_boot=n_boot, callback=callback,
                          source=str(path), resume=resume)
    table.attrs["variant"] = variant
    return table


__all__ = ["fit"]
