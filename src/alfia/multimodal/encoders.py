"""Levels of the trained text and series encoders (see :mod:`alfia.multimodal.levels` for what a level is).

Both run the finished run's own model in eval mode over the stays, batch by batch, without gradients, and
return :class:`~alfia.multimodal.levels.ModalityLevels` with the model's own logit beside the levels. The text
run's logit comes from the same forward pass (its pooler and head over the top states), so it is exactly
what ``alfia predict`` computes before calibration; the series logit likewise equals ``model(x)``.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import torch
from torch import nn

from alfia.atomic import sha256_file
from alfia.cohorts.schema import ID_COLUMN
from alfia.errors import AlfiaError
from alfia.multimodal.levels import ModalityLevels


# --- text: an ALFIA run ---------------------------------------------------------------------------------

@torch.no_grad()
def text_levels(run_dir: str | os.PathLike, texts: pd.DataFrame, *, batch_size: int = 32, device: str = "cpu",
                source: str = "") -> ModalityLevels:
    """Per stay: the masked mean of each encoder layer H^(1)..H^(L), then the run's ALF embedding (eq. 14)."""
    from alfia.inference import load_run
    from alfia.models.masking import masked_mean
    from alfia.runtime import make_loader, pad_token_id_of, tokenize_texts
    from alfia.text.table import TEXT_COLUMN, check_texts

    run = load_run(run_dir, device=device)
    if run.backend != "torch":
        raise AlfiaError(f"{run_dir}: an export folder runs one ONNX graph and gives no layer states; "
                         f"give LeMoF the run it was exported from")
    check_texts(texts, source or "text table")
    model = run.model
    data = tokenize_texts(texts[TEXT_COLUMN].tolist(), model.tokenizer, model.max_length,
                          stay_id=texts[ID_COLUMN].to_numpy())
    loader, _ = make_loader(data, batch_size, pad_token_id_of(model.tokenizer), shuffle=False)
    depth, n = model.num_backbone_layers, len(data)
    means = np.zeros((depth, n, model.hidden_size), dtype=np.float32)
    embedding = logit = None
    model.eval()
    for batch in loader:
        ids, mask = batch["input_ids"].to(run.device), batch["attention_mask"].to(run.device)
        index = batch["index"].numpy()
        hidden = model.encoder(input_ids=ids, attention_mask=mask, output_hidden_states=True,
                               return_dict=True).hidden_states  # H^(0) .. H^(L), eq. (1) of ALFIA
        for j in range(1, depth + 1):
            means[j - 1, index] = masked_mean(hidden[j].float(), mask).cpu().numpy()
        top = torch.stack(hidden[-model.n_pooled_layers:], dim=2)  # (B, T, N_f, d): what the pooler reads
        out = model.forward_from_states(top, mask)
        emb = out.embedding.float().cpu().numpy()
        if embedding is None:
            embedding = np.zeros((n, emb.shape[1]), dtype=np.float32)
            logit = np.zeros(n, dtype=np.float32)
        embedding[index] = emb
        logit[index] = out.logits.float().reshape(-1).cpu().numpy()
    names = [f"layer_{j}" for j in range(1, depth + 1)] + ["alf"]
    return ModalityLevels("text", data.stay_id, names, [*means, embedding], logit,
                          {"run": str(run.run_dir.resolve()), "data": source})


# --- series: an `alfia series` run -------------------------------------------------------------------------

def _recurrent_levels(rnn: nn.RNNBase, x: torch.Tensor, prefix: str) -> list[tuple[str, torch.Tensor]]:
    """Per layer its final state(s): forward at the last hour (and backward at the first, bidirectional)."""
    _, h = rnn(x)
    h = h[0] if isinstance(h, tuple) else h  # an LSTM returns (h_n, c_n)
    directions = 2 if rnn.bidirectional else 1
    return [(f"{prefix}_{layer + 1}", torch.cat([h[layer * directions + k] for k in range(directions)], dim=1))
            for layer in range(rnn.num_layers)]


