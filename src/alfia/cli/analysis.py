"""`alfia analyze` and `alfia robustness`: thin commands over alfia.analysis."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from alfia.cli import Overwrite, app

out_console = Console(emoji=False)


def _say(message: str) -> None:
    out_console.print(f"[dim]{message}[/]", highlight=False)


@app.command()
def analyze(
    runs: list[Path] = typer.Argument(..., help="One or more ALFIA run directories (several: side by side)."),
    input: Path = typer.Option(..., "--input", help="Text table (or cohort) with stay_id, split and outcome; its "
                               "predictor columns give the tabular matrix."),
    out: Optional[Path] = typer.Option(None, "--out", show_default="RUN/analysis", help="Output folder (under the "
                                       "first run, where alfia card finds it)."),
    max_stays: Optional[int] = typer.Option(None, "--max-stays", min=1, show_default="all",
                                            help="Analyse a seeded random subset of the stays."),
    geometry_split: str = typer.Option("test", "--geometry-split", help="Stays of UMAP and the measures: train, val, "
                                       "test or all."),
    profile: str = typer.Option("full", "--profile", help="The zoo MLP's profile: full, or fast (smoke runs)."),
    n_boot: int = typer.Option(1000, "--n-boot", min=1, help="Bootstrap resamples for the 95% CIs."),
    seed: int = typer.Option(42, help="Seed of the subset, the MLP, UMAP and the bootstrap."),
    batch_size: int = typer.Option(64, "--batch-size", min=1),
    jobs: Optional[int] = typer.Option(None, "--jobs", min=1, show_default="the cores available", help="Threads."),
    device: str = typer.Option("auto", help="auto, cpu or cuda."),
    overwrite: Overwrite = False,
) -> None:
    """Latent space of ALFIA (the paper's Fig. 6): layer weights, ALF vs CLS/mean/max pooling vs the tabular
    matrix (an MLP on each, UMAP, five distance measures); one HTML page with PNG and CSV beside it."""
    from alfia.analysis import analyze as run_analyze
    from alfia.errors import AlfiaError

    if profile not in ("full", "fast"):
        raise AlfiaError(f"--profile must be full or fast, not {profile!r}")
    doc = run_analyze(runs, input, out, max_stays=max_stays, geometry_split=geometry_split, seed=seed, n_boot=n_boot,
                      batch_size=batch_size, profile=profile, n_jobs=jobs, device=device, overwrite=overwrite,
                      progress=_say)
    where = Path(out) if out is not None else Path(runs[0]) / "analysis"
    for note in doc["notes"]:
        out_console.print(f"[yellow]note:[/] {note}", highlight=False)
    out_console.print(f"{doc['n_stays']:,} stays in {doc['seconds']:.0f} s. Wrote {where / 'analysis.html'}, "
                      "analysis.json, layer_weights.csv, embeddings.csv, umap.csv and figures/", highlight=False)


@app.command()
def robustness(
    runs: list[Path] = typer.Argument(..., help="ALFIA and/or baseline run directories, judged side by side."),
    input: Path = typer.Option(..., "--input", help="Cohort, or the text table alfia text wrote from it (it carries "
                               "the predictors the edits change)."),
    out: Optional[Path] = typer.Option(None, "--out", show_default="RUN/robustness", help="Output folder (under "
                                       "the first run, where alfia card finds it)."),
    perturbation: list[str] = typer.Option(None, "--perturbation", show_default="all", help="Only these (repeatable): mask, negation, "
                                           "synonym, numeric_+5%, numeric_-5%, numeric_+10%, numeric_-10%, shuffle, "
                                           "gcs_to_3, lactate_x3, urine_output_div4."),
    split: str = typer.Option("test", help="The stays edited and scored."),
    max_stays: Optional[int] = typer.Option(None, "--max-stays", min=1, show_default="all",
                                            help="A seeded random subset of those stays."),
    n_boot: int = typer.Option(1000, "--n-boot", min=1, help="Bootstrap resamples for the CIs of ΔAUROC/ΔAUPRC."),
    seed: int = typer.Option(42, help="Seed of the edits, the subset and the bootstrap."),
    batch_size: int = typer.Option(64, "--batch-size", min=1),
    device: str = typer.Option("auto", help="auto, cpu or cuda."),
    overwrite: Overwrite = False,
) -> None:
    """Perturbation robustness (LAPD's axes and ours): decision flips, |Δprob|, latent flip rate, directional edits."""
    from alfia.analysis import robustness as run_robustness

    doc = run_robustness(runs, input, out, perturbations=perturbation or None, split=split, max_stays=max_stays,
                         seed=seed, n_boot=n_boot, batch_size=batch_size, device=device, overwrite=overwrite,
                         progress=lambda name: _say(f"perturbation {name}"))
    for note in doc["notes"]:
        out_console.print(f"[yellow]note:[/] {note}", highlight=False)
    for check in doc["targets"]:
        mark = "[green]met[/]" if check["met"] else "[red]not met[/]"
        out_console.print(f"{check['model']}: {check['target']}: {check['value']:.3f} {mark}", highlight=False)
    where = Path(out) if out is not None else Path(runs[0]) / "robustness"
    out_console.print(f"{doc['n_stays']:,} stays in {doc['seconds']:.0f} s. Wrote {where / 'robustness.html'}, "
                      "robustness.csv, robustness.json, per_stay.parquet, examples.csv and figures/", highlight=False)
