"""The single ``alfia`` command. Each stage registers its thin sub-commands here; no logic lives in cli/."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.markup import escape

from alfia.errors import AlfiaError
from alfia.progress import make_console

# One error, one line, whatever the width. emoji=False on every console the toolkit makes (alfia.progress):
# messages carry user text (paths, values), and ':x:' in "root:x:0" is text, not an emoji.
console = make_console(stderr=True, soft_wrap=True)

app = typer.Typer(
    name="alfia",
    help="ICU in-hospital mortality from the first 24 hours: cohorts, clinical text, ALFIA, baselines.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# Every command that writes a file takes this flag; alfia.outputs refuses existing outputs without it.
Overwrite = Annotated[bool, typer.Option("--overwrite", help="Replace existing output (never an input).")]

SEED_MAX = 2**32 - 1  # numpy's and torch's seeds are unsigned 32-bit


def seed_option(default: int = 42, help: str = "Random seed.") -> typer.models.OptionInfo:
    """Every --seed: range-checked where it is parsed (numpy refuses a negative seed with a traceback)."""
    return typer.Option(default, "--seed", min=0, max=SEED_MAX, help=help)


def given_options(ctx: typer.Context) -> list[str]:
    """The parameters the user typed (not left at their default), by parameter name."""
    from click.core import ParameterSource

    return [name for name in ctx.params
            if ctx.get_parameter_source(name) in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)]


def option_flag(name: str) -> str:
    return "--" + name.replace("_", "-")


# The modules that register commands, in order (`extract` adds commands to the `cohort` group). Every one must
# import: a name that does not (a typo, a deleted file) is an error at start, never a command silently gone.
# Optional libraries are imported inside the commands that need them, so none is needed here.
COMMAND_MODULES = ("cohort", "extract", "text", "model", "serve", "evaluation", "baselines", "series", "lemof", "analysis",
                   "federated",
                   "demo")


def _register(modules=COMMAND_MODULES) -> None:
    # Imported here, not at the top, so that importing alfia.cli stays cheap.
    import importlib

    for module in modules:
        importlib.import_module(f"alfia.cli.{module}")


def main() -> None:
    import click

    from alfia.progress import quiet_library_bars

    _register()
    quiet_library_bars(console)
    try:
        code = app(standalone_mode=False)
    except click.exceptions.ClickException as e:
        if type(e).__name__ == "NoArgsIsHelpError":  # typer has printed the help
            sys.exit(e.exit_code)
        # A bad option (a value out of range, a missing one) is bad input like any other: one line, status 2.
        ctx = getattr(e, "ctx", None)
        hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        console.print(f"[bold red]error:[/] {escape(e.format_message())}{escape(hint)}", highlight=False)
        sys.exit(2)
    except click.exceptions.Abort:
        console.print("aborted", highlight=False)
        sys.exit(1)
    except AlfiaError as e:
        # escape(): messages may hold brackets (e.g. 'pip install ".[autogluon]"') that are not markup.
        console.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False)
        sys.exit(2)
    except OSError as e:  # a disk that is full or a folder that turned read-only mid-run: one line, not a traceback
        console.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False)
        sys.exit(2)
    if isinstance(code, int) and code:  # typer.Exit(code) or Ctrl-C (130)
        sys.exit(code)
