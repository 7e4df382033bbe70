"""`alfia lemof train/predict` end to end on a tiny synthetic cohort (tiny random BERT, tiny series model):
stays matched by stay_id, an ordinary run directory that evaluate/compare/card/--external read, predict's round
trip of the run's own predictions."""

from __future__ import annotations

import json
import sys

import numpy as np
import pandas as pd
import pytest

from alfia.errors import AlfiaError
from alfia.multimodal.levels import load_cache
from alfia.multimodal.run import read_inputs
from alfia.runs import RunLayout, read_predictions
from cli_process import run_alfia
from lemof_testkit import tiny_text_config, write_inputs


# --- inputs matched by stay_id -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("lemof")
    return root, write_inputs(root, n=120)


def test_read_inputs_refuses_a_stay_missing_from_one_modality(inputs, tmp_path):
    from alfia.series.hourly import read_hourly, write_hourly

    _, paths = inputs
    arrays = read_hourly(paths["series"])
    dropped = int(arrays.stay_id[7])
    write_hourly(arrays.subset(np.flatnonzero(arrays.stay_id != dropped)).to_frame(), tmp_path / "hourly.parquet",
                 source="synthetic", variables=arrays.variables, hours=arrays.hours)
    with pytest.raises(AlfiaError, match=f"stay_id {dropped} of .*cohort.parquet is missing from the series input"):
        read_inputs(paths["text"], tmp_path / "hourly.parquet", paths["cohort"])


def test_read_inputs_refuses_labels_that_differ(inputs, tmp_path):
    from alfia.cohorts.io import read_table, write_table

    _, paths = inputs
    text, manifest = read_table(paths["text"])
    text.loc[3, "hospital_expire_flag"] = 1 - text.loc[3, "hospital_expire_flag"]
    write_table(text, tmp_path / "text.parquet", manifest)
    with pytest.raises(AlfiaError, match=f"the label of stay_id {text.loc[3, 'stay_id']} is"):
        read_inputs(tmp_path / "text.parquet", paths["series"], paths["cohort"])


# --- the CLI end to end ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cli_run(inputs):
    """`alfia lemof train` with every encoder trained here (tiny BERT, tiny BiLSTM + Transformer) and ablations."""
    from alfia.cli import main

    root, paths = inputs
    args = ["alfia", "lemof", "train", "--text", paths["text"], "--series", paths["series"], "--cohort",
            paths["cohort"], "--out", root / "run", "--text-config", tiny_text_config(root), "--series-epochs", 2,
            "--series-set", "hidden_size=8", "--series-set", "d_model=8", "--series-set", "n_heads=2",
            "--series-set", "dim_feedforward=16", "--epochs", 4, "--d-model", 16, "--threads", 1, "--ablations"]
    old = sys.argv
    sys.argv = [str(a) for a in args]
    try:
        main()
    except SystemExit as e:
        assert e.code in (0, None), f"alfia lemof train exited with {e.code}"
    finally:
        sys.argv = old
    return root, paths, root / "run"


def test_train_writes_an_ordinary_run_directory(cli_run):
    _, paths, run = cli_run
    layout = RunLayout(run)
    config = json.loads(layout.config.read_text())
    assert config["model_family"] == "lemof" and config["task"]["name"] == "mortality"
    assert config["encoders"]["text"] == {"run": "encoders/text", "trained_here": True}
    assert config["levels"]["text"] == ["layer_1", "layer_2", "alf"]
    assert config["levels"]["tabular"] == ["input", "hidden_1", "hidden_2"]
    pred = read_predictions(layout.predictions)
    assert set(pred["split"]) == {"val", "test"} and layout.thresholds.is_file() and layout.calibration.is_file()
    weights = json.loads((run / "level_weights.json").read_text())["level_weights"]
    assert set(weights) == {"text", "series", "tabular"} and abs(sum(weights["text"].values()) - 1) < 1e-5
    assert (layout.figures / "level_weights.png").stat().st_size > 1000
    stays, levels = load_cache(run / "levels")
    assert len(stays.stay_id) == 120 and levels["series"].names[-1] == "head"
    cohort = pd.read_parquet(paths["cohort"])
    assert stays.stay_id.tolist() == cohort["stay_id"].tolist()
    ablations = sorted(p.name for p in (run / "ablations").iterdir())
    assert ablations == sorted(["text", "series", "tabular", "late-fusion", "early-fusion", "single-level",
                                "lemof-no-global"])
    for name in ablations:  # the same val and test stays everywhere: compare pairs them
        other = read_predictions(run / "ablations" / name / "predictions.parquet")
        assert other.set_index("stay_id").index.equals(pred.set_index("stay_id").index)


