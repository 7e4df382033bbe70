"""Batched eval-mode forward passes: logits, outputs and cached encoder states, in the rows' order."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from alfia.runtime.batches import FrozenStates, TokenizedTexts, make_loader
from alfia.runtime.device import autocast_context


def forward_batch(model, batch: dict, device: torch.device):
    """One forward pass over a batch of token ids or of cached states (``FrozenStates``)."""
    mask = batch["attention_mask"].to(device)
    if "states" in batch:
        return model.forward_from_states(batch["states"].to(device), mask)
    return model(batch["input_ids"].to(device), mask)


def compute_frozen_states(model, data: TokenizedTexts, *, batch_size: int, pad_token_id: int,
                          device: torch.device, precision: str = "fp32") -> FrozenStates:
    """Run the encoder once over ``data`` and keep each text's top-N_f hidden states (fp16, unpadded)."""
    loader, _ = make_loader(data, batch_size, pad_token_id, shuffle=False)
    states: list[torch.Tensor | None] = [None] * len(data)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(), autocast_context(precision, device):
            for batch in loader:
                mask = batch["attention_mask"]
                top = torch.stack(model.top_hidden_states(batch["input_ids"].to(device), mask.to(device)), dim=2)
                top = top.to("cpu", torch.float16)
                lengths = mask.sum(dim=1).tolist()
                for row, index in enumerate(batch["index"].tolist()):
                    states[index] = top[row, :lengths[row]].clone()
    finally:
        model.train(was_training)
    return FrozenStates(states, data.stay_id, data.split, data.labels)


def iterate_outputs(model, data: TokenizedTexts | FrozenStates, *, batch_size: int, pad_token_id: int,
                    device: torch.device, precision: str = "fp32") -> Iterator[tuple[np.ndarray, Any]]:
    """Eval-mode forward passes over ``data`` in length-sorted batches: yields (row indices, output)."""
    loader, _ = make_loader(data, batch_size, pad_token_id, shuffle=False)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(), autocast_context(precision, device):
            for batch in loader:
                yield batch["index"].numpy(), forward_batch(model, batch, device)
    finally:
        model.train(was_training)


def predict_logits(model, data: TokenizedTexts | FrozenStates, *, batch_size: int, pad_token_id: int,
                   device: torch.device, precision: str = "fp32") -> np.ndarray:
    """Logits in the rows' original order."""
    logits = np.empty(len(data), dtype=np.float64)
    for index, out in iterate_outputs(model, data, batch_size=batch_size, pad_token_id=pad_token_id,
                                      device=device, precision=precision):
        logits[index] = out.logits.detach().float().cpu().numpy().reshape(-1)
    return logits
