"""Typed configuration of the ALFIA model, saved as JSON next to its weights.

The architecture defaults are the paper's (§2.3–2.4): the top N_f = 4 layers fused, 4 inter-layer attention
heads, sigmoid layer gating, a 4-head Attentional Classifier Head, and LoRA r=16, alpha=16, dropout 0.05 on
``query, key, value, output.dense``.

What of the encoder trains is one setting, ``train_layers``: 0 (nothing: the encoder is frozen), K (its top K
layers; the layers below stay frozen and their output is computed once per text), or ``"all"`` (every layer,
the paper's joint LoRA). ``finetune`` says how the trained layers learn: ``"lora"`` (peft adapters on those
layers only, through peft's ``layers_to_transform``) or ``"full"`` (their own weights). The dataclass defaults
are the CPU recipe (top 2 layers fully fine-tuned, as the authors' reference code does in its non-LoRA mode);
the paper's recipe is ``alfia.training.recipes.RECIPES["paper"]``.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from alfia.atomic import read_json_object, write_json_atomic
from alfia.errors import AlfiaError
from alfia.models.pooler_table import POOLERS

FINETUNE_MODES = ("lora", "full")
ALL_LAYERS = "all"
PRUNE_RULES = ("every-other", "bottom:N", "a comma-separated list of 0-based layer indices")
LORA_BIAS = ("none", "all", "lora_only")
PAPER_LORA_TARGETS = ("query", "key", "value", "output.dense")


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise AlfiaError(message)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass
class LoraSettings:
    """LoRA on the encoder (eq. 20: h = W0 x + B A x, with W0 frozen)."""

    r: int = 16
    alpha: int = 16
    dropout: float = 0.05
    # Matched by peft as a full module name or a dotted suffix: "output.dense" covers both the attention
    # output projection and the feed-forward output of every BERT/RoBERTa layer.
    target_modules: tuple[str, ...] = PAPER_LORA_TARGETS
    bias: str = "none"

    def __post_init__(self) -> None:
        if isinstance(self.target_modules, str):  # "query,key,value" from a CLI option
            self.target_modules = tuple(t.strip() for t in self.target_modules.split(",") if t.strip())
        else:
            self.target_modules = tuple(self.target_modules)
        _require(_is_int(self.r) and self.r >= 1, f"lora.r must be a positive integer, got {self.r!r}")
        _require(_is_number(self.alpha) and self.alpha > 0, f"lora.alpha must be positive, got {self.alpha!r}")
        _require(_is_number(self.dropout) and 0.0 <= self.dropout < 1.0,
                 f"lora.dropout must be in [0, 1), got {self.dropout!r}")
        _require(len(self.target_modules) > 0 and all(isinstance(t, str) and t for t in self.target_modules),
                 f"lora.target_modules must name at least one module, got {self.target_modules!r}")
        _require(self.bias in LORA_BIAS, f"lora.bias must be one of {', '.join(LORA_BIAS)}; got {self.bias!r}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["target_modules"] = list(self.target_modules)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "lora") -> "LoraSettings":
        return cls(**_known_keys(cls, data, source))


@dataclass
class AlfiaConfig:
    """Everything needed to rebuild an ALFIA model (not the training schedule, which training owns)."""

    backbone: str | None = None  # None: the offline all-MiniLM-L6-v2; else a local folder or a HF model id
    n_fusion_layers: int = 4  # N_f, the top encoder layers the ALF module weighs
    fusion_heads: int = 4  # n_h of the inter-layer attention (eqs. 3–6)
    gating: bool = True  # sigmoid layer gate (eq. 7); off: normalised attention scores
    pooler: str = "alf"  # "alf", or an ablation pooler: a key of alfia.models.pooler_table.POOLERS
    classifier_heads: int = 4  # heads of the ACH self-attention (eq. 15); the paper's Figure 2 uses 4
    head_ffn_mult: int = 4  # ACH feed-forward width = head_ffn_mult * hidden size (eq. 17)
    dropout: float = 0.1  # dropout inside ALF and ACH
    # Dropout on the encoder's attention probabilities. None keeps the backbone's own value (0.1 for
    # BERT/MiniLM). On CPU, PyTorch's fused attention has no dropout, so any value > 0 falls back to the
    # unfused path and makes a LoRA training step 2.4x slower at 512 tokens (BENCHMARKS.md, model section),
    # so the CPU recipe sets 0; the paper's recipe keeps the backbone's.
    attention_dropout: float | None = 0.0
    # What of the encoder trains: 0 (nothing), K (the top K layers, over a cached bottom), or "all".
    train_layers: int | str = 2
    finetune: str = "full"  # how the trained layers learn: "lora" (adapters, eq. 20) or "full" (their weights)
    lora: LoraSettings = field(default_factory=LoraSettings)
    max_length: int = 512  # tokens per text after truncation; the one truncation length of a run
    # Per-layer, per-dimension standardisation of the pooled states before ALF (the fix of issue 10's collapse).
    standardise_states: bool = True
    # Encoder layers removed before training (structured layer pruning): None, "every-other" (layers 0, 2, ...
    # of the stack go; the top layer stays), "bottom:N" (the N lowest go), or 0-based indices "0,2".
    prune_layers: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.lora, dict):
            self.lora = LoraSettings.from_dict(self.lora)
        _require(isinstance(self.lora, LoraSettings), f"lora must be LoraSettings, got {type(self.lora).__name__}")
        _require(self.backbone is None or (isinstance(self.backbone, str) and self.backbone.strip() != ""),
                 f"backbone must be a model id, a folder, or None; got {self.backbone!r}")
        _require(self.pooler in POOLERS, f"unknown pooler {self.pooler!r}; choose one of {', '.join(POOLERS)}")
        _require(self.finetune in FINETUNE_MODES,
                 f"unknown finetune mode {self.finetune!r}; choose one of {', '.join(FINETUNE_MODES)} (what trains "
                 f"at all is train_layers: 0 freezes the encoder)")
        if isinstance(self.train_layers, str) and self.train_layers.strip().isdigit():  # "2" from a CLI option
            self.train_layers = int(self.train_layers.strip())
        _require(self.train_layers == ALL_LAYERS or (_is_int(self.train_layers) and self.train_layers >= 0),
                 f"train_layers must be 0 (frozen encoder), a number of top layers, or 'all'; got {self.train_layers!r}")
        _require(isinstance(self.standardise_states, bool),
                 f"standardise_states must be true or false, got {self.standardise_states!r}")
        if self.prune_layers is not None:
            _require(isinstance(self.prune_layers, str) and self.prune_layers.strip() != "",
                     f"prune_layers must be one of: {'; '.join(PRUNE_RULES)}; got {self.prune_layers!r}")
            self.prune_layers = self.prune_layers.strip()
        for name in ("n_fusion_layers", "fusion_heads", "classifier_heads", "head_ffn_mult", "max_length"):
            value = getattr(self, name)
            _require(_is_int(value) and value >= 1, f"{name} must be a positive integer, got {value!r}")
        _require(self.max_length >= 2, f"max_length must leave room for special tokens, got {self.max_length}")
        _require(isinstance(self.gating, bool), f"gating must be true or false, got {self.gating!r}")
        _require(_is_number(self.dropout) and 0.0 <= self.dropout < 1.0,
                 f"dropout must be in [0, 1), got {self.dropout!r}")
        _require(self.attention_dropout is None
                 or (_is_number(self.attention_dropout) and 0.0 <= self.attention_dropout < 1.0),
                 f"attention_dropout must be empty (the backbone's value) or in [0, 1), got {self.attention_dropout!r}")

    @property
    def trains_encoder(self) -> bool:
        return self.train_layers != 0

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["lora"] = self.lora.to_dict()
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "model config") -> "AlfiaConfig":
        if not isinstance(data, dict):
            raise AlfiaError(f"{source}: expected a JSON object, got {type(data).__name__}")
        kwargs = _known_keys(cls, data, source)
        if "train_layers" not in kwargs and "finetune" in kwargs:
            # A run saved before train_layers existed: "frozen" trained nothing of the encoder, "lora" and
            # "full" trained all of it.
            kwargs["train_layers"] = 0 if kwargs["finetune"] == "frozen" else ALL_LAYERS
            if kwargs["finetune"] == "frozen":
                kwargs["finetune"] = "lora"
        if "lora" in kwargs and not isinstance(kwargs["lora"], dict):
            raise AlfiaError(f"{source}: 'lora' must be an object")
        try:
            if "lora" in kwargs:
                kwargs["lora"] = LoraSettings.from_dict(kwargs["lora"], source=f"{source}: lora")
            return cls(**kwargs)
        except AlfiaError as e:
            raise AlfiaError(f"{source}: {e}") from None

    def save_json(self, path: str | os.PathLike) -> Path:
        return write_json_atomic(path, self.to_dict())

    @classmethod
    def load_json(cls, path: str | os.PathLike) -> "AlfiaConfig":
        data = read_json_object(path, missing="model config not found")
        return cls.from_dict(data, source=str(path))


def _known_keys(cls: type, data: dict[str, Any], source: str) -> dict[str, Any]:
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise AlfiaError(f"{source}: unknown key(s) {', '.join(unknown)}; expected {', '.join(sorted(names))}")
    return dict(data)
