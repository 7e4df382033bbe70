"""A run directory is one run's, whole and checked (issue 26): two trainings on one folder never mix their
files, a run missing a file its config names is refused by name, and no file a run is loaded from can put
a value that is not a probability into the predictions. Each test says what it protects and asserts that
a refused command changed nothing."""

from __future__ import annotations

import json
import shutil
import threading

import numpy as np
import pytest

from cli_process import run_alfia
from reliability_testkit import snapshot


def _configs(assets, seed: int = 42):
    from alfia.models import AlfiaConfig
    from alfia.training import TrainConfig

    return (AlfiaConfig(backbone=str(assets.backbone), n_fusion_layers=2, max_length=48, train_layers="all",
                        finetune="lora"),
            TrainConfig(epochs=1, batch_size=16, lr=1e-3, num_threads=1, head_epochs=0, seed=seed))


def _train_args(assets, out, *extra) -> list:
    return ["train", assets.text_path, "--out", out, "--backbone", assets.backbone, "--fusion-layers", "2",
            "--epochs", "1", "--threads", "1", "--max-length", "48", "--train-layers", "all", "--finetune", "lora",
            "--head-epochs", "0", *extra]


# --- 1. two trainings, one --out ----------------------------------------------------------------------

def test_training_into_a_folder_another_job_holds_is_refused_and_changes_nothing(assets, tmp_path, capsys):
    from alfia.atomic import folder_lock

    out = tmp_path / "run_conc"
    out.mkdir()
    before = snapshot(tmp_path)
    with folder_lock(out, wait=False):  # another job's training holds the folder
        code, _, err = run_alfia(_train_args(assets, out, "--seed", "7"), capsys)
    assert code == 2, err
    assert err.count("error: ") == 1 and "run_conc" in err and "another job is writing" in err, err
    assert snapshot(tmp_path) == before


def test_two_trainings_started_together_on_one_out_leave_one_whole_run(assets, tmp_path, monkeypatch):
    """The race of the issue: job B (seed 7) checks the folder before job A (seed 42) has written anything,
    and reaches its first write while A trains. B is refused; the folder holds A's run alone."""
    import alfia.models as models
    import alfia.training.run as run_module
    from alfia.errors import AlfiaError
    from alfia.training.state import Callback

    out = tmp_path / "run_conc"
    b_prepared, a_training = threading.Event(), threading.Event()
    build = models.build_model

    def build_model(config):
        if threading.current_thread() is not threading.main_thread():  # job B: past its checks, A not begun
            b_prepared.set()
            assert a_training.wait(120)
        return build(config)

    monkeypatch.setattr(models, "build_model", build_model)
    outcome: dict = {}

    def job_b():
        try:
            run_module.train_run(assets.text_path, out, *_configs(assets, seed=7), progress=False)
            outcome["b"] = "finished"
        except AlfiaError as e:
            outcome["b"] = str(e)

    b = threading.Thread(target=job_b)
    b.start()
    assert b_prepared.wait(120)

    class LetBRun(Callback):  # job A has written config.json and trains: let B go on, and wait for it
        def on_train_begin(self, state):
            a_training.set()
            b.join(120)

    run_module.train_run(assets.text_path, out, *_configs(assets, seed=42), progress=False, callbacks=[LetBRun()])
    assert not b.is_alive()
    assert "another job is writing" in outcome["b"] and str(out) in outcome["b"], outcome
    config = json.loads((out / "config.json").read_text())
    assert config["train"]["seed"] == 42
    calibration = json.loads((out / "calibration.json").read_text())
    assert {k: calibration[k] for k in ("method", "intercept", "slope")} == \
        {k: config["result"]["calibration"][k] for k in ("method", "intercept", "slope")}
    assert len((out / "history.jsonl").read_text().splitlines()) == config["result"]["epochs_run"] == 1


def test_a_run_finished_in_the_folder_while_this_one_prepared_is_not_overwritten(assets, tmp_path, monkeypatch):
    """Job A checks the folder; job B writes a whole run there before A's first write: A is refused."""
    import alfia.models as models
    import alfia.training.run as run_module
    from alfia.errors import AlfiaError

    out = tmp_path / "run_conc"
    build = models.build_model

    def build_model(config):  # while A builds its model, B's run appears in the folder
        shutil.copytree(assets.run, out)
        return build(config)

    monkeypatch.setattr(models, "build_model", build_model)
    with pytest.raises(AlfiaError, match="already holds a run"):
        run_module.train_run(assets.text_path, out, *_configs(assets, seed=7), progress=False)
    assert snapshot(out) == snapshot(assets.run)


