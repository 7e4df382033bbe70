"""`alfia embed --cross-fit K` (alfia.api.crossfit): every training row embedded by a model that never saw its
label, every other row by the run itself; the leak it removes; `alfia boost` warning on in-sample embeddings."""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from alfia.errors import AlfiaError
from cli_process import run_alfia

K = 3


def _train(text_path: Path, run_dir: Path, backbone: Path, *, head_epochs: int = 2, head_lr: float | None = None,
           patience: int = 5, seed: int = 3, batch_size: int = 8, dropout: float = 0.1):
    """A tiny ALFIA run in the CPU recipe (the head over cached frozen states), one thread."""
    from alfia.models import AlfiaConfig
    from alfia.training import TrainConfig, train_run

    return train_run(text_path, run_dir,
                     AlfiaConfig(backbone=str(backbone), n_fusion_layers=2, fusion_heads=2, classifier_heads=2,
                                 max_length=48, dropout=dropout),
                     TrainConfig(epochs=1, head_epochs=head_epochs, head_lr=head_lr, patience=patience,
                                 batch_size=batch_size,
                                 num_threads=1, device="cpu", seed=seed), progress=False)


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """80 synthetic stays (train 60 with 7 deaths, val 10, test 10), their text, a tiny run on them."""
    from .conftest import synthetic_text_and_backbone

    root = tmp_path_factory.mktemp("crossfit")
    _, backbone = synthetic_text_and_backbone(root, 80)
    _train(root / "text.parquet", root / "run", backbone)
    return SimpleNamespace(root=root, run=root / "run", cohort_path=root / "cohort.parquet",
                           text_path=root / "text.parquet", text=pd.read_parquet(root / "text.parquet"),
                           backbone=backbone)


def _plain_embeddings(run_dir: Path, text_path: Path) -> pd.DataFrame:
    from alfia.inference import embed, load_run, read_inference_input

    run = load_run(run_dir, num_threads=1)
    return embed(run, read_inference_input(text_path, run))[0]


def test_train_rows_are_out_of_fold_and_the_rest_come_from_the_run(small_run, tmp_path, monkeypatch):
    from alfia.api.crossfit import cross_fit_embeddings

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))  # where the default fold folder goes
    (tmp_path / "tmp").mkdir()
    result = cross_fit_embeddings(small_run.run, small_run.text_path, K, num_threads=1)
    frame, text = result.frame, small_run.text
    # One row per input row, in input order, with today's columns + embedding_source.
    plain = _plain_embeddings(small_run.run, small_run.text_path)
    assert list(frame.columns) == [*plain.columns, "embedding_source"]
    assert frame["stay_id"].tolist() == text["stay_id"].tolist()
    assert frame["split"].tolist() == text["split"].tolist()
    train = (text["split"] == "train").to_numpy()
    assert (frame.loc[train, "embedding_source"] == "out_of_fold").all()
    assert (frame.loc[~train, "embedding_source"] == "full_run").all()
    cols = [c for c in frame.columns if c.startswith("alf_")]
    # Val and test rows: exactly what plain `alfia embed` gives them; training rows: another model's.
    np.testing.assert_allclose(frame.loc[~train, cols].to_numpy(), plain.loc[~train, cols].to_numpy(), atol=1e-6)
    assert not np.allclose(frame.loc[train, cols].to_numpy(), plain.loc[train, cols].to_numpy(), atol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(frame[cols].to_numpy(), axis=1), 1.0, atol=1e-5)
    # The folds partition the training rows, are stratified (deaths in each) and follow the run's seed.
    labels = text.set_index("stay_id")["hospital_expire_flag"]
    held = [stay for fold in result.folds for stay in fold]
    assert sorted(held) == sorted(text.loc[train, "stay_id"]) and len(held) == len(set(held))
    assert [len(f) for f in result.folds] == [20, 20, 20]
    assert all(0 < labels[f].sum() < len(f) for f in result.folds)
    assert result.seed == 3 and result.fold_runs is None
    # The fold runs are gone: nothing is left in the temporary folder.
    assert list((tmp_path / "tmp").iterdir()) == []

    result.write(tmp_path / "emb.parquet")
    back = pd.read_parquet(tmp_path / "emb.parquet")
    pd.testing.assert_frame_equal(back, frame, check_dtype=False)
    record = json.loads((tmp_path / "emb.manifest.json").read_text())["extra"]["cross_fit"]
    assert (record["k"], record["seed"], record["n_out_of_fold"], record["n_full_run"]) == (K, 3, 60, 20)
    assert record["folds"] == result.folds and record["stratified_on"] == "hospital_expire_flag"


