"""evaluate_predictions / evaluate_run: thresholds from val applied to test, outputs, clear errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, fbeta_score, roc_auc_score

from alfia.errors import AlfiaError
from alfia.evaluation import evaluate_predictions, evaluate_run
from alfia.evaluation.thresholds import choose_threshold

from .fabricate import make_run

N_BOOT = 200


def _frame(stay_id, split, label, prob):
    return pd.DataFrame({"stay_id": stay_id, "split": split, "label": label, "prob": prob})


def test_thresholds_are_chosen_on_val_and_applied_to_test(cohort):
    stay_id, split, label, prob, _ = cohort
    result = evaluate_predictions(_frame(stay_id, split, label, prob), n_boot=N_BOOT)
    val, test = split == "val", split == "test"
    for name, beta in (("f1", 1.0), ("f2", 2.0)):
        threshold, _ = choose_threshold(label[val], prob[val], beta)
        assert result["thresholds"][name] == threshold
        assert result["operating_points"][name]["chosen_on"] == "val"
        on_test = fbeta_score(label[test], (prob[test] >= threshold).astype(int), beta=beta)
        assert result["metrics"][name]["value"] == pytest.approx(on_test)
    # The test-optimal "best" scores are at least the val-threshold scores, and their thresholds differ.
    assert result["metrics"]["best_f1"]["value"] >= result["metrics"]["f1"]["value"]
    assert result["thresholds"]["best_f1_threshold"] == choose_threshold(label[test], prob[test], 1.0)[0]
    assert result["metrics"]["auprc"]["value"] == pytest.approx(average_precision_score(label[test], prob[test]))
    assert result["metrics"]["auroc"]["value"] == pytest.approx(roc_auc_score(label[test], prob[test]))
    cm = result["operating_points"]["f1"]["confusion_matrix"]
    assert sum(cm.values()) == result["n"] == 800 and cm["tp"] + cm["fn"] == result["n_pos"]
    assert result["notes"] == []


def test_val_threshold_is_not_the_test_optimum():
    """A shift between val and test: the val-chosen threshold must be used as is, not re-tuned on test."""
    rng = np.random.default_rng(5)
    n = 1000
    y = rng.binomial(1, 0.3, 2 * n)
    prob = np.clip(0.3 + 0.3 * y + rng.normal(0, 0.15, 2 * n), 0, 1)
    prob[n:] = np.clip(prob[n:] + 0.2, 0, 1)  # test scores drift upwards
    split = np.array(["val"] * n + ["test"] * n, dtype=object)
    result = evaluate_predictions(_frame(np.arange(2 * n), split, y, prob), n_boot=N_BOOT)
    assert result["thresholds"]["f1"] == choose_threshold(y[:n], prob[:n], 1.0)[0]
    assert result["metrics"]["f1"]["value"] < result["metrics"]["best_f1"]["value"] - 0.02


def test_without_val_rows_thresholds_come_from_the_split_and_it_says_so(cohort):
    pred = _frame(*cohort[:4])
    result = evaluate_predictions(pred[pred["split"] == "test"], n_boot=N_BOOT)
    assert result["thresholds"]["chosen_on"] == "test"
    assert any("no val rows" in note for note in result["notes"])
    assert result["metrics"]["f1"]["value"] == pytest.approx(result["metrics"]["best_f1"]["value"])


@pytest.mark.parametrize("mutate, message", [
    (lambda df: df.drop(columns="prob"), "lack column\\(s\\) prob"),
    (lambda df: df.assign(label=df["label"].where(df.index != 5, 2)), "column 'label' must be 0 or 1, got 2 at row 5"),
    (lambda df: df.assign(prob=df["prob"].where(df.index != 7, np.nan)), "column 'prob' .* row 7"),
    (lambda df: df.assign(prob=df["prob"].where(df.index != 9, 1.2)), "column 'prob' .* row 9"),
    (lambda df: pd.concat([df, df.iloc[[700]]]), "appears more than once in split 'test'"),
    (lambda df: df[df["split"] == "val"], "no rows in split 'test' \\(splits present: val\\)"),
    (lambda df: df.assign(label=0), "holds only label 0"),
])
def test_bad_predictions_get_a_clear_error(cohort, mutate, message):
    with pytest.raises(AlfiaError, match=message):
        evaluate_predictions(mutate(_frame(*cohort[:4])), n_boot=N_BOOT, source="RUN/predictions.parquet")


def test_evaluate_run_writes_metrics_and_figures(tmp_path, cohort):
    stay_id, split, label, prob, _ = cohort
    history = [{"epoch": e, "train_loss": 0.6 - 0.05 * e, "val_auprc": 0.4 + 0.01 * e, "val_auroc": 0.8} for e in range(4)]
    run = make_run(tmp_path, "run", prob, stay_id=stay_id, split=split, label=label,
                   config={"model_name": "ALFIA"}, history=history)
    result = evaluate_run(run, n_boot=N_BOOT)
    saved = json.loads((run / "metrics.json").read_text(), parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    assert saved["metrics"] == result["metrics"] and saved["model_name"] == "ALFIA"
    for name in ("roc", "pr", "calibration", "confusion_matrix", "training_curves"):
        png = run / "figures" / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        assert saved["figures"][name] == f"figures/{name}.png"
    assert not list(run.glob(".*.tmp")) and not list((run / "figures").glob(".*.tmp"))


def test_undefined_values_are_null_in_metrics_json(tmp_path):
    y = np.array([0, 1] * 50)
    prob = np.where(y == 1, 0.8, 0.2)  # perfectly separated: the calibration slope is undefined
    split = np.array(["val"] * 50 + ["test"] * 50, dtype=object)
    run = make_run(tmp_path, "sep", prob, stay_id=np.arange(100), split=split, label=y)
    evaluate_run(run, n_boot=50)
    saved = json.loads((run / "metrics.json").read_text())
    assert saved["metrics"]["calibration_slope"]["value"] is None
    assert saved["metrics"]["auroc"]["value"] == 1.0
    assert any("calibration slope is undefined" in note for note in saved["notes"])


def test_malformed_history_is_named_and_keeps_the_old_metrics(tmp_path, cohort):
    stay_id, split, label, prob, _ = cohort
    run = make_run(tmp_path, "run", prob, stay_id=stay_id, split=split, label=label)
    evaluate_run(run, n_boot=50)
    before = (run / "metrics.json").read_text()
    (run / "history.jsonl").write_text('{"epoch": 0, "train_loss": 0.5}\n{"epoch": 1, "train_loss": \n')
    with pytest.raises(AlfiaError, match=r"history.jsonl, line 2: not valid JSON"):
        evaluate_run(run, n_boot=50)
    assert (run / "metrics.json").read_text() == before


def test_evaluate_run_names_a_missing_predictions_file(tmp_path):
    (tmp_path / "empty_run").mkdir()
    with pytest.raises(AlfiaError, match="empty_run/predictions.parquet: no predictions file"):
        evaluate_run(tmp_path / "empty_run")
