"""Atomic file writes: write to a temporary file in the target folder, then rename over the target.

A crash or a raised error mid-write leaves the previous file (or nothing) in place, never a torn one.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any


def _umask_mode(base: int) -> int:
    """``base`` (0o666 for files, 0o777 for folders) less the process umask, as open() would give."""
    mask = os.umask(0)
    os.umask(mask)
    return base & ~mask


def _unwritable(target: Path, e: OSError):
    """The error of a folder that refuses the temporary file: it names the file asked for, not the temporary."""
    from alfia.errors import AlfiaError

    return AlfiaError(f"{target}: cannot write it: folder {target.parent} is not writable "
                      f"({e.strerror or type(e).__name__}); make it writable or write elsewhere")


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to ``target``; rename it onto ``target`` if the block succeeds."""
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix + ".tmp", dir=target.parent)
    except OSError as e:
        raise _unwritable(target, e) from None
    os.close(fd)
    tmp_path = Path(tmp)
    # mkstemp creates 0600 files; give the result the permissions a plain open() would have.
    os.chmod(tmp_path, _umask_mode(0o666))
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_atomic(target: str | os.PathLike, writer: Callable[[Path], Any]) -> Path:
    """Call ``writer(tmp_path)`` and move the result onto ``target`` only if it succeeded."""
    with atomic_path(target) as tmp:
        writer(tmp)
    return Path(target)


def write_text_atomic(target: str | os.PathLike, text: str) -> Path:
    return write_atomic(target, lambda p: p.write_text(text, encoding="utf-8"))


def write_json_atomic(target: str | os.PathLike, obj: Any) -> Path:
    return write_text_atomic(target, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def read_json_object(path: str | os.PathLike, *, missing: str = "file is missing",
                     invalid: str = "not valid JSON") -> dict[str, Any]:
    """Read a JSON object written by :func:`write_json_atomic`; every failure is an ``AlfiaError``
    naming the file (``missing`` / ``invalid`` say what the file was meant to be)."""
    from alfia.errors import AlfiaError

    path = Path(path)
    if not path.is_file():
        raise AlfiaError(f"{path}: {missing}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise AlfiaError(f"{path}: {invalid} ({e})") from None
    if not isinstance(data, dict):
        raise AlfiaError(f"{path}: expected a JSON object")
    return data


_HELD: set[str] = set()  # folders this process holds a lock on (their real paths)


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike, *, wait: bool = True, busy: str = "") -> Iterator[None]:
    """Hold an exclusive advisory lock on ``folder`` (flock on the folder itself: no lock file is left
    behind). Writers of files that belong together (a table and its manifest) take it, so two processes
    writing the same output finish one after the other and never leave one's table with the other's
    manifest. Where flock does not exist (Windows), this does nothing.

    ``wait=False`` (a command that fills a folder for a long time, e.g. a training run): if another job holds
    the lock, raise an ``AlfiaError`` naming the folder (``busy`` says what to do) instead of waiting. A
    waiting lock on a folder this process already holds is a no-op (a table written into the held folder)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on POSIX
        yield
        return
    key = os.path.realpath(folder)
    if wait and key in _HELD:
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    added = False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            from alfia.errors import AlfiaError

            raise AlfiaError(f"{folder}: another job is writing this folder{'; ' + busy if busy else ''}") from None
        if key not in _HELD:
            _HELD.add(key)
            added = True
        yield
    finally:
        if added:
            _HELD.discard(key)
        os.close(fd)  # closing releases the lock


@contextlib.contextmanager
def atomic_directory(target: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary folder next to ``target``; swap it in for ``target`` if the block succeeds.

    For writers that only know how to fill a folder (e.g. peft's ``save_pretrained``, a training checkpoint, a
    copied run directory). The old folder stays in place until the new one is complete; during the swap itself
    (two renames) it waits in ``.<name>.*.old/<name>``, where :func:`parked_directory` finds it after a crash in
    that instant. This is the one folder swap of the package.
    """
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    except OSError as e:
        raise _unwritable(target, e) from None
    os.chmod(tmp, _umask_mode(0o777))
    old = None
    try:
        yield tmp
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
            os.replace(target, old / target.name)
        try:
            os.replace(tmp, target)
        except BaseException:
            if old is not None:  # put the previous folder back rather than lose it
                os.replace(old / target.name, target)
            raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def parked_directory(target: str | os.PathLike) -> Path | None:
    """The previous ``target`` that :func:`atomic_directory` parked while swapping (the newest, if several), or
    None: what a reader that found no ``target`` may fall back on."""
    target = Path(target)
    parked = [p / target.name for p in target.parent.glob(f".{target.name}.*.old") if (p / target.name).is_dir()]
    return max(parked, key=lambda p: p.stat().st_mtime) if parked else None


def sha256_file(path: str | os.PathLike, digest=None):
    """The SHA-256 of a file as hex; with ``digest`` (a running ``hashlib`` hash), the file is fed into it
    and the digest is returned, so several files can make one hash."""
    import hashlib

    running = digest if digest is not None else hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            running.update(chunk)
    return running if digest is not None else running.hexdigest()
