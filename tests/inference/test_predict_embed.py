"""Inference on a run directory: save -> load -> predict, embeddings (Algorithm 2), inputs, bad runs, CLI."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from alfia.errors import AlfiaError
from alfia.evaluation.thresholds import choose_threshold, write_run_thresholds
from alfia.inference import LoadedRun, embed, frame_to_input, load_run, predict, read_inference_input


def test_save_load_predict_gives_identical_probabilities(trained_run):
    loaded = load_run(trained_run.run, num_threads=1)
    in_memory = LoadedRun(trained_run.run, trained_run.summary.model.eval(), loaded.config, loaded.threshold,
                          loaded.threshold_source, loaded.template, loaded.device, loaded.calibrator)
    inputs = read_inference_input(trained_run.text_path, loaded)
    a, _ = predict(in_memory, inputs, batch_size=8)
    b, _ = predict(loaded, inputs, batch_size=8)
    np.testing.assert_array_equal(a["prob"].to_numpy(), b["prob"].to_numpy())
    # The run's own predictions.parquet agrees (batches differ, so only up to float rounding).
    saved = pd.read_parquet(trained_run.run / "predictions.parquet").merge(b, on="stay_id")
    np.testing.assert_allclose(saved["prob_x"], saved["prob_y"], atol=1e-5)


def test_labels_follow_the_run_threshold(trained_run):
    run = load_run(trained_run.run, num_threads=1)
    pred = pd.read_parquet(trained_run.run / "predictions.parquet")
    val = pred[pred.split == "val"]
    # No thresholds.json yet (train_run alone): the threshold is chosen now, by the one rule, on val.
    assert run.threshold == choose_threshold(val["label"], val["prob"], 1.0)[0]
    assert "max F1 on val" in run.threshold_source
    preds, perf = predict(run, read_inference_input(trained_run.text_path, run))
    assert (preds["pred_label"] == (preds["prob"] >= run.threshold)).all()
    assert list(preds.columns) == ["stay_id", "split", "prob", "pred_label", "hospital_expire_flag"]
    assert preds["stay_id"].tolist() == trained_run.cohort["stay_id"].tolist()
    assert perf.n_samples == len(preds) and perf.ms_per_sample > 0
    assert perf.peak_rss_mb is None and "RSS" not in perf.describe()  # nothing samples memory unless asked
    _, measured = predict(run, read_inference_input(trained_run.text_path, run), measure_memory=True)
    assert measured.peak_rss_mb > 0 and "peak RSS" in measured.describe()  # as the benchmarks ask


def test_predict_reads_thresholds_json_only_while_it_matches_the_predictions(trained_run, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(trained_run.run, run_dir)
    chosen = write_run_thresholds(run_dir)["f1"].threshold
    doc = json.loads((run_dir / "thresholds.json").read_text())
    doc["operating_points"]["f1"]["threshold"] = 0.25  # an edited file that still names these predictions
    (run_dir / "thresholds.json").write_text(json.dumps(doc))
    assert load_run(run_dir, num_threads=1).threshold == 0.25
    pred = pd.read_parquet(run_dir / "predictions.parquet")
    pred.assign(prob=pred["prob"] * 0.5).to_parquet(run_dir / "predictions.parquet")  # other predictions
    val = pred[pred.split == "val"]
    assert load_run(run_dir, num_threads=1).threshold == choose_threshold(val["label"], val["prob"] * 0.5, 1.0)[0]
    assert chosen == choose_threshold(val["label"], val["prob"], 1.0)[0]


def test_evaluate_and_predict_use_the_same_threshold(trained_run, tmp_path):
    from alfia.evaluation import evaluate_run

    run_dir = tmp_path / "run"
    shutil.copytree(trained_run.run, run_dir)
    metrics = evaluate_run(run_dir, n_boot=20)
    thresholds = json.loads((run_dir / "thresholds.json").read_text())
    run = load_run(run_dir, num_threads=1)
    assert metrics["thresholds"]["f1"] == thresholds["operating_points"]["f1"]["threshold"] == run.threshold
    assert metrics["thresholds"]["f2"] == thresholds["operating_points"]["f2"]["threshold"]


def test_cohort_rows_are_encoded_with_the_runs_template(trained_run):
    run = load_run(trained_run.run, num_threads=1)
    assert run.template == "mimic"
    from_cohort, _ = predict(run, read_inference_input(trained_run.cohort_path, run))
    from_text, _ = predict(run, read_inference_input(trained_run.text_path, run))
    np.testing.assert_array_equal(from_cohort["prob"].to_numpy(), from_text["prob"].to_numpy())


def test_raw_text_inputs(trained_run, tmp_path):
    run = load_run(trained_run.run, num_threads=1)
    texts = pd.read_parquet(trained_run.text_path)["text"].tolist()[:5]
    (tmp_path / "notes.txt").write_text("\n".join(texts) + "\n\n")
    pd.DataFrame({"text": texts}).to_csv(tmp_path / "notes.csv", index=False)
    a, _ = predict(run, read_inference_input(tmp_path / "notes.txt", run))
    b, _ = predict(run, read_inference_input(tmp_path / "notes.csv", run))
    assert a["stay_id"].tolist() == [0, 1, 2, 3, 4] and "hospital_expire_flag" not in a
    np.testing.assert_allclose(a["prob"], b["prob"], rtol=0, atol=1e-7)


def test_embeddings_are_l2_normalised_with_layer_weights(trained_run):
    run = load_run(trained_run.run, num_threads=1)
    frame, _ = embed(run, read_inference_input(trained_run.text_path, run), batch_size=16)
    alf = frame.filter(regex=r"^alf_\d+$").to_numpy()
    weights = frame.filter(regex=r"^layer_weight_\d+$").to_numpy()
    assert alf.shape == (60, 32) and weights.shape == (60, 2)
    assert list(frame.columns[:3]) == ["stay_id", "split", "hospital_expire_flag"]
    np.testing.assert_allclose(np.linalg.norm(alf, axis=1), 1.0, atol=1e-5)
    assert ((weights > 0) & (weights < 1)).all()  # sigmoid gate (eq. 7)
    # One row per stay, independent of batching.
    again, _ = embed(run, read_inference_input(trained_run.text_path, run), batch_size=1)
    np.testing.assert_allclose(again.filter(regex="^alf_").to_numpy(), alf, atol=1e-5)


def test_empty_text_in_inference_input_is_named(trained_run, tmp_path):
    run = load_run(trained_run.run, num_threads=1)
    df = pd.DataFrame({"stay_id": [7, 8], "text": ["a patient", " "]})
    with pytest.raises(AlfiaError, match=r"new\.csv: column 'text' is empty at row 1 \(stay_id=8\)"):
        frame_to_input(df, "new.csv", run)


def test_corrupt_or_missing_model_files_are_refused(trained_run, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(trained_run.run, run_dir)
    head = run_dir / "fusion_head.safetensors"
    head.write_bytes(head.read_bytes()[:64])
    with pytest.raises(AlfiaError, match=r"fusion_head\.safetensors"):
        load_run(run_dir)
    head.unlink()
    with pytest.raises(AlfiaError, match=r"no trained model in this run"):
        load_run(run_dir)
    with pytest.raises(AlfiaError, match=r"not a run directory"):
        load_run(tmp_path / "nowhere")


def test_cli_predict_and_embed(trained_run, tmp_path):
    from alfia.cli import _register, app

    _register()
    texts = pd.read_parquet(trained_run.text_path)["text"].tolist()[:3]
    (tmp_path / "notes.txt").write_text("\n".join(texts))
    runner = CliRunner()
    result = runner.invoke(app, ["predict", str(trained_run.run), "--input", str(tmp_path / "notes.txt"),
                                 "--out", str(tmp_path / "p.csv"), "--threads", "1"])
    assert result.exit_code == 0, result.output
    assert "ms/sample" in result.output and "peak RSS" in result.output
    assert len(pd.read_csv(tmp_path / "p.csv")) == 3
    result = runner.invoke(app, ["embed", str(trained_run.run), "--input", str(trained_run.text_path),
                                 "--out", str(tmp_path / "e.parquet"), "--threads", "1"])
    assert result.exit_code == 0, result.output
    assert len(pd.read_parquet(tmp_path / "e.parquet")) == 60
    result = runner.invoke(app, ["predict", str(tmp_path / "nowhere"), "--input", str(tmp_path / "notes.txt")])
    assert isinstance(result.exception, AlfiaError)
