"""Poolers: hidden states of the top layers -> one vector per sample, all behind the same ACH.

``alf`` is the paper's Adaptive Layer Fusion. The others exist for ablation, to measure what ALF adds:

- ``cls``: the last layer's first ([CLS]) token;
- ``mean`` / ``max``: masked mean / element-wise max of the last layer over real tokens;
- ``static_mean``: the unweighted mean of the top N_f layers, then a masked mean over tokens
  (ALF's eq. (8) with fixed lambda_j = 1/N_f and none of its learned pooling).

``POOLERS`` (``alfia.models.pooler_table``, re-exported here) is the one table of them: ``AlfiaConfig.pooler``
must be one of its keys, and the model reads from it which module to build and how many top layers to hand it. A pooler is an ``nn.Module`` with a
``from_config(config, hidden_size)`` class method and ``forward(layers, attention_mask)``, which takes the
top layers ordered lower -> upper and returns ``(embedding (B, d), layer weights (B, N_f) or None)``.
Adding one means writing that class and adding its row to ``POOLERS``; nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from alfia.models.config import AlfiaConfig
from alfia.models.masking import masked_max, masked_mean
from alfia.models.pooler_table import POOLERS, PoolerSpec

__all__ = ["POOLERS", "CLSPooler", "MaxPooler", "MeanPooler", "PoolerSpec", "StaticMeanPooler", "build_pooler",
           "pooler_layer_count"]

PoolerOutput = tuple[torch.Tensor, torch.Tensor | None]


class _LastLayerPooler(nn.Module):
    """A parameter-free pooler of the last layer only."""

    @classmethod
    def from_config(cls, config: AlfiaConfig, hidden_size: int) -> "_LastLayerPooler":
        return cls()


class CLSPooler(_LastLayerPooler):
    def forward(self, layers: Sequence[torch.Tensor], attention_mask: torch.Tensor) -> PoolerOutput:
        return layers[-1][:, 0], None


class MeanPooler(_LastLayerPooler):
    def forward(self, layers: Sequence[torch.Tensor], attention_mask: torch.Tensor) -> PoolerOutput:
        return masked_mean(layers[-1], attention_mask), None


class MaxPooler(_LastLayerPooler):
    def forward(self, layers: Sequence[torch.Tensor], attention_mask: torch.Tensor) -> PoolerOutput:
        return masked_max(layers[-1], attention_mask), None


class StaticMeanPooler(nn.Module):
    def __init__(self, n_layers: int) -> None:
        super().__init__()
        self.n_layers = n_layers

    @classmethod
    def from_config(cls, config: AlfiaConfig, hidden_size: int) -> "StaticMeanPooler":
        return cls(config.n_fusion_layers)

    def forward(self, layers: Sequence[torch.Tensor], attention_mask: torch.Tensor) -> PoolerOutput:
        fused = torch.stack(list(layers), dim=0).mean(dim=0)  # eq. (8) with lambda_j = 1 / N_f
        batch = fused.shape[0]
        weights = fused.new_full((batch, len(layers)), 1.0 / len(layers))
        return masked_mean(fused, attention_mask), weights


def pooler_layer_count(config: AlfiaConfig) -> int:
    """How many top layers the configured pooler reads (N_f, or only the last one)."""
    return config.n_fusion_layers if POOLERS[config.pooler].reads_top_layers else 1


def build_pooler(config: AlfiaConfig, hidden_size: int) -> nn.Module:
    return POOLERS[config.pooler].resolve().from_config(config, hidden_size)
