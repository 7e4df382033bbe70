from __future__ import annotations

import json

import pytest

from alfia.errors import AlfiaError
from alfia.models import AlfiaConfig, LoraSettings


def test_defaults_are_the_papers_architecture_and_the_cpu_recipes_training():
    c = AlfiaConfig()
    assert (c.backbone, c.n_fusion_layers, c.fusion_heads, c.gating, c.pooler, c.classifier_heads) == (
        None, 4, 4, True, "alf", 4)
    assert (c.train_layers, c.finetune, c.standardise_states, c.prune_layers) == (2, "full", True, None)
    assert (c.lora.r, c.lora.alpha, c.lora.dropout) == (16, 16, 0.05)
    assert c.lora.target_modules == ("query", "key", "value", "output.dense")


def test_json_round_trip(tmp_path):
    c = AlfiaConfig(backbone="/models/x", n_fusion_layers=3, gating=False, pooler="static_mean",
                    finetune="full", lora=LoraSettings(r=8, alpha=32, target_modules="query, value"), max_length=256)
    path = c.to_json(tmp_path / "sub" / "model_config.json")
    assert json.loads(path.read_text())["lora"]["target_modules"] == ["query", "value"]
    back = AlfiaConfig.from_json(path)
    assert back == c
    assert back.lora.target_modules == ("query", "value")
    assert AlfiaConfig.from_dict(c.to_dict()) == c


@pytest.mark.parametrize("kwargs, words", [
    ({"pooler": "attention"}, ["pooler", "attention", "static_mean"]),
    ({"finetune": "partial"}, ["finetune", "partial", "train_layers: 0"]),
    ({"train_layers": -1}, ["train_layers", "'all'"]),
    ({"train_layers": "top"}, ["train_layers", "top"]),
    ({"standardise_states": "no"}, ["standardise_states"]),
    ({"n_fusion_layers": 0}, ["n_fusion_layers"]),
    ({"dropout": 1.5}, ["dropout"]),
    ({"gating": "yes"}, ["gating"]),
    ({"backbone": ""}, ["backbone"]),
    ({"lora": {"r": 0}}, ["lora.r"]),
    ({"lora": {"target_modules": ""}}, ["target_modules"]),
    ({"lora": {"bias": "some"}}, ["lora.bias"]),
])
def test_bad_values_are_refused_with_the_field_named(kwargs, words):
    with pytest.raises(AlfiaError) as e:
        AlfiaConfig(**kwargs)
    for w in words:
        assert w in str(e.value)


def test_unknown_keys_are_refused_naming_the_source():
    with pytest.raises(AlfiaError, match=r"run\.json: unknown key\(s\) n_layers"):
        AlfiaConfig.from_dict({"n_layers": 4}, source="run.json")
    with pytest.raises(AlfiaError, match=r"lora: unknown key\(s\) rank"):
        AlfiaConfig.from_dict({"lora": {"rank": 4}}, source="run.json")


def test_from_json_errors_name_the_file(tmp_path):
    with pytest.raises(AlfiaError, match="model_config.json: model config not found"):
        AlfiaConfig.from_json(tmp_path / "model_config.json")
    bad = tmp_path / "broken.json"
    bad.write_text('{"pooler": "alf",')
    with pytest.raises(AlfiaError, match="broken.json: not valid JSON"):
        AlfiaConfig.from_json(bad)
    bad.write_text('{"pooler": "xyz"}')
    with pytest.raises(AlfiaError, match="broken.json: unknown pooler 'xyz'"):
        AlfiaConfig.from_json(bad)


def test_a_run_saved_before_train_layers_loads_with_its_meaning():
    """Old config.json files said finetune="frozen" (nothing trained) or "lora"/"full" (every layer)."""
    assert (AlfiaConfig.from_dict({"finetune": "frozen"}).train_layers, AlfiaConfig.from_dict({"finetune": "frozen"}).finetune) == (0, "lora")
    assert AlfiaConfig.from_dict({"finetune": "lora"}).train_layers == "all"
    assert AlfiaConfig.from_dict({"finetune": "full", "train_layers": 3}).train_layers == 3
    assert AlfiaConfig(train_layers="2").train_layers == 2  # from a CLI option
