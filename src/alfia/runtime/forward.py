"""Batched eval-mode forward passes: logits, outputs and cached encoder states, in the rows' order."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

from alfia.runtime.batches import FrozenStates, TokenizedTexts, make_loader
from alfia.runtime.device import autocast_context


def forward_batch(model, batch: dict, device: torch.device):
    """One forward pass over a batch of token ids or of cached states (``FrozenStates``)."""
    mask = batch["attention_mask"].to(device)
    if "states" in batch:
        return model.forward_from_states(batch["states"].to(device), mask, batch.get("layers") or None)
    return model(batch["input_ids"].to(device), mask)


def _state_buffer(n_tokens: int, n_layers: int, hidden: int, memory_limit_gb: float | None) -> torch.Tensor:
    """One fp16 buffer for a whole cache: in memory, or memory-mapped on disk beyond ``memory_limit_gb``."""
    shape = (n_tokens, n_layers, hidden)
    if memory_limit_gb is None or 2 * n_tokens * n_layers * hidden <= memory_limit_gb * 2**30:
        return torch.empty(shape, dtype=torch.float16)
    handle, path = tempfile.mkstemp(prefix="alfia-states-", suffix=".f16")
    try:
        mapped = np.memmap(path, dtype=np.float16, mode="w+", shape=shape)
    finally:
        os.close(handle)
        os.unlink(path)  # the mapping keeps the space until the cache is freed; nothing is left behind
    return torch.from_numpy(mapped)


def compute_frozen_states(model, data: TokenizedTexts | FrozenStates, *, batch_size: int, pad_token_id: int,
                          device: torch.device, precision: str = "fp32", layers: Sequence[int] | None = None,
                          memory_limit_gb: float | None = None, progress=None) -> FrozenStates:
    """Run the frozen encoder once over ``data`` and keep each text's hidden states H^(j), j in ``layers``
    (default: the pooled top N_f), fp16 and unpadded.

    ``data`` may itself be cached states (a frozen bottom): the layers above it run to give the pooled ones.
    ``progress``: an ``alfia.progress.Step`` advanced by the rows of each batch."""
    layers = tuple(model.pooled_indices if layers is None else layers)
    if isinstance(data, FrozenStates) and layers != tuple(model.pooled_indices):
        raise ValueError("from cached states only the pooled layers can be computed")
    lengths_all = data.lengths
    offsets = np.concatenate([[0], np.cumsum(lengths_all)])
    buffer = _state_buffer(int(offsets[-1]), len(layers), model.hidden_size, memory_limit_gb)
    loader, _ = make_loader(data, batch_size, pad_token_id, shuffle=False)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(), autocast_context(precision, device):
            for batch in loader:
                mask = batch["attention_mask"].to(device)
                if "states" in batch:
                    got = model.pooled_states_from(batch["states"].to(device), batch["layers"], mask)
                elif layers == tuple(model.pooled_indices):
                    got = model.top_hidden_states(batch["input_ids"].to(device), mask)
                else:
                    got = model.encode_states(layers, batch["input_ids"].to(device), mask)
                stacked = torch.stack(got, dim=2).to("cpu", torch.float16)
                lengths = batch["attention_mask"].sum(dim=1).tolist()
                for row, index in enumerate(batch["index"].tolist()):
                    buffer[offsets[index]:offsets[index + 1]] = stacked[row, :lengths[row]]
                if progress is not None:
                    progress.advance(len(lengths))
    finally:
        model.train(was_training)
    states = [buffer[offsets[i]:offsets[i + 1]] for i in range(len(data))]
    return FrozenStates(states, data.stay_id, data.split, data.labels, layers)


def iterate_outputs(model, data: TokenizedTexts | FrozenStates, *, batch_size: int, pad_token_id: int,
                    device: torch.device, precision: str = "fp32", progress=None) -> Iterator[tuple[np.ndarray, Any]]:
    """Eval-mode forward passes over ``data`` in length-sorted batches: yields (row indices, output).
    ``progress``: an ``alfia.progress.Step`` advanced by the rows of each batch."""
    loader, _ = make_loader(data, batch_size, pad_token_id, shuffle=False)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(), autocast_context(precision, device):
            for batch in loader:
                yield batch["index"].numpy(), forward_batch(model, batch, device)
                if progress is not None:
                    progress.advance(len(batch["index"]))
    finally:
        model.train(was_training)


def predict_logits(model, data: TokenizedTexts | FrozenStates, *, batch_size: int, pad_token_id: int,
                   device: torch.device, precision: str = "fp32", progress=None) -> np.ndarray:
    """Logits in the rows' original order (``progress``: as :func:`iterate_outputs`)."""
    logits = np.empty(len(data), dtype=np.float64)
    for index, out in iterate_outputs(model, data, batch_size=batch_size, pad_token_id=pad_token_id,
                                      device=device, precision=precision, progress=progress):
        logits[index] = out.logits.detach().float().cpu().numpy().reshape(-1)
    return logits