def test_fold_runs_use_the_runs_recipe_and_are_kept_or_deleted(small_run, tmp_path):
    from alfia.api.crossfit import cross_fit_embeddings
    from alfia.runs import read_alfia_config

    kept = cross_fit_embeddings(small_run.run, small_run.text_path, 2, seed=11, fold_dir=tmp_path / "kept",
                                keep_folds=True, num_threads=1)
    assert kept.seed == 11 and [p.name for p in kept.fold_runs] == ["run", "run"]
    full = read_alfia_config(small_run.run)
    for fold, run_dir in zip(kept.folds, kept.fold_runs):
        doc = read_alfia_config(run_dir)
        assert doc["model"] == full["model"]  # the run's own model config, passed through
        resources = ("device", "num_threads")
        assert {k: v for k, v in doc["train"].items() if k not in resources} == \
               {k: v for k, v in full["train"].items() if k not in resources}
        # Trained without its held-out fold (and without test rows), early-stopped on the same val rows.
        assert doc["data"]["n_rows"] == {"train": 60 - len(fold), "val": 10, "test": 0}
        trained_on = pd.read_parquet(doc["data"]["path"])
        assert not set(fold) & set(trained_on["stay_id"])
    # A given --fold-dir that did not exist is removed again; one that existed (empty) stays, empty.
    cross_fit_embeddings(small_run.run, small_run.text_path, 2, fold_dir=tmp_path / "new", num_threads=1)
    assert not (tmp_path / "new").exists()
    (tmp_path / "empty").mkdir()
    cross_fit_embeddings(small_run.run, small_run.text_path, 2, fold_dir=tmp_path / "empty", num_threads=1)
    assert list((tmp_path / "empty").iterdir()) == []
    with pytest.raises(AlfiaError, match=r"kept: --fold-dir is not empty"):
        cross_fit_embeddings(small_run.run, small_run.text_path, 2, fold_dir=tmp_path / "kept", num_threads=1)


# -- the leak ------------------------------------------------------------------------------------------------
def _memorisation_table(path: Path, n_train: int = 120, seed: int = 3) -> pd.DataFrame:
    """Texts of random words; training labels a shuffled half-and-half vector, so nothing in a text predicts
    its label and a model can only memorise. The val rows are copies of the training rows with the same
    labels: early stopping on val AUPRC then keeps the most memorised epoch of the run (with val labels of
    their own, the kept epoch would be a coin toss and the tiny run may memorise nothing). The fold runs
    share that val set, so their early stopping sees the held-out rows' labels too, through the choice of one
    epoch out of 20: that can only make the out-of-fold embeddings look leakier, never cleaner."""
    from alfia.cohorts.io import Manifest, write_table
    from alfia.models.testing import tiny_vocab

    rng = np.random.default_rng(seed)
    words = [w for w in tiny_vocab() if w.isalpha() and len(w) > 2]
    train = pd.DataFrame({"stay_id": np.arange(1, n_train + 1), "split": "train",
                          "hospital_expire_flag": rng.permutation(np.arange(n_train) % 2),
                          "text": [" ".join(rng.choice(words, 30)) for _ in range(n_train)]})
    test = pd.DataFrame({"stay_id": np.arange(n_train + 1, n_train + 21), "split": "test",
                         "hospital_expire_flag": np.arange(20) % 2,
                         "text": [" ".join(rng.choice(words, 30)) for _ in range(20)]})
    val = train.assign(split="val", stay_id=train["stay_id"] + 10_000)
    df = pd.concat([train, val, test], ignore_index=True)
    write_table(df, path, Manifest(kind="text", source="random words", variant="mimic", n_rows=len(df), splits={}))
    return df


