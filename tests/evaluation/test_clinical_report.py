"""The clinical report: decision curves, calibration bands, subgroups joined from the cohort by stay_id."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from alfia.cohorts.io import Manifest, write_table
from alfia.errors import AlfiaError
from alfia.evaluation import compare_runs, evaluate_run
from alfia.evaluation.curves import calibration_band, decision_curve, net_benefit, treat_all, wilson_interval
from alfia.evaluation.subgroups import subgroup_attributes, subgroup_metrics

from .fabricate import make_run


def test_net_benefit_by_hand():
    y = np.array([1, 1, 0, 0, 0])
    prob = np.array([0.9, 0.4, 0.6, 0.1, 0.2])
    # p_t = 0.5: treated {0.9, 0.6}: TP 1, FP 1 -> 1/5 - 1/5 * 1 = 0
    # p_t = 0.3: treated {0.9, 0.4, 0.6}: TP 2, FP 1 -> 2/5 - 1/5 * 3/7
    nb = net_benefit(y, prob, [0.5, 0.3])
    assert nb == pytest.approx([0.0, 0.4 - 0.2 * 3 / 7])
    assert treat_all(0.4, [0.5]) == pytest.approx([0.4 - 0.6])


def test_a_perfect_model_gains_the_prevalence_at_every_threshold():
    y = np.array([0] * 80 + [1] * 20)
    curve = decision_curve(y, y.astype(float))
    assert np.allclose(curve["net_benefit"], 0.2)
    assert curve["useful_thresholds"] == [[0.01, 0.99]]
    assert curve["treat_none"][0] == 0.0


def test_wilson_interval_known_value():
    low, high = wilson_interval(5, 10)
    assert float(low) == pytest.approx(0.2366, abs=1e-4) and float(high) == pytest.approx(0.7634, abs=1e-4)


def test_calibration_band_brackets_each_bin():
    rng = np.random.default_rng(0)
    prob = rng.uniform(size=2000)
    y = rng.binomial(1, prob)
    band = calibration_band(y, prob)
    assert sum(band["count"]) == 2000
    assert all(lo <= obs <= hi for lo, obs, hi in zip(band["ci_low"], band["observed"], band["ci_high"]))
    # a calibrated model: each bin's interval covers its mean prediction in (nearly) every bin
    covered = [lo <= p <= hi for lo, p, hi in zip(band["ci_low"], band["mean_prob"], band["ci_high"])]
    assert sum(covered) >= 9


def _cohort_file(path, stay_id, split, label):
    rng = np.random.default_rng(3)
    n = len(stay_id)
    df = pd.DataFrame({"stay_id": stay_id, "split": split, "hospital_expire_flag": label,
                       "gender": rng.choice(["Female", "Male"], n),
                       "admission_age": rng.uniform(18, 95, n).round(1),
                       "careunit": rng.choice(["Medical Intensive Care Unit (MICU)", "Trauma SICU (TSICU)"], n)})
    df.loc[0, "admission_age"] = np.nan
    write_table(df, path, Manifest(kind="cohort", source="test", variant="mimic", n_rows=n, splits={}))
    return df


def test_subgroups_join_by_stay_id_and_count_each_level(tmp_path, cohort):
    stay_id, split, label, prob, _ = cohort
    df = _cohort_file(tmp_path / "cohort.parquet", stay_id, split, label)
    attrs = subgroup_attributes(tmp_path / "cohort.parquet")
    assert set(attrs.columns) == {"sex", "age_band", "icu_unit"}
    test = pd.DataFrame({"stay_id": stay_id, "label": label, "prob": prob})[split == "test"]
    shuffled = test.sample(frac=1.0, random_state=0)  # order must not matter: the join is by stay_id
    block = subgroup_metrics(shuffled, attrs, 0.2, n_boot=50, seed=1)
    females = next(e for e in block["groups"]["sex"] if e["level"] == "Female")
    expected = df[(df.split == "test") & (df.gender == "Female")]
    assert females["n"] == len(expected) and females["n_pos"] == int(expected.hospital_expire_flag.sum())
    assert [e["level"] for e in block["groups"]["age_band"]][:4] == ["<45", "45-64", "65-79", ">=80"]
    assert sum(e["n"] for e in block["groups"]["age_band"]) == len(test)
    auroc = females["metrics"]["auroc"]
    assert auroc["ci_low"] <= auroc["value"] <= auroc["ci_high"]
    assert block["unmatched_stays"] == 0


def test_a_subgroup_with_one_class_has_no_discrimination(tmp_path):
    attrs = pd.DataFrame({"sex": ["Female", "Female", "Male", "Male", "Male"]},
                         index=pd.Index([1, 2, 3, 4, 5], name="stay_id"))
    rows = pd.DataFrame({"stay_id": [1, 2, 3, 4, 5], "label": [0, 0, 1, 0, 1], "prob": [.1, .2, .9, .3, .8]})
    block = subgroup_metrics(rows, attrs, 0.5, n_boot=20)
    female, male = block["groups"]["sex"]
    assert female["metrics"]["auroc"]["value"] is None and "single outcome class" in female["note"]
    assert male["metrics"]["auroc"]["value"] == 1.0 and male["metrics"]["sensitivity"]["value"] == 1.0


def test_evaluate_run_reads_the_cohort_its_config_records(tmp_path, cohort):
    stay_id, split, label, prob, _ = cohort
    _cohort_file(tmp_path / "cohort.parquet", stay_id, split, label)
    run = make_run(tmp_path, "lgbm", prob, stay_id=stay_id, split=split, label=label,
                   config={"model_name": "LightGBM", "cohort": str(tmp_path / "cohort.parquet")})
    result = evaluate_run(run, n_boot=50)
    assert set(result["subgroups"]["groups"]) == {"sex", "age_band", "icu_unit"}
    assert result["subgroups"]["columns"]["icu_unit"] == "careunit"
    assert (run / "figures" / "decision_curve.png").stat().st_size > 1000
    saved = json.loads((run / "metrics.json").read_text())
    assert len(saved["decision_curve"]["net_benefit"]) == len(saved["decision_curve"]["thresholds"]) == 99
    assert saved["calibration_curve"]["ci_low"]


def test_evaluate_run_without_a_cohort_says_how_to_get_subgroups(tmp_path, cohort):
    stay_id, split, label, prob, _ = cohort
    run = make_run(tmp_path, "lgbm", prob, stay_id=stay_id, split=split, label=label)
    result = evaluate_run(run, n_boot=20)
    assert result["subgroups"]["groups"] == {} and "--cohort" in result["subgroups"]["note"]
    with pytest.raises(AlfiaError, match="no such cohort file"):
        evaluate_run(run, n_boot=20, cohort=tmp_path / "nope.parquet")


def test_compare_report_has_subgroups_decision_curve_and_val_operating_points(tmp_path, runs_folder, cohort):
    stay_id, split, label, _, _ = cohort
    _cohort_file(tmp_path / "cohort.parquet", stay_id, split, label)
    out = tmp_path / "report"
    comparison = compare_runs([runs_folder], out, n_boot=50, cohort=tmp_path / "cohort.parquet")
    page = (out / "report.html").read_text()
    for heading in ("Subgroups", "Decision curve", "Sex (column gender)", "ICU unit type (column careunit)",
                    "Threshold (chosen on)"):
        assert heading in page
    assert "(val)" in page and "src=\"http" not in page
    sub = pd.read_csv(out / "subgroups.csv")
    assert set(sub["model"]) == {r["model"] for r in comparison["runs"]}
    assert set(sub["subgroup"]) == {"sex", "age_band", "icu_unit"}
    dca = pd.read_csv(out / "decision_curve.csv")
    assert len(dca) == 99 and "treat_all" in dca.columns
    assert (out / "figures" / "decision_curve.png").exists()
    assert "## Subgroups" in (out / "comparison.md").read_text()
