"""One encoder pass over the stays gives everything ``alfia analyze`` compares.

For every stay the run's encoder runs once and keeps the hidden states of the top N_f layers (eq. 1). From those
same states come:

- the run's own pooler output (H_ALF_out, eq. 14, for an ALF run), its layer weights lambda (eq. 7) and its
  calibrated probability: the run's forward pass over the states, as ``alfia predict``/``alfia embed`` give them;
- the ablation poolings the paper compares ALF with (Fig. 6b-e): the plain mean of the top N_f layers' states
  (eq. 8 with lambda_j = 1/N_f), then its [CLS] token (``cls``), its masked mean over tokens (``mean``) and its
  masked element-wise max (``max``). They read the encoder's own states, not the run's standardised ones.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from alfia.errors import AlfiaError
from alfia.inference.predict import STREAM_ROWS, InferenceInput, LoadedRun
from alfia.models.masking import masked_max, masked_mean
from alfia.runtime import iterate_outputs, make_loader, pad_token_id_of, tokenize_texts

POOLINGS = ("cls", "mean", "max")


@dataclass
class StayStates:
    """What one pass of a run's encoder gives for each stay (rows in input order)."""

    logits: np.ndarray  # (n,)
    prob: np.ndarray  # (n,) after the run's calibrator
    embedding: np.ndarray  # (n, d): the run's pooler output (H_ALF_out for ALF)
    layer_weights: np.ndarray | None  # (n, N_f), or None for poolers without them
    pooled: dict[str, np.ndarray] = field(default_factory=dict)  # cls/mean/max of the top N_f layers' mean
    layers: tuple[int, ...] = ()  # H^(j) indices of the top N_f layers
    seconds: float = 0.0


def top_layer_indices(model) -> tuple[int, ...]:
    """H^(L-N_f+1) .. H^(L): the layers ALF fuses (and the ablation poolings read), whatever the run's pooler."""
    depth, n_f = model.num_backbone_layers, model.config.n_fusion_layers
    return tuple(range(depth - n_f + 1, depth + 1))


def encode_stays(run: LoadedRun, inputs: InferenceInput, *, batch_size: int = 64, poolings: bool = True) -> StayStates:
    """Run the encoder once over ``inputs``; keep the run's outputs and (``poolings``) the ablation poolings."""
    if run.backend != "torch":
        raise AlfiaError(f"{run.run_dir}: an export folder runs an ONNX graph without hidden states; analyze the "
                         f"run directory it was exported from")
    model = run.model
    n = len(inputs)
    top = top_layer_indices(model)
    own_layers = tuple(model.pooled_indices) == top
    logits = np.empty(n)
    embedding = layer_weights = None
    pooled: dict[str, np.ndarray] = {}
    started = time.perf_counter()
    for start in range(0, n, STREAM_ROWS):
        data = tokenize_texts(inputs.texts[start:start + STREAM_ROWS], model.tokenizer, run.max_length)
        if not poolings:
            for index, out in iterate_outputs(model, data, batch_size=batch_size,
                                              pad_token_id=pad_token_id_of(model.tokenizer), device=run.device):
                embedding = _put(embedding, index + start, out.embedding, n)
                layer_weights = _put(layer_weights, index + start, out.layer_weights, n)
                logits[index + start] = out.logits.float().cpu().numpy().reshape(-1)
            continue
        loader, _ = make_loader(data, batch_size, pad_token_id_of(model.tokenizer), shuffle=False)
        with torch.inference_mode():
            for batch in loader:
                ids, mask = batch["input_ids"].to(run.device), batch["attention_mask"].to(run.device)
                layers = model.top_hidden_states(ids, mask) if own_layers else model.encode_states(top, ids, mask)
                out = model.forward_from_states(torch.stack(layers, dim=2), mask, held=top)
                index = batch["index"].numpy() + start
                logits[index] = out.logits.float().cpu().numpy().reshape(-1)
                embedding = _put(embedding, index, out.embedding, n)
                layer_weights = _put(layer_weights, index, out.layer_weights, n)
                fused = torch.stack(layers, dim=0).mean(dim=0)  # eq. (8) with lambda_j = 1 / N_f
                for name, vectors in (("cls", fused[:, 0]), ("mean", masked_mean(fused, mask)),
                                      ("max", masked_max(fused, mask))):
                    pooled[name] = _put(pooled.get(name), index, vectors, n)
    prob = run.calibrator.transform(logits)
    bad = ~np.isfinite(prob) | ~np.isfinite(embedding).all(axis=1)
    if bad.any():
        raise AlfiaError(f"{run.run_dir}: the model gives no valid output for {int(bad.sum())} of {n} texts (NaN or "
                         f"inf; the first at stay_id {inputs.stay_id[np.flatnonzero(bad)[0]]}); its weights may be "
                         f"damaged")
    return StayStates(logits, prob, embedding, layer_weights, pooled, top, time.perf_counter() - started)


def _put(buffer: np.ndarray | None, index: np.ndarray, values: torch.Tensor | None, n: int) -> np.ndarray | None:
    if values is None:
        return buffer
    values = values.float().cpu().numpy()
    if buffer is None:
        buffer = np.zeros((n, values.shape[1]), dtype=np.float32)
    buffer[index] = values
    return buffer


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length, as ``alfia embed`` returns embeddings (Algorithm 2, line 19)."""
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