# --- 4. nothing that is not a probability is written -----------------------------------------------------

@pytest.mark.parametrize("column, value", [("prob", 1.5), ("prob", float("nan")), ("prob", -0.1),
                                           ("prob_uncalibrated", float("inf"))])
def test_predictions_that_are_not_probabilities_are_never_written(tmp_path, column, value):
    from alfia.errors import AlfiaError
    from alfia.runs import write_predictions

    values = {"prob": [0.2, 0.7], "prob_uncalibrated": [0.3, 0.6]}
    values[column][1] = value
    earlier = tmp_path / "predictions.parquet"
    earlier.write_bytes(b"earlier predictions")
    with pytest.raises(AlfiaError, match=f"predictions.parquet.*'{column}'.*not probabilities"):
        write_predictions(earlier, [1, 2], ["val", "val"], [0, 1], values["prob"],
                          prob_uncalibrated=values["prob_uncalibrated"])
    assert earlier.read_bytes() == b"earlier predictions"
    assert [p.name for p in tmp_path.iterdir()] == ["predictions.parquet"]


# --- 5. an external cohort that cannot be scored leaves nothing --------------------------------------------

def test_api_external_validation_on_one_class_leaves_no_external_folder(assets, tmp_path):
    import alfia
    from alfia.errors import AlfiaError

    run = shutil.copytree(assets.run, tmp_path / "run")
    text = assets.text.copy()
    text["stay_id"] += 1_000_000
    text["hospital_expire_flag"] = 0
    text.to_parquet(tmp_path / "site.parquet", index=False)
    before = snapshot(tmp_path)
    with pytest.raises(AlfiaError, match="site.parquet.*one class only"):
        alfia.evaluate(alfia.ALFIAClassifier.from_pretrained(run, num_threads=1), tmp_path / "site.parquet")
    assert snapshot(tmp_path) == before


# --- 6. no HTML injection through a value of the run -----------------------------------------------------

HOSTILE = "<img src=x onerror=alert(1)><script>alert(2)</script>"


def test_a_hostile_model_name_reaches_card_and_report_pages_as_text(assets, tmp_path, capsys):
    run = shutil.copytree(assets.run, tmp_path / "run")
    config = json.loads((run / "config.json").read_text())
    config["model_name"] = HOSTILE
    (run / "config.json").write_text(json.dumps(config))
    code, _, err = run_alfia(["card", run, "--out", tmp_path / "card.md"], capsys)
    assert code == 0, err
    code, _, err = run_alfia(["compare", run, "--out", tmp_path / "report", "--n-boot", "10"], capsys)
    assert code == 0, err
    for page in (tmp_path / "card.html", tmp_path / "report" / "report.html"):
        text = page.read_text()
        assert "<img src=x" not in text and "<script>" not in text, page
        assert "&lt;img src=x onerror=alert(1)&gt;" in text, page


# --- 7. a resume never keeps models of another cohort --------------------------------------------------------

def test_baselines_resume_with_a_changed_cohort_retrains_like_a_fresh_run(assets, tmp_path, capsys):
    import pandas as pd

    from alfia.cohorts.io import write_cohort

    def baselines(cohort, out, *extra):
        code, _, err = run_alfia(["baselines", cohort, "--out", out, "--models", "LinearModel", "--profile", "fast",
                                  "--n-boot", "5", "--jobs", "1", *extra], capsys)
        assert code == 0, err
        return pd.read_parquet(out / "LinearModel" / "predictions.parquet")

    cohort = assets.cohort.copy()
    write_cohort(cohort, tmp_path / "cohort.parquet", source="synthetic", variant="mimic")
    first = baselines(tmp_path / "cohort.parquet", tmp_path / "zoo")
    train = cohort["split"] == "train"  # the same val/test stays and labels; other training rows
    cohort.loc[train, "hospital_expire_flag"] = 1 - cohort.loc[train, "hospital_expire_flag"]
    write_cohort(cohort, tmp_path / "cohort.parquet", source="synthetic", variant="mimic")
    resumed = baselines(tmp_path / "cohort.parquet", tmp_path / "zoo", "--resume")
    fresh = baselines(tmp_path / "cohort.parquet", tmp_path / "fresh")
    assert not np.allclose(resumed["prob"], first["prob"])
    np.testing.assert_allclose(resumed["prob"], fresh["prob"])


# --- 10. clear messages ---------------------------------------------------------------------------------

