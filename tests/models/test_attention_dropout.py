"""``attention_dropout``: the encoder's attention-probability dropout, kept or overridden, and saved with the run."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from alfia.errors import AlfiaError
from alfia.models import AlfiaConfig, AlfiaModel, build_model
from alfia.models.backbone import set_attention_dropout


def _attention_dropout_rates(model: AlfiaModel) -> list[float]:
    return [m.dropout.p for m in model.modules() if hasattr(m, "attention_head_size")]


def _only_attention_dropout_left(model: AlfiaModel) -> None:
    """Zero every dropout except the attention probabilities', so train-mode randomness comes from them alone."""
    attention = {id(m.dropout) for m in model.modules() if hasattr(m, "attention_head_size")}
    for module in model.modules():
        if isinstance(module, nn.Dropout) and id(module) not in attention:
            module.p = 0.0


def _two_train_mode_logits(model: AlfiaModel, texts) -> tuple[torch.Tensor, torch.Tensor]:
    model.train()
    batch = model.tokenize(texts)
    with torch.no_grad():
        return model(**batch).logits, model(**batch).logits


def test_none_keeps_the_backbones_own_rate_and_the_cpu_default_is_0(tiny_bert):
    model = build_model(AlfiaConfig(backbone=str(tiny_bert), n_fusion_layers=2, dropout=0.0, attention_dropout=None))
    assert _attention_dropout_rates(model) == [0.1] * 4  # BertConfig's attention_probs_dropout_prob
    default = build_model(AlfiaConfig(backbone=str(tiny_bert), n_fusion_layers=2))
    assert _attention_dropout_rates(default) == [0.0] * 4  # the fused CPU attention kernel


@pytest.mark.parametrize("rate", [0.0, 0.3])
def test_override_reaches_every_attention_layer_and_the_encoder_config(tiny_bert, rate):
    model = build_model(AlfiaConfig(backbone=str(tiny_bert), n_fusion_layers=2, attention_dropout=rate))
    assert _attention_dropout_rates(model) == [rate] * 4
    assert model._base_encoder().config.attention_probs_dropout_prob == rate


def test_zero_makes_train_mode_deterministic_and_a_positive_rate_does_not(tiny_bert, texts):
    # The setting must reach the attention computation itself, not just a module attribute.
    quiet = build_model(AlfiaConfig(backbone=str(tiny_bert), n_fusion_layers=2, dropout=0.0, attention_dropout=0.0,
                                    lora={"dropout": 0.0}))
    _only_attention_dropout_left(quiet)
    first, second = _two_train_mode_logits(quiet, texts)
    assert torch.equal(first, second)

    noisy = build_model(AlfiaConfig(backbone=str(tiny_bert), n_fusion_layers=2, dropout=0.0, attention_dropout=0.5,
                                    lora={"dropout": 0.0}))
    _only_attention_dropout_left(noisy)
    first, second = _two_train_mode_logits(noisy, texts)
    assert not torch.equal(first, second)


def test_the_rate_is_saved_and_applied_again_on_load(tiny_bert, tmp_path):
    model = build_model(AlfiaConfig(backbone=str(tiny_bert), n_fusion_layers=2, attention_dropout=0.0))
    model.save_pretrained(tmp_path / "run")
    loaded = AlfiaModel.from_pretrained(tmp_path / "run", trainable=True)
    assert loaded.config.attention_dropout == 0.0
    assert _attention_dropout_rates(loaded) == [0.0] * 4


@pytest.mark.parametrize("bad", [1.0, -0.1, "0.1", True])
def test_bad_rates_are_refused_with_the_field_named(bad):
    with pytest.raises(AlfiaError, match="attention_dropout"):
        AlfiaConfig(attention_dropout=bad)


def test_an_encoder_without_known_attention_is_refused():
    with pytest.raises(AlfiaError, match="Sequential.*no attention module"):
        set_attention_dropout(nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.1)), 0.0)
