"""DuckDB helpers for reading credentialed source tables (MIMIC-IV, eICU) without loading them into pandas.

A source directory holds tables as ``NAME.csv.gz``, ``NAME.csv`` or ``NAME.parquet`` (optionally in a
sub-folder such as ``hosp/`` or ``icu/``). :class:`SourceTables` finds them, registers each as a DuckDB
view under a short name, checks the columns a query needs, and turns DuckDB's errors (truncated gzip
stream, unparsable CSV, missing file) into :class:`~alfia.errors.AlfiaError` messages that name the table.

Every connection opens a scratch database *file* (``work.duckdb`` in a fresh folder) with a
``memory_limit``. The working tables an extraction creates (per-measurement rows of the cohort's stays)
then live in that buffer-managed file, and joins and sorts spill to the same folder, so RAM stays near
``memory_limit`` however large the source tables are (full MIMIC-IV chartevents: ~330M rows). An
in-memory database (``:memory:``) or ``TEMP`` tables would instead keep every working table in RAM.
:func:`close` (or :meth:`SourceTables.close`) deletes the folder; so does garbage collection.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import weakref
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd

from alfia.config_base import JsonConfig
from alfia.errors import AlfiaError

TABLE_SUFFIXES = (".parquet", ".csv.gz", ".csv")


DEFAULT_MAX_THREADS = 4  # each DuckDB thread holds its own buffers: more threads, more memory


@dataclass(frozen=True)
class DuckSettings(JsonConfig):
    """Resource limits of the DuckDB connection (saved with every extraction)."""

    config_name = "DuckDB settings"

    memory_limit: str = "3GB"
    temp_directory: str | None = None  # scratch folder is created inside; None: the system temp dir
    threads: int | None = None  # None: min(4, number of cores)


# connection -> finalizer that deletes its scratch folder (runs once: on close() or garbage collection)
_SCRATCH: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def connect(settings: DuckSettings | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection on a scratch database file that holds RAM near ``memory_limit``.

    The database and DuckDB's spill files go to a fresh folder ``alfia-duckdb-*`` inside
    ``settings.temp_directory`` (or the system temp dir); :func:`close` deletes it.
    """
    settings = settings or DuckSettings()
    parent = settings.temp_directory
    if parent:
        try:
            Path(parent).mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise AlfiaError(f"DuckDB temp directory {parent}: cannot be created ({e})") from None
    folder = Path(tempfile.mkdtemp(prefix="alfia-duckdb-", dir=parent))
    threads = int(settings.threads) if settings.threads else min(DEFAULT_MAX_THREADS, os.cpu_count() or 1)
    try:
        con = duckdb.connect(str(folder / "work.duckdb"), config={
            "memory_limit": settings.memory_limit,
            "temp_directory": str(folder / "spill"),
            "threads": threads,
            # We never rely on insertion order, and keeping it costs memory on large scans.
            "preserve_insertion_order": False,
        })
    except duckdb.Error as e:
        shutil.rmtree(folder, ignore_errors=True)
        raise AlfiaError(f"could not open a DuckDB scratch database in {folder} with {settings}: "
                         f"{str(e).strip().splitlines()[0]}") from None
    _SCRATCH[con] = weakref.finalize(con, shutil.rmtree, str(folder), ignore_errors=True)
    return con


def scratch_folder(con: duckdb.DuckDBPyConnection) -> Path | None:
    """The folder holding ``con``'s scratch database, or None (not opened by :func:`connect`, or closed)."""
    fin = _SCRATCH.get(con)
    return Path(fin.peek()[2][0]) if fin is not None and fin.alive else None


def close(con: duckdb.DuckDBPyConnection) -> None:
    """Close ``con`` and delete its scratch folder (database file and spill files)."""
    con.close()
    fin = _SCRATCH.pop(con, None)
    if fin is not None:
        fin()


def _sql_str(s: str | os.PathLike) -> str:
    return str(s).replace("'", "''")


