"""A fair, careful comparison (issue 20, point 3) and one Comparison with one formatting home (issue 24, point 6)."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import expit, logit
from sklearn.metrics import roc_auc_score

from alfia.cohorts.io import write_cohort
from alfia.cohorts.sources.synthetic import generate_synthetic
from alfia.evaluation import compare_runs, evaluate_predictions, plots
from alfia.evaluation.compare import build_comparison
from alfia.evaluation.format import (DEGENERATE_TEXT, MAX_SLOPE_CI_WIDTH, ci_text, few_events_warning,
                                     slope_ci_warning)
from alfia.runs import write_predictions

from .fabricate import make_run, synthetic_predictions

N_BOOT = 60


def _noisy(latent, rng, sd):
    return expit(-2 + 1.5 * latent + rng.normal(0, sd, latent.size))


def test_the_best_baseline_is_chosen_on_validation_not_on_test(tmp_path, cohort):
    stay_id, split, label, prob, latent = cohort
    rng = np.random.default_rng(4)
    val = split == "val"
    common = dict(stay_id=stay_id, split=split, label=label)
    make_run(tmp_path / "runs", "alfia", prob, config={"model_type": "alfia", "model_name": "ALFIA"}, **common)
    # Lucky on test, poor on val: the test split must not pick it.
    lucky = np.where(val, _noisy(latent, rng, 2.0), _noisy(latent, rng, 0.1))
    steady = _noisy(latent, rng, 0.6)
    make_run(tmp_path / "runs", "lucky", lucky, config={"model_family": "baseline", "model_name": "lucky"}, **common)
    make_run(tmp_path / "runs", "steady", steady, config={"model_family": "baseline", "model_name": "steady"}, **common)
    comparison = compare_runs([tmp_path / "runs"], tmp_path / "report", n_boot=N_BOOT)
    table = comparison["table"].set_index("model")
    assert table.loc["lucky", "auprc"] > table.loc["steady", "auprc"]  # the test split prefers lucky ...
    assert table.loc["steady", "val_auprc"] > table.loc["lucky", "val_auprc"]  # ... validation prefers steady
    assert comparison["best_baseline"] == "steady" and comparison["best_baseline_chosen_on"] == "val"
    assert [(t["model_a"], t["model_b"]) for t in comparison["paired_tests"]] == [("ALFIA", "steady")]
    assert "best on validation" in (tmp_path / "report" / "comparison.md").read_text()


def test_without_alfia_every_pair_is_tested_and_ranks_need_a_ci_that_excludes_0(tmp_path, cohort):
    stay_id, split, label, prob, latent = cohort
    rng = np.random.default_rng(5)
    common = dict(stay_id=stay_id, split=split, label=label)
    make_run(tmp_path / "runs", "a", prob, config={"model_family": "baseline", "model_name": "a"}, **common)
    twin = expit(logit(prob) + rng.normal(0, 0.01, prob.size))  # no test can tell it from a
    make_run(tmp_path / "runs", "twin", twin, config={"model_family": "baseline", "model_name": "twin"}, **common)
    make_run(tmp_path / "runs", "poor", _noisy(latent, rng, 2.5), config={"model_family": "baseline",
                                                                          "model_name": "poor"}, **common)
    comparison = compare_runs([tmp_path / "runs"], tmp_path / "report", n_boot=N_BOOT)
    pairs = {(t["model_a"], t["model_b"]) for t in comparison["pairwise_tests"]}
    assert len(pairs) == 3 and {frozenset(p) for p in pairs} == {frozenset(("a", "twin")), frozenset(("a", "poor")),
                                                                  frozenset(("twin", "poor"))}
    assert comparison["paired_tests"] == []  # no ALFIA run: no test against a best baseline
    ranks = dict(zip(comparison["table"]["model"], comparison["table"]["rank"]))
    assert ranks["a"] == ranks["twin"] == 1 and ranks["poor"] == 3
    assert len(pd.read_csv(tmp_path / "report" / "pairwise_tests.csv")) == 6  # 3 pairs x AUPRC, AUROC
    assert "between every pair of models" in (tmp_path / "report" / "report.html").read_text()


def test_every_family_is_calibrated_on_its_own_val_rows_and_raw_metrics_stay(tmp_path, cohort):
    stay_id, split, label, prob, _ = cohort
    common = dict(stay_id=stay_id, split=split, label=label)
    over = expit(logit(prob) + 1.5)  # over-predicts every death
    make_run(tmp_path / "runs", "over", over, config={"model_family": "baseline", "model_name": "over"}, **common)
    alfia = tmp_path / "runs" / "alfia"
    alfia.mkdir()
    (alfia / "config.json").write_text(json.dumps({"model_type": "alfia", "model_name": "ALFIA"}))
    write_predictions(alfia / "predictions.parquet", stay_id, split, label, prob, prob_uncalibrated=over)
    comparison = compare_runs([tmp_path / "runs"], tmp_path / "report", n_boot=N_BOOT)
    runs = {r["model"]: r for r in comparison["runs"]}
    raw = runs["over"]["result"]["calibration_before"]["calibration_intercept"]["value"]
    calibrated = runs["over"]["result"]["metrics"]["calibration_intercept"]["value"]
    assert raw < -1.0 and abs(calibrated) < 0.3  # the Platt map fitted on val fixes the test split too
    assert runs["over"]["calibration"].startswith("Platt on val (600 stays")
    assert runs["ALFIA"]["calibration"].startswith("its own calibrator")  # ALFIA's probabilities are left alone
    assert runs["ALFIA"]["result"]["calibration_before"] is not None
    test = split == "test"
    assert np.isclose(runs["over"]["result"]["metrics"]["auroc"]["value"], roc_auc_score(label[test], over[test]))
    md = (tmp_path / "report" / "comparison.md").read_text()
    assert "Before calibration" in md and "Cal. intercept, raw" in md


def test_small_samples_are_flagged_and_zero_width_cis_are_not_results(tmp_path):
    stay_id, split, label, prob, _ = synthetic_predictions(n_val=300, n_test=70, prevalence_logit=-3.0, seed=2)
    test = split == "test"
    assert 0 < label[test].sum() < 10
    result = evaluate_predictions(pd.DataFrame({"stay_id": stay_id, "split": split, "label": label, "prob": prob}),
                                  n_boot=N_BOOT)
    assert any(w.startswith(f"few events: {int(label[test].sum())} death(s) in the test split") for w in result["warnings"])
    common = dict(stay_id=stay_id, split=split, label=label)
    make_run(tmp_path / "runs", "model", prob, config={"model_family": "baseline"}, **common)
    perfect = np.where(label == 1, 0.9, 0.1)  # every resample agrees: AUROC 1.000 [1.000, 1.000] says nothing
    make_run(tmp_path / "runs", "perfect", perfect, config={"model_family": "baseline"}, **common)
    compare_runs([tmp_path / "runs"], tmp_path / "report", n_boot=N_BOOT)
    md = (tmp_path / "report" / "comparison.md").read_text()
    assert "⚠ few events" in md
    assert "1.000 [1.000, 1.000]" not in md and DEGENERATE_TEXT in md


def test_warning_rules_have_their_named_limits():
    assert few_events_warning(9, "x") and few_events_warning(10, "x") is None
    assert slope_ci_warning({"value": 1.0, "ci_low": 0.5, "ci_high": 0.5 + MAX_SLOPE_CI_WIDTH}) is None
    assert "calibration slope uncertain" in slope_ci_warning({"value": 1.0, "ci_low": 0.2, "ci_high": 2.5})
    assert ci_text({"value": 0.5, "ci_low": 0.4, "ci_high": 0.6}) == "0.500 [0.400, 0.600]"
    assert ci_text({"value": 1.0, "ci_low": 1.0, "ci_high": 1.0}) == DEGENERATE_TEXT


def test_test_optimal_f_scores_leave_the_headline_tables(tmp_path, runs_folder):
    compare_runs([runs_folder], tmp_path / "report", n_boot=N_BOOT)
    md = (tmp_path / "report" / "comparison.md").read_text()
    lines = md.splitlines()
    header = lines[lines.index("## Discrimination (sorted by AUPRC)") + 2]
    assert "AUPRC" in header and "Best F1" not in header and "Best F2" not in header
    assert md.index("## Test-optimal F1 and F2 (not operating points)") > md.index("## Calibration")


def test_report_states_the_data_source_table_1_and_training_settings(tmp_path):
    cohort = generate_synthetic("mimic", 400, seed=3)
    path = tmp_path / "cohort.parquet"
    write_cohort(cohort, path, source="synthetic", variant="mimic")
    rows = cohort[cohort["split"].isin(["val", "test"])]
    y = rows["hospital_expire_flag"].to_numpy()
    rng = np.random.default_rng(0)
    common = dict(stay_id=rows["stay_id"].to_numpy(), split=rows["split"].to_numpy(), label=y)
    make_run(tmp_path / "runs", "alfia", expit(-2 + 2 * y + rng.normal(0, 1, y.size)),
             config={"model_type": "alfia", "model_name": "ALFIA", "model": {"train_layers": 2, "finetune": "lora"},
                     "train": {"lr": 0.001, "epochs": 3}}, **common)
    make_run(tmp_path / "runs", "lr", expit(-2 + 1.5 * y + rng.normal(0, 1, y.size)),
             config={"model_family": "baseline", "model_name": "LR", "cohort": str(path), "library": "scikit-learn",
                     "selected_hyperparameters": {"C": 0.1}}, **common)
    compare_runs([tmp_path / "runs"], tmp_path / "report", n_boot=N_BOOT)
    page = (tmp_path / "report" / "report.html").read_text()
    assert "source <b>synthetic</b>" in page and "These are synthetic data" in page
    assert "Table 1: the cohort" in page and "Died (N=" in page
    assert "train_layers=2; finetune=lora; epochs=3; lr=0.001" in page
    assert "library=scikit-learn; selected_hyperparameters={&quot;C&quot;:0.1}" in page
    summary = json.loads((tmp_path / "report" / "comparison.json").read_text())
    assert summary["data_sources"][0]["synthetic"] is True


def test_the_calibration_axis_spans_the_predictions():
    rng = np.random.default_rng(0)
    prob = rng.uniform(0.02, 0.3, 2000)
    y = rng.binomial(1, prob)
    fig = plots.calibration_figure([plots.Curve("m", y, prob)])
    low, high = fig.axes[0].get_xlim()
    assert 0.0 <= low < 0.02 and 0.3 < high < 0.35


def test_the_comparison_renders_what_write_wrote(tmp_path, runs_folder):
    comparison = build_comparison([runs_folder], n_boot=N_BOOT)
    assert not (tmp_path / "report").exists()  # building writes nothing
    comparison.write(tmp_path / "report")
    assert (tmp_path / "report" / "comparison.md").read_text() == comparison.render_md()
    assert (tmp_path / "report" / "report.html").read_text() == comparison.render_html()
    assert comparison.outputs["html"] == str(tmp_path / "report" / "report.html")


def test_the_cli_imports_no_private_helper_of_another_stage():
    cli = Path(__file__).resolve().parents[2] / "src" / "alfia" / "cli"
    private = []
    for path in sorted(cli.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("alfia.") \
                    and not node.module.startswith("alfia.cli"):
                private += [f"{path.name}: {node.module}.{a.name}" for a in node.names if a.name.startswith("_")]
    assert private == []
