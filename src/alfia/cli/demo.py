"""`make demo` / `alfia demo`: the whole chain on the embedded default, in minutes on a laptop.

1. a synthetic MIMIC-like CW-24 cohort (3,000 stays, calibrated to the paper's tables);
2. its clinical text;
3. ALFIA training with the CPU recipe of `alfia train` on a shorter schedule (``DEMO_SCHEDULE``, so that the
   demo stays within 10 minutes on 2 cores): the bottom 4 of all-MiniLM-L6-v2's 6 layers are computed once,
   ALF + the Attentional Classifier Head warm-start over the cached top states, then the top 2 encoder layers
   fine-tune jointly with them, with early stopping on val AUPRC; then Platt calibration on val;
4. test metrics with stratified-bootstrap 95% CIs, printed as a table.

Outputs go under ./demo_output/ (cohort, text table, run directory with metrics.json and figures).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import typer
from rich.console import Console

from alfia.cli import SEED_MAX, Overwrite, app
from alfia.progress import make_console, section

DEFAULT_OUT = Path("demo_output")
# The cpu recipe with fewer epochs: 2 head epochs, then 2 epochs of 1,125 of the 2,250 training rows (one pass).
DEMO_SCHEDULE = {"head_epochs": 2, "epochs": 2, "rows_per_epoch": 1125}


def run_demo(out: Path = DEFAULT_OUT, *, n_stays: int = 3000, n_boot: int = 1000, seed: int = 42,
             train_options: dict | None = None, console: Console | None = None) -> dict:
    """``train_options``: TrainConfig fields on top of the demo's schedule (``DEMO_SCHEDULE``)."""
    from alfia.cli.evaluation import metrics_table
    from alfia.cohorts.io import write_cohort
    from alfia.cohorts.sources.synthetic import generate_synthetic
    from alfia.evaluation import evaluate_run
    from alfia.models import AlfiaConfig
    from alfia.text import encode_file
    from alfia.training import TrainConfig, train_run

    console = console or make_console()
    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    cohort_path, text_path, run_dir = out / "cohort.parquet", out / "text.parquet", out / "run"

    section(console, "[bold]1. Synthetic MIMIC-like cohort")
    cohort = generate_synthetic("mimic", n_stays, seed)
    write_cohort(cohort, cohort_path, source="synthetic", variant="mimic")
    counts = cohort["split"].value_counts()
    console.print(f"{len(cohort)} stays ({', '.join(f'{s} {counts.get(s, 0)}' for s in ('train', 'val', 'test'))}), "
                  f"in-hospital mortality {cohort['hospital_expire_flag'].mean():.1%} -> {cohort_path}",
                  highlight=False)

    section(console, "[bold]2. Clinical text")
    text, _ = encode_file(cohort_path, text_path)
    console.print(f"{len(text)} descriptions -> {text_path}. First one:", highlight=False)
    console.print(f"[dim]{text['text'].iloc[0]}[/]", highlight=False)

    section(console, "[bold]3. ALFIA training (all-MiniLM-L6-v2, top 2 layers fine-tuned, + ALF + ACH)")
    if run_dir.exists():  # the demo's own previous run: start clean so the result is reproducible
        shutil.rmtree(run_dir)
    summary = train_run(text_path, run_dir, AlfiaConfig(),
                        TrainConfig(seed=seed, **{**DEMO_SCHEDULE, **(train_options or {})}), console=console,
                        recipe="cpu")

    section(console, "[bold]4. Test metrics")
    result = evaluate_run(run_dir, split="test", n_boot=n_boot, seed=seed)
    console.print(metrics_table(result, f"ALFIA on the synthetic test split: {result['n']} stays, "
                                        f"{result['n_pos']} deaths (95% CIs: stratified bootstrap, {n_boot} resamples)"))
    elapsed = time.perf_counter() - started
    console.print(f"Best epoch {summary.best_epoch} of {summary.epochs_run}; training {summary.train_seconds:.0f} s. "
                  f"Total demo time {elapsed / 60:.1f} min. Run directory: {run_dir} (figures in "
                  f"{run_dir / 'figures'}).", highlight=False)
    return {"result": result, "summary": summary, "seconds": elapsed}


@app.command()
def demo(
    out: Path = typer.Option(DEFAULT_OUT, "--out", help="Folder for the cohort, text and run."),
    n_stays: int = typer.Option(3000, "--n-stays", min=100, help="Synthetic stays to generate."),
    n_boot: int = typer.Option(1000, "--n-boot", min=1, help="Bootstrap resamples for the 95% CIs."),
    seed: int = typer.Option(42, min=0, max=SEED_MAX, help="Seed of the cohort, the split and training."),
    overwrite: Overwrite = False,
) -> None:
    """The whole chain on synthetic data: cohort -> text -> ALFIA (the default recipe) -> test metrics."""
    from alfia.outputs import check_output_dir

    # The demo replaces its cohort, text and run/: never in a folder that holds something, unless asked.
    check_output_dir(out, overwrite=overwrite, hint="pass --overwrite to rebuild the demo there (its cohort, "
                                                    "text and run/ are replaced), or choose another --out")
    run_demo(out, n_stays=n_stays, n_boot=n_boot, seed=seed)
