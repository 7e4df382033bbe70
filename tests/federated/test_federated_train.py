"""`alfia federated train` as a user runs it: FedAvg over sites (Flower), an ordinary run directory out, the
per-site table and the centralised comparison; both engines give the same model."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pandas as pd
import pytest

from alfia.runs import RunLayout, read_predictions
from cli_process import run_alfia
from training.conftest import make_text_frame, write_text_table

ROUNDS = 3
TINY = ["--fusion-layers", "2", "--max-length", "48", "--batch-size", "8", "--threads", "1", "--lr", "1e-3"]


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    df = make_text_frame(160, seed=4)
    df["hospitalid"] = np.arange(len(df)) % 6 + 10  # 6 hospitals of ~16 training stays: 3 groups of 2
    return write_text_table(df, tmp_path_factory.mktemp("fed") / "text.parquet")


@pytest.fixture(scope="module")
def run(table, tiny_backbone_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("fedrun") / "run"
    from alfia.federated import FederatedConfig, federated_train
    from alfia.federated.run import default_configs

    model, train = default_configs(dict(backbone=tiny_backbone_dir, n_fusion_layers=2, max_length=48),
                                   dict(batch_size=8, num_threads=1, head_lr=1e-3))
    summary = federated_train(table, out, FederatedConfig(rounds=ROUNDS, min_stays=30, min_deaths=3), model, train,
                              centralised=True, progress=False)
    return out, summary


def test_the_global_model_is_an_ordinary_run_directory(run, table, capsys):
    out, summary = run
    layout = RunLayout(out)
    config = json.loads(layout.config.read_text())
    assert config["model_type"] == "alfia" and config["model"]["train_layers"] == 0
    fed = config["federated"]
    assert fed["rounds"] == ROUNDS and fed["site_column"] == "hospitalid" and len(fed["sites"]["sites"]) == 3
    for name in ("predictions.parquet", "thresholds.json", "calibration.json", "fusion_head.safetensors",
                 "backbone.json", "history.jsonl", "federation.json", "sites.csv"):
        assert (out / name).is_file(), name
    pred = read_predictions(layout.predictions)
    text = pd.read_parquet(table)
    assert sorted(pred["stay_id"]) == sorted(text.loc[text["split"] != "train", "stay_id"])  # val + test, once each
    # evaluate, card and compare read it like any run; predict scores with it
    code, _, err = run_alfia(["evaluate", out, "--n-boot", "50"], capsys)
    assert code == 0, err
    assert json.loads(layout.metrics.read_text())["split"] == "test"
    code, _, err = run_alfia(["card", out, "--out", out.parent / "card.md"], capsys)
    assert code == 0, err
    assert "federated" in (out.parent / "card.md").read_text()
    code, _, err = run_alfia(["compare", out, layout.centralised, "--out", out.parent / "report", "--n-boot", "50"],
                             capsys)
    assert code == 0, err
    code, _, err = run_alfia(["predict", out, "--input", table, "--out", out.parent / "scores.parquet", "--threads", "1"],
                             capsys)
    assert code == 0, err
    scores = pd.read_parquet(out.parent / "scores.parquet").set_index("stay_id")["prob"]
    test = pred.set_index("stay_id")["prob"]
    assert np.allclose(scores.reindex(test.index), test, atol=1e-5)  # the run's predictions are the model's


def test_rounds_bytes_and_per_site_table(run):
    out, summary = run
    fed = json.loads(RunLayout(out).federation.read_text())
    rounds = fed["rounds"]
    assert [r["round"] for r in rounds] == list(range(1, len(rounds) + 1)) and len(rounds) <= ROUNDS
    assert all(r["sites_trained"] == 3 for r in rounds)
    from safetensors.torch import load_file

    weights = sum(t.numel() * t.element_size() for t in load_file(out / "fusion_head.safetensors").values())
    for r in rounds:  # down: the weights to 3 sites to train and to 3 to evaluate; up: 3 sites' weights
        assert 6 * weights <= r["bytes_down"] < 6 * weights * 1.1
        assert 3 * weights <= r["bytes_up"] < 3 * weights * 1.1
    assert fed["best_round"] == min(rounds, key=lambda r: r["val_loss"])["round"] == summary.best_round
    table = pd.read_csv(RunLayout(out).sites)
    assert set(table["split"]) == {"val", "test"} and len(table) == 6
    assert {"auroc", "auroc_ci_low", "auroc_ci_high", "auprc", "centralised_auroc"} <= set(table.columns)
    assert table.groupby("split")["stays"].sum().to_dict() == {"test": 32, "val": 32}


def test_centralised_comparison_trains_the_same_rows(run):
    out, _ = run
    central = RunLayout(out).centralised
    config = json.loads((central / "config.json").read_text())
    assert config["model_type"] == "alfia" and config["train"]["head_epochs"] == ROUNDS
    a = read_predictions(RunLayout(out).predictions)
    b = read_predictions(central / "predictions.parquet")
    assert sorted(a["stay_id"]) == sorted(b["stay_id"])


def test_fraction_samples_sites_each_round(table, tiny_backbone_dir, tmp_path, capsys):
    code, _, err = run_alfia(["federated", "train", table, "--out", tmp_path / "run", "--site-column", "hospitalid",
                              "--backbone", tiny_backbone_dir, *TINY, "--rounds", "2", "--fraction", "0.5",
                              "--min-stays", "30", "--min-deaths", "3"], capsys)
    assert code == 0, err
    assert "3 sites, best round" in err and "group-1: 2 hospitalid value(s) pooled (10, 11)" in err
    rounds = json.loads((tmp_path / "run" / "federation.json").read_text())["rounds"]
    assert [r["sites_trained"] for r in rounds] == [1, 1]  # int(3 x 0.5) = 1 site a round


def test_bad_site_column_is_one_line_and_writes_nothing(table, tiny_backbone_dir, tmp_path, capsys):
    code, _, err = run_alfia(["federated", "train", table, "--out", tmp_path / "run", "--site-column", "icu_type",
                              "--backbone", tiny_backbone_dir, *TINY], capsys)
    assert code == 2 and "no column 'icu_type' to take the sites from" in err
    assert not (tmp_path / "run").exists()
    code, _, err = run_alfia(["federated", "train", table, "--out", tmp_path / "run", "--min-stays", "1000",
                              "--backbone", tiny_backbone_dir, *TINY], capsys)
    assert code == 2 and "federated training needs at least 2" in err


@pytest.mark.integration  # starts Ray's processes (15-60 s on 2 busy cores)
@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="ray (flwr[simulation]) is not installed")
def test_ray_engine_gives_the_in_process_model(table, tiny_backbone_dir, tmp_path):
    """Flower's Simulation Engine (Ray actors, states read from spilled files) trains the in-process model."""
    from alfia.federated import FederatedConfig, federated_train
    from alfia.federated.run import default_configs

    model, train = default_configs(dict(backbone=tiny_backbone_dir, n_fusion_layers=2, max_length=48),
                                   dict(batch_size=8, num_threads=1, head_lr=1e-3))
    probs = {}
    for engine in ("inprocess", "ray"):
        federated_train(table, tmp_path / engine, FederatedConfig(rounds=1, min_stays=30, min_deaths=3, engine=engine,
                                                                  ray_cpus=1), model, train, progress=False)
        probs[engine] = read_predictions(tmp_path / engine / "predictions.parquet").set_index("stay_id")["prob"]
        assert not (tmp_path / engine / ".federated-sites").exists()  # the sites' scratch states are removed
    assert np.allclose(probs["inprocess"], probs["ray"].reindex(probs["inprocess"].index), atol=1e-5)
