"""`alfia cohort ...`: build, validate and describe CW-24 cohort tables."""

from __future__ import annotations

import typer

from alfia.cli import app

cohort_app = typer.Typer(help="Build, validate and describe CW-24 cohort tables.", no_args_is_help=True)
app.add_typer(cohort_app, name="cohort")
