"""The training recipes: cached frozen states, the state standardisation that stops the ALF collapse (issue 10),
the head warm start before the encoder trains (LP-FT), top-K training over a cached bottom and the named recipes
(issue 19), post-hoc calibration and bf16/fp32 agreement."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from alfia.errors import AlfiaError
from alfia.models import AlfiaConfig, build_model
from alfia.models.calibrator import Calibrator
from alfia.training import TrainConfig, train_run
from alfia.runtime import FrozenStates, compute_frozen_states, predict_logits, tokenize_table

from .conftest import make_text_frame, write_text_table


def _tiny(backbone, **model):
    return AlfiaConfig(backbone=backbone, n_fusion_layers=2, max_length=64, **model)


def test_cached_states_give_the_logits_of_the_full_forward_pass(tiny_backbone_dir):
    torch.manual_seed(0)
    model = build_model(_tiny(tiny_backbone_dir, train_layers=0)).eval()
    data = tokenize_table(make_text_frame(24), model.tokenizer, 64)
    states = compute_frozen_states(model, data, batch_size=5, pad_token_id=0, device=torch.device("cpu"))
    assert isinstance(states, FrozenStates) and len(states) == 24
    assert [s.shape[0] for s in states.states] == data.lengths.tolist()  # unpadded, one per text
    assert states.states[0].shape[1:] == (2, model.hidden_size)
    direct = predict_logits(model, data, batch_size=7, pad_token_id=0, device=torch.device("cpu"))
    cached = predict_logits(model, states, batch_size=7, pad_token_id=0, device=torch.device("cpu"))
    np.testing.assert_allclose(cached, direct, atol=2e-3)  # fp16 storage of the states


def test_state_standardisation_centres_and_scales_each_dimension(tiny_backbone_dir):
    model = build_model(_tiny(tiny_backbone_dir, train_layers=0))
    rng = torch.Generator().manual_seed(0)
    states = [5.0 + 0.1 * torch.randn(int(n), 2, model.hidden_size, generator=rng) for n in (700, 1100, 300)]
    model.fit_state_standardisation(states)
    assert torch.allclose(model.state_mean, torch.full_like(model.state_mean, 5.0), atol=0.05)
    assert torch.allclose(model.state_scale, torch.full_like(model.state_scale, 0.1), atol=0.03)
    with pytest.raises(AlfiaError, match="at least two tokens"):
        model.fit_state_standardisation([torch.zeros(1, 2, model.hidden_size)])


def test_the_logit_spread_grows_during_training_instead_of_collapsing(tmp_path, tiny_backbone_dir):
    """The collapse was the head's logits shrinking to one value for every patient (SD 0.000 on PhysioNet)."""
    torch.manual_seed(0)
    df = make_text_frame(160, seed=3)
    table = write_text_table(df, tmp_path / "text.parquet")
    model_config = _tiny(tiny_backbone_dir, train_layers=0)
    untrained = build_model(model_config).eval()
    data = tokenize_table(df[df.split == "val"], untrained.tokenizer, 64)
    before = predict_logits(untrained, data, batch_size=16, pad_token_id=0, device=torch.device("cpu")).std()
    summary = train_run(table, tmp_path / "run", model_config,
                        TrainConfig(head_epochs=12, head_lr=2e-3, batch_size=16, num_threads=1, patience=12,
                                    calibration="none"), progress=False)
    after = predict_logits(summary.model.eval(), data, batch_size=16, pad_token_id=0, device=torch.device("cpu")).std()
    assert after > 2 * before and after > 0.1, (before, after)
    assert summary.best_val_auprc > 0.5  # the words carry the label (prevalence 0.3)


def test_train_layers_0_trains_the_head_on_cached_states_only(tmp_path, tiny_backbone_dir):
    table = write_text_table(make_text_frame(), tmp_path / "text.parquet")
    run = tmp_path / "run"
    train_run(table, run, _tiny(tiny_backbone_dir, train_layers=0),
              TrainConfig(head_epochs=2, batch_size=8, num_threads=1), progress=False)
    config = json.loads((run / "config.json").read_text())
    assert config["model"]["train_layers"] == 0 and config["encoder"]["trainable_encoder_parameters"] == 0
    assert not (run / "adapter").exists() and not (run / "encoder.safetensors").exists()
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    assert [h["phase"] for h in history] == ["head", "head"]
    assert config["result"]["best_phase"] == "head"
    assert (run / "thresholds.json").exists()  # a direct call leaves a complete run (finish_run)