def test_text_levels_give_the_text_runs_own_prediction(cli_run):
    """The text modality alone is the ALFIA run's own logit: the same probability `alfia predict` gives."""
    from alfia.inference import load_run, predict, read_inference_input

    root, paths, run = cli_run
    _, levels = load_cache(run / "levels")
    alfia_run = load_run(run / "encoders" / "text", device="cpu")
    pred, _ = predict(alfia_run, read_inference_input(paths["text"], alfia_run))
    own = alfia_run.calibrator.transform(levels["text"].own_logit)
    assert np.allclose(own, pred.set_index("stay_id").loc[levels["text"].stay_id, "prob"].to_numpy(), atol=1e-4)


def test_predict_round_trips_the_runs_own_predictions(cli_run, capsys, tmp_path):
    _, paths, run = cli_run
    out = tmp_path / "pred.parquet"
    code, stdout, stderr = run_alfia(["lemof", "predict", run, "--text", paths["text"], "--series", paths["series"],
                                      "--cohort", paths["cohort"], "--out", out], capsys)
    assert code == 0, stderr
    pred = pd.read_parquet(out)
    assert {"stay_id", "prob", "pred_label"} <= set(pred.columns) and len(pred) == 120
    own = read_predictions(RunLayout(run).predictions).set_index("stay_id")["prob"]
    assert np.allclose(pred.set_index("stay_id").loc[own.index, "prob"], own, atol=1e-5)
    code, _, stderr = run_alfia(["lemof", "predict", run, "--text", paths["text"], "--series", paths["series"],
                                 "--cohort", paths["cohort"], "--out", out], capsys)
    assert code == 2 and "already exists" in stderr


def test_predict_names_a_stay_missing_from_a_modality(cli_run, capsys, tmp_path):
    from alfia.cohorts.io import read_table, write_table

    _, paths, run = cli_run
    text, manifest = read_table(paths["text"])
    write_table(text.drop(index=5), tmp_path / "text.parquet", manifest)
    code, _, stderr = run_alfia(["lemof", "predict", run, "--text", tmp_path / "text.parquet", "--series",
                                 paths["series"], "--cohort", paths["cohort"], "--out", tmp_path / "p.parquet"], capsys)
    assert code == 2 and f"stay_id {text.loc[5, 'stay_id']} of" in stderr and "missing from the text input" in stderr


def test_evaluate_compare_card_and_external_read_the_run(cli_run, capsys, tmp_path):
    _, paths, run = cli_run
    code, _, stderr = run_alfia(["evaluate", run, "--n-boot", 20], capsys)
    assert code == 0, stderr
    assert json.loads(RunLayout(run).metrics.read_text())["metrics"]["auroc"]["value"] is not None
    code, _, stderr = run_alfia(["compare", run, run / "ablations" / "early-fusion", run / "ablations" / "text",
                                 "--out", tmp_path / "cmp", "--n-boot", 20], capsys)
    assert code == 0, stderr
    code, _, stderr = run_alfia(["card", run, "--out", tmp_path / "card.md"], capsys)
    assert code == 0 and "lemof" in (tmp_path / "card.md").read_text().lower(), stderr
    code, _, stderr = run_alfia(["lemof", "predict", run, "--text", paths["text"], "--series", paths["series"],
                                 "--cohort", paths["cohort"], "--external", "--n-boot", 20], capsys)
    assert code == 0, stderr
    assert RunLayout(run).external("cohort").predictions.is_file()
    code, _, stderr = run_alfia(["evaluate", run, "--external", paths["cohort"], "--n-boot", 20], capsys)
    assert code == 0, stderr


def test_train_reuses_finished_encoder_runs_and_refuses_one_that_saw_the_test_stays(cli_run, capsys, tmp_path):
    import shutil

    from alfia.runs import write_predictions

    _, paths, run = cli_run
    common = ["lemof", "train", "--text", paths["text"], "--series", paths["series"], "--cohort", paths["cohort"],
              "--text-run", run / "encoders" / "text", "--epochs", 2, "--d-model", 16, "--threads", 1]
    code, _, stderr = run_alfia([*common, "--series-run", run / "encoders" / "series", "--out", tmp_path / "reuse"],
                                capsys)
    assert code == 0, stderr
    config = json.loads((tmp_path / "reuse" / "config.json").read_text())
    assert config["encoders"]["text"]["trained_here"] is False and not (tmp_path / "reuse" / "encoders" / "text").exists()
    shutil.copytree(run / "encoders" / "series", tmp_path / "series")
    pred = read_predictions(tmp_path / "series" / "predictions.parquet")
    seen = pred.loc[pred["split"] == "test", "stay_id"].iloc[0]
    kept = pred[pred["stay_id"] != seen]
    write_predictions(tmp_path / "series" / "predictions.parquet", kept["stay_id"], kept["split"], kept["label"],
                      kept["prob"])
    code, _, stderr = run_alfia([*common, "--series-run", tmp_path / "series", "--out", tmp_path / "refused"], capsys)
    assert code == 2 and f"did not hold out stay_id {seen} (test here" in stderr
    assert not (tmp_path / "refused").exists()
