"""The one output guard every writing command calls before it reads or computes anything.

A user's data (a hospital extract, a week of CPU training) may be impossible to recreate, so a command

- never writes over one of its own inputs, not even with ``--overwrite`` (the input would be gone);
- never replaces an existing file (or fills a non-empty folder) unless the user passed ``--overwrite``;
- says so before any work starts, and also when the output folder cannot be written.

    out = check_output(args.out, inputs=[cohort], overwrite=args.overwrite)

Checking early is what keeps a refused command from changing anything; :mod:`alfia.atomic` keeps a
command that fails half-way from leaving a torn file. A command that fills a folder over a long time (a
training run) holds it with :func:`hold_output_dir` from its first file to its last, so a second job given
the same folder is refused instead of mixing its files with the first one's.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from alfia.atomic import folder_lock
from alfia.errors import AlfiaError

OVERWRITE_HINT = "pass --overwrite to replace it, or choose another"


def _same(a: Path, b: Path) -> bool:
    """Same file or folder: equal resolved paths, or one inode reached by two names (links)."""
    if a.resolve() == b.resolve():
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _check_writable(target: Path, flag: str) -> None:
    """The nearest existing ancestor of ``target`` must be a writable folder (atomic writes create the rest)."""
    folder = target.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise AlfiaError(f"{target}: cannot write {flag} here: {folder} is a file, not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise AlfiaError(f"{target}: cannot write {flag}: folder {folder} is not writable")


def _refuse_inputs(outputs: Iterable[Path], inputs: Iterable[str | os.PathLike | None], flag: str) -> None:
    for src in (Path(raw) for raw in inputs if raw is not None):
        for out in outputs:
            if _same(out, src):
                raise AlfiaError(f"{out}: {flag} would overwrite an input of this command ({src}); "
                                 f"choose another {flag}")


def check_output(target: str | os.PathLike, *, inputs: Iterable[str | os.PathLike | None] = (),
                 overwrite: bool = False, flag: str = "--out",
                 companions: Iterable[str | os.PathLike] = ()) -> Path:
    """Refuse to write the file ``target`` over an input, over an existing file without ``overwrite``,
    or into a folder that cannot be written. ``companions`` are files written with it (a manifest).
    Returns ``target`` as a Path."""
    target = Path(target)
    extra = [Path(c) for c in companions]
    _refuse_inputs([target, *extra], inputs, flag)
    if target.is_dir():
        raise AlfiaError(f"{target}: {flag} names a folder; give a file name")
    for t in (target, *extra):
        if t.exists() and not overwrite:
            raise AlfiaError(f"{t}: already exists; {OVERWRITE_HINT} {flag}")
    _check_writable(target, flag)
    return target


def check_output_dir(target: str | os.PathLike, *, inputs: Iterable[str | os.PathLike | None] = (),
                     overwrite: bool = False, flag: str = "--out", allow_existing: bool = False,
                     hint: str | None = None) -> Path:
    """Like :func:`check_output` for a command that fills a folder: the folder may exist only if it is
    empty, unless ``overwrite`` or ``allow_existing`` (e.g. ``--resume``, which continues what is there)."""
    target = Path(target)
    _refuse_inputs([target], inputs, flag)
    if target.exists() and not target.is_dir():
        raise AlfiaError(f"{target}: {flag} must be a folder, but a file of that name exists; "
                         f"choose another {flag}")
    if target.is_dir() and any(target.iterdir()) and not (overwrite or allow_existing):
        raise AlfiaError(f"{target}: folder is not empty; {hint or f'{OVERWRITE_HINT} {flag}'}")
    _check_writable(target / "_", flag)
    return target


def check_table_output(target: str | os.PathLike, *, inputs: Iterable[str | os.PathLike | None] = (),
                       overwrite: bool = False, flag: str = "--out") -> Path:
    """:func:`check_output` for a table written with its manifest (``alfia.cohorts.io.write_table``)."""
    from alfia.cohorts.io import manifest_path

    return check_output(target, inputs=inputs, overwrite=overwrite, flag=flag,
                        companions=[manifest_path(target)])


@contextlib.contextmanager
def hold_output_dir(target: str | os.PathLike, *, flag: str = "--out") -> Iterator[Path]:
    """Create the folder ``target`` if needed and hold its lock (:func:`alfia.atomic.folder_lock`) until the
    block ends. A second job holding it meanwhile makes this raise at once (AlfiaError naming the folder), so
    two jobs never write one folder together. If the block fails and a folder this call created is still empty,
    it is removed again: a refused command leaves no new folder."""
    target = Path(target)
    top = target  # the highest folder this call creates
    while not top.parent.exists() and top.parent != top.parent.parent:
        top = top.parent
    created = not target.exists()
    target.mkdir(parents=True, exist_ok=True)
    try:
        with folder_lock(target, wait=False, busy=f"wait for that job to finish, or choose another {flag}"):
            yield target
    except BaseException:
        if created:
            _remove_empty(target, top)
        raise


def _remove_empty(folder: Path, top: Path) -> None:
    """Remove ``folder`` and its parents up to ``top`` while they are empty."""
    while True:
        try:
            folder.rmdir()
        except OSError:  # not empty (another job's files, or this one's), or gone
            return
        if folder == top or folder.parent == folder:
            return
        folder = folder.parent
