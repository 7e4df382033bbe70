"""ALF, ACH and the ablation poolers on random hidden states (no encoder)."""

from __future__ import annotations

import pytest
import torch

from alfia.errors import AlfiaError
from alfia.models import AdaptiveLayerFusion, AlfiaConfig, AttentionalClassifierHead, build_pooler
from alfia.models.masking import masked_max, masked_mean, masked_softmax

B, T, D, NF = 3, 7, 32, 4


def _layers_and_mask():
    layers = [torch.randn(B, T, D) for _ in range(NF)]
    mask = torch.ones(B, T, dtype=torch.long)
    mask[1, 4:] = 0
    mask[2, 2:] = 0
    return layers, mask


def _scramble_padding(layers, mask):
    pad = ~mask.bool()
    out = []
    for h in layers:
        h = h.clone()
        h[pad] = torch.randn(int(pad.sum()), D) * 100
        out.append(h)
    return out


def test_masked_reductions_match_the_real_tokens_only():
    h = torch.randn(2, 5, 3)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    assert torch.allclose(masked_mean(h, mask)[0], h[0, :3].mean(0))
    assert torch.allclose(masked_mean(h, mask)[1], h[1].mean(0))
    assert torch.equal(masked_max(h, mask)[0], h[0, :3].amax(0))
    w = masked_softmax(torch.randn(2, 5), mask)
    assert torch.equal(w[0, 3:], torch.zeros(2))
    assert torch.allclose(w.sum(-1), torch.ones(2))


def test_masked_reductions_of_a_row_without_tokens_are_finite():
    h = torch.randn(1, 4, 3)
    h[0, 2] = float("nan")  # even a NaN at a padded position must not leak
    mask = torch.zeros(1, 4, dtype=torch.long)
    for out in (masked_mean(h, mask), masked_max(h, mask), masked_softmax(torch.randn(1, 4), mask)):
        assert torch.isfinite(out).all()
        assert torch.equal(out, torch.zeros_like(out))


@pytest.mark.parametrize("gating", [True, False])
def test_alf_shapes_and_layer_weights(gating):
    alf = AdaptiveLayerFusion(D, n_layers=NF, n_heads=4, gating=gating).eval()
    layers, mask = _layers_and_mask()
    out, weights = alf(layers, mask)
    assert out.shape == (B, D)
    assert weights.shape == (B, NF)
    assert ((weights > 0) & (weights < 1)).all()
    if gating:
        assert not torch.allclose(weights.sum(-1), torch.ones(B))  # independent sigmoid gates
    else:
        assert torch.allclose(weights.sum(-1), torch.ones(B), atol=1e-6)
    # weights are per sample: different inputs get different weights
    assert not torch.allclose(weights[0], weights[1])


@pytest.mark.parametrize("gating", [True, False])
def test_alf_ignores_padded_positions(gating):
    alf = AdaptiveLayerFusion(D, n_layers=NF, gating=gating).eval()
    layers, mask = _layers_and_mask()
    out, weights = alf(layers, mask)
    out2, weights2 = alf(_scramble_padding(layers, mask), mask)
    assert torch.equal(out, out2)
    assert torch.equal(weights, weights2)


@pytest.mark.parametrize("chosen", [0, NF - 1])
def test_alf_fuses_the_layers_by_their_weights(chosen, monkeypatch):
    """eq. (8): with lambda one-hot on layer ``chosen``, the other layers' sequences cannot matter."""
    alf = AdaptiveLayerFusion(D, n_layers=NF).eval()
    one_hot = torch.zeros(B, NF)
    one_hot[:, chosen] = 1.0
    monkeypatch.setattr(alf, "layer_weights", lambda summaries: one_hot)
    layers, mask = _layers_and_mask()
    out, weights = alf(layers, mask)
    others_changed = [h if j == chosen else torch.randn_like(h) for j, h in enumerate(layers)]
    assert torch.equal(alf(others_changed, mask)[0], out)
    chosen_changed = [torch.randn_like(h) if j == chosen else h for j, h in enumerate(layers)]
    assert not torch.allclose(alf(chosen_changed, mask)[0], out)
    assert torch.equal(weights, one_hot)


def test_alf_has_no_nan_for_an_all_padding_row():
    alf = AdaptiveLayerFusion(D, n_layers=NF).eval()
    layers, mask = _layers_and_mask()
    mask[0] = 0
    out, weights = alf(layers, mask)
    assert torch.isfinite(out).all() and torch.isfinite(weights).all()


def test_alf_and_ach_receive_gradients_everywhere():
    alf = AdaptiveLayerFusion(D, n_layers=NF)
    head = AttentionalClassifierHead(D, n_heads=4)
    layers, mask = _layers_and_mask()
    out, _ = alf(layers, mask)
    head(out).sum().backward()
    for name, p in list(alf.named_parameters()) + list(head.named_parameters()):
        assert p.grad is not None, name


def test_alf_rejects_wrong_layer_count_and_bad_heads():
    with pytest.raises(AlfiaError, match="not divisible by fusion_heads=5"):
        AdaptiveLayerFusion(D, n_layers=NF, n_heads=5)
    alf = AdaptiveLayerFusion(D, n_layers=NF)
    layers, mask = _layers_and_mask()
    with pytest.raises(AlfiaError, match="built for 4 layers but received 3"):
        alf(layers[:3], mask)


def test_ach_gives_one_logit_per_sample():
    head = AttentionalClassifierHead(D, n_heads=4, ffn_mult=2).eval()
    z = torch.randn(5, D)
    logits = head(z)
    assert logits.shape == (5,)
    assert torch.allclose(head(z[:2]), logits[:2], atol=1e-6)  # samples do not interact
    with pytest.raises(AlfiaError, match="not divisible by classifier_heads=3"):
        AttentionalClassifierHead(D, n_heads=3)


@pytest.mark.parametrize("pooler", ["alf", "cls", "mean", "max", "static_mean"])
def test_every_pooler_ignores_padding_and_reports_weights(pooler):
    layers, mask = _layers_and_mask()
    module = build_pooler(AlfiaConfig(pooler=pooler, n_fusion_layers=NF), D).eval()
    emb, weights = module(layers, mask)
    emb2, _ = module(_scramble_padding(layers, mask), mask)
    assert emb.shape == (B, D)
    assert torch.equal(emb, emb2)
    if pooler in ("cls", "mean", "max"):
        assert weights is None
    else:
        assert weights.shape == (B, NF)
    if pooler == "static_mean":
        assert torch.equal(weights, torch.full((B, NF), 0.25))
        assert torch.allclose(emb[1], torch.stack(layers).mean(0)[1, :4].mean(0), atol=1e-6)
    if pooler == "cls":
        assert torch.equal(emb, layers[-1][:, 0])
