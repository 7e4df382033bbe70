"""Extension points: a pooler or a backbone family is one row of a table (plus, for a pooler, its class)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from alfia.errors import AlfiaError
from alfia.models import AlfiaConfig, AlfiaModel, build_model
from alfia.models.families import FAMILIES, BackboneFamily, family_of
from alfia.models.masking import masked_mean
from alfia.models.poolers import POOLERS, PoolerSpec
from alfia.models.testing import tiny_bert, tiny_tokenizer


class LowestLayerMean(nn.Module):
    """A throwaway pooler: the scaled masked mean of the lowest of the top N_f layers."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    @classmethod
    def from_config(cls, config, hidden_size):
        return cls()

    def forward(self, layers, attention_mask):
        return self.scale * masked_mean(layers[0], attention_mask), None


@pytest.fixture
def lowest_mean_pooler(monkeypatch):
    monkeypatch.setitem(POOLERS, "lowest_mean", PoolerSpec(LowestLayerMean, reads_top_layers=True))


def test_every_row_of_the_table_names_a_pooler_class():
    # The table names its classes lazily ("module:Class"): a typo there must fail here, not at a user's build.
    for name, spec in POOLERS.items():
        cls = spec.resolve()
        assert isinstance(cls, type) and issubclass(cls, nn.Module) and hasattr(cls, "from_config"), name


def test_an_unregistered_pooler_is_refused_with_the_table_listed():
    with pytest.raises(AlfiaError, match="unknown pooler 'lowest_mean'; choose one of alf, cls, mean, max, "
                                         "static_mean"):
        AlfiaConfig(pooler="lowest_mean")


def test_a_pooler_registered_in_the_table_validates_builds_runs_and_reloads(lowest_mean_pooler, tiny_bert, texts,
                                                                           tmp_path):
    config = AlfiaConfig.from_dict({"backbone": str(tiny_bert), "pooler": "lowest_mean", "n_fusion_layers": 3,
                                    "train_layers": 0})
    model = build_model(config).eval()
    assert isinstance(model.pooler, LowestLayerMean) and model.n_pooled_layers == 3
    batch = model.tokenize(texts)
    with torch.no_grad():
        out = model(**batch)
        hidden = model.encoder(**batch, output_hidden_states=True).hidden_states
    # It was handed the top 3 of the 4 layers, lowest first (the standardisation is the identity until fitted).
    assert torch.allclose(out.embedding, masked_mean(hidden[-3], batch["attention_mask"]), atol=1e-6)
    assert out.logits.shape == (4,) and out.layer_weights is None

    with torch.no_grad():
        model.pooler.scale.fill_(2.0)
    model.save_pretrained(tmp_path / "run")
    back = AlfiaModel.from_pretrained(tmp_path / "run")
    assert back.config.pooler == "lowest_mean" and float(back.pooler.scale) == 2.0


def test_no_model_type_is_claimed_by_two_families():
    claimed = [t for family in FAMILIES.values() for t in family.model_types]
    assert len(claimed) == len(set(claimed))
    assert family_of("bert") is family_of("an-encoder-nobody-registered")


def _renamed_tiny_bert(model_type: str):
    model, tokenizer = tiny_bert()
    model.config.model_type = model_type
    return model, tokenizer


def test_a_registered_family_sets_the_position_offset(monkeypatch):
    model, tokenizer = _renamed_tiny_bert("tiny-family")
    unregistered = build_model(AlfiaConfig(train_layers=0), backbone=model, tokenizer=tokenizer)
    assert unregistered.max_length == 512  # the default family reserves no positions

    monkeypatch.setitem(FAMILIES, "tiny-family", BackboneFamily("tiny-family", ("tiny-family",),
                                                                positions_after_padding=True))
    with pytest.warns(UserWarning, match="texts are truncated to 511 tokens"):
        registered = build_model(AlfiaConfig(train_layers=0), backbone=model, tokenizer=tokenizer)
    assert registered.max_length == 512 - (tokenizer.pad_token_id + 1)  # RoBERTa's rule: padding_idx + 1


def _tiny_modernbert_renamed(model_type: str):
    from transformers import AutoModel, ModernBertConfig

    tokenizer = tiny_tokenizer()
    config = ModernBertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                              intermediate_size=64, pad_token_id=tokenizer.pad_token_id,
                              bos_token_id=tokenizer.cls_token_id, eos_token_id=tokenizer.sep_token_id,
                              cls_token_id=tokenizer.cls_token_id, sep_token_id=tokenizer.sep_token_id,
                              global_attn_every_n_layers=2, local_attention=8)
    model = AutoModel.from_config(config)
    model.config.model_type = model_type  # an architecture ALFIA has no row for
    return model, tokenizer


def test_a_registered_family_sets_the_lora_targets(monkeypatch, texts):
    model, tokenizer = _tiny_modernbert_renamed("tiny-family")
    config = AlfiaConfig(n_fusion_layers=2, train_layers="all", finetune="lora", attention_dropout=None)
    with pytest.raises(AlfiaError, match="query, key, value, output.dense match no linear layer"):
        build_model(config, backbone=model, tokenizer=tokenizer)

    monkeypatch.setitem(FAMILIES, "tiny-family", BackboneFamily("tiny-family", ("tiny-family",),
                                                                lora_targets=("Wqkv", "attn.Wo")))
    with pytest.warns(UserWarning, match="using the tiny-family equivalents Wqkv, attn.Wo"):
        alfia = build_model(config, backbone=model, tokenizer=tokenizer)
    adapted = {n.split(".lora_A")[0].split(".")[-1] for n, _ in alfia.named_parameters() if "lora_A" in n}
    assert adapted == {"Wqkv", "Wo"}
    assert set(alfia.encoder.peft_config["default"].target_modules) == {"Wqkv", "attn.Wo"}
    out = alfia.eval()(**alfia.tokenize(texts))
    assert out.logits.shape == (4,) and torch.isfinite(out.logits).all()


@pytest.mark.parametrize("model_type, pad_token_id, reserved", [
    ("roberta", 1, 2), ("xlm-roberta", 1, 2), ("camembert", 1, 2), ("bert", 0, 0), ("modernbert", 50283, 0)])
def test_known_families_reserve_the_positions_they_always_did(model_type, pad_token_id, reserved):
    from types import SimpleNamespace

    config = SimpleNamespace(model_type=model_type, pad_token_id=pad_token_id)
    assert family_of(model_type).position_offset(config) == reserved


def test_deberta_v2_gets_its_own_attention_targets_although_output_dense_matches():
    """DeBERTa-v2 has BERT's `output.dense` but not query/key/value: LoRA must still reach its attention."""
    from transformers import AutoModel, DebertaV2Config

    from alfia.models.lora import resolve_target_modules

    tokenizer = tiny_tokenizer()
    model = AutoModel.from_config(DebertaV2Config(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2,
                                                  num_attention_heads=4, intermediate_size=64))
    with pytest.warns(UserWarning, match="using the deberta-v2 equivalents"):
        targets = resolve_target_modules(model, AlfiaConfig().lora)
    assert targets == FAMILIES["deberta-v2"].lora_targets and "query_proj" in targets
