"""ALFIA-boost / ALFIA-nn: embeddings joined by stay_id; no validation or test label reaches a feature."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from alfia.baselines.boost import build_boost_frame, embedding_columns, run_boost
from alfia.baselines.preprocessing import FeatureSpec
from alfia.errors import AlfiaError
from alfia.runs import read_predictions

EMB_DIM = 8


def fake_embed(cohort: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """An `alfia embed`-shaped table computed from each stay's own predictors only (like an encoder
    applied to that stay's text): stay_id, split, hospital_expire_flag, alf_*, layer_weight_*, embedding_source."""
    numeric = cohort[["apsiii", "sapsii", "oasis", "lods", "sofa_dynamic_max", "gcs_dynamic_min"]]
    z = ((numeric - numeric.mean()) / numeric.std()).fillna(0.0).to_numpy()
    w = np.random.default_rng(seed).normal(size=(z.shape[1], EMB_DIM))
    emb = pd.DataFrame(np.tanh(z @ w), columns=[f"alf_{i}" for i in range(EMB_DIM)])
    lw = np.exp(z[:, :3]) / np.exp(z[:, :3]).sum(1, keepdims=True)
    for i in range(3):
        emb[f"layer_weight_{i}"] = lw[:, i]
    emb.insert(0, "stay_id", cohort["stay_id"].to_numpy())
    emb["split"] = cohort["split"].to_numpy()
    emb["hospital_expire_flag"] = cohort["hospital_expire_flag"].to_numpy()
    # No label went into them, so they are as good as cross-fitted (`alfia embed --cross-fit`): no leak warning.
    emb["embedding_source"] = np.where(cohort["split"].to_numpy() == "train", "out_of_fold", "full_run")
    return emb.sample(frac=1.0, random_state=seed).reset_index(drop=True)  # join must not rely on order


def permute_labels(df: pd.DataFrame, splits, seed: int = 1) -> pd.DataFrame:
    out = df.copy()
    rows = out.index[out["split"].isin(splits)]
    out.loc[rows, "hospital_expire_flag"] = np.random.default_rng(seed).permutation(
        out.loc[rows, "hospital_expire_flag"].to_numpy())
    return out


@pytest.fixture(scope="module")
def embeddings(cohort):
    return fake_embed(cohort)


def test_features_identical_when_val_and_test_labels_change(cohort, embeddings):
    joined, cols = build_boost_frame(cohort, embeddings)
    cohort_p = permute_labels(cohort, ["val", "test"])
    emb_p = embeddings.copy()
    emb_p["hospital_expire_flag"] = np.random.default_rng(5).integers(0, 2, len(emb_p))
    assert (cohort_p["hospital_expire_flag"] != cohort["hospital_expire_flag"]).any()
    joined_p, cols_p = build_boost_frame(cohort_p, emb_p)
    spec = FeatureSpec.from_schema("mimic", joined, extra_numeric=tuple(cols))
    assert cols == cols_p == [f"alf_{i}" for i in range(EMB_DIM)]
    assert "hospital_expire_flag" not in spec.columns and "split" not in spec.columns
    pd.testing.assert_frame_equal(joined[spec.columns], joined_p[spec.columns])
    # rows kept in cohort order and matched by stay_id, not by position
    row = joined.iloc[17]
    src = embeddings.set_index("stay_id").loc[row["stay_id"]]
    assert row["alf_3"] == pytest.approx(src["alf_3"])


