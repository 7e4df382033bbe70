"""An ALFIA run scores an external cohort whole (``alfia evaluate RUN_DIR --external COHORT``).

The cohort is mapped into the run's variant (``alfia.cohorts.mapping``) and encoded with the run's
template, without imputation: the text shows only what the source measured. Labels are read after
the model has scored; results go to ``RUN_DIR/external/<name>/`` like every other model's.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from alfia.cohorts.schema import SPLIT_COLUMN, get_schema
from alfia.errors import AlfiaError
from alfia.inference.predict import LoadedRun, frame_to_input, predict


def training_rows(run: LoadedRun) -> pd.DataFrame | None:
    """The training split of the run's text table (it keeps the predictors), if the file is still there."""
    from alfia.cohorts.io import read_table

    path = run.config.get("data", {}).get("path")
    if not path or not Path(path).exists():
        return None
    df, _ = read_table(path)
    return df.loc[df[SPLIT_COLUMN] == "train"] if SPLIT_COLUMN in df.columns else None


def score_external(run: LoadedRun, path: str | os.PathLike, *, n_boot: int = 1000, seed: int = 42,
                   batch_size: int = 64, name: str | None = None) -> dict:
    """Predict every stay of the cohort at ``path``; write external/<name>/; return its metrics."""
    from alfia.cohorts.io import infer_variant, read_table
    from alfia.cohorts.mapping import map_cohort
    from alfia.cohorts.validate import check_labels
    from alfia.evaluation.external import external_name, shift_report, write_external

    path = Path(path)
    target = run.template
    if target is None:
        raise AlfiaError(f"{run.run_dir}: the run records no text template, so an external cohort cannot be "
                         f"mapped into its variant")
    df, manifest = read_table(path)
    source_variant = infer_variant(df, manifest, path)
    mapped = map_cohort(df, source_variant, target, source=str(path))
    inputs = frame_to_input(mapped.features, str(path), run)  # no outcome column: nothing to peek at
    preds, _ = predict(run, inputs, batch_size=batch_size)
    labels = check_labels(mapped.frame, str(path))
    train = training_rows(run)
    shift = None
    if train is not None:
        absent = [{"variable": v["variable"], "reason": v["status"], "fill": None,
                   "fill_rule": "not imputed: the text omits it", "n_stays": len(df), "share_of_stays": 1.0}
                  for v in mapped.variables if v["status"] != "mapped"]
        shift = shift_report(train, mapped.features, get_schema(target), external_labels=labels,
                             imputed=absent, mapping=mapped.variables, source_variant=source_variant,
                             external_source=str(path))
    return write_external(run.run_dir, name or external_name(path), preds["stay_id"].to_numpy(), labels,
                          preds["prob"].to_numpy(), n_boot=n_boot, seed=seed, shift=shift,
                          extra={"external_source": str(path), "source_variant": source_variant})
