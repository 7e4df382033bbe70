"""Transfer a time-series run to another source: zero-shot, then a light fine-tune on part of it.

The target table is read through the run's variables by name and unit (absent variables are masked as
never measured; the list goes to ``transfer.json``). Zero-shot scores every target stay with the source
model. The fine-tune starts from the source weights and preprocessing, trains on the target's train
split with early stopping on its val split, and both are scored on the target's test split, the stays
neither saw. Reported: AUROC and AUPRC with stratified-bootstrap CIs (:mod:`alfia.evaluation`), a paired
test of fine-tuned vs zero-shot, and the NPV and sensitivity at a rule-out threshold chosen on the
target's val split (the highest threshold whose val sensitivity reaches the target, default 0.90).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from alfia.atomic import write_json_atomic
from alfia.errors import AlfiaError
from alfia.evaluation.bootstrap import bootstrap_distribution, paired_bootstrap, with_ci
from alfia.evaluation.metrics import RankedScores, ranking_metrics, threshold_metrics
from alfia.evaluation.thresholds import rule_out_threshold
from alfia.runs import RunLayout, write_predictions
from alfia.series.hourly import HourlyArrays
from alfia.series.predict import features, load_series_run, probabilities
from alfia.series.train import MODEL_FAMILY, SeriesTrainConfig, train_series


def scored(y, prob, threshold: float, *, n_boot: int, seed: int) -> dict:
    """AUROC, AUPRC, and sensitivity, specificity, NPV, PPV at ``threshold``, each with a 95% CI."""
    y = np.asarray(y, dtype=float)
    prob = np.asarray(prob, dtype=float)
    ranked = RankedScores.of(y, prob)

    def statistic(weights):
        out = {k: v for k, v in ranking_metrics(y, prob, weights, ranked).items() if k in ("auroc", "auprc")}
        out.update({k: v for k, v in threshold_metrics(y, prob, threshold, weights).items()
                    if k in ("sensitivity", "specificity", "npv", "ppv")})
        return out

    point = {k: float(v[0]) for k, v in statistic(np.ones((1, y.size))).items()}
    samples = bootstrap_distribution(y, statistic, n_boot=n_boot, seed=seed)
    return {"n": int(y.size), "n_pos": int(y.sum()), "threshold": threshold,
            **{k: with_ci(point[k], samples[k]) for k in point}}


def _prediction_run(out: Path, name: str, arrays: HourlyArrays, prob: np.ndarray, extra: dict) -> None:
    layout = RunLayout.of(out)
    rows = np.flatnonzero(np.isin(arrays.split, ("val", "test")))
    write_json_atomic(layout.config, {"model_name": name, "model_family": MODEL_FAMILY, **extra})
    write_predictions(layout.predictions, arrays.stay_id[rows], arrays.split[rows], arrays.label[rows], prob[rows])


def transfer(run_dir: str | os.PathLike, target: HourlyArrays, out_dir: str | os.PathLike, *,
             epochs: int = 10, lr: float = 3e-4, patience: int = 3, batch_size: int = 64,
             target_sensitivity: float = 0.9, n_boot: int = 1000, seed: int = 42,
             log: Callable[[str], None] | None = None) -> dict:
    """Zero-shot and fine-tuned scores of a run on ``target``; writes OUT/zero-shot, OUT/fine-tuned (run
    directories ``alfia compare`` reads) and OUT/transfer.json. Returns the transfer.json content."""
    say = log or (lambda _m: None)
    out = Path(out_dir)
    if (out / "transfer.json").exists():
        raise AlfiaError(f"{out}: already holds a transfer (transfer.json); choose another --out")
    for s in ("train", "val", "test"):
        rows = target.rows_of(s)
        if rows.size == 0 or len(set(target.label[rows])) < 2:
            raise AlfiaError(f"target table: split {s!r} needs deaths and survivors for the transfer")
    run = load_series_run(run_dir)
    x, alignment = features(run, target)
    if alignment.absent:
        say(f"{len(alignment.absent)} of the model's variables are absent from the target and masked: "
            f"{', '.join(sorted(alignment.absent))}")
    zero = probabilities(run.model, x)
    val, test = target.rows_of("val"), target.rows_of("test")
    _prediction_run(out / "zero-shot", f"series-{run.name} zero-shot", target, zero,
                    {"source_run": str(run_dir), "target": target.source, "alignment": alignment.to_dict()})

    say(f"fine-tuning on {target.rows_of('train').size} target train stays")
    cfg = SeriesTrainConfig(model=run.name, epochs=epochs, lr=lr, patience=patience, batch_size=batch_size,
                            seed=seed, init_from=str(run_dir), hourly=target.source)
    summary = train_series(target, out / "fine-tuned", cfg, log=say)
    tuned_run = load_series_run(out / "fine-tuned")
    tuned = probabilities(tuned_run.model, x)

    result = {"source_run": str(run_dir), "source_model": run.name, "target": target.source,
              "target_stays": {s: int(target.rows_of(s).size) for s in ("train", "val", "test")},
              "target_deaths": {s: int(target.label[target.rows_of(s)].sum()) for s in ("train", "val", "test")},
              "alignment": alignment.to_dict(), "rule_out": {"target_sensitivity_on_val": target_sensitivity},
              "fine_tune": {**summary, "epochs_max": epochs, "lr": lr, "patience": patience,
                            "preprocessing": "the source run's (fitted on the source's train split)"},
              "scored_on": "target test split (neither fine-tuned on nor used for the threshold)"}
    for name, prob in (("zero_shot", zero), ("fine_tuned", tuned)):
        t = rule_out_threshold(target.label[val], prob[val], target_sensitivity)
        result[name] = scored(target.label[test], prob[test], t, n_boot=n_boot, seed=seed)
    result["paired_fine_tuned_vs_zero_shot"] = paired_bootstrap(target.label[test], tuned[test], zero[test],
                                                                n_boot=n_boot, seed=seed)
    write_json_atomic(out / "transfer.json", result)
    return result
