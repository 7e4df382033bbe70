"""Build CW-24 cohorts from Python: ``alfia.cohort.synthetic / physionet2012 / mimic_iv / eicu``.

Each writes the cohort Parquet and its manifest exactly as the matching ``alfia cohort ...`` command
(which calls these functions) and returns a :class:`~alfia.api.data.CohortTable`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from alfia.api.data import CohortTable, load

PathLike = str | os.PathLike

__all__ = ["eicu", "load", "mimic_iv", "physionet2012", "synthetic"]


def synthetic(variant: str = "mimic", n: int = 20_000, seed: int = 42,
              out: PathLike = "cohort.parquet") -> CohortTable:
    """A synthetic cohort calibrated to the paper's Tables 1 and 2 (``alfia cohort synthetic``)."""
    from alfia.cohorts.io import write_cohort
    from alfia.cohorts.sources.synthetic import generate_synthetic
    from alfia.cohorts.validate import check_cohort

    df = generate_synthetic(variant, n, seed)
    check_cohort(df, variant, source=f"synthetic {variant}")
    manifest = write_cohort(df, out, source="synthetic", variant=variant, extra={
        "generator": {"n": n, "seed": seed,
                      "calibration": f"cw24-{variant}-variables.txt Table 1 "
                                     "(per-outcome means, SDs, shares, mortality rate)"}})
    return CohortTable(Path(out), manifest, df)


def physionet2012(records: PathLike | Sequence[PathLike], outcomes: PathLike | Sequence[PathLike], *,
                  hours: float = 24.0, aggregates: str = "compact", out: PathLike = "physionet2012.parquet",
                  progress: Callable[[int, int], None] | None = None, task: str = "mortality") -> CohortTable:
    """The PhysioNet/CinC 2012 cohort from PhysioNet's own files (``alfia cohort physionet2012``).

    ``records``: set-a.tar.gz or a folder of <RecordID>.txt, or a list of them; ``outcomes``: the
    matching Outcomes-*.txt file(s). ``aggregates``: "compact" (chart aggregates, the default) or "full"
    (7 statistics of all 37 series). ``task``: the label (``alfia.cohorts.tasks.TASKS``: mortality, los3, los7).
    The builder's report is in ``table.manifest.extra["report"]``.
    """
    from alfia.cohorts.io import write_cohort
    from alfia.cohorts.sources.physionet2012 import build_physionet2012
    from alfia.cohorts.validate import check_cohort

    records = [records] if isinstance(records, (str, os.PathLike)) else list(records)
    outcomes = [outcomes] if isinstance(outcomes, (str, os.PathLike)) else list(outcomes)
    df, report = build_physionet2012(records, outcomes, hours, aggregates=aggregates, progress=progress, task=task)
    check_cohort(df, report["variant"], source="physionet2012 cohort")
    manifest = write_cohort(df, out, source="physionet2012", variant=report["variant"],
                            extra={"report": report, "task": report["task"]}, window_hours=hours)
    return CohortTable(Path(out), manifest, df)


def _duck(memory_limit: str, temp_directory: PathLike | None, threads: int | None):
    from alfia.cohorts.sources.duck import DuckSettings

    return DuckSettings(memory_limit, str(temp_directory) if temp_directory else None, threads)


def _extract(extract, cfg, out: PathLike, source: str, variant: str, seed: int,
             progress: Callable[[str], None] | None, task: str, los_days) -> CohortTable:
    from alfia.cohorts.sources.extraction import write_extraction
    from alfia.cohorts.tasks import get_task

    los = los_days() if get_task(task).is_los else None  # checked (and read) before the long extraction
    result = extract(cfg, progress=progress)
    manifest = write_extraction(result, out, source=source, variant=variant, seed=seed, task=task, los_days=los)
    return CohortTable(Path(out), manifest)


def mimic_iv(mimic_dir: PathLike, *, out: PathLike = "mimic.parquet", derived_dir: PathLike | None = None,
             memory_limit: str = "3GB", temp_directory: PathLike | None = None, threads: int | None = None,
             seed: int = 42, progress: Callable[[str], None] | None = None, task: str = "mortality") -> CohortTable:
    """The CW-24 MIMIC-IV cohort from the hosp/ and icu/ tables (``alfia cohort mimic-iv``); ``task``: the label
    (``alfia.cohorts.tasks.TASKS``)."""
    from alfia.cohorts.sources.mimic_iv import MimicConfig, extract_mimic_iv
    from alfia.cohorts.tasks import mimic_iv_los

    cfg = MimicConfig(str(mimic_dir), str(derived_dir) if derived_dir else None,
                      duck=_duck(memory_limit, temp_directory, threads))
    return _extract(extract_mimic_iv, cfg, out, "mimic-iv", "mimic", seed, progress, task,
                    lambda: mimic_iv_los(mimic_dir))


def eicu(eicu_dir: PathLike, *, out: PathLike = "eicu.parquet", memory_limit: str = "3GB",
         temp_directory: PathLike | None = None, threads: int | None = None, seed: int = 42,
         progress: Callable[[str], None] | None = None, task: str = "mortality") -> CohortTable:
    """The CW-24 eICU cohort from the eICU-CRD tables present (``alfia cohort eicu``); ``task``: the label
    (``alfia.cohorts.tasks.TASKS``)."""
    from alfia.cohorts.sources.eicu import EicuConfig, extract_eicu
    from alfia.cohorts.tasks import eicu_los

    cfg = EicuConfig(str(eicu_dir), duck=_duck(memory_limit, temp_directory, threads))
    return _extract(extract_eicu, cfg, out, "eicu", "eicu", seed, progress, task, lambda: eicu_los(eicu_dir))
