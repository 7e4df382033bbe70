"""Poolers: hidden states of the top layers -> one vector per sample, all behind the same ACH.

``alf`` is the paper's Adaptive Layer Fusion. The others exist for ablation, to measure what ALF adds:

- ``cls``: the last layer's first ([CLS]) token;
- ``mean`` / ``max``: masked mean / element-wise max of the last layer over real tokens;
- ``static_mean``: the unweighted mean of the top N_f layers, then a masked mean over tokens
  (ALF's eq. (8) with fixed lambda_j = 1/N_f and none of its learned pooling).

Each pooler's ``forward(layers, attention_mask)`` takes the top layers ordered lower -> upper and returns
``(embedding (B, d), layer weights (B, N_f) or None)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from alfia.models.adaptive_layer_fusion import AdaptiveLayerFusion
from alfia.models.config import AlfiaConfig
from alfia.models.masking import masked_max, masked_mean

PoolerOutput = tuple[torch.Tensor, torch.Tensor | None]


class CLSPooler(nn.Module):
    def forward(self, layers: Sequence[torch.Tensor], attention_mask: torch.Tensor) -> PoolerOutput:
        return layers[-1][:, 0], None


class MeanPooler(nn.Module):
    def forward(self, layers: Sequence[torch.Tensor], attention_mask: torch.Tensor) -> PoolerOutput:
        return masked_mean(layers[-1], attention_mask), None


class MaxPooler(nn.Module):
    def forward(self, layers: Sequence[torch.Tensor], attention_mask: torch.Tensor) -> PoolerOutput:
        return masked_max(layers[-1], attention_mask), None


class StaticMeanPooler(nn.Module):
    def __init__(self, n_layers: int) -> None:
        super().__init__()
        self.n_layers = n_layers

    def forward(self, layers: Sequence[torch.Tensor], attention_mask: torch.Tensor) -> PoolerOutput:
        fused = torch.stack(list(layers), dim=0).mean(dim=0)  # eq. (8) with lambda_j = 1 / N_f
        batch = fused.shape[0]
        weights = fused.new_full((batch, len(layers)), 1.0 / len(layers))
        return masked_mean(fused, attention_mask), weights


def pooler_layer_count(config: AlfiaConfig) -> int:
    """How many top layers the configured pooler reads (the last one only, for cls/mean/max)."""
    return config.n_fusion_layers if config.pooler in ("alf", "static_mean") else 1


def build_pooler(config: AlfiaConfig, hidden_size: int) -> nn.Module:
    if config.pooler == "alf":
        return AdaptiveLayerFusion(hidden_size, n_layers=config.n_fusion_layers, n_heads=config.fusion_heads,
                                   dropout=config.dropout, gating=config.gating)
    if config.pooler == "static_mean":
        return StaticMeanPooler(config.n_fusion_layers)
    return {"cls": CLSPooler, "mean": MeanPooler, "max": MaxPooler}[config.pooler]()
