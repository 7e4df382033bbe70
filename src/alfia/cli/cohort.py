"""`alfia cohort ...`: build, validate and describe CW-24 cohort tables."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from alfia.cli import SEED_MAX, Overwrite, app
from alfia.outputs import check_table_output
from alfia.progress import make_console, step

cohort_app = typer.Typer(help="Build, validate and describe CW-24 cohort tables.", no_args_is_help=True)
app.add_typer(cohort_app, name="cohort")

# The label a built cohort carries (alfia.cohorts.tasks; the help text lives there with the table).
Task = Annotated[str, typer.Option(help="mortality, los3 (ICU stay > 3 days) or los7 (> 7 days): the cohort's label.")]

out = make_console()  # results go to stdout; errors go through alfia.cli.main to stderr
err = make_console(stderr=True)


def _print_summary(path: Path, manifest) -> None:
    table = Table(title=f"{path} ({manifest.variant}, {manifest.n_rows:,} stays)", title_justify="left")
    for col in ("split", "stays", "deaths", "mortality"):
        table.add_column(col, justify="left" if col == "split" else "right")
    for name, s in manifest.splits.items():
        table.add_row(name, f"{s['n']:,}", f"{s['deaths']:,}", f"{100 * s['mortality_rate']:.2f}%")
    out.print(table)


@cohort_app.command("synthetic")
def synthetic(
    variant: Annotated[str, typer.Option(help="Which CW-24 variant to imitate: mimic or eicu.")] = "mimic",
    n: Annotated[int, typer.Option("--n", min=1, help="Number of ICU stays.")] = 20_000,
    seed: Annotated[int, typer.Option(min=0, max=SEED_MAX, help="Random seed (generation and split).")] = 42,
    out_path: Annotated[Path, typer.Option("--out", help="Output Parquet file.")] = Path(
        "cohort.parquet"),
    overwrite: Overwrite = False,
) -> None:
    """Generate a synthetic CW-24 cohort calibrated to the paper's Tables 1 and 2."""
    check_table_output(out_path, overwrite=overwrite)
    from alfia.api import cohort as api

    with step(f"generating {n:,} synthetic {variant} stays", console=err):
        manifest = api.synthetic(variant, n, seed, out=out_path).manifest
    _print_summary(out_path, manifest)


@cohort_app.command("physionet2012")
def physionet2012(
    records: Annotated[list[Path], typer.Option(
        help="A record set: set-a.tar.gz or a folder of <RecordID>.txt. Repeat to combine sets.")],
    outcomes: Annotated[list[Path], typer.Option(
        help="An outcomes file (Outcomes-a.txt). Repeat, one per record set.")],
    hours: Annotated[float, typer.Option(min=0, max=48,
                                         help="Window end in hours after ICU admission.")] = 24.0,
    aggregates: Annotated[str, typer.Option(
        help="compact: worst/last GCS, range+mean of vitals, range of labs, urine total, ventilation "
             "(texts p95 <= 256 tokens); full: 7 statistics of all 37 series (266 predictors).")] = "compact",
    out_path: Annotated[Path, typer.Option("--out", help="Output Parquet file.")] = Path(
        "physionet2012.parquet"),
    task: Task = "mortality",
    overwrite: Overwrite = False,
) -> None:
    """Build the PhysioNet/CinC 2012 cohort (real ICU stays) from PhysioNet's own files."""
    check_table_output(out_path, inputs=[*records, *outcomes], overwrite=overwrite)
    from alfia.api import cohort as api
    from alfia.cohorts.tasks import get_task

    get_task(task)

    with step("reading records", console=err, unit="records") as bar:
        def progress(done: int, total: int) -> None:
            bar.update(completed=done, total=total or None)

        manifest = api.physionet2012(records, outcomes, hours=hours, aggregates=aggregates, out=out_path,
                                     progress=progress, task=task).manifest
        report = manifest.extra["report"]
    _print_summary(out_path, manifest)
    for key, what in (("records_without_outcome", "record files without an outcome"),
                      ("outcomes_without_record", "outcomes without a record file"),
                      ("malformed_lines", "malformed lines skipped")):
        count = report[key]["count"]
        if count:
            shown = report[key].get("record_ids") or report[key].get("first")
            err.print(f"[yellow]warning:[/] {count} {what}, e.g. {', '.join(map(str, shown[:5]))}",
                      highlight=False)
    dropped = sum(report["dropped_implausible"].values())
    out.print(f"descriptor-only records: {report['n_records_descriptors_only']}; implausible "
              f"measurements dropped: {dropped:,} (per parameter in the manifest's report)")


@cohort_app.command("validate")
def validate(
    file: Annotated[Path, typer.Argument(help="Cohort file (.parquet with manifest, or .csv).")],
    variant: Annotated[str | None, typer.Option(
        help="Schema variant.", show_default="the manifest's, else inferred from the columns")] = None,
) -> None:
    """Check a cohort: types, ranges, categories, aggregate consistency, labels, splits, leakage."""
    from alfia.cohorts.io import manifest_warnings, mortality_by_split, read_cohort
    from alfia.cohorts.validate import check_cohort

    df, manifest, variant = read_cohort(file, variant)
    report = check_cohort(df, variant, source=str(file))
    for w in [*report.warnings, *manifest_warnings(file, manifest)]:
        err.print(f"[yellow]warning:[/] {file}: {w}", highlight=False)
    s = mortality_by_split(df)["all"]
    out.print(f"[green]ok[/] {file}: {s['n']:,} stays, variant {variant}, {s['deaths']:,} deaths "
              f"({100 * s['mortality_rate']:.2f}%), no leakage", highlight=False)


@cohort_app.command("describe")
def describe(
    file: Annotated[Path, typer.Argument(help="Cohort file (.parquet with manifest, or .csv).")],
    markdown: Annotated[bool, typer.Option("--markdown", help="Print a Markdown table.")] = False,
    variant: Annotated[str | None, typer.Option(
        help="Schema variant.", show_default="the manifest's, else inferred from the columns")] = None,
) -> None:
    """Table-1 style summary by outcome: mean ± SD per variable, n (%) per category."""
    from alfia.cohorts.describe import describe_cohort, to_markdown
    from alfia.cohorts.io import read_cohort

    df, _, variant = read_cohort(file, variant)
    table = describe_cohort(df, variant)
    if markdown:
        typer.echo(to_markdown(table), nl=False)
        return
    rich_table = Table(title=f"{file} ({variant})", title_justify="left")
    for i, col in enumerate(table.columns):
        rich_table.add_column(col, justify="left" if i == 0 else "right")
    for row in table.itertuples(index=False):
        header = row[0].endswith("n (%)")
        rich_table.add_row(*[str(x) for x in row], style="bold" if header else None)
    out.print(rich_table)