def test_a_run_folder_that_refuses_writes_is_named_not_a_temporary_file(assets, tmp_path, capsys, monkeypatch):
    """A read-only run (simulated: tests may run as root, whom permissions do not stop) gave a raw
    "[Errno 13] ....tmp"; the line now names the file asked for and its folder."""
    import tempfile
    from pathlib import Path

    run = shutil.copytree(assets.run, tmp_path / "run")

    def refuse(*args, dir=None, **kwargs):
        raise PermissionError(13, "Permission denied", str(Path(dir) / ".thresholds.json.x1y2.tmp"))

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    before = snapshot(tmp_path)
    code, _, err = run_alfia(["evaluate", run, "--n-boot", "10"], capsys)
    assert code == 2 and err.count("error: ") == 1, err
    assert "thresholds.json: cannot write it: folder" in err and "not writable (Permission denied)" in err, err
    assert ".tmp" not in err
    assert snapshot(tmp_path) == before


def test_api_arguments_of_the_wrong_type_are_named_and_write_nothing(assets, tmp_path):
    """epochs="two" ('>=' not supported), n="100" (TypeError), a text given to predict_proba (read as a
    path) and save_pretrained onto a file (NotADirectoryError) each get a named error, and change nothing."""
    import alfia
    from alfia.errors import AlfiaError
    from alfia.training import TrainConfig

    with pytest.raises(AlfiaError, match=r"TrainConfig: epochs must be an integer, got 'two'"):
        TrainConfig(epochs="two")
    with pytest.raises(AlfiaError, match=r"TrainConfig: lr must be a number, got '1e-3'"):
        TrainConfig(lr="1e-3")
    assert TrainConfig(epochs=2.0).epochs == 2  # an integral float from JSON is that integer
    with pytest.raises(AlfiaError, match=r"epochs must be an integer, got 'two'"):
        alfia.ALFIAClassifier(backbone=str(assets.backbone), run_dir=tmp_path / "fit", epochs="two").fit(
            assets.text_path)
    with pytest.raises(AlfiaError, match=r"n \(--n\) must be an integer number of stays, got '100'"):
        alfia.cohort.synthetic(n="100", out=tmp_path / "c.parquet")
    assert list(tmp_path.iterdir()) == []

    clf = alfia.ALFIAClassifier.from_pretrained(assets.run, num_threads=1)
    with pytest.raises(AlfiaError, match=r"'a 70 year old patient with sepsis' names no file.*\(\[text\]\)"):
        clf.predict_proba("a 70 year old patient with sepsis")
    assert clf.predict_proba(["a 70 year old patient with sepsis"]).shape == (1, 2)
    (tmp_path / "file").write_text("mine")
    with pytest.raises(AlfiaError, match=r"file: save_pretrained's directory must be a folder"):
        clf.save_pretrained(tmp_path / "file")
    assert (tmp_path / "file").read_text() == "mine" and sorted(p.name for p in tmp_path.iterdir()) == ["file"]


# --- 1, elsewhere: every command that fills a folder over a long time holds it ------------------------------

def test_baselines_and_series_training_into_a_folder_another_job_holds_are_refused(assets, tmp_path, capsys):
    from alfia.atomic import folder_lock
    from alfia.series.hourly import frame_from_arrays, write_hourly
    from alfia.series.variables import VOCABULARY

    variables = [VOCABULARY[n] for n in ("age", "heart_rate")]
    values = np.random.default_rng(0).normal(80, 10, size=(40, 4, 2))
    split = np.array(["train"] * 24 + ["val"] * 8 + ["test"] * 8, dtype=object)
    write_hourly(frame_from_arrays(np.arange(40) + 1000, (np.arange(40) % 4 == 0).astype(int), split, values,
                                   [v.name for v in variables]), tmp_path / "hourly.parquet", source="synthetic",
                 variables=variables, hours=4)
    for out, args in (("zoo", ["baselines", assets.cohort_path, "--models", "LinearModel", "--profile", "fast",
                               "--n-boot", "5"]),
                      ("srun", ["series", "train", tmp_path / "hourly.parquet", "--epochs", "1", "--threads", "1"])):
        (tmp_path / out).mkdir()
        before = snapshot(tmp_path)
        with folder_lock(tmp_path / out, wait=False):  # another job writes there
            code, _, err = run_alfia([*args, "--out", tmp_path / out], capsys)
        assert code == 2 and f"{out}: another job is writing this folder" in err, err
        assert snapshot(tmp_path) == before
