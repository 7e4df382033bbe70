"""Attentional Classifier Head (ACH), the paper's §2.3.3, eqs. (15)–(19).

A single transformer block applied to the fused vector viewed as a one-token sequence, then a linear
layer to one logit (binary task: the probability is sigmoid(logit)).
"""

from __future__ import annotations

import torch
from torch import nn

from alfia.errors import AlfiaError


class AttentionalClassifierHead(nn.Module):
    """``forward(z: (B, d)) -> logits (B,)``."""

    def __init__(self, hidden_size: int, n_heads: int = 4, ffn_mult: int = 4, dropout: float = 0.1) -> None:
        super().__init__()
        if n_heads < 1 or hidden_size % n_heads:
            raise AlfiaError(f"ACH: hidden size {hidden_size} is not divisible by classifier_heads={n_heads}")
        if ffn_mult < 1:
            raise AlfiaError(f"ACH: head_ffn_mult must be a positive integer, got {ffn_mult}")
        d = hidden_size
        self.attention = nn.MultiheadAttention(d, n_heads, dropout=dropout, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.norm1 = nn.LayerNorm(d)
        self.ffn = nn.Sequential(nn.Linear(d, ffn_mult * d), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(ffn_mult * d, d))
        self.norm2 = nn.LayerNorm(d)
        self.output = nn.Linear(d, 1)  # W_out, b_out

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        z1 = z.unsqueeze(1)  # Z' in R^{1 x d}
        attn_out, _ = self.attention(z1, z1, z1, need_weights=False)  # eq. (15)
        z_norm1 = self.norm1(z1 + self.dropout(attn_out))  # eq. (16)
        z_ffn = self.ffn(z_norm1)  # eq. (17)
        z_norm2 = self.norm2(z_norm1 + self.dropout(z_ffn))  # eq. (18)
        return self.output(z_norm2.squeeze(1)).squeeze(-1)  # eq. (19): one logit per sample
