"""Cross-fitted ALF embeddings (issue 19): no training row is embedded by a model that saw its label.

    result = cross_fit_embeddings("runs/alfia", "text.parquet", k=5)   # what `alfia embed --cross-fit 5` runs
    result.frame        # alfia embed's columns + embedding_source, one row per input row, in input order
    result.write("emb.parquet")                                         # + emb.manifest.json (k, seed, folds)

An ALFIA run embeds its own training rows after fitting their labels, so ALFIA-boost, trained on those rows,
learns to trust the embeddings more than they deserve on new stays. Here the run's training rows are split
into ``k`` seeded folds stratified on the outcome; for each fold the run's own recipe (the ``model`` and
``train`` sections of its config.json, passed through unchanged) is refitted on the other folds, with the
same val rows for early stopping, and the held-out fold is embedded by that fold model
(``embedding_source`` "out_of_fold"). Every other row (val, test) is embedded by the run itself ("full_run"),
exactly as ``alfia embed`` does. The fold runs live in a temporary folder (or ``fold_dir``) and are deleted
afterwards unless ``keep_folds``.

This sits in ``api/`` because it trains (``alfia.training``) and embeds (``alfia.inference``), and inference
may not import training (tests/test_layout.py).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from alfia.baselines.boost import EMBEDDING_SOURCE_COLUMN, FULL_RUN, OUT_OF_FOLD
from alfia.cohorts.schema import ID_COLUMN, OUTCOME_COLUMN, SPLIT_COLUMN
from alfia.errors import AlfiaError

TRAIN_SPLIT = "train"
EMBEDDINGS_KIND = "embeddings"  # the manifest kind of an embeddings file written here


@dataclass
class CrossFitEmbeddings:
    """The embeddings of every input row and how they were made."""

    frame: pd.DataFrame  # stay_id, split, hospital_expire_flag, alf_*, layer_weight_*, embedding_source
    k: int
    seed: int
    folds: list[list[Any]]  # stay ids of the training rows each fold held out (fold i: folds[i])
    run_dir: Path
    input_path: Path
    input_sha256: str
    variant: str
    fold_runs: list[Path] | None  # the fold run directories, when kept
    seconds: float
    notes: list[str]

    def record(self) -> dict[str, Any]:
        """What the manifest records under ``extra["cross_fit"]``."""
        source = self.frame[EMBEDDING_SOURCE_COLUMN]
        return {"k": self.k, "seed": self.seed, "stratified_on": OUTCOME_COLUMN, "run": str(self.run_dir),
                "input": str(self.input_path), "input_sha256": self.input_sha256,
                "n_out_of_fold": int((source == OUT_OF_FOLD).sum()), "n_full_run": int((source == FULL_RUN).sum()),
                "folds": self.folds, "fold_runs": [str(p) for p in self.fold_runs] if self.fold_runs else None,
                "notes": self.notes, "seconds": round(self.seconds, 1)}

    def write(self, out: str | os.PathLike, *, exclusive: bool = False):
        """Write the embeddings Parquet and its manifest (``OUT.manifest.json``) atomically."""
        from alfia.cohorts.io import Manifest, mortality_by_split, write_table

        manifest = Manifest(kind=EMBEDDINGS_KIND, source=str(self.run_dir), variant=self.variant,
                            n_rows=len(self.frame), splits=mortality_by_split(self.frame),
                            extra={"cross_fit": self.record()})
        return write_table(self.frame, out, manifest, exclusive=exclusive)


def fold_assignment(labels: np.ndarray, k: int, seed: int, source: str) -> np.ndarray:
    """The fold (0..k-1) of each training row: seeded, stratified on the outcome, both classes in every fold."""
    from sklearn.model_selection import StratifiedKFold

    labels = np.asarray(labels).astype(int)
    n_deaths, n_survivors = int((labels == 1).sum()), int((labels == 0).sum())
    fewest = min(n_deaths, n_survivors)
    if fewest < k:
        advice = (f"choose --cross-fit {fewest} or fewer" if fewest >= 2 else
                  "too few to cross-fit (each of at least 2 folds needs one of each)")
        raise AlfiaError(f"{source}: --cross-fit {k} needs deaths and survivors in each of the {k} folds, but the "
                         f"'{TRAIN_SPLIT}' split has {n_deaths} deaths and {n_survivors} survivors; {advice}")
    folds = np.empty(len(labels), dtype=int)
    splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    for fold, (_, held_out) in enumerate(splitter.split(np.zeros(len(labels)), labels)):
        folds[held_out] = fold
    for fold in range(k):  # stratification guarantees it; a fold without one class would train a useless model
        if len(np.unique(labels[folds == fold])) < 2:
            raise AlfiaError(f"{source}: fold {fold + 1} of {k} holds only one class; choose a smaller --cross-fit")
    return folds


def check_k(k) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 2:
        raise AlfiaError(f"--cross-fit must be a whole number >= 2 (the folds of the training rows), got {k!r}")
    return int(k)


def _read_text_table(path: Path) -> tuple[pd.DataFrame, Any]:
    """The text table to cross-fit, with the columns refitting needs (text, split, labels), checked."""
    from alfia.cohorts.io import read_table_or_csv
    from alfia.cohorts.validate import split_for_training
    from alfia.text.table import TEXT_COLUMN, check_texts

    df, manifest = read_table_or_csv(path)
    for column, what in ((TEXT_COLUMN, "the texts (a text table from `alfia encode`)"),
                         (SPLIT_COLUMN, f"which rows are '{TRAIN_SPLIT}' (the rows that are refitted fold by fold)"),
                         (OUTCOME_COLUMN, "the labels the fold models are trained on")):
        if column not in df.columns:
            raise AlfiaError(f"{path}: no '{column}' column; --cross-fit refits the run on this table and needs "
                             f"{what}")
    check_texts(df, str(path))
    split_for_training(df, str(path), need_test=False)  # ids, labels 0/1, split values, both classes
    return df.reset_index(drop=True), manifest


def _prepare_fold_dir(fold_dir: str | os.PathLike | None) -> tuple[Path, bool]:
    """(the folder the fold runs go to, whether this call created it). A given folder must be empty:
    what is written there is deleted afterwards, and nothing else may be."""
    if fold_dir is None:
        return Path(tempfile.mkdtemp(prefix="alfia-crossfit-")), True
    folder = Path(fold_dir)
    if folder.exists():
        if not folder.is_dir():
            raise AlfiaError(f"{folder}: --fold-dir names a file; give a folder")
        if any(folder.iterdir()):
            raise AlfiaError(f"{folder}: --fold-dir is not empty; give an empty or new folder (the fold runs "
                             f"written there are deleted afterwards unless --keep-folds)")
        return folder, False
    folder.mkdir(parents=True)
    return folder, True


def _fold_table(df: pd.DataFrame, keep: np.ndarray, manifest, path: Path, variant: str, target: Path) -> Path:
    """Write the rows ``keep`` (the other folds' train rows and every val row) as the fold's text table."""
    from alfia.cohorts.io import Manifest, mortality_by_split, write_table

    part = df.loc[keep]
    extra = dict(manifest.extra) if manifest is not None else {}
    extra["cross_fit_of"] = str(path)
    fold_manifest = Manifest(kind="text", source=manifest.source if manifest is not None else str(path),
                             variant=variant, n_rows=len(part), splits=mortality_by_split(part), extra=extra)
    if manifest is not None:
        fold_manifest.window_hours = manifest.window_hours
    write_table(part, target, fold_manifest)
    return target


def _embed_rows(run_dir: Path, df: pd.DataFrame, rows: np.ndarray, source: str, *, batch_size: int,
                device: str, num_threads: int | None) -> pd.DataFrame:
    from alfia.inference import embed, frame_to_input, load_run

    run = load_run(run_dir, device=device, num_threads=num_threads)
    frame, _ = embed(run, frame_to_input(df.loc[rows], source, run), batch_size=batch_size)
    frame.index = np.flatnonzero(rows)
    return frame


def cross_fit_embeddings(run_dir: str | os.PathLike, text_table_path: str | os.PathLike, k: int = 5, *,
                         seed: int | None = None, fold_dir: str | os.PathLike | None = None,
                         keep_folds: bool = False, batch_size: int = 64, device: str = "auto",
                         num_threads: int | None = None, console=None, progress: bool = False) -> CrossFitEmbeddings:
    """Embed every row of the run's text table; each training row by a model refitted without it.

    ``seed``: of the fold assignment (None: the run's training seed). ``fold_dir``: where the fold runs go
    (an empty or new folder; None: a temporary one); they are deleted at the end unless ``keep_folds``.
    ``device`` / ``num_threads`` are used by the fold trainings and every embedding pass.
    """
    from rich.console import Console

    import alfia.training  # looked up at call time: tests swap in a tiny training
    from alfia.atomic import sha256_file
    from alfia.models import AlfiaConfig
    from alfia.runs import RunLayout, read_alfia_config
    from alfia.training import TrainConfig

    started = time.perf_counter()
    k = check_k(k)
    console = console or Console(emoji=False, stderr=True, quiet=True)
    layout = RunLayout.of(run_dir).require()
    if layout.is_export:
        raise AlfiaError(f"{layout.root}: an export folder; --cross-fit refits the run on its training rows, so "
                         f"give the source run (export.json names it)")
    config = read_alfia_config(layout.root)
    path = Path(os.fspath(text_table_path))
    source = str(path)
    df, manifest = _read_text_table(path)
    input_sha = sha256_file(path)
    trained_on = config["data"].get("sha256")
    if trained_on != input_sha:
        raise AlfiaError(f"{path}: not the text table {layout.root} was trained on (its SHA-256 differs from "
                         f"config.json's data.sha256, the table {config['data'].get('path')}); --cross-fit refits "
                         f"the run on its own training rows, so give that table")
    model_config = AlfiaConfig.from_dict(config["model"], source=f"{layout.config}: model")
    train_config = TrainConfig.from_dict(config["train"], source=f"{layout.config}: train")
    # Where and on how many threads it runs are resources, not the recipe; unset threads stay the run's.
    num_threads = train_config.num_threads if num_threads is None else num_threads
    train_config = replace(train_config, device=device, num_threads=num_threads)
    notes = []
    if getattr(train_config, "head_from", None) is not None:
        # That run's head was fitted on every training row, held-out folds included: it would carry their labels.
        train_config = replace(train_config, head_from=None)
        notes.append(f"the run's head_from ({config['train']['head_from']}) saw every training label; the fold "
                     f"runs start from their own warm start instead")
        console.print(f"note: {notes[-1]}", highlight=False)
    seed = int(train_config.seed if seed is None else seed)
    variant = config["data"].get("variant") or (manifest.variant if manifest is not None else None) or "unknown"

    split = df[SPLIT_COLUMN].astype(str).to_numpy()
    is_train = split == TRAIN_SPLIT
    train_positions = np.flatnonzero(is_train)
    folds = fold_assignment(df[OUTCOME_COLUMN].to_numpy()[is_train], k, seed, source)
    stay_ids = df[ID_COLUMN].to_numpy()
    held_out_ids = [stay_ids[train_positions[folds == f]].tolist() for f in range(k)]

    folder, created = _prepare_fold_dir(fold_dir)
    written: list[Path] = []
    fold_runs: list[Path] = []
    try:
        # The rows the run did not train on get its own embedding, as plain `alfia embed` gives them.
        pieces = [_embed_rows(layout.root, df, ~is_train, source, batch_size=batch_size, device=device,
                              num_threads=num_threads).assign(**{EMBEDDING_SOURCE_COLUMN: FULL_RUN})]
        for f in range(k):
            held_out = np.zeros(len(df), dtype=bool)
            held_out[train_positions[folds == f]] = True
            fold_root = folder / f"fold_{f + 1}"
            written.append(fold_root)
            fold_root.mkdir()
            keep = (is_train & ~held_out) | (split == "val")  # test rows are never trained on: left out
            table = _fold_table(df, keep, manifest, path, variant, fold_root / "text.parquet")
            console.print(f"fold {f + 1}/{k}: refitting {layout.root.name} on {int((is_train & ~held_out).sum())} "
                          f"training rows, embedding the {int(held_out.sum())} held out", highlight=False)
            alfia.training.train_run(table, fold_root / "run", model_config, train_config, progress=progress,
                                     console=console, predict_splits=("val",))
            pieces.append(_embed_rows(fold_root / "run", df, held_out, source, batch_size=batch_size,
                                      device=device, num_threads=num_threads)
                          .assign(**{EMBEDDING_SOURCE_COLUMN: OUT_OF_FOLD}))
            fold_runs.append(fold_root / "run")
            if not keep_folds:
                shutil.rmtree(fold_root)
    finally:
        if not keep_folds:
            for fold_root in written:
                shutil.rmtree(fold_root, ignore_errors=True)
            if created:
                shutil.rmtree(folder, ignore_errors=True)
    columns = list(pieces[0].columns)
    for piece in pieces[1:]:
        if list(piece.columns) != columns:  # the same recipe gives the same columns; anything else is a bug
            raise AlfiaError(f"{layout.root}: a fold model's embeddings have other columns than the run's "
                             f"({len(piece.columns)} vs {len(columns)})")
    frame = pd.concat(pieces).sort_index()
    if not np.array_equal(frame.index.to_numpy(), np.arange(len(df))):
        raise AlfiaError(f"{path}: cross-fitting embedded {len(frame)} rows of {len(df)}")  # every row exactly once
    return CrossFitEmbeddings(frame.reset_index(drop=True), k, seed, held_out_ids, layout.root, path, input_sha,
                              variant, fold_runs if keep_folds else None, time.perf_counter() - started, notes)
