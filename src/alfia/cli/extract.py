"""`alfia cohort mimic-iv` and `alfia cohort eicu`: CW-24 cohorts from credentialed source tables."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from alfia.cli import SEED_MAX, Overwrite
from alfia.cli.cohort import Task, cohort_app
from alfia.outputs import check_table_output
from alfia.progress import make_console, step

console = make_console(stderr=True)

# DuckDB resource options, shared by every extraction command.
MemoryLimit = Annotated[str, typer.Option(help="DuckDB memory limit; beyond it DuckDB spills to disk")]
TempDirectory = Annotated[Path | None, typer.Option(help="DuckDB scratch folder, deleted afterwards",
                                                    show_default="the system's temporary folder")]
Threads = Annotated[int | None, typer.Option(min=1, help="DuckDB threads", show_default="min(4, cores)")]
Seed = Annotated[int, typer.Option(min=0, max=SEED_MAX, help="Seed of the train/val/test split")]


def _run(build, out: Path, source: str) -> None:
    """``build(progress)`` is the API function (alfia.api.cohort.mimic_iv / eicu) with its settings bound."""
    with step(f"{source}: starting", console=console) as bar:
        def say(msg: str) -> None:
            bar.update(description=f"{source}: {msg}")
            if not console.is_terminal:
                bar.print(f"{source}: {msg}")  # a log gets each stage as a line

        manifest = build(say).manifest
    extra = manifest.extra
    console.print("[bold]Attrition[/]: " + " -> ".join(f"{k} {v}" for k, v in extra["attrition"].items()))
    ti = extra["temporal_integrity"]
    console.print(f"[bold]Temporal integrity[/]: {ti['values_used']} source values used, all inside their "
                  f"record windows; {ti['values_excluded_out_of_window']} excluded (outside the window)")
    for var, why in extra.get("missing_variables", {}).items():
        console.print(f"[yellow]missing[/] {var}: {why}")
    for var, fb in extra.get("category_fallbacks", {}).items():
        console.print(f"[dim]category fallback[/] {var}: {fb['counts']}")
    s = manifest.splits["all"]
    console.print(f"Wrote {out} ({s['n']} stays, {s['deaths']} deaths, "
                  f"mortality {s['mortality_rate']:.2%}); validation: {extra.get('validation')}")


@cohort_app.command("mimic-iv")
def mimic_iv(
    mimic_dir: Path = typer.Option(..., "--mimic-dir", help="MIMIC-IV folder holding hosp/ and icu/"),
    out: Path = typer.Option(..., "--out", help="Output cohort Parquet file"),
    derived_dir: Path | None = typer.Option(None, "--derived-dir",
                                            help="mimiciv_derived concept tables (apsiii, sapsii, sirs, "
                                                 "lods, meld, oasis, sofa, gcs) as CSV/Parquet",
                                            show_default="none: the scores are computed from the source tables"),
    memory_limit: MemoryLimit = "3GB",
    temp_directory: TempDirectory = None,
    threads: Threads = None,
    seed: Seed = 42,
    task: Task = "mortality",
    overwrite: Overwrite = False,
) -> None:
    """Build the CW-24 MIMIC-IV cohort (first ICU stay of adults on their first hospitalization)."""
    check_table_output(out, inputs=[mimic_dir, derived_dir], overwrite=overwrite)
    from alfia.api import cohort as api

    _run(lambda progress: api.mimic_iv(mimic_dir, out=out, derived_dir=derived_dir, memory_limit=memory_limit,
                                       temp_directory=temp_directory, threads=threads, seed=seed,
                                       progress=progress, task=task), out, "mimic-iv")


@cohort_app.command("eicu")
def eicu(
    eicu_dir: Path = typer.Option(..., "--eicu-dir", help="eICU-CRD folder with patient.csv.gz etc."),
    out: Path = typer.Option(..., "--out", help="Output cohort Parquet file"),
    memory_limit: MemoryLimit = "3GB",
    temp_directory: TempDirectory = None,
    threads: Threads = None,
    seed: Seed = 42,
    task: Task = "mortality",
    overwrite: Overwrite = False,
) -> None:
    """Build the CW-24 eICU cohort from the tables present; absent tables leave variables missing."""
    check_table_output(out, inputs=[eicu_dir], overwrite=overwrite)
    from alfia.api import cohort as api

    _run(lambda progress: api.eicu(eicu_dir, out=out, memory_limit=memory_limit, temp_directory=temp_directory,
                                   threads=threads, seed=seed, progress=progress, task=task), out, "eicu")
