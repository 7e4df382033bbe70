"""The assembled model on a tiny random BERT: training modes, masking, save/load, bad checkpoints."""

from __future__ import annotations

import shutil

import pytest
import torch

from alfia.errors import AlfiaError
from alfia.models import AlfiaConfig, AlfiaModel, build_model
from alfia.runs import RunLayout


def _model(backbone, **kwargs):
    return build_model(AlfiaConfig(backbone=str(backbone), **kwargs))


def _probabilities(model, batch):
    with torch.no_grad():
        return torch.sigmoid(model(**batch).logits)


def test_forward_shapes(tiny_bert, texts):
    model = _model(tiny_bert).eval()
    batch = model.tokenize(texts)
    out = model(**batch)
    assert out.logits.shape == (4,)
    assert out.embedding.shape == (4, 32)
    assert out.layer_weights.shape == (4, 4)
    assert ((out.layer_weights > 0) & (out.layer_weights < 1)).all()
    assert model.backbone_reference["source"] == "local"
    assert model.backbone_reference["num_layers"] == 4 and model.backbone_reference["hidden_size"] == 32
    assert model.max_length == 512


def test_layer_weights_sum_to_one_without_gating(tiny_bert, texts):
    model = _model(tiny_bert, gating=False).eval()
    w = model(**model.tokenize(texts)).layer_weights
    assert w.shape == (4, 4)
    assert torch.allclose(w.sum(-1), torch.ones(4), atol=1e-6)


@pytest.mark.parametrize("pooler", ["alf", "cls", "mean", "max", "static_mean"])
def test_token_ids_at_padded_positions_change_nothing(tiny_bert, texts, pooler):
    model = _model(tiny_bert, pooler=pooler).eval()
    batch = model.tokenize(texts)
    pad = batch["attention_mask"] == 0
    assert pad.any()
    scrambled = dict(batch, input_ids=batch["input_ids"].masked_fill(pad, 42))
    with torch.no_grad():
        a, b = model(**batch), model(**scrambled)
    assert torch.allclose(a.embedding, b.embedding, atol=1e-6, rtol=0)
    assert torch.allclose(a.logits, b.logits, atol=1e-6, rtol=0)


def test_dynamic_padding_does_not_change_a_text_score(tiny_bert, texts):
    model = _model(tiny_bert).eval()
    together = _probabilities(model, model.tokenize(texts))
    alone = torch.cat([_probabilities(model, model.tokenize([t])) for t in texts])
    assert torch.allclose(together, alone, atol=1e-5)


def test_with_lora_only_lora_alf_and_ach_get_gradients(tiny_bert, texts):
    model = _model(tiny_bert, train_layers="all", finetune="lora").train()
    model(**model.tokenize(texts)).logits.sum().backward()
    with_grad = {n for n, p in model.named_parameters() if p.grad is not None}
    assert with_grad
    assert all("lora_" in n or n.startswith(("pooler.", "head.")) for n in with_grad), with_grad
    assert any("lora_" in n for n in with_grad)
    assert any(n.startswith("pooler.") for n in with_grad) and any(n.startswith("head.") for n in with_grad)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == with_grad
    # the paper's targets: query, key, value and both output.dense layers of each of the 4 layers
    lora_modules = {n.split(".lora_")[0] for n in trainable if "lora_A" in n}
    assert len(lora_modules) == 4 * 5
    assert {p for p in model.trainable_parameters()} == {p for n, p in model.named_parameters() if n in trainable}


def test_frozen_trains_only_alf_and_ach(tiny_bert, texts):
    model = _model(tiny_bert, train_layers=0).train()
    model(**model.tokenize(texts)).logits.sum().backward()
    with_grad = {n for n, p in model.named_parameters() if p.grad is not None}
    assert with_grad and all(n.startswith(("pooler.", "head.")) for n in with_grad)
    assert not any(p.requires_grad for p in model.encoder.parameters())


def test_full_finetune_trains_the_encoder(tiny_bert, texts):
    model = _model(tiny_bert, train_layers="all", finetune="full").train()
    model(**model.tokenize(texts)).logits.sum().backward()
    assert model.encoder.encoder.layer[0].attention.self.query.weight.grad is not None


def test_more_fusion_layers_than_the_backbone_has_is_an_error(tiny_bert):
    with pytest.raises(AlfiaError, match=r"n_fusion_layers=5 .* depth \(4 layers"):
        _model(tiny_bert, n_fusion_layers=5)
    _model(tiny_bert, n_fusion_layers=5, pooler="cls")  # cls reads only the last layer


def test_a_tiny_batch_can_be_overfitted(tiny_bert, texts):
    model = _model(tiny_bert, dropout=0.0).train()
    batch = model.tokenize(texts)
    labels = torch.tensor([1.0, 0.0, 1.0, 0.0])
    optimizer = torch.optim.AdamW(model.trainable_parameters(), lr=3e-3)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    for _ in range(150):
        optimizer.zero_grad()
        loss = loss_fn(model(**batch).logits, labels)
        loss.backward()
        optimizer.step()
        if loss.item() < 0.01:
            break
    assert loss.item() < 0.01


