"""Cohort (and derived table) files: Parquet plus a JSON manifest beside it, both written atomically.

``cohort.parquet`` gets ``cohort.manifest.json``. The manifest records where the table came from and a
SHA-256 of the Parquet bytes, so a reader can tell when the file was altered after it was written.
"""

from __future__ import annotations

import json
import os
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from alfia import __version__
from alfia.atomic import atomic_path, folder_lock, sha256_file
from alfia.cohorts.schema import (
    OUTCOME_COLUMN, SCHEMA_VERSION, SPLIT_COLUMN, SPLITS, get_schema,
)
from alfia.errors import AlfiaError


def manifest_path(table_path: str | os.PathLike) -> Path:
    p = Path(table_path)
    if not p.name:  # "." or "..": a folder, named by the reader; its would-be manifest is beside it
        p = p.resolve()
    return p.with_name(p.name.removesuffix(".parquet") + ".manifest.json")


def mortality_by_split(df: pd.DataFrame) -> dict[str, dict[str, float | int]]:
    """Rows, deaths and mortality rate per split (and overall)."""
    out: dict[str, dict[str, float | int]] = {}
    groups = [("all", df)]
    if SPLIT_COLUMN in df:
        groups += [(s, df[df[SPLIT_COLUMN] == s]) for s in SPLITS]
    for name, part in groups:
        n = int(len(part))
        deaths = int(part[OUTCOME_COLUMN].sum()) if OUTCOME_COLUMN in part and n else 0
        out[name] = {"n": n, "deaths": deaths, "mortality_rate": round(deaths / n, 6) if n else 0.0}
    return out


@dataclass
class Manifest:
    """What travels beside a table. ``extra`` holds source-specific facts (attrition, exclusions)."""

    kind: str  # "cohort" or "text"
    source: str
    variant: str
    n_rows: int
    splits: dict[str, Any]
    window_hours: float = 24.0
    schema_version: str = SCHEMA_VERSION
    content_sha256: str = ""
    created_at: str = ""
    alfia_version: str = __version__
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Manifest":
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        return cls(**known)


def frame_sha256(df: pd.DataFrame) -> str:
    """The SHA-256 of a table's content as read (column names, dtypes, every value in row order; not the
    index): the fingerprint of a table that may have no file (a frame passed to the API)."""
    import hashlib

    import numpy as np

    digest = hashlib.sha256(json.dumps([[str(c), str(t)] for c, t in df.dtypes.items()]).encode())
    digest.update(pd.util.hash_pandas_object(df, index=False).to_numpy(dtype=np.uint64).tobytes())
    return digest.hexdigest()


def write_table(df: pd.DataFrame, path: str | os.PathLike, manifest: Manifest, *,
                exclusive: bool = False) -> Manifest:
    """Write ``df`` and its manifest atomically. Returns the manifest as written (hash filled in).

    Both files go to temporary names first and are renamed into place under a lock on the folder, so
    concurrent writers of one path finish one after the other and leave one writer's pair, never a mix;
    an error in either step leaves whatever was there before untouched. ``exclusive``: refuse
    (AlfiaError) if ``path`` exists once the lock is held, i.e. another process wrote it meanwhile.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(df.reset_index(drop=True), preserve_index=False)
    # Drop pandas' own metadata blob: it embeds library versions and would make the bytes (and the
    # content hash) depend on the environment rather than on the data.
    table = table.replace_schema_metadata(None)
    mpath = manifest_path(path)
    with folder_lock(path.parent):
        if exclusive and (path.exists() or mpath.exists()):
            raise AlfiaError(f"{path}: was written by another process while this one ran; pass "
                             f"--overwrite to replace it, or choose another --out")
        with atomic_path(path) as tmp_table, atomic_path(mpath) as tmp_manifest:
            pq.write_table(table, tmp_table, compression="zstd")
            manifest.content_sha256 = sha256_file(tmp_table)
            manifest.n_rows = int(len(df))
            manifest.created_at = manifest.created_at or datetime.now(timezone.utc).isoformat(
                timespec="seconds")
            tmp_manifest.write_text(json.dumps(manifest.to_dict(), indent=2, default=str) + "\n")
    return manifest


def write_cohort(df: pd.DataFrame, path: str | os.PathLike, *, source: str, variant: str,
                 extra: dict[str, Any] | None = None,
                 window_hours: float | None = None) -> Manifest:
    """Write a cohort table in schema column order, with its manifest. ``window_hours`` records a
    window other than the variant's default (e.g. ``--hours 12``)."""
    schema = get_schema(variant)
    ordered = [c for c in schema.columns if c in df.columns]
    rest = [c for c in df.columns if c not in ordered]
    df = df[ordered + rest]
    manifest = Manifest(kind="cohort", source=source, variant=variant, n_rows=len(df),
                        splits=mortality_by_split(df),
                        window_hours=schema.window_hours if window_hours is None else window_hours,
                        extra=dict(extra or {}))
    return write_table(df, path, manifest)