def test_test_labels_never_influence_any_prediction(cohort, embeddings, tmp_path):
    """Train ALFIA-boost and ALFIA-nn twice, test labels permuted the second time: same predictions."""
    kwargs = dict(learners=["lightgbm", "mlp"], profile="fast", n_boot=5)
    run_boost(cohort, embeddings, "mimic", tmp_path / "a", **kwargs)
    run_boost(permute_labels(cohort, ["test"]), embeddings, "mimic", tmp_path / "b", **kwargs)
    for name in ("ALFIA-boost-LightGBM", "ALFIA-nn"):
        a = read_predictions(tmp_path / "a" / name / "predictions.parquet")
        b = read_predictions(tmp_path / "b" / name / "predictions.parquet")
        np.testing.assert_array_equal(a["prob"].to_numpy(), b["prob"].to_numpy())
        config = json.loads((tmp_path / "a" / name / "config.json").read_text())
        assert config["model_family"] == ("alfia-nn" if name == "ALFIA-nn" else "alfia-boost")
        assert "alf_0" in config["features"]["numeric"]
        assert "layer_weight_0" not in config["features"]["numeric"]


def test_only_training_labels_fit_the_learner(cohort, embeddings, tmp_path, monkeypatch):
    """The learner's fit sees train rows and train labels; val only as the early-stopping set."""
    from alfia.baselines import estimators

    seen = {}
    original = estimators.CatBoostModel.fit

    def spy(self, X, y, X_val=None, y_val=None):
        seen.update(X=X, y=np.asarray(y), X_val=X_val)
        return original(self, X, y, X_val, y_val)

    monkeypatch.setattr(estimators.CatBoostModel, "fit", spy)
    run_boost(cohort, embeddings, "mimic", tmp_path, learners=["catboost"], profile="fast", n_boot=5)
    train = cohort[cohort["split"] == "train"]
    np.testing.assert_array_equal(seen["y"], train["hospital_expire_flag"].to_numpy())
    assert len(seen["X"]) == len(train) and "alf_0" in seen["X"].columns
    assert "hospital_expire_flag" not in seen["X"].columns and "split" not in seen["X"].columns
    assert len(seen["X_val"]) == (cohort["split"] == "val").sum()


def test_embeddings_add_information_the_learner_uses(cohort, embeddings, tmp_path):
    summary = run_boost(cohort, embeddings, "mimic", tmp_path, learners=["lightgbm"],
                        profile="fast", n_boot=5, include_layer_weights=True)
    assert summary.loc[0, "model"] == "ALFIA-boost-LightGBM"
    assert summary.loc[0, "test_auroc"] > 0.7
    config = json.loads((tmp_path / "ALFIA-boost-LightGBM" / "config.json").read_text())
    assert "layer_weight_2" in config["features"]["numeric"]


def test_missing_embedding_row_is_named(cohort, embeddings):
    dropped = embeddings[embeddings["stay_id"] != cohort["stay_id"].iloc[5]]
    with pytest.raises(AlfiaError, match=rf"emb\.parquet: 1 stay\(s\) of c\.parquet have no embedding "
                                         rf"\(first: stay_id {cohort['stay_id'].iloc[5]}\)"):
        build_boost_frame(cohort, dropped, cohort_source="c.parquet", embeddings_source="emb.parquet")


def test_embeddings_from_another_split_are_refused(cohort, embeddings):
    other = embeddings.copy()
    i = other.index[other["split"] == "test"][0]
    other.loc[i, "split"] = "train"
    with pytest.raises(AlfiaError, match="split 'train' there but 'test'.*trained on this cohort's "
                                         "training split"):
        build_boost_frame(cohort, other)


def test_bad_embedding_files_are_refused(cohort, embeddings):
    with pytest.raises(AlfiaError, match="no embedding columns"):
        embedding_columns(embeddings.drop(columns=[f"alf_{i}" for i in range(EMB_DIM)]))
    dup = pd.concat([embeddings, embeddings.iloc[:1]])
    with pytest.raises(AlfiaError, match="more than one embedding row"):
        build_boost_frame(cohort, dup)
    bad = embeddings.copy()
    bad.loc[3, "alf_2"] = np.nan
    with pytest.raises(AlfiaError, match=r"row 3, column 'alf_2' is not a finite number"):
        build_boost_frame(cohort, bad)
    with pytest.raises(AlfiaError, match="unknown learner.*xgb.*known learners: lightgbm, catboost, mlp"):
        run_boost(cohort, embeddings, "mimic", "/nonexistent", learners=["xgb"])
