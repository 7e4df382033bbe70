"""``alfia.evaluate``: score a fitted model or any run directory, as ``alfia evaluate`` does.

    report = alfia.evaluate(model, split="test")          # RUN_DIR/metrics.json + figures/
    report.metrics                                        # metric, value, ci_low, ci_high
    report = alfia.evaluate(model, other_texts)           # external validation: RUN_DIR/external/<name>/

With the text table the model was trained on (or none), the run's own val/test predictions are scored
(``alfia.evaluation.evaluate_run``). With another table, the model predicts its rows and they are scored
as an external test set, with the thresholds the model chose on its own validation rows; the result is
a run-like folder ``RUN_DIR/external/<table name>/`` that ``alfia compare`` and ``alfia card`` read.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from alfia.errors import AlfiaError

EXTERNAL_DIR = "external"


class Report:
    """One evaluation result (the dict of ``metrics.json``) with a table view for notebooks."""

    def __init__(self, result: dict):
        self.result = result

    def __getitem__(self, key):
        return self.result[key]

    def to_dict(self) -> dict:
        return self.result

    @property
    def metrics(self) -> pd.DataFrame:
        rows = [{"metric": k, **v} for k, v in self.result["metrics"].items()]
        return pd.DataFrame(rows, columns=["metric", "value", "ci_low", "ci_high"]).set_index("metric")

    @property
    def subgroups(self) -> pd.DataFrame | None:
        from alfia.evaluation.subgroups import subgroup_frame

        block = self.result.get("subgroups")
        return subgroup_frame(block) if block and block.get("groups") else None

    def __repr__(self) -> str:
        m = self.result["metrics"]
        return (f"Report({self.result.get('model_name', '?')}, {self.result['split']}: n={self.result['n']}, "
                f"AUPRC {m['auprc']['value']:.3f}, AUROC {m['auroc']['value']:.3f})")

    def _repr_html_(self) -> str:
        return (f"<p><b>{self.result.get('model_name', '')}</b> — {self.result['split']}: {self.result['n']} stays, "
                f"{self.result['n_pos']} deaths</p>" + self.metrics.to_html(float_format=lambda x: f"{x:.4f}"))


def _run_dir_of(model) -> Path:
    if isinstance(model, (str, os.PathLike)):
        return Path(model)
    run_dir = getattr(model, "run_dir_", None)
    if run_dir is None:
        raise AlfiaError("evaluate needs a fitted model (ALFIAClassifier after fit/from_pretrained) or a run "
                         "directory")
    return Path(run_dir)


def _is_training_data(run_dir: Path, texts) -> bool:
    from alfia.atomic import sha256_file
    from alfia.runs import read_config

    data = read_config(run_dir).get("data") or {}
    path = Path(os.fspath(texts))
    if data.get("path") and Path(data["path"]).resolve() == path.resolve():
        return True
    return bool(data.get("sha256")) and path.exists() and sha256_file(path) == data["sha256"]


def evaluate(model, texts=None, *, split: str = "test", n_boot: int = 1000, seed: int = 42,
             cohort: str | os.PathLike | None = None) -> Report:
    """Metrics with stratified-bootstrap 95% CIs, subgroups, decision curve and figures of a run.

    ``model``: a fitted :class:`~alfia.api.classifier.ALFIAClassifier` or a run directory (ALFIA or a
    baseline). ``texts``: None or the model's own text table (internal: its val/test predictions), or
    another table with labels (external validation). ``cohort``: the file whose sex, age and ICU-unit
    columns the subgroup tables use (default: the data file recorded in the run's config).
    """
    from alfia.evaluation import evaluate_run

    run_dir = _run_dir_of(model)
    if texts is None or _is_training_data(run_dir, texts):
        result = evaluate_run(run_dir, split=split, n_boot=n_boot, seed=seed, cohort=cohort)
    else:
        result = _evaluate_external(model, run_dir, texts, split, n_boot, seed, cohort)
    return Report(result)


def _evaluate_external(model, run_dir: Path, texts, split: str, n_boot: int, seed: int, cohort) -> dict:
    from alfia.atomic import write_json_atomic
    from alfia.cohorts.schema import ID_COLUMN, OUTCOME_COLUMN, SPLIT_COLUMN
    from alfia.evaluation import evaluate_run
    from alfia.evaluation.report import model_name_of
    from alfia.runs import RunLayout, read_predictions, write_predictions

    if not hasattr(model, "predict_frame"):
        raise AlfiaError("external validation needs the model itself (an ALFIAClassifier), not a run directory")
    path = Path(os.fspath(texts))
    frame = model.predict_frame(path)
    if OUTCOME_COLUMN not in frame.columns:
        raise AlfiaError(f"{path}: no {OUTCOME_COLUMN} column with 0/1 labels; cannot evaluate")
    if SPLIT_COLUMN in frame.columns and split in set(frame[SPLIT_COLUMN]):
        frame = frame[frame[SPLIT_COLUMN] == split]
    if frame[OUTCOME_COLUMN].nunique() < 2:  # before external/<name>/ is created: nothing to score
        raise AlfiaError(f"{path}: the labels hold one class only; external validation needs deaths and survivors")
    own = read_predictions(RunLayout.of(run_dir).predictions)
    own_val = own[own[SPLIT_COLUMN] == "val"]  # thresholds stay those chosen on the model's own val rows
    name = path.name.removesuffix(".parquet").removesuffix(".csv")
    out = RunLayout.of(run_dir / EXTERNAL_DIR / name)
    out.root.mkdir(parents=True, exist_ok=True)
    write_predictions(out.predictions,
                      [*own_val[ID_COLUMN], *frame[ID_COLUMN]],
                      ["val"] * len(own_val) + [split] * len(frame),
                      [*own_val["label"], *frame[OUTCOME_COLUMN]],
                      [*own_val["prob"], *frame["prob"]])
    write_json_atomic(out.config, {
        "model_name": f"{model_name_of(run_dir)} (external: {name})", "model_family": "alfia",
        "external_validation": {"model_run": str(Path(run_dir).resolve()), "data": {"path": str(path.resolve())},
                                "note": "val rows are the model's own validation predictions (they choose the "
                                        "thresholds); the evaluated rows are the external table's"}})
    return evaluate_run(out.root, split=split, n_boot=n_boot, seed=seed, cohort=cohort or path)