def _transformer_levels(branch: nn.Module, x: torch.Tensor, prefix: str) -> list[tuple[str, torch.Tensor]]:
    """The input projection and each encoder layer, averaged over the hours (as the branch pools its last)."""
    if x.shape[1] > branch.max_hours:
        raise AlfiaError(f"{x.shape[1]} hours given; the model was built for at most {branch.max_hours}")
    z = branch.proj(x) + branch.position[:, : x.shape[1]]
    out = [(f"{prefix}_input", z.mean(dim=1))]
    for i, layer in enumerate(branch.encoder.layers):  # nn.TransformerEncoder without a final norm
        z = layer(z)
        out.append((f"{prefix}_{i + 1}", z.mean(dim=1)))
    return out


def _head_levels(head: nn.Sequential, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(the head's hidden layer, the logit) of series.models' head: Dropout, Linear, ReLU, Linear."""
    hidden = head[2](head[1](head[0](features)))
    return hidden, head[3](hidden).squeeze(-1)


def series_model_levels(model: nn.Module, x: torch.Tensor) -> tuple[list[tuple[str, torch.Tensor]], torch.Tensor]:
    """(levels, logit) of every model of ``alfia.series.models.MODELS`` on (B, H, F) inputs, in eval mode."""
    from alfia.series import models as sm

    if isinstance(model, sm.FusionModel):
        recurrent = _recurrent_levels(model.lstm.lstm, x, "bilstm")
        attention = _transformer_levels(model.transformer, x, "transformer")
        levels = recurrent + attention
        features = torch.cat([recurrent[-1][1], attention[-1][1]], dim=1)  # as FusionModel.forward
    elif isinstance(model, sm.BiLSTMModel):
        levels = _recurrent_levels(model.branch.lstm, x, "bilstm")
        features = levels[-1][1]
    elif isinstance(model, sm.TransformerModel):
        levels = _transformer_levels(model.branch, x, "transformer")
        features = levels[-1][1]
    elif isinstance(model, sm.GRUModel):
        levels = _recurrent_levels(model.gru, x, "gru")
        features = levels[-1][1]
    elif isinstance(model, sm.TCNModel):
        levels, z = [], x.transpose(1, 2)
        for i, block in enumerate(model.blocks):
            z = block(z)
            levels.append((f"tcn_{i + 1}", z[:, :, -1]))  # the last hour: a causal block's summary
        features = levels[-1][1]
    else:
        raise AlfiaError(f"LeMoF cannot read the layers of a {type(model).__name__}")
    hidden, logit = _head_levels(model.head, features)
    return [*levels, ("head", hidden)], logit


@torch.no_grad()
def series_levels(run_dir: str | os.PathLike, arrays, *, batch_size: int = 256, source: str = "") -> ModalityLevels:
    """The levels of a series run's model over an hourly table's stays (its variables aligned by name/unit)."""
    from alfia.series.predict import features, load_series_run

    run = load_series_run(run_dir)
    x = torch.from_numpy(features(run, arrays)[0])
    run.model.eval()
    parts, logits, names = [], [], None
    for start in range(0, len(x), batch_size):
        levels, logit = series_model_levels(run.model, x[start:start + batch_size])
        names = [name for name, _ in levels]
        parts.append([v.float().numpy() for _, v in levels])
        logits.append(logit.float().numpy())
    if names is None:
        raise AlfiaError(f"{source or 'hourly table'}: no stays")
    stacked = [np.concatenate([p[i] for p in parts]) for i in range(len(names))]
    return ModalityLevels("series", arrays.stay_id, names, stacked, np.concatenate(logits),
                          {"run": str(run.root.resolve()), "model": run.name, "data": source})


def file_record(path: str | os.PathLike | None) -> dict:
    """What a run records of an input file: its path and SHA-256."""
    if path is None:
        return {}
    return {"path": str(path), "sha256": sha256_file(path)}
