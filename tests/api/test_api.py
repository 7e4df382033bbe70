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


def test_fit_follows_scikit_learn_and_writes_a_run_directory(trained, api_data):
    from sklearn.base import clone

    _, texts = api_data
    fitted = trained  # the estimator fit returned (its run is read-only: nothing here writes)
    run = fitted.run_dir_
    assert fitted.get_params()["run_dir"] == run  # fit never changes a parameter
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


def test_fit_refuses_labels_and_an_occupied_run_dir(trained, api_data):
    import alfia
    from sklearn.exceptions import NotFittedError

    _, texts = api_data
    with pytest.raises(AlfiaError, match="without y"):
        alfia.ALFIAClassifier(**TINY).fit(texts, y=[0, 1])
    with pytest.raises(AlfiaError, match="already holds a run"):
        alfia.ALFIAClassifier(run_dir=trained.run_dir_, **TINY).fit(texts)
    for method in ("predict_proba", "predict", "predict_frame"):
        with pytest.raises(NotFittedError, match="not fitted") as caught:  # scikit-learn's kind, and ALFIA's
            getattr(alfia.ALFIAClassifier(), method)(["text"])
        assert isinstance(caught.value, AlfiaError)
    with pytest.raises(NotFittedError, match="not fitted"):
        alfia.ALFIAClassifier().save_pretrained("unused")
    assert issubclass(AlfiaError, ValueError)  # code written for any estimator's bad input catches ALFIA's


def test_the_checks_of_scikit_learn_that_need_no_fit_pass():
    """ALFIAClassifier.fit takes a text table and trains a transformer, so check_estimator as a whole does not
    apply (tests/baselines/test_estimator_checks.py says why); these checks need no fit and do."""
    from sklearn.utils import estimator_checks as checks

    from alfia.api import ALFIAClassifier

    for check in (checks.check_no_attributes_set_in_init, checks.check_get_params_invariance,
                  checks.check_set_params, checks.check_estimator_cloneable, checks.check_estimator_repr,
                  checks.check_parameters_default_constructible, checks.check_mixin_order,
                  checks.check_estimators_unfitted, checks.check_do_not_raise_errors_in_init_or_set_params):
        check("ALFIAClassifier", ALFIAClassifier())


def test_a_clone_fits_anew_restores_threads_and_seeds_and_deletes_its_temporary_run(fitted, api_data, tmp_path):
    import gc
    import random

    import torch
    from sklearn.base import clone

    _, texts = api_data
    assert fitted.run_dir is None  # from_pretrained: the run is learned state (run_dir_), not a parameter
    torch.set_num_threads(2)
    random.seed(5), np.random.seed(5), torch.manual_seed(5)
    before = (random.getstate(), np.random.get_state()[1].copy(), torch.random.get_rng_state().clone())
    model = clone(fitted)
    params = model.get_params()
    model.fit(texts)  # TINY's num_threads=1 and seed=0 hold inside fit only
    assert torch.get_num_threads() == 2
    assert random.getstate() == before[0] and np.array_equal(np.random.get_state()[1], before[1])
    assert torch.equal(torch.random.get_rng_state(), before[2])
    assert model.get_params() == params and model.run_dir is None
    first = model.run_dir_.parent
    assert first.name.startswith("alfia-run-") and (model.run_dir_ / "config.json").exists()
    model.predict_proba(["A 71-year-old woman."])  # loading sets its own threads, then puts them back
    assert torch.get_num_threads() == 2
    kept = model.save_pretrained(tmp_path / "kept")
    assert model.run_dir is None and model.run_dir_ == kept and not first.exists()  # saved, the temporary goes
    model.fit(texts)
    second = model.run_dir_.parent
    assert second.exists() and kept.exists()
    del model
    gc.collect()
    assert not second.exists()  # run_dir=None leaves no folder behind once the model is gone


def test_save_and_from_pretrained_round_trip(fitted, tmp_path, api_data):
    import alfia

    _, texts = api_data
    source = alfia.ALFIAClassifier.from_pretrained(fitted.run_dir_)
    saved = source.save_pretrained(tmp_path / "copy")
    assert source.run_dir is None and source.run_dir_ == saved  # save_pretrained changes no parameter
    loaded = alfia.ALFIAClassifier.from_pretrained(saved)
    assert loaded.run_dir_ == saved and loaded.threshold_ == fitted.threshold_
    explicit = {k: v for k, v in fitted.get_params().items() if v is not None and k not in ("run_dir", "progress")}
    assert explicit["backbone"] and explicit["n_fusion_layers"] == TINY["n_fusion_layers"]
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