def test_cpu_default_fine_tunes_the_top_layers_over_a_cached_bottom(tmp_path, tiny_backbone_dir):
    """What `alfia train TEXT --out RUN` does on a CPU: the cpu recipe, recorded in config.json."""
    from alfia.models.testing import tiny_backbone
    from alfia.training.run import configs_from

    four_layers = str(tiny_backbone(tmp_path, layers=4))
    table = write_text_table(make_text_frame(), tmp_path / "text.parquet")
    run = tmp_path / "run"
    _, model_config, train_config, recipe = configs_from(
        None, table, {"backbone": four_layers, "n_fusion_layers": 2, "max_length": 64},
        {"epochs": 2, "num_threads": 1, "device": "cpu", "rows_per_epoch": 40})
    assert recipe == "cpu" and model_config.train_layers == 2 and model_config.finetune == "full"
    train_run(table, run, model_config, train_config, recipe=recipe, progress=False)
    config = json.loads((run / "config.json").read_text())
    assert config["recipe"] == "cpu"
    assert config["encoder"] | {"trainable_encoder_parameters": 0, "trainable_head_parameters": 0} == {
        "layers": 4, "trained_layers": 2, "finetune": "full", "pruned": None, "cached_bottom": [2],
        "trainable_encoder_parameters": 0, "trainable_head_parameters": 0}
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    assert [h["phase"] for h in history] == ["head"] * 3 + ["joint"] * 2
    from safetensors.torch import load_file

    saved = load_file(str(run / "encoder.safetensors"))  # only the trained top 2 layers' weights
    assert {k.split("layer.")[1].split(".")[0] for k in saved} == {"2", "3"}


def test_recipes_set_their_values_and_options_override_them(tiny_backbone_dir):
    from alfia.training.run import configs_from

    _, model, train, name = configs_from(None, "t.parquet", {}, {"device": "cpu"}, recipe="paper")
    assert name == "paper" and (model.train_layers, model.finetune, model.attention_dropout) == ("all", "lora", None)
    assert (train.head_epochs, train.pos_weight, train.lr, train.batch_size, train.epochs, train.patience) == (
        0, "auto", 2e-4, 16, 30, 5)
    _, model, train, _ = configs_from(None, "t.parquet", {"train_layers": "1"}, {"epochs": 3}, recipe="paper")
    assert model.train_layers == 1 and train.epochs == 3 and train.head_epochs == 0
    _, model, _, _ = configs_from(None, "t.parquet", {}, {}, recipe="frozen")
    assert model.train_layers == 0
    with pytest.raises(AlfiaError, match="unknown recipe 'fast'"):
        configs_from(None, "t.parquet", {}, {}, recipe="fast")


def test_head_warm_start_then_lora_writes_both_phases(tmp_path, tiny_backbone_dir):
    table = write_text_table(make_text_frame(), tmp_path / "text.parquet")
    run = tmp_path / "run"
    summary = train_run(table, run, _tiny(tiny_backbone_dir, train_layers="all", finetune="lora"),
                        TrainConfig(head_epochs=2, epochs=2, batch_size=8, num_threads=1,
                                    lr=1e-3, head_lr=3e-3), progress=False)
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    assert [h["phase"] for h in history] == ["head", "head", "joint", "joint"]
    assert (run / "adapter").exists() and summary.epochs_run == 4
    # Two learning rates: the head's (head_lr) and the LoRA's (lr). Both follow one schedule, so in the joint
    # phase the head's rate is head_lr/lr = 3 times the LoRA's at every step; were head_lr ignored it would be 1.
    joint = history[2]
    assert joint["head_lr"] / joint["lr"] == pytest.approx(3.0) and 0 < joint["lr"] <= 1e-3
    # The warm start trains the head alone, at head_lr's schedule: above anything lr (1e-3) could give.
    assert history[0]["lr"] == history[0]["head_lr"] and 1e-3 < max(h["lr"] for h in history[:2]) <= 3e-3


