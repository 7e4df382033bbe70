"""Hourly sequence models in torch: the BiLSTM + Transformer fusion of Yu, Qin and Zhu (2026), its two
ablations (BiLSTM only, Transformer only), and GRU and TCN, YAIB's usual references.

Every model maps (batch, hours, features) to one logit per stay, for any number of hours up to
``max_hours``: hour-by-hour risk runs the model on hours 1..k. One config dataclass per model
(:class:`alfia.config_base.JsonConfig`: typed and checked on construction), each round-tripping JSON through
:func:`config_to_dict` / :func:`config_from_dict`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from torch import nn

from alfia.config_base import JsonConfig, require
from alfia.errors import AlfiaError


class _SeriesModelConfig(JsonConfig):
    """What every series model config checks: sizes are positive, dropout is a probability, and a Transformer
    branch splits its width evenly across its heads."""

    def validate(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "dropout":
                require(0.0 <= value < 1.0, f"{f.name} must be in [0, 1), got {value!r}")
            elif f.name == "input_size":  # 0 until the preprocessing sets it (build_model refuses 0)
                require(value >= 0, f"{f.name} must be >= 0, got {value!r}")
            else:
                require(value >= 1, f"{f.name} must be >= 1, got {value!r}")
        if hasattr(self, "n_heads"):
            require(self.d_model % self.n_heads == 0,
                    f"d_model ({self.d_model}) must be a multiple of n_heads ({self.n_heads})")


@dataclass
class BiLSTMConfig(_SeriesModelConfig):
    input_size: int = 0
    hidden_size: int = 32
    num_layers: int = 1
    dropout: float = 0.2


@dataclass
class TransformerConfig(_SeriesModelConfig):
    input_size: int = 0
    d_model: int = 32
    n_heads: int = 4
    n_layers: int = 1
    dim_feedforward: int = 64
    dropout: float = 0.2
    max_hours: int = 48


@dataclass
class FusionConfig(_SeriesModelConfig):
    """BiLSTM branch (local trends) + Transformer-encoder branch (long-range dependencies), fused by
    concatenating the two stay summaries before a small MLP head (the seed's dual-branch design)."""

    input_size: int = 0
    hidden_size: int = 32
    lstm_layers: int = 1
    d_model: int = 32
    n_heads: int = 4
    n_layers: int = 1
    dim_feedforward: int = 64
    dropout: float = 0.2
    max_hours: int = 48


@dataclass
class GRUConfig(_SeriesModelConfig):
    input_size: int = 0
    hidden_size: int = 32
    num_layers: int = 1
    dropout: float = 0.2


@dataclass
class TCNConfig(_SeriesModelConfig):
    input_size: int = 0
    channels: int = 32
    kernel_size: int = 3
    levels: int = 3  # dilations 1, 2, 4: a receptive field of 15 hours with kernel 3
    dropout: float = 0.2


def _head(width: int, dropout: float) -> nn.Module:
    return nn.Sequential(nn.Dropout(dropout), nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 1))


class _BiLSTMBranch(nn.Module):
    def __init__(self, input_size, hidden_size, num_layers, dropout):
        super().__init__()
        self.lstm = nn.LSTM(input_size, hidden_size, num_layers=num_layers, batch_first=True,
                            bidirectional=True, dropout=dropout if num_layers > 1 else 0.0)
        self.width = 2 * hidden_size

    def forward(self, x):
        _, (h, _) = self.lstm(x)
        return torch.cat([h[-2], h[-1]], dim=1)  # last layer: forward state at hour k, backward at hour 1


