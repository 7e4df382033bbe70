"""Run ``alfia ARGS`` in-process the way the console script does; shared by the test folders."""

from __future__ import annotations

import sys


def run_alfia(args, capsys) -> tuple[int, str, str]:
    """(exit code, stdout, stderr on one line) of ``alfia ARGS`` through ``alfia.cli.main``."""
    from alfia.cli import main

    old = sys.argv
    sys.argv = ["alfia", *map(str, args)]
    try:
        main()
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        sys.argv = old
    captured = capsys.readouterr()
    return code, captured.out, " ".join(captured.err.split())  # rich wraps long lines
