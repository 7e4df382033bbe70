"""The single ``alfia`` command. Each stage registers its thin sub-commands here; no logic lives in cli/."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from alfia.errors import AlfiaError

# One error, one line, whatever the width. emoji=False on every console the toolkit makes: messages carry user
# text (paths, values), and ':x:' in "root:x:0" is text, not an emoji.
console = Console(emoji=False, stderr=True, soft_wrap=True)

app = typer.Typer(
    name="alfia",
    help="ICU in-hospital mortality from the first 24 hours: cohorts, clinical text, ALFIA, baselines.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# Every command that writes a file takes this flag; alfia.outputs refuses existing outputs without it.
Overwrite = Annotated[bool, typer.Option("--overwrite", help="Replace existing output (never an input).")]


def _register() -> None:
    # Imported lazily so `alfia --help` stays fast and a missing optional stage never breaks the rest.
    import importlib

    # Order matters: `extract` adds commands to the `cohort` group.
    for module in ("cohort", "extract", "text", "model", "serve", "evaluation", "baselines", "series", "federated", "demo"):
        try:
            importlib.import_module(f"alfia.cli.{module}")
        except ModuleNotFoundError as e:
            if e.name != f"alfia.cli.{module}":
                raise


def main() -> None:
    _register()
    try:
        app()
    except AlfiaError as e:
        # escape(): messages may hold brackets (e.g. 'pip install ".[autogluon]"') that are not markup.
        console.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False)
        sys.exit(2)
    except OSError as e:  # a disk that is full or a folder that turned read-only mid-run: one line, not a traceback
        console.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False)
        sys.exit(2)
