"""train_layers = K: the top K layers train over a bottom cached once, and give the same model as the full one.

The cache path (``compute_frozen_states`` of ``bottom_indices``, then ``forward_from_states``) must give the
logits and the gradients of the whole encoder run with its bottom frozen; otherwise CPU training would
optimise a different model from the one ``alfia predict`` runs.
"""

from __future__ import annotations

import pytest
import torch

from alfia.errors import AlfiaError
from alfia.models import AlfiaConfig, AlfiaModel, build_model
from alfia.models.layers import cached_state_indices, resolve_pruned_layers
from alfia.runtime import compute_frozen_states, make_loader, tokenize_texts
from alfia.runtime.forward import forward_batch

LABELS = [1, 0, 0, 1]


def _model(path, **kw):
    kw.setdefault("n_fusion_layers", 2)
    config = AlfiaConfig(backbone=str(path), fusion_heads=2, classifier_heads=2, max_length=64, dropout=0.0, **kw)
    return build_model(config)


def _batches(model, texts, data):
    return next(iter(make_loader(data, len(texts), model.tokenizer.pad_token_id, shuffle=False)[0]))


@pytest.mark.parametrize("train_layers, n_fusion, finetune, held", [
    (1, 2, "full", (3,)),        # the cache holds only H^(L-K), the first trained layer's input
    (1, 3, "lora", (2, 3)),      # K < N_f: the frozen pooled layer H^2 comes from the cache too
    (2, 2, "lora", (2,)),
    (3, 2, "full", (1,)),
])
def test_top_k_over_the_cache_gives_the_full_models_logits_and_gradients(tiny_bert, texts, train_layers, n_fusion,
                                                                        finetune, held):
    model = _model(tiny_bert, train_layers=train_layers, n_fusion_layers=n_fusion, finetune=finetune)
    assert model.bottom_indices == held
    with torch.no_grad():  # LoRA's B starts at zero; move it so the adapters change the output
        for name, p in model.encoder.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    model.eval()  # no dropout: both paths must agree to float precision
    data = tokenize_texts(texts, model.tokenizer, model.max_length, labels=LABELS)
    tokens = _batches(model, texts, data)
    cached = compute_frozen_states(model, data, layers=model.bottom_indices, batch_size=2,
                                   pad_token_id=model.tokenizer.pad_token_id, device=torch.device("cpu"))
    assert cached.layers == held and all(s.dtype == torch.float16 for s in cached.states)
    assert [s.shape[0] for s in cached.states] == [len(ids) for ids in data.input_ids]  # unpadded
    # The cache's states before fp16 rounding, so that the comparison measures the paths, not the rounding.
    with torch.no_grad():
        full_states = model.encode_states(held, tokens["input_ids"], tokens["attention_mask"])
    states = {"states": torch.stack(full_states, dim=2), "layers": held,
              "attention_mask": tokens["attention_mask"], "labels": tokens["labels"]}

    def grads_of(out):
        model.zero_grad(set_to_none=True)
        torch.nn.functional.binary_cross_entropy_with_logits(out.logits, tokens["labels"]).backward()
        return {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad and p.grad is not None}

    full = forward_batch(model, tokens, torch.device("cpu"))
    full_grads = grads_of(full)
    fast = forward_batch(model, states, torch.device("cpu"))
    fast_grads = grads_of(fast)
    torch.testing.assert_close(fast.logits, full.logits, atol=1e-5, rtol=1e-4)
    trained = [n for n in full_grads if n.startswith("encoder.")]
    assert trained and set(full_grads) == set(fast_grads)
    for name in full_grads:
        torch.testing.assert_close(fast_grads[name], full_grads[name], atol=1e-5, rtol=1e-3, msg=name)
    # Nothing below the top K layers trains.
    depth = model.num_backbone_layers
    frozen_layers = {f"layer.{i}." for i in range(depth - train_layers)}
    assert not any(tag in n for n in trained for tag in frozen_layers)


def test_fp16_cache_changes_the_logits_only_by_rounding(tiny_bert, texts):
    model = _model(tiny_bert, train_layers=1).eval()
    data = tokenize_texts(texts, model.tokenizer, model.max_length, labels=LABELS)
    cached = compute_frozen_states(model, data, layers=model.bottom_indices, batch_size=4,
                                   pad_token_id=model.tokenizer.pad_token_id, device=torch.device("cpu"))
    with torch.no_grad():
        full = forward_batch(model, _batches(model, texts, data), torch.device("cpu")).logits
        fast = forward_batch(model, _batches(model, texts, cached), torch.device("cpu")).logits
    torch.testing.assert_close(fast, full, atol=5e-3, rtol=1e-2)


