"""An ALFIA run scores an external cohort whole (``alfia evaluate RUN_DIR --external COHORT``).

The cohort is mapped into the run's variant (``alfia.cohorts.mapping``) and encoded with the run's
template, without imputation: the text shows only what the source measured. Labels are checked before
(both classes) and read after the model has scored; a cohort holding the run's own training or validation
stays is refused. Results go to ``RUN_DIR/external/<name>/`` like every other model's.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from alfia.cohorts.schema import ID_COLUMN, OUTCOME_COLUMN, SPLIT_COLUMN, get_schema
from alfia.errors import AlfiaError
from alfia.inference.predict import InferenceInput, LoadedRun, frame_to_input, predict
from alfia.text.table import TEXT_COLUMN


def own_rows(run: LoadedRun, splits=("train",)) -> pd.DataFrame | None:
    """The rows of ``splits`` of the run's text table (it keeps the predictors), if the file is still there."""
    from alfia.cohorts.io import read_table

    path = run.config.get("data", {}).get("path")
    if not path or not Path(path).exists():
        return None
    df, _ = read_table(path)
    return df.loc[df[SPLIT_COLUMN].isin(splits)] if SPLIT_COLUMN in df.columns else None


def training_rows(run: LoadedRun) -> pd.DataFrame | None:
    """The training split of the run's text table, if the file is still there."""
    return own_rows(run, ("train",))


@dataclass
class ExternalCohort:
    """An external cohort read, mapped into the run's variant and checked; nothing scored or written yet."""

    path: Path
    name: str
    n_stays: int
    source_variant: str
    mapped: Any
    inputs: InferenceInput


def read_external(run: LoadedRun, path: str | os.PathLike, *, name: str | None = None) -> ExternalCohort:
    """Read the cohort at ``path`` and check all that scoring it needs, before anything is written: labels
    0/1 of both classes, and no stay that is one of the run's own training or validation rows."""
    from alfia.cohorts.io import infer_variant, read_table
    from alfia.cohorts.mapping import map_cohort
    from alfia.cohorts.validate import check_labels
    from alfia.evaluation.external import external_name

    path = Path(path)
    if run.template is None:
        raise AlfiaError(f"{run.run_dir}: the run records no text template, so an external cohort cannot be "
                         f"mapped into its variant")
    df, manifest = read_table(path)
    source_variant = infer_variant(df, manifest, path)
    mapped = map_cohort(df, source_variant, run.template, source=str(path))
    inputs = frame_to_input(mapped.features, str(path), run)  # no outcome column: nothing to peek at
    labels = check_labels(mapped.frame, str(path))  # checked here, read only once the model has scored
    if len(np.unique(labels)) < 2:
        raise AlfiaError(f"{path}: column '{OUTCOME_COLUMN}' holds one class only "
                         f"({int(labels[0]) if len(labels) else '-'}s); external validation needs deaths and survivors")
    _refuse_own_stays(run, inputs, path)
    return ExternalCohort(path, name or external_name(path), len(df), source_variant, mapped, inputs)


def _refuse_own_stays(run: LoadedRun, inputs: InferenceInput, path: Path) -> None:
    """A stay with the stay_id and the text of one of the run's training or validation rows is that row: scoring
    it is no external validation. (Two databases' id ranges may overlap; their texts then differ.)"""
    own = own_rows(run, ("train", "val"))
    if own is None:
        return
    theirs = pd.DataFrame({"key": inputs.stay_id.astype(str), TEXT_COLUMN: inputs.texts})
    ours = pd.DataFrame({"key": own[ID_COLUMN].astype(str).to_numpy(), TEXT_COLUMN: own[TEXT_COLUMN].to_numpy(),
                         SPLIT_COLUMN: own[SPLIT_COLUMN].to_numpy()})
    shared = theirs.merge(ours, on=["key", TEXT_COLUMN])
    if len(shared):
        counts = ", ".join(f"{n} {split}" for split, n in shared[SPLIT_COLUMN].value_counts().sort_index().items())
        raise AlfiaError(f"{path}: {len(shared)} of its {len(theirs)} stays are the run's own rows ({counts}; same "
                         f"stay_id and text, e.g. stay_id={shared['key'].iloc[0]}, from {run.config['data']['path']}); "
                         f"an external cohort must hold stays the run never saw: leave them out, or evaluate the "
                         f"run's test split without --external")


def score_external(run: LoadedRun, path: "str | os.PathLike | ExternalCohort", *, n_boot: int = 1000,
                   seed: int = 42, batch_size: int = 64, name: str | None = None) -> dict:
    """Predict every stay of the cohort at ``path`` (or one already read by :func:`read_external`); write
    external/<name>/; return its metrics."""
    from alfia.cohorts.validate import check_labels
    from alfia.evaluation.external import shift_report, write_external

    cohort = path if isinstance(path, ExternalCohort) else read_external(run, path, name=name)
    path, mapped, target = cohort.path, cohort.mapped, run.template
    preds, _ = predict(run, cohort.inputs, batch_size=batch_size)
    labels = check_labels(mapped.frame, str(path))
    train = training_rows(run)
    shift = None
    if train is not None:
        absent = [{"variable": v["variable"], "reason": v["status"], "fill": None,
                   "fill_rule": "not imputed: the text omits it", "n_stays": cohort.n_stays, "share_of_stays": 1.0}
                  for v in mapped.variables if v["status"] != "mapped"]
        shift = shift_report(train, mapped.features, get_schema(target), external_labels=labels,
                             imputed=absent, mapping=mapped.variables, source_variant=cohort.source_variant,
                             external_source=str(path))
    return write_external(run.run_dir, cohort.name, preds["stay_id"].to_numpy(), labels,
                          preds["prob"].to_numpy(), n_boot=n_boot, seed=seed, shift=shift,
                          extra={"external_source": str(path), "source_variant": cohort.source_variant})
