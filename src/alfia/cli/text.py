"""`alfia encode`: a CW-24 cohort file -> a clinical text file (Parquet + manifest)."""

from __future__ import annotations

import warnings
from pathlib import Path

import typer

from alfia.cli import Overwrite, app, console
from alfia.errors import AlfiaError


@app.command("encode")
def encode(
    cohort: Path = typer.Argument(..., help="Cohort Parquet file (from `alfia cohort ...`)."),
    out: Path = typer.Option(..., "--out",
                             help="Text Parquet file to write (a manifest goes beside it)."),
    template: str = typer.Option("auto",
                                 help="auto (the cohort's variant), mimic, eicu or physionet2012."),
    missing: str = typer.Option("omit",
                                help="omit: leave missing values out; state: write 'not recorded'."),
    report_tokens: str | None = typer.Option(
        None, "--report-tokens", metavar="BACKBONE", show_default="no report",
        help="Print token lengths (p50, p95, max) for this tokenizer: 'default' (offline MiniLM), "
             "a local directory, or a Hugging Face id."),
    max_length: int | None = typer.Option(
        None, "--max-length", min=1, show_default="no check",
        help="Warn with the number of texts longer than this many tokens."),
    overwrite: Overwrite = False,
) -> None:
    """Turn every ICU stay of a cohort into a fluent clinical description."""
    from alfia.cohorts.io import manifest_path
    from alfia.outputs import check_table_output
    from alfia.text.encode import encode_file

    if missing not in ("omit", "state"):
        raise AlfiaError(f"--missing must be 'omit' or 'state', not {missing!r}")
    check_table_output(out, inputs=[cohort, manifest_path(cohort)], overwrite=overwrite)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            text, manifest = encode_file(cohort, out, template, missing, progress=True, exclusive=not overwrite)
        finally:  # warnings explain errors too (e.g. a template that is not the cohort's)
            for w in caught:
                console.print(f"[yellow]warning:[/] {w.message}", highlight=False)
    console.print(f"wrote {len(text):,} texts ({manifest.extra['template']} template "
                  f"v{manifest.extra['template_version']}, missing={missing}) to {out}", highlight=False)
    if report_tokens is not None or max_length is not None:
        from alfia.text.tokens import DEFAULT_BACKBONE, length_report, load_tokenizer, token_lengths

        backbone = report_tokens or DEFAULT_BACKBONE
        lengths = token_lengths(text["text"].tolist(), load_tokenizer(backbone), progress=True)
        report = length_report(lengths, max_length)
        typer.echo(f"tokens ({backbone}): p50 {report.p50:.0f}, p95 {report.p95:.0f}, max {report.max} "
                   f"over {report.n:,} texts")
        if max_length is not None:
            if report.n_truncated:
                console.print(f"[yellow]warning:[/] {report.n_truncated:,} of {report.n:,} texts "
                              f"({report.n_truncated / report.n:.1%}) are longer than --max-length "
                              f"{max_length} and would be truncated", highlight=False)
            else:
                typer.echo(f"all texts fit in --max-length {max_length}")
