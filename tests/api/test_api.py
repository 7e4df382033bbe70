"""The Python API: five lines from a cohort to an evaluated model, writing the CLI's files."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import fields

import numpy as np
import pandas as pd
import pytest

from alfia.errors import AlfiaError

from .conftest import TINY


def test_import_alfia_is_light():
    code = ("import sys, alfia; heavy = [m for m in ('torch', 'transformers', 'sklearn', 'pandas', 'matplotlib') "
            "if m in sys.modules]; print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


def test_cohort_and_encode_write_the_cli_files(api_data):
    from alfia.atomic import sha256_file
    from alfia.cohorts.io import manifest_path

    cohort, texts = api_data
    assert cohort.path.exists() and manifest_path(cohort.path).exists()
    assert texts.path.name == "cohort.text.parquet" and len(texts) == len(cohort) == 240
    assert texts.manifest.extra["cohort_sha256"] == sha256_file(cohort.path)
    assert {"stay_id", "split", "hospital_expire_flag", "text", "gender"} <= set(texts.frame.columns)


def test_every_classifier_parameter_lands_in_a_config_field():
    from alfia.api import ALFIAClassifier, configs_from_params
    from alfia.models import AlfiaConfig, LoraSettings
    from alfia.training import TrainConfig

    params = ALFIAClassifier().get_params()
    names = {f.name for f in fields(AlfiaConfig)} | {"lora_" + f.name for f in fields(LoraSettings)} | {
        f.name for f in fields(TrainConfig)}
    assert set(params) - names == {"run_dir", "progress"}
    # A new config field becomes a classifier parameter by adding one keyword to ALFIAClassifier.__init__.
    assert names - set(params) == {"lora"}, "add the new config field(s) to ALFIAClassifier.__init__"
    model, train = ALFIAClassifier(n_fusion_layers=3, lora_r=8, lora_target_modules="query,value", lr=1e-3,
                                   max_length=128, pos_weight="auto").configs()
    assert (model.n_fusion_layers, model.lora.r, model.lora.target_modules) == (3, 8, ("query", "value"))
    assert (train.lr, model.max_length, train.pos_weight) == (1e-3, 128, "auto")  # max_length: one config
    # None keeps the configs' own defaults (the paper's)
    default_model, default_train = ALFIAClassifier().configs()
    assert default_model == AlfiaConfig() and default_train == TrainConfig()
    with pytest.raises(AlfiaError, match="'bogus' matches no field"):
        configs_from_params({"bogus": 1})


def test_fit_follows_scikit_learn_and_writes_a_run_directory(fitted, api_data):
    from sklearn.base import clone

    _, texts = api_data
    run = fitted.run_dir_
    for name in ("config.json", "predictions.parquet", "thresholds.json", "fusion_head.safetensors",
                 "history.jsonl"):
        assert (run / name).exists(), name
    config = json.loads((run / "config.json").read_text())
    assert config["data"]["path"] == str(texts.path.resolve())
    assert config["model"]["n_fusion_layers"] == 2 and config["train"]["epochs"] == 1
    assert 0.0 <= fitted.threshold_ <= 1.0 and fitted.best_epoch_ == 1 and list(fitted.classes_) == [0, 1]
    assert not hasattr(clone(fitted), "run_dir_")  # learned attributes end in _ and are not params

    proba = fitted.predict_proba(["A 71-year-old woman was admitted as an emergency.", "A 30-year-old man."])
    assert proba.shape == (2, 2) and np.allclose(proba.sum(axis=1), 1.0)
    with pytest.raises(AlfiaError, match=r"<texts>: column 'text' is empty at row 1"):  # a list is a text table too
        fitted.predict_proba(["A 30-year-old man.", "   "])
    test = texts.frame[texts.frame.split == "test"]
    saved = pd.read_parquet(run / "predictions.parquet").query("split == 'test'").set_index("stay_id")
    again = fitted.predict_proba(test)[:, 1]  # predicting from disk gives the run's own test predictions
    assert np.allclose(again, saved.loc[test.stay_id, "prob"].to_numpy(), atol=1e-5)
    assert set(fitted.predict(test)) <= {0, 1}


def test_fit_refuses_labels_and_an_occupied_run_dir(fitted, api_data):
    import alfia

    _, texts = api_data
    with pytest.raises(AlfiaError, match="without y"):
        alfia.ALFIAClassifier(**TINY).fit(texts, y=[0, 1])
    with pytest.raises(AlfiaError, match="already holds a run"):
        alfia.ALFIAClassifier(run_dir=fitted.run_dir_, **TINY).fit(texts)
    with pytest.raises(AlfiaError, match="not fitted"):
        alfia.ALFIAClassifier().predict_proba(["text"])


def test_save_and_from_pretrained_round_trip(fitted, tmp_path, api_data):
    import alfia

    _, texts = api_data
    saved = alfia.ALFIAClassifier.from_pretrained(fitted.run_dir_).save_pretrained(tmp_path / "copy")
    loaded = alfia.ALFIAClassifier.from_pretrained(saved)
    assert loaded.run_dir_ == saved and loaded.threshold_ == fitted.threshold_
    explicit = {k: v for k, v in fitted.get_params().items() if v is not None and k not in ("run_dir", "progress")}
    assert {k: loaded.get_params()[k] for k in explicit} == explicit
    rows = texts.frame.head(5)
    assert np.allclose(loaded.predict_proba(rows), fitted.predict_proba(rows), atol=1e-6)
    with pytest.raises(AlfiaError, match="not empty"):
        loaded.save_pretrained(tmp_path / "copy" / "..")


def test_evaluate_writes_metrics_with_subgroups_from_the_text_table(fitted, api_data):
    import alfia

    _, texts = api_data
    report = alfia.evaluate(fitted, texts, split="test", n_boot=30)
    assert (fitted.run_dir_ / "metrics.json").exists()
    assert report["split"] == "test" and 0 <= report.metrics.loc["auprc", "value"] <= 1
    assert set(report.subgroups["subgroup"]) == {"sex", "age_band", "icu_unit"}
    assert report.result["subgroups"]["source"] == str(texts.path.resolve())


def test_external_validation_uses_the_models_val_thresholds(fitted, tmp_path):
    import alfia

    other = alfia.encode(alfia.cohort.synthetic(n=120, seed=7, out=tmp_path / "other.parquet"))
    report = alfia.evaluate(fitted, other, split="test", n_boot=20)
    folder = fitted.run_dir_ / "external" / "other.text"
    assert (folder / "metrics.json").exists()
    own = json.loads((fitted.run_dir_ / "config.json").read_text())
    assert report["thresholds"]["chosen_on"] == "val" and own["model_type"] == "alfia"
    own_val = pd.read_parquet(fitted.run_dir_ / "predictions.parquet").query("split == 'val'")
    from alfia.evaluation.thresholds import choose_threshold

    assert report["thresholds"]["f1"] == choose_threshold(own_val["label"], own_val["prob"], 1.0)[0]
    assert report["n"] == len(other.frame)  # an external cohort is scored whole, as `alfia evaluate --external`


def test_baselines_fit_is_the_cli_zoo(api_data, tmp_path):
    import alfia.baselines

    cohort, _ = api_data
    summary = alfia.baselines.fit(cohort, models=["LinearModel"], out=tmp_path / "zoo", profile="fast", n_boot=20)
    assert list(summary["model"]) == ["LinearModel"]
    config = json.loads((tmp_path / "zoo" / "LinearModel" / "config.json").read_text())
    assert config["cohort"] == str(cohort.path)
    metrics = json.loads((tmp_path / "zoo" / "LinearModel" / "metrics.json").read_text())
    assert set(metrics["subgroups"]["groups"]) == {"sex", "age_band", "icu_unit"}
