"""`alfia evaluate RUN --external COHORT` for an ALFIA run: another variant's cohort reaches the model through
the variable mapping (its text shows only what the source measured), and its labels never change a score."""

from __future__ import annotations

import json
import shutil

import numpy as np
from typer.testing import CliRunner

from alfia.cli import _register, app
from alfia.cohorts.io import write_cohort
from alfia.cohorts.sources.synthetic import generate_synthetic
from alfia.inference import frame_to_input
from alfia.runs import RunLayout, read_predictions

_register()


def _evaluate(run, path):
    result = CliRunner().invoke(app, ["evaluate", str(run), "--n-boot", "10", "--external", str(path),
                                      "--device", "cpu"])
    assert result.exit_code == 0, result.output
    return result.output


def test_alfia_scores_an_eicu_cohort_and_ignores_its_labels(trained_run, tmp_path):
    run_dir = tmp_path / "run"  # a copy: `alfia evaluate` writes metrics.json, which other tests must not see
    shutil.copytree(trained_run.run, run_dir)
    ext = generate_synthetic("eicu", 40, seed=5)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    write_cohort(ext, tmp_path / "a" / "site.parquet", source="synthetic", variant="eicu")
    permuted = ext.copy()
    permuted["hospital_expire_flag"] = 1 - ext["hospital_expire_flag"]
    write_cohort(permuted, tmp_path / "b" / "site.parquet", source="synthetic", variant="eicu")

    output = _evaluate(run_dir, tmp_path / "a" / "site.parquet")
    assert "external site: 40 stays" in output
    layout = RunLayout.of(run_dir).external("site")
    first = read_predictions(layout.predictions)
    metrics = json.loads(layout.metrics.read_text())
    assert metrics["source_variant"] == "eicu" and metrics["thresholds"]["chosen_on"] == "val"
    shift = json.loads(layout.shift.read_text())
    absent = {r["variable"] for r in shift["imputed"]}
    assert {"apsiii", "marital_status"} <= absent
    assert all(r["fill"] is None for r in shift["imputed"])  # text models get nothing invented

    _evaluate(run_dir, tmp_path / "b" / "site.parquet")
    second = read_predictions(layout.predictions)
    assert np.array_equal(first["stay_id"].to_numpy(), second["stay_id"].to_numpy())
    assert np.array_equal(first["prob"].to_numpy(), second["prob"].to_numpy())
    assert (first["label"].to_numpy() != second["label"].to_numpy()).all()


def test_mapped_text_shows_only_what_the_source_measured():
    ext = generate_synthetic("eicu", 20, seed=6)
    mapped = frame_to_input(ext, "site", template="mimic")
    own = frame_to_input(generate_synthetic("mimic", 20, seed=6), "mimic", template="mimic")
    # APACHE III is a MIMIC-IV score eICU lacks (its APACHE IV is another score): imputed for tabular
    # models, but never written into the text
    assert all("APACHE III" in t for t in own.texts) and not any("APACHE" in t for t in mapped.texts)
    assert all("Glasgow Coma Scale" in t for t in mapped.texts)
    assert len(mapped.texts) == 20


def test_the_api_and_the_cli_write_the_same_external_predictions(trained_run, tmp_path):
    """One external path (issue 24): alfia.evaluate(model, COHORT) and `alfia evaluate RUN --external COHORT`
    write byte-identical predictions, the cohort whole, with no row of the model's own val split."""
    import alfia
    from alfia.evaluation import compare_runs

    by_api, by_cli = tmp_path / "api", tmp_path / "cli"
    shutil.copytree(trained_run.run, by_api)
    shutil.copytree(trained_run.run, by_cli)
    ext = generate_synthetic("eicu", 40, seed=5)
    write_cohort(ext, tmp_path / "site.parquet", source="synthetic", variant="eicu")

    report = alfia.evaluate(alfia.ALFIAClassifier.from_pretrained(by_api), tmp_path / "site.parquet", n_boot=10)
    _evaluate(by_cli, tmp_path / "site.parquet")
    api_files, cli_files = RunLayout.of(by_api).external("site"), RunLayout.of(by_cli).external("site")
    assert api_files.predictions.read_bytes() == cli_files.predictions.read_bytes()
    assert api_files.shift.read_bytes() == cli_files.shift.read_bytes()
    api_metrics, cli_metrics = (json.loads(f.metrics.read_text()) for f in (api_files, cli_files))
    assert {k: v for k, v in api_metrics.items() if k != "run_dir"} == {k: v for k, v in cli_metrics.items()
                                                                       if k != "run_dir"}
    rows = read_predictions(api_files.predictions)
    assert report["n"] == len(rows) == 40 and set(rows["split"]) == {"external"}
    assert not api_files.config.exists()  # no run-like folder that compare could mistake for a run
    # compare counts the 40 external stays, not the run's own val rows
    compare = compare_runs([by_api], tmp_path / "report", n_boot=10)
    assert compare["external"]["site"]["n"] == 40