def test_train_layers_sets_what_trains(tiny_bert):
    frozen = _model(tiny_bert, train_layers=0)
    assert frozen.bottom_indices is None and not any(p.requires_grad for p in frozen.encoder.parameters())
    everything = _model(tiny_bert, train_layers="all", finetune="full")
    assert everything.bottom_indices is None and all(p.requires_grad for p in everything.encoder.parameters())
    lora = _model(tiny_bert, train_layers=2, finetune="lora")
    adapted = {n.split("layer.")[1].split(".")[0] for n, p in lora.encoder.named_parameters() if p.requires_grad}
    assert adapted == {"2", "3"}  # peft's layers_to_transform: adapters on the top 2 of 4 layers only
    with pytest.raises(AlfiaError, match="more than the encoder's 4 layers"):
        _model(tiny_bert, train_layers=5)
    assert cached_state_indices(6, 2, 4) == (3, 4) and cached_state_indices(6, 4, 4) == (2,)


@pytest.mark.parametrize("finetune", ["lora", "full"])
def test_a_top_k_model_saves_and_loads_the_same_logits(tiny_bert, texts, tmp_path, finetune):
    model = _model(tiny_bert, train_layers=2, finetune=finetune)
    with torch.no_grad():
        for p in model.encoder.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.1)
    model.eval()
    model.save_pretrained(tmp_path / "run")
    weights = tmp_path / "run" / "encoder.safetensors"
    if finetune == "full":  # only the trained layers' weights are written
        from safetensors.torch import load_file

        assert {k.split("layer.")[1].split(".")[0] for k in load_file(str(weights))} == {"2", "3"}
    else:
        assert not weights.exists() and (tmp_path / "run" / "adapter").is_dir()
    loaded = AlfiaModel.from_pretrained(tmp_path / "run")
    batch = model.tokenize(texts)
    with torch.no_grad():
        torch.testing.assert_close(loaded(**batch).logits, model(**batch).logits)


def test_pruned_layers_are_rebuilt_on_load(tiny_bert, texts, tmp_path):
    model = _model(tiny_bert, train_layers=1, prune_layers="every-other").eval()
    assert model.num_backbone_layers == 2
    model.save_pretrained(tmp_path / "run")
    loaded = AlfiaModel.from_pretrained(tmp_path / "run")
    assert loaded.num_backbone_layers == 2
    batch = model.tokenize(texts)
    with torch.no_grad():
        torch.testing.assert_close(loaded(**batch).logits, model(**batch).logits)


def test_prune_rules(tiny_bert):
    assert resolve_pruned_layers("every-other", 6) == (0, 2, 4)  # the top layer stays
    assert resolve_pruned_layers("bottom:2", 6) == (0, 1)
    assert resolve_pruned_layers("1, 3", 6) == (1, 3)
    with pytest.raises(AlfiaError, match="do not exist"):
        resolve_pruned_layers("7", 6)
    with pytest.raises(AlfiaError, match="keep at least one"):
        resolve_pruned_layers("bottom:6", 6)
    with pytest.raises(AlfiaError, match="greater than the backbone's depth"):
        _model(tiny_bert, prune_layers="bottom:3", n_fusion_layers=2)


def test_standardisation_can_be_switched_off(tiny_bert, texts):
    model = _model(tiny_bert, standardise_states=False).eval()
    with torch.no_grad():
        model.state_mean.fill_(3.0)  # ignored when the setting is off
        off = model(**model.tokenize(texts)).logits
        model.config.standardise_states = True
        on = model(**model.tokenize(texts)).logits
    assert not torch.allclose(off, on)


def test_a_cache_beyond_its_memory_limit_is_memory_mapped_with_the_same_states(tiny_bert, texts, monkeypatch):
    import numpy as np

    import alfia.runtime.forward as forward

    mapped = []
    real_memmap = np.memmap
    monkeypatch.setattr(forward.np, "memmap", lambda *a, **k: mapped.append(k["shape"]) or real_memmap(*a, **k))
    model = _model(tiny_bert, train_layers=1).eval()
    data = tokenize_texts(texts, model.tokenizer, model.max_length, labels=LABELS)
    options = dict(layers=model.bottom_indices, batch_size=2, pad_token_id=model.tokenizer.pad_token_id,
                   device=torch.device("cpu"))
    in_memory = compute_frozen_states(model, data, memory_limit_gb=None, **options)
    on_disk = compute_frozen_states(model, data, memory_limit_gb=0.0, **options)
    assert len(mapped) == 1 and mapped[0][1:] == (1, model.hidden_size)  # only the 0 GB cache went to disk
    for a, b in zip(in_memory.states, on_disk.states):
        assert torch.equal(a, b)
    assert not any(p.name.startswith("alfia-states-") for p in __import__("pathlib").Path(
        __import__("tempfile").gettempdir()).iterdir())  # the mapped file is unlinked at once
