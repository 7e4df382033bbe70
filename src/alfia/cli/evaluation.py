"""`alfia evaluate` and `alfia compare`: thin commands over alfia.evaluation."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from alfia.cli import Overwrite, app

out_console = Console()

_LABELS = {
    "auprc": "AUPRC", "auroc": "AUROC", "best_f1": "Best F1 (test-optimal)", "best_f2": "Best F2 (test-optimal)",
    "f1": "F1 @ max-F1 thr.", "f2": "F2 @ max-F2 thr.", "sensitivity": "Sensitivity @ max-F1 thr.",
    "specificity": "Specificity @ max-F1 thr.", "ppv": "PPV @ max-F1 thr.", "npv": "NPV @ max-F1 thr.",
    "brier": "Brier score", "calibration_slope": "Calibration slope", "calibration_intercept": "Calibration intercept",
    "ece": "ECE (10 equal-width bins)",
}


def _fmt(x) -> str:
    return "—" if x is None else f"{x:.4f}"


def metrics_table(result: dict, title: str) -> Table:
    """A rich table of one evaluation result: metric, value, 95% CI."""
    table = Table(title=title, title_justify="left")
    table.add_column("Metric")
    table.add_column("Value", justify="right")
    table.add_column("95% CI", justify="right")
    for name, m in result["metrics"].items():
        ci = "—" if m["ci_low"] is None else f"{m['ci_low']:.4f} – {m['ci_high']:.4f}"
        table.add_row(_LABELS.get(name, name), _fmt(m["value"]), ci)
    return table


@app.command()
def evaluate(
    run_dir: Path = typer.Argument(..., help="Run directory holding predictions.parquet."),
    split: str = typer.Option("test", help="Split to evaluate (thresholds are chosen on val)."),
    n_boot: int = typer.Option(1000, "--n-boot", min=1, help="Bootstrap resamples for the 95% CIs."),
    seed: int = typer.Option(42, help="Seed of the bootstrap."),
) -> None:
    """Score a run: metrics with stratified-bootstrap 95% CIs -> RUN_DIR/metrics.json and RUN_DIR/figures/."""
    from alfia.evaluation import evaluate_run

    with out_console.status(f"Evaluating {run_dir} ({n_boot} bootstrap resamples)..."):
        result = evaluate_run(run_dir, split=split, n_boot=n_boot, seed=seed)
    thresholds = result["thresholds"]
    out_console.print(metrics_table(
        result, f"{result['model_name']} — {split}: {result['n']} stays, {result['n_pos']} deaths"))
    out_console.print(f"Thresholds chosen on [bold]{thresholds['chosen_on']}[/]: max-F1 {thresholds['f1']:.4f}, "
                      f"max-F2 {thresholds['f2']:.4f}. CIs: stratified bootstrap, {n_boot} resamples, seed {seed}.",
                      highlight=False)
    for note in result["notes"]:
        out_console.print(f"[yellow]note:[/] {note}", highlight=False)
    out_console.print(f"Wrote {Path(run_dir) / 'metrics.json'} and {len(result['figures'])} figures in "
                      f"{Path(run_dir) / 'figures'}", highlight=False)


@app.command()
def compare(
    run_dirs: list[Path] = typer.Argument(..., help="Run directories, or folders holding run directories."),
    out: Path = typer.Option(..., "--out", help="Report folder (created if missing)."),
    split: str = typer.Option("test", help="Split to compare on; all runs must share its stay_ids."),
    n_boot: int = typer.Option(1000, "--n-boot", min=1, help="Bootstrap resamples for CIs and paired tests."),
    seed: int = typer.Option(42, help="Seed of the bootstrap (the same resamples for every model)."),
    overwrite: Overwrite = False,
) -> None:
    """Compare runs: table sorted by AUPRC (Markdown, CSV, HTML), forest plot, curves, paired tests."""
    from alfia.evaluation import compare_runs, find_run_dirs
    from alfia.outputs import check_output_dir

    check_output_dir(out, inputs=run_dirs, overwrite=overwrite)

    n_runs = len(find_run_dirs(run_dirs))
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(f"Comparing {n_runs} runs", total=None)

        def step(message: str) -> None:
            progress.update(task, advance=1, description=message)

        comparison = compare_runs(run_dirs, out, split=split, n_boot=n_boot, seed=seed, on_progress=step)

    table = Table(title=f"{split}: {comparison['n']} stays, {comparison['n_pos']} deaths — sorted by AUPRC",
                  title_justify="left")
    for column in ("#", "Model", "AUPRC", "AUROC", "Best F1", "Best F2"):
        table.add_column(column, justify="left" if column == "Model" else "right")
    for row in comparison["table"].itertuples():
        cells = [f"{getattr(row, m):.3f} [{getattr(row, m + '_ci_low'):.3f}, {getattr(row, m + '_ci_high'):.3f}]"
                 for m in ("auprc", "auroc", "best_f1", "best_f2")]
        table.add_row(str(row.rank), f"[bold]{row.model}[/]" if row.is_alfia else row.model, *cells)
    out_console.print(table)
    for test in comparison["paired_tests"]:
        for metric in ("auprc", "auroc"):
            d = test[metric]
            out_console.print(f"{test['model_a']} − {test['model_b']} {metric.upper()}: {d['difference']:+.4f} "
                              f"[{d['ci_low']:+.4f}, {d['ci_high']:+.4f}], p = {d['p_value']:.3f}", highlight=False)
    for note in comparison["notes"]:
        out_console.print(f"[yellow]note:[/] {note}", highlight=False)
    out_console.print(f"Wrote {out / 'report.html'}, comparison.md, comparison.csv, paired_tests.csv, "
                      "comparison.json and figures/", highlight=False)
