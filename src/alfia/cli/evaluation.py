"""`alfia evaluate` and `alfia compare`: thin commands over alfia.evaluation."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from alfia.cli import SEED_MAX, Overwrite, app
from alfia.progress import make_console, step

out_console = make_console()
err_console = make_console(stderr=True)

def metrics_table(result: dict, title: str) -> Table:
    """A rich table of one evaluation result: metric, value, 95% CI (test-optimal F1/F2 left out: a threshold
    chosen on the scored rows is no result; :func:`optimal_f_line` prints them apart)."""
    from alfia.evaluation.format import METRIC_LONG_LABELS, TEST_OPTIMAL_METRICS, ci_text

    table = Table(title=title, title_justify="left")
    table.add_column("Metric")
    table.add_column("Value (95% CI)", justify="right")
    before = result.get("calibration_before") or {}
    if before:
        table.add_column("Before calibration (95% CI)", justify="right")
    for name, m in result["metrics"].items():
        if name in TEST_OPTIMAL_METRICS:
            continue
        value = ci_text(m, 4) if m["value"] is not None or "warning" not in m else f"[yellow]{m['warning']}[/]"
        row = [METRIC_LONG_LABELS.get(name, name), value]
        if before:
            b = before.get(name)
            row.append("" if b is None else (b.get("warning") or ci_text(b, 4)))
        table.add_row(*row)
    return table


def optimal_f_line(result: dict) -> str:
    from alfia.evaluation.format import METRIC_LONG_LABELS, TEST_OPTIMAL_METRICS, ci_text

    values = ", ".join(f"{METRIC_LONG_LABELS[m]} {ci_text(result['metrics'][m])}" for m in TEST_OPTIMAL_METRICS
                       if m in result["metrics"])
    return f"Not an operating point (threshold chosen on the scored rows themselves): {values}."


def print_warnings(result: dict) -> None:
    from alfia.evaluation.format import WARNING_MARK

    for warning in result.get("warnings") or []:
        out_console.print(f"[yellow]{WARNING_MARK} warning:[/] {warning}", highlight=False)


@app.command()
def evaluate(
    run_dir: Path = typer.Argument(..., help="Run directory holding predictions.parquet."),
    split: str = typer.Option("test", help="Split to evaluate (thresholds are chosen on val)."),
    n_boot: int = typer.Option(1000, "--n-boot", min=1, help="Bootstrap resamples for the 95% CIs."),
    seed: int = typer.Option(42, min=0, max=SEED_MAX, help="Seed of the bootstrap."),
    external: list[Path] = typer.Option(None, "--external", show_default="none", help="External cohort (repeatable). An ALFIA "
                                        "run scores it whole (mapped into its variant, thresholds from its "
                                        "val rows) -> RUN_DIR/external/<name>/. Other runs re-score the "
                                        "external/<name>/ their training wrote."),
    batch_size: int = typer.Option(64, "--batch-size", min=1, help="Batch size of ALFIA's external scoring."),
    device: str = typer.Option("auto", help="Device of ALFIA's external scoring."),
    cohort: Optional[Path] = typer.Option(None, "--cohort", help="Cohort (or text table) whose sex, age and ICU-unit "
                                          "columns the subgroup tables use.",
                                          show_default="the data file the run records"),
) -> None:
    """Score a run: metrics with stratified-bootstrap 95% CIs, subgroups, decision curve -> RUN_DIR/metrics.json
    and RUN_DIR/figures/."""
    from alfia.api.evaluate import evaluate as api_evaluate

    # Every external cohort is read and checked first: a bad one leaves metrics.json as it was.
    externals = _read_externals(run_dir, list(external), device=device) if external else None
    with step(f"evaluating {run_dir} ({n_boot} bootstrap resamples)", console=err_console):
        result = api_evaluate(run_dir, None, split=split, n_boot=n_boot, seed=seed, cohort=cohort).result
    thresholds = result["thresholds"]
    out_console.print(metrics_table(
        result, f"{result['model_name']} — {split}: {result['n']} stays, {result['n_pos']} deaths"))
    out_console.print(f"Thresholds chosen on [bold]{thresholds['chosen_on']}[/]: max-F1 {thresholds['f1']:.4f}, "
                      f"max-F2 {thresholds['f2']:.4f}. CIs: stratified bootstrap, {n_boot} resamples, seed {seed}.",
                      highlight=False)
    out_console.print(optimal_f_line(result), highlight=False)
    print_warnings(result)
    for table in subgroup_tables(result):
        out_console.print(table)
    from alfia.evaluation.format import useful_thresholds_text

    out_console.print(f"Decision curve: net benefit above treat-all and treat-none at p_t "
                      f"{useful_thresholds_text(result['decision_curve'])}.", highlight=False)
    for note in result["notes"]:
        out_console.print(f"[yellow]note:[/] {note}", highlight=False)
    if result.get("subgroups", {}).get("note"):
        out_console.print(f"[yellow]note:[/] {result['subgroups']['note']}", highlight=False)
    where = Path(result["run_dir"])
    out_console.print(f"Wrote {where / 'metrics.json'} and {len(result['figures'])} figures in "
                      f"{where / 'figures'}", highlight=False)

    if externals is not None:
        _evaluate_external(run_dir, *externals, n_boot=n_boot, seed=seed, batch_size=batch_size)


def _read_externals(run_dir: Path, paths: list[Path], *, device: str):
    from alfia.api.evaluate import read_externals

    with step(f"reading {len(paths)} external cohort(s)", console=err_console):
        return read_externals(run_dir, paths, device=device)


def _evaluate_external(run_dir: Path, run, externals: list, *, n_boot: int, seed: int, batch_size: int) -> None:
    from alfia.api.evaluate import score_externals
    from alfia.evaluation.external import headline, read_shift
    from alfia.runs import RunLayout

    for path, name, external_cohort in externals:
        with step(f"scoring external cohort {path}", console=err_console):
            (result,) = score_externals(run_dir, run, [(path, name, external_cohort)], n_boot=n_boot, seed=seed,
                                        batch_size=batch_size)
        out_console.print(metrics_table(result, f"{result['model_name']} — external {name}: {result['n']} stays, "
                                                f"{result['n_pos']} deaths (thresholds from val)"))
        print_warnings(result)
        citl = result["calibration_in_the_large"]
        out_console.print(f"Calibration in the large: observed {citl['observed_rate']:.3f}, mean predicted "
                          f"{citl['mean_predicted']:.3f}", highlight=False)
        shift = read_shift(run_dir, name)
        if shift is not None:
            out_console.print(f"Shift: {headline(shift)}", highlight=False)
        out_console.print(f"Wrote {RunLayout.of(run_dir).external(name).root}", highlight=False)


def subgroup_tables(result: dict) -> list[Table]:
    """One rich table per subgroup attribute: level, stays, deaths, AUROC, sensitivity, specificity."""
    from alfia.evaluation.format import WARNING_MARK
    from alfia.evaluation.format import ci_text as ci
    from alfia.evaluation.subgroups import SUBGROUP_LABELS

    tables = []
    block = result.get("subgroups") or {}
    for attribute, entries in (block.get("groups") or {}).items():
        table = Table(title=f"{SUBGROUP_LABELS.get(attribute, attribute)} — {block['columns'].get(attribute)}",
                      title_justify="left")
        for column in ("Level", "Stays", "Deaths", "AUROC", "Sensitivity", "Specificity", "Observed", "Predicted"):
            table.add_column(column, justify="left" if column == "Level" else "right")
        for e in entries:
            m = e["metrics"]
            level = e["level"] + (f" {WARNING_MARK}" if e.get("warning") else "")
            table.add_row(level, str(e["n"]), str(e["n_pos"]), ci(m["auroc"]), ci(m["sensitivity"]),
                          ci(m["specificity"]), f"{m['observed_rate']['value']:.3f}", f"{m['mean_prob']['value']:.3f}")
        tables.append(table)
    return tables


@app.command()
def compare(
    run_dirs: list[Path] = typer.Argument(..., help="Run directories, or folders holding run directories."),
    out: Path = typer.Option(..., "--out", help="Report folder (created if missing)."),
    split: str = typer.Option("test", help="Split to compare on; all runs must share its stay_ids."),
    n_boot: int = typer.Option(1000, "--n-boot", min=1, help="Bootstrap resamples for CIs and paired tests."),
    seed: int = typer.Option(42, min=0, max=SEED_MAX, help="Seed of the bootstrap (the same resamples for every model)."),
    cohort: Optional[Path] = typer.Option(None, "--cohort", help="Cohort whose sex, age and ICU-unit columns the "
                                          "subgroup tables use.", show_default="the data file the first run records"),
    overwrite: Overwrite = False,
) -> None:
    """Compare runs: table sorted by AUPRC (Markdown, CSV, HTML), forest plot, curves, paired tests."""
    from alfia.evaluation import compare_runs, find_run_dirs
    from alfia.outputs import check_output_dir

    check_output_dir(out, inputs=run_dirs, overwrite=overwrite)

    n_runs = len(find_run_dirs(run_dirs))
    with step(f"comparing {n_runs} runs", console=err_console, unit="steps") as progress:
        def on_progress(message: str) -> None:
            progress.update(completed=progress.completed + 1, description=message)

        comparison = compare_runs(run_dirs, out, split=split, n_boot=n_boot, seed=seed, cohort=cohort,
                                  on_progress=on_progress)

    from alfia.evaluation.format import WARNING_MARK, ci_text, diff_text, p_text

    table = Table(title=f"{split}: {comparison.n} stays, {comparison.n_pos} deaths — sorted by AUPRC; rank: paired "
                        f"CI excludes 0", title_justify="left")
    for column in ("#", "Model", "AUPRC", "AUROC", "Val AUPRC"):
        table.add_column(column, justify="left" if column == "Model" else "right")
    for e in comparison.entries:
        metrics = e.result["metrics"]
        table.add_row(str(comparison.ranks[e.name]), f"[bold]{e.name}[/]" if e.is_alfia else e.name,
                      ci_text(metrics["auprc"]), ci_text(metrics["auroc"]),
                      "—" if e.val_auprc is None else f"{e.val_auprc:.3f}")
    out_console.print(table)
    # Each ALFIA run against the baseline best on validation; without an ALFIA run, each model against the first.
    tests = comparison.paired_tests or [t for t in comparison.pairwise if t["model_a"] == comparison.order[0]]
    for test in tests:
        for metric in ("auprc", "auroc"):
            d = test[metric]
            out_console.print(f"{test['model_a']} − {test['model_b']} {metric.upper()}: {diff_text(d, 4)}, "
                              f"p = {p_text(d['p_value'])}", highlight=False)
    for warning in comparison.warnings:
        out_console.print(f"[yellow]{WARNING_MARK} warning:[/] {warning}", highlight=False)
    for note in comparison.notes:
        out_console.print(f"[yellow]note:[/] {note}", highlight=False)
    out_console.print(f"Wrote {out / 'report.html'}, comparison.md, comparison.csv, paired_tests.csv, "
                      "pairwise_tests.csv, subgroups.csv, decision_curve.csv, comparison.json and figures/",
                      highlight=False)


@app.command()
def card(
    run_dir: Path = typer.Argument(..., help="A run directory (ALFIA or baseline)."),
    out: Path = typer.Option(Path("card.md"), "--out", help="Markdown file; the HTML card goes beside it (.html)."),
    cohort: Optional[Path] = typer.Option(None, "--cohort", help="Cohort or text table the run was built on.",
                                          show_default="the data file its config records"),
    overwrite: Overwrite = False,
) -> None:
    """Model card along the TRIPOD+AI checklist: what the run knows, the rest marked for the deploying team."""
    from alfia.evaluation.card import write_card

    md_path, html_path = write_card(run_dir, out, cohort=cohort, overwrite=overwrite)
    out_console.print(f"Wrote {md_path} and {html_path}", highlight=False)