def read_manifest(path: str | os.PathLike) -> Manifest | None:
    mpath = manifest_path(path)
    if not mpath.exists():
        return None
    try:
        return Manifest.from_dict(json.loads(mpath.read_text()))
    except (json.JSONDecodeError, TypeError, UnicodeDecodeError) as e:
        raise AlfiaError(f"{mpath}: manifest is not valid JSON ({e})") from None


def _existing_file(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.exists():
        raise AlfiaError(f"{path}: no such file")
    if path.is_dir():
        raise AlfiaError(f"{path}: a folder, not a table file; give the table's file (.parquet or .csv)")
    if path.stat().st_size == 0:
        raise AlfiaError(f"{path}: file is empty")
    return path


def read_table(path: str | os.PathLike) -> tuple[pd.DataFrame, Manifest | None]:
    """Read a Parquet table and its manifest (None if absent), with clear errors for bad files."""
    path = _existing_file(path)
    try:
        df = pq.read_table(path).to_pandas()
    except (pa.ArrowInvalid, OSError) as e:
        raise AlfiaError(f"{path}: not a readable Parquet file ({e})") from None
    if len(df) == 0:
        raise AlfiaError(f"{path}: table has no rows")
    manifest = read_manifest(path)
    if manifest is not None and manifest.n_rows != len(df):
        # The manifest describes another table (copied, or the Parquet replaced): its variant, split
        # counts and provenance would be wrong for this one.
        raise AlfiaError(f"{manifest_path(path)}: manifest says {manifest.n_rows} rows, but {path} has "
                         f"{len(df)}; it belongs to another table (remove it or rewrite the table)")
    return df, manifest


def read_utf8(path: str | os.PathLike) -> str:
    """A text file's content; a byte that is not UTF-8 is an error naming its line."""
    path = Path(path)
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise AlfiaError(f"{path}: line {line} is not UTF-8 text (byte {data[e.start]:#04x} at offset {e.start}); "
                         f"save the file as UTF-8") from None


def read_table_or_csv(path: str | os.PathLike) -> tuple[pd.DataFrame, Manifest | None]:
    """:func:`read_table`, or for a ``.csv`` (or gzipped ``.csv.gz``) file the table alone (no manifest),
    with the same clear errors."""
    path = Path(path)
    if path.suffix.lower() not in (".csv", ".gz"):
        return read_table(path)
    _existing_file(path)
    try:
        df = pd.read_csv(path, low_memory=False)
    except UnicodeDecodeError:
        if path.suffix.lower() == ".csv":
            read_utf8(path)  # names the line
        raise AlfiaError(f"{path}: not UTF-8 text; save the file as UTF-8") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise AlfiaError(f"{path}: not a readable CSV file ({e})") from None
    except (EOFError, OSError, zlib.error) as e:  # a truncated or damaged .gz (EOFError would read "Aborted.")
        raise AlfiaError(f"{path}: not a readable gzipped CSV file, truncated or damaged ({e})") from None
    if df.empty:
        raise AlfiaError(f"{path}: table has no rows")
    return df, None


def read_cohort(path: str | os.PathLike, variant: str | None = None, *,
                csv: bool = True) -> tuple[pd.DataFrame, Manifest | None, str]:
    """Read a cohort and settle its variant: ``variant`` when given, else the manifest's, else the one its
    columns match. ``csv``: also accept a ``.csv`` file (read without a manifest)."""
    df, manifest = read_table_or_csv(path) if csv else read_table(path)
    return df, manifest, variant or infer_variant(df, manifest, path)


def verify_hash(path: str | os.PathLike, manifest: Manifest) -> bool:
    return bool(manifest.content_sha256) and sha256_file(path) == manifest.content_sha256


def manifest_warnings(path: str | os.PathLike, manifest: Manifest | None) -> list[str]:
    """What a reader of ``path`` should be told about its manifest (nothing when there is none)."""
    if manifest is not None and not verify_hash(path, manifest):
        return ["content hash differs from the manifest: the file was changed after it was written"]
    return []


def infer_variant(df: pd.DataFrame, manifest: Manifest | None, path: str | os.PathLike) -> str:
    """The manifest's variant, or the schema whose predictors the columns cover best."""
    if manifest is not None and manifest.variant:
        return manifest.variant
    from alfia.cohorts.schema import SCHEMAS

    best, score = None, 0.0
    for name, schema in SCHEMAS.items():
        cover = sum(c in df.columns for c in schema.predictor_names) / len(schema.predictors)
        if cover > score:
            best, score = name, cover
    if best is None or score < 0.5:
        raise AlfiaError(f"{path}: no manifest and the columns match no known cohort variant")
    return best
