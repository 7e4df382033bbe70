"""Adaptive Layer Fusion (ALF), the paper's §2.3.2, eqs. (2)–(14).

ALF reads the hidden states of the encoder's top N_f layers. It weighs the layers per sample, using
inter-layer attention and an optional sigmoid gate, and fuses them into one sequence. It then pools
that sequence into one vector, combining token attention (local context) with a masked mean (global
context). The result, H_ALF_out, feeds the Attentional Classifier Head. It is also the embedding that
``alfia embed`` and ALFIA-boost/-nn use.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import nn

from alfia.errors import AlfiaError
from alfia.models.masking import masked_mean, masked_softmax

if TYPE_CHECKING:
    from alfia.models.config import AlfiaConfig


def _mlp_block(d_in: int, d_out: int, dropout: float) -> list[nn.Module]:
    return [nn.Linear(d_in, d_out), nn.LayerNorm(d_out), nn.GELU(), nn.Dropout(dropout)]


class AdaptiveLayerFusion(nn.Module):
    """Fuse the top ``n_layers`` hidden-state sequences into one vector per sample.

    ``forward(layers, attention_mask)`` takes the N_f tensors ``(B, T, d)`` ordered from lower to upper
    layer, i.e. ``H^(L-N_f+1) ... H^(L)``, and the ``(B, T)`` attention mask. It returns
    ``(H_ALF_out (B, d), layer weights lambda (B, N_f))``.
    """

    def __init__(self, hidden_size: int, n_layers: int = 4, n_heads: int = 4, dropout: float = 0.1,
                 gating: bool = True) -> None:
        super().__init__()
        if n_layers < 1:
            raise AlfiaError(f"ALF needs at least one layer to fuse, got n_fusion_layers={n_layers}")
        if n_heads < 1 or hidden_size % n_heads:
            raise AlfiaError(f"ALF: hidden size {hidden_size} is not divisible by fusion_heads={n_heads}")
        d = hidden_size
        self.hidden_size = d
        self.n_layers = n_layers
        self.n_heads = n_heads
        self.head_dim = d // n_heads  # d_k = d_v
        self.gating = gating

        # Inter-layer attention, eqs. (3)–(6).
        self.layer_query = nn.Linear(d, d)  # W_Q
        self.layer_key = nn.Linear(d, d)  # W_K
        if gating:
            # The attention output (values, W_O) only feeds the gate of eq. (7); without gating the
            # scores themselves are the weights, so these layers would be dead parameters.
            self.layer_value = nn.Linear(d, d)  # W_V
            self.layer_attention_dropout = nn.Dropout(dropout)
            self.layer_attention_output = nn.Linear(d, d)  # W_O
            self.layer_gate = nn.Linear(d, n_layers)  # W_gate, b_gate: one gate per fused layer

        # Post-fusion processing, eq. (9).
        self.content_projection = nn.Linear(d, d)
        self.layer_interaction = nn.Sequential(*_mlp_block(d, d, dropout), nn.Linear(d, d))
        self.norm1 = nn.LayerNorm(d)

        # Token-level attention, eqs. (10)–(11): a small MLP scores each token.
        d_score = max(d // 2, 1)
        self.token_scorer = nn.Sequential(*_mlp_block(d, d_score, dropout / 2), nn.Linear(d_score, 1))
        self.token_attention_dropout = nn.Dropout(dropout)

        # Global context, eq. (13), and context fusion of [c_local; c_global].
        self.global_context = nn.Sequential(*_mlp_block(d, d, dropout))
        self.context_fusion = nn.Sequential(nn.Linear(2 * d, d), nn.LayerNorm(d), nn.Dropout(dropout))

        # Output, eq. (14).
        self.output_projection = nn.Linear(d, d)
        self.norm2 = nn.LayerNorm(d)

    @classmethod
    def from_config(cls, config: AlfiaConfig, hidden_size: int) -> "AdaptiveLayerFusion":
        """ALF as ``AlfiaConfig`` sets it (the ``alf`` row of ``alfia.models.poolers.POOLERS``)."""
        return cls(hidden_size, n_layers=config.n_fusion_layers, n_heads=config.fusion_heads,
                   dropout=config.dropout, gating=config.gating)

    def layer_summaries(self, layers: Sequence[torch.Tensor], attention_mask: torch.Tensor) -> torch.Tensor:
        """S_stack: the masked mean of each layer, stacked. -> (B, N_f, d)."""
        return torch.stack([masked_mean(h, attention_mask) for h in layers], dim=1)  # eq. (2)

    def layer_weights(self, summaries: torch.Tensor) -> torch.Tensor:
        """lambda (B, N_f) from the layer summaries S_stack (B, N_f, d), eqs. (3)–(7)."""
        batch, n_layers, _ = summaries.shape
        heads, head_dim = self.n_heads, self.head_dim
        q_global = summaries.mean(dim=1)  # q_global = mean(s_1 .. s_Nf)
        q = self.layer_query(q_global).view(batch, heads, 1, head_dim)  # eq. (3)
        k = self.layer_key(summaries).view(batch, n_layers, heads, head_dim).transpose(1, 2)  # eq. (4)
        scores = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(head_dim), dim=-1)  # eq. (6): (B, h, 1, N_f)
        if not self.gating:
            # "Otherwise, normalized attention scores are used as lambda": the heads' mean, which sums to 1.
            return scores.squeeze(2).mean(dim=1)
        v = self.layer_value(summaries).view(batch, n_layers, heads, head_dim).transpose(1, 2)  # eq. (5)
        context = (self.layer_attention_dropout(scores) @ v).reshape(batch, heads * head_dim)  # c_layer_attn
        context = self.layer_attention_output(context)  # c'_layer_attn = c_layer_attn W_O
        return torch.sigmoid(self.layer_gate(context))  # eq. (7)

    def forward(self, layers: Sequence[torch.Tensor], attention_mask: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        if len(layers) != self.n_layers:
            raise AlfiaError(f"ALF was built for {self.n_layers} layers but received {len(layers)}")
        attention_mask = attention_mask.to(layers[0].device)

        weights = self.layer_weights(self.layer_summaries(layers, attention_mask))  # (B, N_f)

        # eq. (8): h_t^fused_raw = sum_j lambda_j h_t^(L-N_f+j), summed layer by layer to avoid a
        # (B, N_f, T, d) copy of the hidden states.
        fused = weights[:, 0, None, None] * layers[0]
        for j in range(1, self.n_layers):
            fused = fused + weights[:, j, None, None] * layers[j]

        projected = self.content_projection(fused)
        interaction = self.layer_interaction(fused)
        enhanced = self.norm1(fused + projected + interaction)  # eq. (9)

        token_scores = self.token_scorer(enhanced).squeeze(-1)  # (B, T)
        beta = masked_softmax(token_scores, attention_mask)  # eq. (10)
        beta = self.token_attention_dropout(beta)
        c_local = torch.einsum("bt,btd->bd", beta, enhanced)  # eq. (11)

        c_global_pooled = masked_mean(enhanced, attention_mask)  # eq. (12)
        c_global = self.global_context(c_global_pooled)  # eq. (13)

        c_fused = self.context_fusion(torch.cat([c_local, c_global], dim=-1))  # [c_local; c_global] -> c_fused
        out = self.norm2(c_fused + self.output_projection(c_fused))  # eq. (14): H_ALF_out
        return out, weights
