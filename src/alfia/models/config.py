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

from dataclasses import dataclass, field
from typing import Any

from alfia.config_base import JsonConfig, require
from alfia.errors import AlfiaError
from alfia.models.pooler_table import POOLERS

FINETUNE_MODES = ("lora", "full")
ALL_LAYERS = "all"
PRUNE_RULES = ("every-other", "bottom:N", "a comma-separated list of 0-based layer indices")
LORA_BIAS = ("none", "all", "lora_only")
PAPER_LORA_TARGETS = ("query", "key", "value", "output.dense")


@dataclass
class LoraSettings(JsonConfig):
    """LoRA on the encoder (eq. 20: h = W0 x + B A x, with W0 frozen)."""

    config_name = "lora"

    r: int = 16
    alpha: float = 16
    dropout: float = 0.05
    # Matched by peft as a full module name or a dotted suffix: "output.dense" covers both the attention
    # output projection and the feed-forward output of every BERT/RoBERTa layer.
    target_modules: tuple[str, ...] = PAPER_LORA_TARGETS
    bias: str = "none"

    def __post_init__(self) -> None:
        if isinstance(self.target_modules, str):  # "query,key,value" from a CLI option
            self.target_modules = tuple(t.strip() for t in self.target_modules.split(",") if t.strip())
        super().__post_init__()

    def validate(self) -> None:
        require(self.r >= 1, f"lora.r must be a positive integer, got {self.r!r}")
        require(self.alpha > 0, f"lora.alpha must be positive, got {self.alpha!r}")
        require(0.0 <= self.dropout < 1.0, f"lora.dropout must be in [0, 1), got {self.dropout!r}")
        require(len(self.target_modules) > 0 and all(isinstance(t, str) and t for t in self.target_modules),
                f"lora.target_modules must name at least one module, got {self.target_modules!r}")
        require(self.bias in LORA_BIAS, f"lora.bias must be one of {', '.join(LORA_BIAS)}; got {self.bias!r}")


@dataclass
class AlfiaConfig(JsonConfig):
    """Everything needed to rebuild an ALFIA model (not the training schedule, which training owns)."""

    config_name = "model config"
    file_missing = "model config not found"

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
        if isinstance(self.train_layers, str) and self.train_layers.strip().isdigit():  # "2" from a CLI option
            self.train_layers = int(self.train_layers.strip())
        super().__post_init__()
        if self.prune_layers is not None:
            self.prune_layers = self.prune_layers.strip()

    def validate(self) -> None:
        require(self.backbone is None or self.backbone.strip() != "",
                f"backbone must be a model id, a folder, or None; got {self.backbone!r}")
        require(self.pooler in POOLERS, f"unknown pooler {self.pooler!r}; choose one of {', '.join(POOLERS)}")
        require(self.finetune in FINETUNE_MODES,
                f"unknown finetune mode {self.finetune!r}; choose one of {', '.join(FINETUNE_MODES)} (what trains "
                f"at all is train_layers: 0 freezes the encoder)")
        require(self.train_layers == ALL_LAYERS or (isinstance(self.train_layers, int) and self.train_layers >= 0),
                f"train_layers must be 0 (frozen encoder), a number of top layers, or 'all'; got {self.train_layers!r}")
        require(self.prune_layers is None or self.prune_layers.strip() != "",
                f"prune_layers must be one of: {'; '.join(PRUNE_RULES)}; got {self.prune_layers!r}")
        for name in ("n_fusion_layers", "fusion_heads", "classifier_heads", "head_ffn_mult", "max_length"):
            value = getattr(self, name)
            require(value >= 1, f"{name} must be a positive integer, got {value!r}")
        require(self.max_length >= 2, f"max_length must leave room for special tokens, got {self.max_length}")
        require(0.0 <= self.dropout < 1.0, f"dropout must be in [0, 1), got {self.dropout!r}")
        require(self.attention_dropout is None or 0.0 <= self.attention_dropout < 1.0,
                f"attention_dropout must be empty (the backbone's value) or in [0, 1), got {self.attention_dropout!r}")

    @property
    def trains_encoder(self) -> bool:
        return self.train_layers != 0

    @classmethod
    def upgrade(cls, data: dict[str, Any]) -> dict[str, Any]:
        if "train_layers" not in data and "finetune" in data:
            # A run saved before train_layers existed: "frozen" trained nothing of the encoder, "lora" and
            # "full" trained all of it.
            data["train_layers"] = 0 if data["finetune"] == "frozen" else ALL_LAYERS
            if data["finetune"] == "frozen":
                data["finetune"] = "lora"
        if "lora" in data and not isinstance(data["lora"], dict):
            raise AlfiaError("'lora' must be an object")
        return data