@dataclass
class SourceTables:
    """Tables of one source directory, registered as DuckDB views.

    ``label`` names the data set in messages ("MIMIC-IV", "eICU").
    """

    root: Path
    label: str
    con: duckdb.DuckDBPyConnection
    paths: dict[str, Path] = field(default_factory=dict)
    columns: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        if not self.root.exists():
            raise AlfiaError(f"{self.root}: {self.label} directory does not exist")
        if not self.root.is_dir():
            raise AlfiaError(f"{self.root}: {self.label} path is not a directory")

    # -- discovery -------------------------------------------------------------------------------
    def find(self, name: str, subdirs: tuple[str, ...] = ("",)) -> Path | None:
        """Path of table ``name`` (case-insensitive) in ``root/<subdir>``, or None."""
        for sub in subdirs:
            folder = self.root / sub if sub else self.root
            if not folder.is_dir():
                continue
            by_lower = {p.name.lower(): p for p in folder.iterdir() if p.is_file()}
            for suffix in TABLE_SUFFIXES:
                hit = by_lower.get(f"{name.lower()}{suffix}")
                if hit is not None:
                    return hit
        return None

    def has(self, name: str) -> bool:
        return name in self.paths

    def register(self, name: str, subdirs: tuple[str, ...] = ("",), *, required: bool = True,
                 columns: tuple[str, ...] = ()) -> bool:
        """Register table ``name`` as a view; check that ``columns`` exist.

        Returns False when an optional table is absent. A required absent table, a missing column or a
        file DuckDB cannot read raises AlfiaError naming the table (and column).
        """
        path = self.find(name, subdirs)
        where = " or ".join(str(self.root / s) if s else str(self.root) for s in subdirs)
        if path is None:
            if required:
                raise AlfiaError(
                    f"{self.label}: required table {name!r} not found in {where} "
                    f"(looked for {name}{{{','.join(TABLE_SUFFIXES)}}}); is this the right directory?")
            return False
        if path.stat().st_size == 0:
            raise AlfiaError(f"{self.label} table {name!r}: file {path} is empty")
        if path.name.endswith(".parquet"):
            reader = f"read_parquet('{_sql_str(path)}')"
        else:
            # all_varchar=false with a large sample: the MIMIC id columns look numeric and stay so.
            reader = (f"read_csv('{_sql_str(path)}', header=true, sample_size=20480, "
                      f"nullstr=['', 'NA'])")
        self.paths[name] = path
        try:
            self.con.execute(f'CREATE OR REPLACE VIEW "{name}" AS SELECT * FROM {reader}')
            cols = [c.lower() for c in self.con.execute(f'SELECT * FROM "{name}" LIMIT 0').df().columns]
        except duckdb.Error as e:
            raise self.error(e, (name,)) from None
        self.columns[name] = cols
        missing = [c for c in columns if c.lower() not in cols]
        if missing:
            raise AlfiaError(
                f"{self.label} table {name!r} ({path}): missing column(s) {', '.join(missing)}; "
                f"found {', '.join(cols)}")
        return True

    def has_column(self, table: str, column: str) -> bool:
        return column.lower() in self.columns.get(table, [])

    def close(self) -> None:
        """Close the connection and delete its scratch database."""
        close(self.con)

    def __enter__(self) -> "SourceTables":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- running queries ---------------------------------------------------------------------------
    def error(self, exc: Exception, tables: tuple[str, ...]) -> AlfiaError:
        """An AlfiaError naming the table(s) behind a DuckDB failure."""
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        named = [t for t, p in self.paths.items() if str(p) in str(exc) or p.name in str(exc)]
        culprits = named or list(tables)
        hint = ""
        if re.search(r"gzip|inflate|zlib|compress|unexpected end|truncated", str(exc), re.I):
            hint = " (the compressed file looks truncated or corrupt: re-download it)"
        desc = ", ".join(f"{t!r} ({self.paths.get(t, '?')})" for t in culprits)
        return AlfiaError(f"{self.label} table {desc}: could not be read{hint}: {msg}")

    def execute(self, sql: str, tables: tuple[str, ...] = ()) -> None:
        try:
            self.con.execute(sql)
        except duckdb.Error as e:
            raise self.error(e, tables) from None

    def df(self, sql: str, tables: tuple[str, ...] = ()) -> pd.DataFrame:
        try:
            return self.con.execute(sql).df()
        except duckdb.Error as e:
            raise self.error(e, tables) from None
