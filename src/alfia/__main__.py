"""`python -m alfia ...` is the `alfia` command (e.g. `python -m alfia demo`)."""

from alfia.cli import main

main()