def test_calibration_is_saved_applied_and_round_trips(tmp_path):
    rng = np.random.default_rng(0)
    logits = rng.normal(size=4000)
    labels = (rng.random(4000) < 1 / (1 + np.exp(-(0.5 + 2.0 * logits)))).astype(int)
    platt = Calibrator.fit("platt", logits, labels)
    assert abs(platt.slope - 2.0) < 0.2 and abs(platt.intercept - 0.5) < 0.15
    iso = Calibrator.fit("isotonic", logits, labels)
    probe = np.linspace(-3, 3, 13)
    assert np.all(np.diff(iso.transform(probe)) >= 0)  # monotone
    for calibrator in (platt, iso, Calibrator.fit("none", logits, labels)):
        calibrator.save_json(tmp_path / "c.json")
        again = Calibrator.load_json(tmp_path / "c.json")
        np.testing.assert_array_equal(again.transform(probe), calibrator.transform(probe))
    np.testing.assert_allclose(Calibrator("none").transform(np.array([0.0])), [0.5])
    with pytest.raises(AlfiaError, match="one class"):
        Calibrator.fit("platt", logits, np.zeros(4000))
    (tmp_path / "bad.json").write_text(json.dumps({"method": "sigmoid"}))
    with pytest.raises(AlfiaError, match="bad.json.*unknown calibration method"):
        Calibrator.load_json(tmp_path / "bad.json")


def test_a_trained_run_writes_calibrated_and_raw_probabilities(tmp_path, tiny_backbone_dir):
    table = write_text_table(make_text_frame(), tmp_path / "text.parquet")
    run = tmp_path / "run"
    train_run(table, run, _tiny(tiny_backbone_dir, train_layers=0),
              TrainConfig(head_epochs=2, batch_size=8, num_threads=1, pos_weight="auto"), progress=False)
    calibrator = Calibrator.load_json(run / "calibration.json")
    preds = pd.read_parquet(run / "predictions.parquet")
    raw = np.clip(preds["prob_uncalibrated"].to_numpy(), 1e-12, 1 - 1e-12)
    np.testing.assert_allclose(preds["prob"], calibrator.transform(np.log(raw / (1 - raw))), atol=1e-6)
    from alfia.evaluation import evaluate_run

    result = evaluate_run(run, split="test", n_boot=50)
    assert set(result["calibration_before"]) == {"brier", "calibration_slope", "calibration_intercept", "ece"}


def test_bf16_and_fp32_logits_agree(tiny_backbone_dir):
    torch.manual_seed(0)
    model = build_model(_tiny(tiny_backbone_dir)).eval()
    data = tokenize_table(make_text_frame(16), model.tokenizer, 64)
    kwargs = dict(batch_size=8, pad_token_id=0, device=torch.device("cpu"))
    fp32 = predict_logits(model, data, precision="fp32", **kwargs)
    bf16 = predict_logits(model, data, precision="bf16", **kwargs)
    # bf16 keeps 8 bits of mantissa: logits of this tiny model (|x| < 3) agree to a few hundredths.
    assert np.max(np.abs(bf16 - fp32)) < 0.05 and not np.array_equal(bf16, fp32)


def test_lora_can_start_from_the_head_of_a_cached_state_run(tmp_path, tiny_backbone_dir):
    """LP-FT across two runs: a cheap cached-state run, then LoRA from its best head."""
    from alfia.models import AlfiaModel

    table = write_text_table(make_text_frame(), tmp_path / "text.parquet")
    frozen, lora = tmp_path / "frozen", tmp_path / "lora"
    train_run(table, frozen, _tiny(tiny_backbone_dir, train_layers=0),
              TrainConfig(head_epochs=2, batch_size=8, num_threads=1), progress=False)
    train_run(table, lora, _tiny(tiny_backbone_dir, train_layers="all", finetune="lora"),
              TrainConfig(epochs=1, batch_size=8, num_threads=1, head_from=str(frozen)),
              progress=False)
    history = [json.loads(line) for line in (lora / "history.jsonl").read_text().splitlines()]
    assert [h["phase"] for h in history] == ["joint"] and (lora / "adapter").exists()
    warm, tuned = AlfiaModel.from_pretrained(frozen), AlfiaModel.from_pretrained(lora)
    assert torch.equal(warm.state_mean, tuned.state_mean)  # the standardisation travels with the head


def test_a_run_config_that_names_its_recipe_starts_from_that_recipe(tmp_path):
    """`--config FILE` with {"recipe": "frozen"} (e.g. LeMoF's --text-config) trains the frozen recipe, not the cpu one."""
    from alfia.training.run import configs_from

    path = tmp_path / "frozen.json"
    path.write_text(json.dumps({"recipe": "frozen", "train": {"epochs": 3}}))
    _, model, train, name = configs_from(path, "t.parquet", {}, {"device": "cpu"})
    assert name == "frozen" and model.train_layers == 0
    assert (train.head_epochs, train.rows_per_epoch, train.epochs) == (30, None, 3)
    _, model, _, name = configs_from(path, "t.parquet", {}, {"device": "cpu"}, recipe="cpu")  # named: it wins
    assert name == "cpu" and model.train_layers == 2