def _cv_auroc(embeddings: np.ndarray, labels: np.ndarray, groups: np.ndarray) -> float:
    """Cross-validated AUROC of a logistic regression on the embeddings, within each group (cross-fit fold).

    Within, because each fold's rows are embedded by their own fold model, in that model's coordinates: a
    regression over all rows would partly learn which model embedded a row, and as stratification fixes
    each fold's label balance, that feature scores below chance (the negative bias of cross-validation)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    scores = np.empty(len(labels))
    for group in np.unique(groups):
        rows = groups == group
        scores[rows] = cross_val_predict(LogisticRegression(max_iter=2000), embeddings[rows], labels[rows],
                                         cv=StratifiedKFold(5, shuffle=True, random_state=0),
                                         method="predict_proba")[:, 1]
    return float(roc_auc_score(labels, scores))


def test_out_of_fold_embeddings_do_not_carry_memorised_training_labels(small_run, tmp_path):
    from alfia.api.crossfit import cross_fit_embeddings

    df = _memorisation_table(tmp_path / "text.parquet")
    # No dropout, a high head learning rate and every one of 20 epochs: what lets the tiny head memorise.
    _train(tmp_path / "text.parquet", tmp_path / "run", small_run.backbone, head_epochs=20, head_lr=1e-2,
           patience=20, seed=3, batch_size=16, dropout=0.0)
    in_sample = _plain_embeddings(tmp_path / "run", tmp_path / "text.parquet")
    result = cross_fit_embeddings(tmp_path / "run", tmp_path / "text.parquet", 2, num_threads=1)
    train = (df["split"] == "train").to_numpy()
    labels = df.loc[train, "hospital_expire_flag"].to_numpy()
    fold = np.zeros(len(df), dtype=int)
    fold[df["stay_id"].isin(result.folds[1]).to_numpy()] = 1
    cols = [c for c in in_sample.columns if c.startswith("alf_")]
    auroc_in = _cv_auroc(in_sample.loc[train, cols].to_numpy(), labels, fold[train])
    auroc_oof = _cv_auroc(result.frame.loc[train, cols].to_numpy(), labels, fold[train])
    # The run memorised its random labels into the embeddings of its own training rows (this fails, rather
    # than passing vacuously, if the tiny model did not memorise) ...
    assert auroc_in > 0.8, auroc_in
    # ... and a model that did not see a row's label cannot put it into that row's embedding: near chance
    # (on 60 rows per fold a chance AUROC has an SD of ~0.075; measured 0.50 against 0.98 in-sample, and
    # 0.37-0.54 against 0.95-1.00 over data seeds 2-7).
    assert auroc_oof < 0.65, auroc_oof
    assert auroc_in - auroc_oof > 0.25, (auroc_in, auroc_oof)


# -- the CLI, and the boost warning --------------------------------------------------------------------------
def test_cli_cross_fit_then_boost_warns_only_on_in_sample_embeddings(small_run, tmp_path, capsys):
    code, _, err = run_alfia(["embed", small_run.run, "--input", small_run.text_path, "--out",
                              tmp_path / "oof.parquet", "--cross-fit", "2", "--threads", "1"], capsys)
    assert code == 0, err
    assert "60 training rows out-of-fold (2 folds, seed 3), 20 from the run itself" in err
    assert (tmp_path / "oof.manifest.json").exists()
    code, _, err = run_alfia(["embed", small_run.run, "--input", small_run.text_path, "--out",
                              tmp_path / "plain.parquet", "--threads", "1"], capsys)
    assert code == 0, err
    boost = ["boost", small_run.cohort_path, "--learner", "lightgbm", "--profile", "fast", "--n-boot", "5",
             "--jobs", "1"]
    code, _, err = run_alfia([*boost, "--embeddings", tmp_path / "plain.parquet", "--out", tmp_path / "b1"], capsys)
    assert code == 0, err
    assert "warning (in-sample embeddings):" in err and "leak the training labels" in err
    assert "--cross-fit 5" in err and "plain.parquet" in err
    code, _, err = run_alfia([*boost, "--embeddings", tmp_path / "oof.parquet", "--out", tmp_path / "b2"], capsys)
    assert code == 0, err
    assert "in-sample" not in err
    assert (tmp_path / "b2" / "ALFIA-boost-LightGBM" / "predictions.parquet").exists()
    # A plain embedding replaces a cross-fitted one only with --overwrite, and takes its manifest away with it.
    plain = ["embed", small_run.run, "--input", small_run.text_path, "--out", tmp_path / "oof.parquet", "--threads", "1"]
    code, _, err = run_alfia(plain, capsys)
    assert code == 2 and "oof.parquet: already exists" in err
    code, _, err = run_alfia([*plain, "--overwrite"], capsys)
    assert code == 0, err
    assert not (tmp_path / "oof.manifest.json").exists()
    assert "embedding_source" not in pd.read_parquet(tmp_path / "oof.parquet").columns


def test_bad_cross_fit_inputs_are_named(small_run, tmp_path, capsys):
    from alfia.api.crossfit import cross_fit_embeddings

    for k in ("1", "0"):
        code, _, err = run_alfia(["embed", small_run.run, "--input", small_run.text_path, "--out",
                                  tmp_path / "e.parquet", "--cross-fit", k], capsys)
        assert code == 2 and f"--cross-fit must be a whole number >= 2 (the folds of the training rows), got {k}" \
            in err, err
    code, _, err = run_alfia(["embed", small_run.run, "--input", small_run.text_path, "--out",
                              tmp_path / "e.parquet", "--keep-folds"], capsys)
    assert code == 2 and "go with --cross-fit K" in err
    assert not (tmp_path / "e.parquet").exists()
    for column in ("split", "hospital_expire_flag", "text"):
        path = tmp_path / f"no_{column}.parquet"
        small_run.text.drop(columns=column).to_parquet(path)
        with pytest.raises(AlfiaError, match=rf"^{re.escape(str(path))}: no '{column}' column; --cross-fit refits"):
            cross_fit_embeddings(small_run.run, path, 2)
    other = tmp_path / "other.parquet"
    small_run.text.iloc[::-1].to_parquet(other)  # the same rows, another table: its train rows need not be the run's
    with pytest.raises(AlfiaError, match=r"other.parquet: not the text table .* was trained on"):
        cross_fit_embeddings(small_run.run, other, 2)
    # 7 deaths among the 60 training rows: 8 folds cannot all hold one.
    with pytest.raises(AlfiaError, match=r"--cross-fit 8 needs deaths and survivors in each of the 8 folds, but "
                                         r"the 'train' split has 7 deaths and 53 survivors; choose --cross-fit 7"):
        cross_fit_embeddings(small_run.run, small_run.text_path, 8)
    with pytest.raises(AlfiaError, match=r"got 2.5"):
        cross_fit_embeddings(small_run.run, small_run.text_path, 2.5)


def test_core_boost_warns_with_a_named_user_warning():
    from alfia.baselines.boost import InSampleEmbeddingsWarning, in_sample_training_rows, warn_if_in_sample

    cohort = pd.DataFrame({"stay_id": [1, 2, 3, 4], "split": ["train", "train", "val", "test"]})
    emb = pd.DataFrame({"stay_id": [4, 3, 2, 1], "alf_0": [0.1, 0.2, 0.3, 0.4]})
    assert issubclass(InSampleEmbeddingsWarning, UserWarning)
    with pytest.warns(InSampleEmbeddingsWarning, match=r"emb.parquet: has no 'embedding_source' column: its 2 "
                                                       r"training rows were not cross-fitted.*--cross-fit 5"):
        assert warn_if_in_sample(cohort, emb, "emb.parquet")
    mixed = emb.assign(embedding_source=["full_run", "full_run", "full_run", "out_of_fold"])
    assert in_sample_training_rows(cohort, mixed) == (1, 2)
    with pytest.warns(InSampleEmbeddingsWarning, match=r"1 of its 2 training rows are not 'out_of_fold'"):
        warn_if_in_sample(cohort, mixed, "emb.parquet")
    crossed = emb.assign(embedding_source=["full_run", "full_run", "out_of_fold", "out_of_fold"])
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not warn_if_in_sample(cohort, crossed, "emb.parquet")
