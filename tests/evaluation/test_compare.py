"""alfia compare: one report from many runs; the CLI commands."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from alfia.errors import AlfiaError
from alfia.evaluation import compare_runs, find_run_dirs
from cli_process import run_alfia

from .fabricate import make_run

N_BOOT = 100


def test_compare_a_folder_of_runs(tmp_path, runs_folder):
    out = tmp_path / "report"
    comparison = compare_runs([runs_folder], out, n_boot=N_BOOT)
    table = pd.read_csv(out / "comparison.csv")
    # Sorted by AUPRC; name from config.json, else the folder name.
    assert list(table["auprc"]) == sorted(table["auprc"], reverse=True)
    assert set(table["model"]) == {"ALFIA", "ALFIA-boost (LightGBM)", "lightgbm", "logistic_regression"}
    for metric in ("auprc", "auroc", "best_f1", "best_f2"):
        assert (table[f"{metric}_ci_low"] <= table[metric]).all() and (table[metric] <= table[f"{metric}_ci_high"]).all()
    # Paired tests: each ALFIA-family run against the best baseline (lightgbm beats logistic regression here).
    assert comparison["best_baseline"] == "lightgbm"
    assert [t["model_a"] for t in comparison["paired_tests"]] == [m for m in table["model"] if m.startswith("ALFIA")]
    paired = pd.read_csv(out / "paired_tests.csv")
    assert len(paired) == 4 and set(paired["metric"]) == {"auprc", "auroc"} and (paired["baseline"] == "lightgbm").all()
    assert ((paired["ci_low"] <= paired["difference"]) & (paired["difference"] <= paired["ci_high"])).all()
    # Markdown and JSON carry the same ranking.
    md = (out / "comparison.md").read_text()
    ranked = re.findall(r"^\| (\d+) \| ([^|]+?)(?: ★)? \|", md, flags=re.M)
    assert [name for _, name in ranked[:4]] == list(table["model"])
    assert [r["model"] for r in json.loads((out / "comparison.json").read_text())["runs"]] == list(table["model"])
    for name in ("forest_auprc", "roc", "pr", "calibration"):
        assert (out / "figures" / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    # The HTML page is self-contained: figures inline, no external resource.
    page = (out / "report.html").read_text()
    assert page.count('src="data:image/png;base64,') == 5  # forest, ROC, PR, calibration, decision curve
    assert not re.search(r"""(src|href)=["']?(https?:|//|file:)""", page)
    assert "<link" not in page and "<script" not in page and "@import" not in page
    assert "ALFIA against the best baseline (lightgbm)" in page


def test_runs_can_be_listed_one_by_one(tmp_path, runs_folder):
    runs = [runs_folder / "lightgbm", runs_folder / "alfia_run"]
    assert find_run_dirs(runs) == runs
    assert len(find_run_dirs([runs_folder, runs_folder / "boost"])) == 4  # no run counted twice
    comparison = compare_runs(runs, tmp_path / "report", n_boot=N_BOOT)
    assert comparison["n_runs"] == 2 and len(comparison["paired_tests"]) == 1


def test_compare_without_alfia_says_there_is_no_paired_test(tmp_path, runs_folder):
    comparison = compare_runs([runs_folder / "lightgbm", runs_folder / "logistic_regression"], tmp_path / "r",
                              n_boot=N_BOOT)
    assert comparison["paired_tests"] == [] and "No ALFIA run" in comparison["notes"][0]


def test_runs_on_different_stays_are_refused(tmp_path, runs_folder, cohort):
    stay_id, split, label, prob, _ = cohort
    keep = np.arange(stay_id.size) != 700
    make_run(runs_folder, "short", prob[keep], stay_id=stay_id[keep], split=split[keep], label=label[keep])
    out = tmp_path / "report"
    with pytest.raises(AlfiaError, match=r"not scored on the same test stays: .*short lacks 1 stay_id\(s\)"):
        compare_runs([runs_folder], out, n_boot=N_BOOT)
    assert not out.exists()  # nothing half-written


def test_a_folder_without_runs_is_named(tmp_path):
    (tmp_path / "nothing").mkdir()
    with pytest.raises(AlfiaError, match="nothing: holds no run directory"):
        find_run_dirs([tmp_path / "nothing"])


def test_cli_evaluate_and_compare(tmp_path, runs_folder, capsys):
    code, out, err = run_alfia(["evaluate", runs_folder / "alfia_run", "--n-boot", "50"], capsys)
    assert code == 0, err
    assert "AUPRC" in out and "Thresholds chosen on val" in out
    assert (runs_folder / "alfia_run" / "metrics.json").exists()
    assert (runs_folder / "alfia_run" / "figures" / "training_curves.png").exists()

    code, out, err = run_alfia(["compare", runs_folder, "--out", tmp_path / "rep", "--n-boot", "50"], capsys)
    assert code == 0, err
    assert "sorted by AUPRC" in out and "ALFIA − lightgbm AUPRC" in out
    assert (tmp_path / "rep" / "report.html").exists()


def test_cli_bad_run_dir_is_one_line_and_status_2(tmp_path, capsys):
    code, _, err = run_alfia(["evaluate", tmp_path / "missing"], capsys)
    assert code == 2
    assert "missing: not a run directory" in err


def test_compare_never_counts_a_models_own_val_stays_as_external(tmp_path, runs_folder, cohort):
    """A folder written by the old API path held the model's own val rows beside the other table's test rows;
    compare refuses it rather than score the model on its own validation stays."""
    from alfia.evaluation.external import write_external
    from alfia.runs import RunLayout, write_predictions

    stay_id, split, label, prob, _ = cohort
    run = runs_folder / "alfia_run"
    rng = np.random.default_rng(0)
    ext_ids, ext_label = np.arange(10_000, 10_300), rng.binomial(1, 0.2, 300)
    write_external(run, "site", ext_ids, ext_label, rng.uniform(0, 1, 300), n_boot=10)
    comparison = compare_runs([run], tmp_path / "ok", n_boot=N_BOOT)
    assert comparison["external"]["site"]["n"] == 300  # the external cohort only

    val = split == "val"
    old = RunLayout.of(run).external("old")
    old.root.mkdir(parents=True)
    write_predictions(old.predictions, np.concatenate([stay_id[val], ext_ids]),
                      ["val"] * int(val.sum()) + ["test"] * 300, np.concatenate([label[val], ext_label]),
                      np.concatenate([prob[val], rng.uniform(0, 1, 300)]))
    with pytest.raises(AlfiaError, match=r"external/old/predictions.parquet: 900 of its 900 rows are not of split "
                                         r"'external' \(300 'test', 600 'val'\)"):
        compare_runs([run], tmp_path / "bad", n_boot=N_BOOT)