@pytest.mark.parametrize("finetune", ["lora", "frozen", "full"])
def test_save_load_predict_gives_identical_probabilities(tiny_bert, texts, tmp_path, finetune):
    model = _model(tiny_bert, **({"train_layers": 0} if finetune == "frozen" else
                                 {"train_layers": "all", "finetune": finetune}))
    # move every trainable weight away from its initial value, LoRA's zero-initialised B included
    with torch.no_grad():
        for p in model.trainable_parameters():
            p.add_(torch.randn_like(p) * 0.05)
    model.eval()
    batch = model.tokenize(texts)
    expected = _probabilities(model, batch)
    layout = model.save_pretrained(tmp_path / "run")
    assert layout.config.is_file() and layout.backbone.is_file() and layout.fusion_head.is_file()
    assert layout.adapter.is_dir() == (finetune == "lora")
    assert layout.encoder_weights.is_file() == (finetune == "full")

    loaded = AlfiaModel.from_pretrained(tmp_path / "run")
    assert not loaded.training
    assert loaded.config == model.config
    assert loaded.trainable_parameters() == []
    assert torch.equal(_probabilities(loaded, loaded.tokenize(texts)), expected)
    resumed = AlfiaModel.from_pretrained(tmp_path / "run", trainable=True)
    assert {n for n, p in resumed.named_parameters() if p.requires_grad} == {
        n for n, p in model.named_parameters() if p.requires_grad}


def test_save_overwrites_a_previous_save(tiny_bert, texts, tmp_path):
    first, second = _model(tiny_bert), _model(tiny_bert)
    with torch.no_grad():
        for p in second.trainable_parameters():
            p.add_(0.1)
    first.save_pretrained(tmp_path)
    second.save_pretrained(tmp_path)
    loaded = AlfiaModel.from_pretrained(tmp_path)
    batch = loaded.tokenize(texts)
    assert torch.equal(_probabilities(loaded, batch), _probabilities(second.eval(), batch))


@pytest.fixture
def saved_run(tiny_bert, tmp_path):
    model = _model(tiny_bert, train_layers=2, finetune="lora")  # LoRA on the top 2 layers: an adapter/ folder
    model.save_pretrained(tmp_path / "run")
    return RunLayout.of(tmp_path / "run")


def test_truncated_fusion_head_is_named(saved_run):
    data = saved_run.fusion_head.read_bytes()
    saved_run.fusion_head.write_bytes(data[: len(data) // 2])
    with pytest.raises(AlfiaError, match="fusion_head.safetensors: unreadable or corrupt"):
        AlfiaModel.from_pretrained(saved_run.root)


def test_fusion_head_with_wrong_shapes_is_named(saved_run, tiny_bert, tmp_path):
    _model(tiny_bert, head_ffn_mult=2).save_pretrained(tmp_path / "other")
    shutil.copy(tmp_path / "other" / "fusion_head.safetensors", saved_run.fusion_head)
    with pytest.raises(AlfiaError, match=r"fusion_head.safetensors: weights do not fit .*wrong shape head\.ffn"):
        AlfiaModel.from_pretrained(saved_run.root)


@pytest.mark.parametrize("missing", ["config.json", "backbone.json", "fusion_head.safetensors",
                                     "adapter/adapter_model.safetensors", "adapter/adapter_config.json"])
def test_a_missing_file_is_named(saved_run, missing):
    (saved_run.root / missing).unlink()
    with pytest.raises(AlfiaError, match=missing.split("/")[-1].replace(".", r"\.")):
        AlfiaModel.from_pretrained(saved_run.root)


def test_corrupt_adapter_is_named(saved_run):
    (saved_run.adapter / "adapter_model.safetensors").write_bytes(b"\x00garbage")
    with pytest.raises(AlfiaError, match="adapter_model.safetensors: unreadable or corrupt"):
        AlfiaModel.from_pretrained(saved_run.root)


def test_adapter_of_a_different_backbone_is_refused(saved_run, tiny_bert_wide, tmp_path):
    _model(tiny_bert_wide, train_layers=2, finetune="lora").save_pretrained(tmp_path / "wide")
    shutil.rmtree(saved_run.adapter)
    shutil.copytree(tmp_path / "wide" / "adapter", saved_run.adapter)
    with pytest.raises(AlfiaError, match="adapter_model.safetensors: adapter does not fit this backbone"):
        AlfiaModel.from_pretrained(saved_run.root)


def test_loading_onto_a_different_backbone_is_refused(saved_run, tiny_bert_wide):
    from alfia.models import load_backbone

    other = load_backbone(str(tiny_bert_wide))
    with pytest.raises(AlfiaError, match=r"backbone.json: .*hidden_size=32.*hidden_size=48"):
        AlfiaModel.from_pretrained(saved_run.root, backbone=other.model, tokenizer=other.tokenizer)


def test_changed_backbone_weights_are_refused(tiny_bert, tmp_path):
    from alfia.models.testing import tiny_backbone

    folder = tmp_path / "bert"
    shutil.copytree(tiny_bert, folder)
    _model(folder).save_pretrained(tmp_path / "run")
    shutil.rmtree(folder)
    shutil.copytree(tiny_backbone(tmp_path / "other", layers=4, seed=1), folder)  # same shape, other weights
    with pytest.raises(AlfiaError, match="backbone.json: the backbone weights differ"):
        AlfiaModel.from_pretrained(tmp_path / "run")


def test_corrupt_encoder_weights_are_named(tiny_bert, tmp_path):
    layout = _model(tiny_bert, train_layers="all", finetune="full").save_pretrained(tmp_path / "run")
    layout.encoder_weights.write_bytes(layout.encoder_weights.read_bytes()[:100])
    with pytest.raises(AlfiaError, match="encoder.safetensors: encoder weights do not fit"):
        AlfiaModel.from_pretrained(layout.root)


def test_not_a_run_directory(tmp_path):
    with pytest.raises(AlfiaError, match="no such run directory"):
        AlfiaModel.from_pretrained(tmp_path / "nowhere")


@pytest.mark.parametrize("text", ["", "   ", None])
def test_empty_text_is_refused(tiny_bert, text):
    model = _model(tiny_bert)
    with pytest.raises(AlfiaError, match="text #1 of the batch is empty"):
        model.tokenize(["sepsis", text])
