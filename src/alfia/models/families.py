"""Backbone families: what ALFIA must know about an encoder architecture, in one table.

An encoder's ``config.model_type`` picks its row of ``FAMILIES``; a type no row claims gets
``DEFAULT_FAMILY`` (BERT's names, and attention dropout looked for in both places below). A row holds:

- ``lora_targets``: the family's names for the paper's LoRA targets ``query, key, value, output.dense``
  (§2.3.4, eq. 20). They replace the paper's names when those match no linear layer of the encoder.
- ``attention_dropout_keys`` / ``attention_dropout_holders``: where the dropout on attention
  probabilities is kept, in the config and on each attention module (``alfia.models.backbone``):
  ``"dropout"``, an ``nn.Dropout`` named ``dropout`` on every module with ``attention_head_size``
  (BERT, RoBERTa, ELECTRA, DeBERTa-v2, DistilBERT); ``"attention_dropout"``, a float attribute of that
  name (ModernBERT).
- ``positions_after_padding``: position ids start at ``pad_token_id + 1`` (RoBERTa), so that many
  fewer tokens fit in ``max_position_embeddings``.
- ``layer_stack``: the dotted path, on the base encoder, of its ``nn.ModuleList`` of layers when each layer
  is called as ``layer(hidden_states, attention_mask)`` with the mask of ``create_bidirectional_mask`` (BERT,
  RoBERTa). It lets ALFIA cache the output of the frozen bottom once and run only the trained top layers
  (``train_layers``), and prune layers. ``None``: the family's layers need more than that (DeBERTa-v2's
  relative positions, ModernBERT's rotary embeddings); top-K training then runs the whole encoder every step.

Tokenisation needs no row: every family's tokenizer loads with ``AutoTokenizer`` from the backbone's
folder, and ``token_type_ids`` are passed only to encoders whose ``forward`` takes them.
Adding a family means adding its row here; nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from alfia.models.config import PAPER_LORA_TARGETS

ATTENTION_DROPOUT_HOLDERS = ("dropout", "attention_dropout")


@dataclass(frozen=True)
class BackboneFamily:
    name: str
    model_types: tuple[str, ...]  # transformers' config.model_type values this row covers
    lora_targets: tuple[str, ...] = PAPER_LORA_TARGETS
    attention_dropout_keys: tuple[str, ...] = ("attention_probs_dropout_prob",)
    attention_dropout_holders: tuple[str, ...] = ("dropout",)
    positions_after_padding: bool = False
    layer_stack: str | None = None

    def __post_init__(self) -> None:
        unknown = set(self.attention_dropout_holders) - set(ATTENTION_DROPOUT_HOLDERS)
        if unknown:
            raise ValueError(f"family {self.name}: unknown attention dropout holder(s) {sorted(unknown)}; "
                             f"known: {', '.join(ATTENTION_DROPOUT_HOLDERS)}")

    def position_offset(self, model_config: Any) -> int:
        """Positions of ``max_position_embeddings`` that no token can use."""
        if not self.positions_after_padding:
            return 0
        return (getattr(model_config, "pad_token_id", 0) or 0) + 1  # RoBERTa: padding_idx + 1 reserved


DEFAULT_FAMILY = BackboneFamily(
    "bert", ("bert",),  # BERT, MiniLM, BioLinkBERT, and any encoder no row claims (e.g. ELECTRA)
    attention_dropout_keys=("attention_probs_dropout_prob", "attention_dropout"),
    attention_dropout_holders=ATTENTION_DROPOUT_HOLDERS, layer_stack="encoder.layer")

FAMILIES: dict[str, BackboneFamily] = {
    "bert": DEFAULT_FAMILY,
    "roberta": BackboneFamily("roberta", ("roberta", "xlm-roberta", "camembert"), positions_after_padding=True,
                              layer_stack="encoder.layer"),
    "modernbert": BackboneFamily("modernbert", ("modernbert",), lora_targets=("Wqkv", "attn.Wo", "mlp.Wo"),
                                 attention_dropout_keys=("attention_dropout",),
                                 attention_dropout_holders=("attention_dropout",)),
    "distilbert": BackboneFamily("distilbert", ("distilbert",),
                                 lora_targets=("q_lin", "k_lin", "v_lin", "out_lin", "lin2"),
                                 attention_dropout_keys=("attention_dropout",)),
    "deberta-v2": BackboneFamily("deberta-v2", ("deberta-v2",),
                                 lora_targets=("query_proj", "key_proj", "value_proj", "output.dense")),
}


def family_of(model_type: str | None) -> BackboneFamily:
    """The row of ``FAMILIES`` that covers ``model_type``; ``DEFAULT_FAMILY`` when none does."""
    for family in FAMILIES.values():
        if model_type in family.model_types:
            return family
    return DEFAULT_FAMILY
