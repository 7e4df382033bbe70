"""Padding-aware reductions over the token axis, shared by ALF and the ablation poolers.

Padded positions are removed with ``torch.where`` (not multiplied by 0), so even a non-finite value at a
padded position cannot leak into a result; rows without any real token give zeros, never NaN.
"""

from __future__ import annotations

import torch


def _token_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """(B, T) mask -> boolean (B, T, 1)."""
    return attention_mask.bool().unsqueeze(-1)


def masked_mean(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean over real tokens: sum_t A_t h_t / sum_t A_t (the form of eqs. 2 and 12). (B, T, d) -> (B, d)."""
    keep = _token_mask(attention_mask)
    total = torch.where(keep, hidden, hidden.new_zeros(())).sum(dim=1)
    count = keep.sum(dim=1).clamp(min=1).to(hidden.dtype)
    return total / count


def masked_max(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Element-wise max over real tokens. (B, T, d) -> (B, d); zeros for a row without real tokens."""
    keep = _token_mask(attention_mask)
    lowest = torch.finfo(hidden.dtype).min
    best = torch.where(keep, hidden, hidden.new_full((), lowest)).amax(dim=1)
    has_token = keep.any(dim=1)
    return torch.where(has_token, best, best.new_zeros(()))


def masked_softmax(scores: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Softmax over real tokens only (eq. 10). (B, T) -> (B, T); padded positions get exactly 0.

    The fill is the dtype's most negative finite value rather than -inf, so a row with no real token
    yields a finite (uniform) distribution instead of NaN; it is then zeroed at the padded positions.
    """
    keep = attention_mask.bool()
    filled = scores.masked_fill(~keep, torch.finfo(scores.dtype).min)
    weights = torch.softmax(filled, dim=-1)
    return torch.where(keep, weights, weights.new_zeros(()))
