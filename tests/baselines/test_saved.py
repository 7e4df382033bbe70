"""A baseline run saves its fitted model (never pickled): loaded again it gives the fitted model's
probabilities, `alfia predict` scores new stays with it, external cohorts are scored with it instead of a
refit, and a changed or missing file is an AlfiaError naming it."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from alfia.baselines.estimators import frame_rows
from alfia.baselines.preprocessing import FeatureSpec
from alfia.baselines.registry import build_model
from alfia.baselines.runner import ExternalInput, run_baselines
from alfia.baselines.saved import load_model, save_model
from alfia.baselines.scoring import load_run, predict_frame
from alfia.cli import _register, app
from alfia.cohorts.io import write_cohort
from alfia.cohorts.sources.synthetic import generate_synthetic
from alfia.errors import AlfiaError
from alfia.runs import RunLayout, read_predictions

from .conftest import UNSEEN

_register()
# One model of each family and each kind of saved file.
FAMILIES = {"LinearModel": "model.skops", "KNeighborsDist": "model.skops", "RandomForestGini": "model.skops",
            "LightGBM": "lightgbm.txt", "XGBoost": "xgboost.json", "CatBoost": "catboost.cbm",
            "NeuralNetMLP": "model.skops", "FTTransformer": "ft_transformer.safetensors"}
RUN_MODELS = ["LinearModel", "LightGBM", "WeightedEnsemble"]


@pytest.fixture(scope="module")
def small(cohort_with_unseen):
    """400 stays of the cohort (test rows carry a careunit never seen in training), split and spec."""
    df = cohort_with_unseen.groupby("split", group_keys=False).head(140).reset_index(drop=True)
    spec = FeatureSpec.from_schema("mimic", df)
    return df, spec, {s: df[df["split"] == s] for s in ("train", "val", "test")}


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_a_saved_and_loaded_model_gives_the_fitted_models_probabilities(name, small, tmp_path):
    df, spec, parts = small
    fitted = build_model(name, spec, seed=3, profile="fast", n_jobs=1).fit(
        frame_rows(parts["train"], spec), parts["train"]["hospital_expire_flag"],
        frame_rows(parts["val"], spec), parts["val"]["hospital_expire_flag"])
    save_model(tmp_path / "model", fitted, variant="mimic")
    assert (tmp_path / "model" / FAMILIES[name]).is_file()
    assert not list((tmp_path / "model").glob("*.pkl")) and not list((tmp_path / "model").glob("*.pickle"))
    loaded = load_model(tmp_path / "model")
    assert type(loaded) is type(fitted) and loaded is not fitted
    rows = frame_rows(df, spec)  # train, val and the test rows with an unseen category
    np.testing.assert_allclose(loaded.predict_proba(rows), fitted.predict_proba(rows), rtol=0, atol=1e-12)
    assert loaded.val_auprc_ == pytest.approx(fitted.val_auprc_)
    assert loaded.selected_params_ == json.loads(json.dumps(fitted.selected_params_))


@pytest.fixture(scope="module")
def zoo(small, tmp_path_factory):
    df, _, _ = small
    out = tmp_path_factory.mktemp("saved-zoo")
    run_baselines(df, "mimic", out, RUN_MODELS, profile="fast", n_boot=10)
    return out


@pytest.mark.parametrize("name", RUN_MODELS)
def test_predict_scores_a_cohort_with_the_saved_model_like_the_run_did(name, zoo, small, tmp_path):
    """`alfia predict BASELINE_RUN --input COHORT` on the training cohort reproduces the run's own val/test
    probabilities (the ensemble through its members' saved models)."""
    df, _, _ = small
    write_cohort(df, tmp_path / "cohort.parquet", source="synthetic", variant="mimic")
    result = CliRunner().invoke(app, ["predict", str(zoo / name), "--input", str(tmp_path / "cohort.parquet"),
                                      "--out", str(tmp_path / "pred.parquet")])
    assert result.exit_code == 0, result.output
    pred = pd.read_parquet(tmp_path / "pred.parquet")
    assert list(pred.columns) == ["stay_id", "split", "prob", "pred_label", "hospital_expire_flag"]
    assert list(pred["stay_id"]) == list(df["stay_id"])  # every row, in input order
    own = read_predictions(RunLayout.of(zoo / name).predictions).set_index("stay_id")
    np.testing.assert_allclose(pred.set_index("stay_id").loc[own.index, "prob"], own["prob"], rtol=0, atol=1e-12)
    threshold = load_run(zoo / name).threshold
    assert (pred["pred_label"] == (pred["prob"] >= threshold)).all()


def test_predict_maps_a_cohort_of_another_variant(zoo, tmp_path):
    ext = generate_synthetic("eicu", 80, seed=5).drop(columns=["hospital_expire_flag"])
    write_cohort(ext, tmp_path / "eicu.parquet", source="synthetic", variant="eicu")
    result = CliRunner().invoke(app, ["predict", str(zoo / "LightGBM"), "--input", str(tmp_path / "eicu.parquet"),
                                      "--out", str(tmp_path / "pred.csv")])
    assert result.exit_code == 0, result.output
    pred = pd.read_csv(tmp_path / "pred.csv")
    assert list(pred["stay_id"]) == list(ext["stay_id"]) and pred["prob"].between(0, 1).all()
    assert "hospital_expire_flag" not in pred.columns  # new stays carry no label


def test_external_cohorts_are_scored_with_the_saved_model_not_refitted(small, tmp_path, monkeypatch):
    from alfia.baselines import estimators

    df, _, _ = small
    run_baselines(df, "mimic", tmp_path, ["LightGBM", "WeightedEnsemble"], profile="fast", n_boot=10)
    stamp = json.loads((tmp_path / "LightGBM" / "config.json").read_text())["created_at"]

    def refit(*args, **kwargs):
        raise AssertionError("refitted instead of using the saved model")

    monkeypatch.setattr(estimators.LightGBMModel, "fit", refit)
    ext = generate_synthetic("eicu", 120, seed=12)
    run_baselines(df, "mimic", tmp_path, ["LightGBM", "WeightedEnsemble"], profile="fast", n_boot=10, resume=True,
                  externals=[ExternalInput("eicu_ext", ext, "eicu", "eicu_ext.parquet")])
    config = json.loads((tmp_path / "LightGBM" / "config.json").read_text())
    assert config["created_at"] == stamp and "eicu_ext" in config["run_config"]["externals_sha256"]
    for name in ("LightGBM", "WeightedEnsemble"):
        scored = read_predictions(RunLayout.of(tmp_path / name).external("eicu_ext").predictions)
        again = predict_frame(load_run(tmp_path / name), ext, "eicu", "eicu_ext.parquet")
        assert list(scored["stay_id"]) == list(again["stay_id"])
        np.testing.assert_array_equal(scored["prob"].to_numpy(), again["prob"].to_numpy())


def test_a_changed_or_missing_model_file_is_an_error_naming_it(zoo, tmp_path):
    import shutil

    run = tmp_path / "LightGBM"
    shutil.copytree(zoo / "LightGBM", run)
    booster = run / "model" / "lightgbm.txt"
    booster.write_text(booster.read_text().replace("learning_rate", "learning_rate ", 1))
    with pytest.raises(AlfiaError, match=r"LightGBM/model/lightgbm\.txt: its SHA-256 differs"):
        load_run(run)
    booster.unlink()
    with pytest.raises(AlfiaError, match=r"LightGBM/model/lightgbm\.txt: missing"):
        load_run(run)
    shutil.rmtree(run / "model")
    result = CliRunner().invoke(app, ["predict", str(run), "--input", "x.parquet", "--out", str(tmp_path / "p.parquet")])
    assert isinstance(result.exception, AlfiaError) and "model/model.json: missing; this run saved no model" in str(
        result.exception)


def test_the_ensemble_refuses_a_member_that_changed_since_it_was_built(zoo, tmp_path):
    import shutil

    out = tmp_path / "zoo"
    shutil.copytree(zoo, out)
    weights = json.loads((out / "WeightedEnsemble" / "config.json").read_text())["weights"]
    member = next(iter(weights))
    manifest = out / member / "model" / "model.json"
    doc = json.loads(manifest.read_text())
    doc["learned"]["val_auprc_"] = 0.0
    manifest.write_text(json.dumps(doc))
    with pytest.raises(AlfiaError, match=rf"{member}/model/model.json: not the model the ensemble WeightedEnsemble"):
        load_run(out / "WeightedEnsemble")


def test_a_skops_file_naming_an_untrusted_type_is_refused(zoo, tmp_path):
    """skops builds only the types it trusts: a file that names another (here os.system) is refused unbuilt."""
    import shutil

    from alfia.atomic import sha256_file

    run = tmp_path / "LinearModel"
    shutil.copytree(zoo / "LinearModel", run)
    path = run / "model" / "model.skops"
    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    members["schema.json"] = members["schema.json"].replace(b'"sklearn.linear_model._logistic"', b'"os"').replace(
        b'"LogisticRegression"', b'"system"')
    with zipfile.ZipFile(path, "w") as z:
        for n, data in members.items():
            z.writestr(n, data)
    manifest = run / "model" / "model.json"  # the attacker also rewrote the recorded SHA-256
    doc = json.loads(manifest.read_text())
    doc["files"]["model.skops"] = sha256_file(path)
    manifest.write_text(json.dumps(doc))
    with pytest.raises(AlfiaError, match=r"model\.skops: refusing to load it: .*os\.system"):
        load_run(run)


def test_an_unfitted_zoo_model_raises_sklearns_not_fitted_error(small):
    from sklearn.exceptions import NotFittedError

    _, spec, parts = small
    with pytest.raises(NotFittedError, match="not fitted yet"):
        build_model("LightGBM", spec, profile="fast").predict_proba(frame_rows(parts["test"], spec))
    with pytest.raises(AlfiaError, match="not fitted yet"):
        save_model("unused", build_model("CatBoost", spec, profile="fast"), variant="mimic")
    assert UNSEEN in set(parts["test"]["careunit"])
