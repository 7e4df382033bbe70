"""Tables the API passes between steps: a cohort or a text table, always backed by its file on disk.

A table object holds the path of its Parquet file (with the manifest beside it), so every later step
records the same data file and SHA-256 that the CLI would. ``os.fspath(table)`` is that path: any
function of the project that takes a file takes a table too.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from alfia.cohorts.io import Manifest, read_table
from alfia.errors import AlfiaError


@dataclass
class _Table:
    path: Path
    manifest: Manifest | None = None
    _frame: pd.DataFrame | None = field(default=None, repr=False)

    def __fspath__(self) -> str:
        return str(self.path)

    @property
    def frame(self) -> pd.DataFrame:
        """The table's rows (read from the file on first use)."""
        if self._frame is None:
            self._frame, self.manifest = read_table(self.path)
        return self._frame

    @property
    def variant(self) -> str:
        from alfia.cohorts.io import infer_variant

        return infer_variant(self.frame, self.manifest, self.path)

    def __len__(self) -> int:
        return len(self.frame)

    def _repr_html_(self) -> str:  # notebooks: a glance at the table
        splits = (self.manifest.splits if self.manifest is not None else {}) or {}
        counts = ", ".join(f"{k} {v['n']:,} ({v['deaths']:,} deaths)" for k, v in splits.items() if k != "all")
        return (f"<b>{type(self).__name__}</b> <code>{self.path}</code>: {len(self):,} rows"
                f"{'; ' + counts if counts else ''}")


class CohortTable(_Table):
    """A CW-24 cohort (one row per ICU stay) and its manifest."""


class TextTable(_Table):
    """A clinical text table (``stay_id, split, hospital_expire_flag, text`` + predictors) and its manifest."""


def load(path: str | os.PathLike) -> CohortTable | TextTable:
    """Open a cohort or text table written earlier (by the API or the CLI)."""
    df, manifest = read_table(path)
    kind = manifest.kind if manifest is not None else ("text" if "text" in df.columns else "cohort")
    cls = TextTable if kind == "text" else CohortTable
    return cls(Path(path), manifest, df)


def as_path(table, what: str = "table") -> Path:
    """The file behind a table object or a path; AlfiaError for anything else."""
    if isinstance(table, (str, os.PathLike)):
        return Path(os.fspath(table))
    raise AlfiaError(f"expected a {what} (a file path, or a table from alfia.cohort / alfia.encode), "
                     f"got {type(table).__name__}")


def default_text_path(cohort_path: Path) -> Path:
    """cohort.parquet -> cohort.text.parquet, beside it."""
    return cohort_path.with_name(cohort_path.name.removesuffix(".parquet") + ".text.parquet")


def encode(cohort, out: str | os.PathLike | None = None, *, template: str = "auto", missing: str = "omit",
           progress: bool = False) -> TextTable:
    """Every ICU stay of a cohort as clinical text (``alfia encode``); writes ``out`` + manifest.

    ``out`` defaults to the cohort's name with ``.text.parquet`` beside it.
    """
    from alfia.text.encode import encode_file

    if missing not in ("omit", "state"):
        raise AlfiaError(f"missing must be 'omit' or 'state', not {missing!r}")
    cohort_path = as_path(cohort, "cohort")
    out = Path(out) if out is not None else default_text_path(cohort_path)
    if out.resolve() == cohort_path.resolve():
        raise AlfiaError(f"{out}: the text table would overwrite its own cohort; choose another out")
    frame, manifest = encode_file(cohort_path, out, template, missing, progress=progress)
    return TextTable(out, manifest, frame)