class _TransformerBranch(nn.Module):
    def __init__(self, input_size, d_model, n_heads, n_layers, dim_feedforward, dropout, max_hours):
        super().__init__()
        self.proj = nn.Linear(input_size, d_model)
        self.position = nn.Parameter(torch.zeros(1, max_hours, d_model))
        nn.init.normal_(self.position, std=0.02)
        layer = nn.TransformerEncoderLayer(d_model, n_heads, dim_feedforward, dropout, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.max_hours = max_hours
        self.width = d_model

    def forward(self, x):
        if x.shape[1] > self.max_hours:
            raise AlfiaError(f"{x.shape[1]} hours given; the model was built for at most {self.max_hours}")
        z = self.encoder(self.proj(x) + self.position[:, : x.shape[1]])
        return z.mean(dim=1)


class BiLSTMModel(nn.Module):
    def __init__(self, c: BiLSTMConfig):
        super().__init__()
        self.branch = _BiLSTMBranch(c.input_size, c.hidden_size, c.num_layers, c.dropout)
        self.head = _head(self.branch.width, c.dropout)

    def forward(self, x):
        return self.head(self.branch(x)).squeeze(-1)


class TransformerModel(nn.Module):
    def __init__(self, c: TransformerConfig):
        super().__init__()
        self.branch = _TransformerBranch(c.input_size, c.d_model, c.n_heads, c.n_layers, c.dim_feedforward,
                                         c.dropout, c.max_hours)
        self.head = _head(self.branch.width, c.dropout)

    def forward(self, x):
        return self.head(self.branch(x)).squeeze(-1)


class FusionModel(nn.Module):
    def __init__(self, c: FusionConfig):
        super().__init__()
        self.lstm = _BiLSTMBranch(c.input_size, c.hidden_size, c.lstm_layers, c.dropout)
        self.transformer = _TransformerBranch(c.input_size, c.d_model, c.n_heads, c.n_layers,
                                              c.dim_feedforward, c.dropout, c.max_hours)
        self.head = _head(self.lstm.width + self.transformer.width, c.dropout)

    def forward(self, x):
        return self.head(torch.cat([self.lstm(x), self.transformer(x)], dim=1)).squeeze(-1)


class GRUModel(nn.Module):
    def __init__(self, c: GRUConfig):
        super().__init__()
        self.gru = nn.GRU(c.input_size, c.hidden_size, num_layers=c.num_layers, batch_first=True,
                          dropout=c.dropout if c.num_layers > 1 else 0.0)
        self.head = _head(c.hidden_size, c.dropout)

    def forward(self, x):
        _, h = self.gru(x)
        return self.head(h[-1]).squeeze(-1)


class _CausalBlock(nn.Module):
    def __init__(self, cin, cout, kernel, dilation, dropout):
        super().__init__()
        self.pad = (kernel - 1) * dilation  # left padding only: output at hour t sees hours <= t
        self.conv1 = nn.Conv1d(cin, cout, kernel, dilation=dilation)
        self.conv2 = nn.Conv1d(cout, cout, kernel, dilation=dilation)
        self.drop = nn.Dropout(dropout)
        self.skip = nn.Conv1d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x):
        y = self.drop(torch.relu(self.conv1(nn.functional.pad(x, (self.pad, 0)))))
        y = self.drop(torch.relu(self.conv2(nn.functional.pad(y, (self.pad, 0)))))
        return torch.relu(y + self.skip(x))


class TCNModel(nn.Module):
    def __init__(self, c: TCNConfig):
        super().__init__()
        blocks, cin = [], c.input_size
        for level in range(c.levels):
            blocks.append(_CausalBlock(cin, c.channels, c.kernel_size, 2 ** level, c.dropout))
            cin = c.channels
        self.blocks = nn.Sequential(*blocks)
        self.head = _head(c.channels, c.dropout)

    def forward(self, x):
        return self.head(self.blocks(x.transpose(1, 2))[:, :, -1]).squeeze(-1)


# name -> (config class, model class, description)
MODELS = {
    "bilstm-transformer": (FusionConfig, FusionModel, "BiLSTM + Transformer fusion (Yu, Qin, Zhu 2026)"),
    "bilstm": (BiLSTMConfig, BiLSTMModel, "BiLSTM only (ablation of the fusion model)"),
    "transformer": (TransformerConfig, TransformerModel, "Transformer encoder only (ablation)"),
    "gru": (GRUConfig, GRUModel, "GRU (YAIB reference)"),
    "tcn": (TCNConfig, TCNModel, "Temporal convolutional network (YAIB reference)"),
}


def _entry(name: str):
    if name not in MODELS:
        raise AlfiaError(f"unknown series model {name!r}; choose one of {', '.join(MODELS)}")
    return MODELS[name]


def default_config(name: str, input_size: int, **overrides):
    cls = _entry(name)[0]
    known = {f.name for f in fields(cls)}
    bad = set(overrides) - known
    if bad:
        raise AlfiaError(f"{name}: unknown setting(s) {', '.join(sorted(bad))} (known: {', '.join(sorted(known))})")
    return cls(input_size=input_size, **overrides)


def config_to_dict(name: str, config) -> dict:
    return {"model": name, **config.to_dict()}


def config_from_dict(d: dict, *, source: str = "model config"):
    d = dict(d)
    name = d.pop("model", None)
    cls = _entry(str(name))[0]
    return name, cls.from_dict(d, source=f"{source} of {name!r}")


def build_model(name: str, config) -> nn.Module:
    if config.input_size < 1:
        raise AlfiaError(f"{name}: input_size must be set (got {config.input_size})")
    return _entry(name)[1](config)
