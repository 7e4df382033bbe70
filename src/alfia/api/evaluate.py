"""``alfia.evaluate``: score a fitted model or any run directory, as ``alfia evaluate`` does.

    report = alfia.evaluate(model, split="test")          # RUN_DIR/metrics.json + figures/
    report.metrics                                        # metric, value, ci_low, ci_high
    report = alfia.evaluate(model, other_cohort)          # external validation: RUN_DIR/external/<name>/

With the text table the model was trained on (or none), the run's own val/test predictions are scored
(``alfia.evaluation.evaluate_run``). With another cohort (or its text table), the cohort is scored whole as an
external cohort by the one path ``alfia evaluate RUN --external COHORT`` takes (:func:`read_externals`,
:func:`score_externals`; an ALFIA run: ``alfia.inference.external.score_external``), with the thresholds the
model chose on its own validation rows; the result is ``RUN_DIR/external/<name>/``, which ``alfia compare``
and ``alfia card`` read.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from alfia.errors import AlfiaError


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
             cohort: str | os.PathLike | None = None, batch_size: int = 64) -> Report:
    """Metrics with stratified-bootstrap 95% CIs, subgroups, decision curve and figures of a run.

    ``model``: a fitted :class:`~alfia.api.classifier.ALFIAClassifier` or a run directory (ALFIA or a
    baseline). ``texts``: None or the model's own text table (internal: its ``split`` of val/test predictions),
    or another cohort (or text table) with labels: external validation, the whole cohort (its split column is
    ignored), exactly as ``alfia evaluate RUN --external``. ``cohort``: the file whose sex, age and ICU-unit
    columns the internal subgroup tables use (default: the data file recorded in the run's config).
    """
    from alfia.evaluation import evaluate_run

    run_dir = _run_dir_of(model)
    if texts is None or _is_training_data(run_dir, texts):
        return Report(evaluate_run(run_dir, split=split, n_boot=n_boot, seed=seed, cohort=cohort))
    from alfia.api.classifier import ALFIAClassifier

    loaded = model._run() if isinstance(model, ALFIAClassifier) else None  # the classifier's own loaded run
    run, externals = read_externals(run_dir, [Path(os.fspath(texts))], run=loaded)
    (result,) = score_externals(run_dir, run, externals, n_boot=n_boot, seed=seed, batch_size=batch_size)
    return Report(result)


def read_externals(run_dir: str | os.PathLike, paths, *, device: str = "auto", run=None):
    """(the loaded ALFIA run or None, [(path, name, the cohort read and checked, or None)]): every check of
    the external cohorts ``paths`` before anything is scored or written. An ALFIA run scores them itself; any
    other run re-scores the external/<name>/ its training wrote (tabular models score external cohorts when
    they are trained). ``run``: the ALFIA run already loaded."""
    from alfia.evaluation.external import external_names
    from alfia.runs import RunKind, RunLayout, kind_of_run

    paths = [Path(p) for p in paths]
    names = external_names(paths)
    layout = RunLayout.of(run_dir).require()
    if kind_of_run(layout.root) is not RunKind.ALFIA:  # only ALFIA itself reads a cohort (its text model)
        for path, name in zip(paths, names):
            written = layout.external(name).predictions
            if not written.exists():
                raise AlfiaError(f"{layout.root}: not an ALFIA run and no {written.relative_to(layout.root)}; "
                                 f"tabular models score external cohorts when they are trained "
                                 f"(alfia baselines/boost ... --external {path})")
        return None, [(path, name, None) for path, name in zip(paths, names)]
    from alfia.inference import load_run
    from alfia.inference.external import read_external

    run = run if run is not None else load_run(layout.root, device=device)
    return run, [(path, name, read_external(run, path, name=name)) for path, name in zip(paths, names)]


def score_externals(run_dir: str | os.PathLike, run, externals, *, n_boot: int = 1000, seed: int = 42,
                    batch_size: int = 64, on_cohort=None) -> list[dict]:
    """Score what :func:`read_externals` read: RUN_DIR/external/<name>/ of each; their metrics, in order.
    ``on_cohort(path)``: called before each cohort is scored (the CLI's status line)."""
    from alfia.evaluation.external import evaluate_external
    from alfia.inference.external import score_external

    results = []
    for path, name, external_cohort in externals:
        if on_cohort is not None:
            on_cohort(path)
        if run is not None:
            results.append(score_external(run, external_cohort, n_boot=n_boot, seed=seed, batch_size=batch_size))
        else:
            results.append(evaluate_external(run_dir, name, n_boot=n_boot, seed=seed))
    return results
