"""The encoder's layer stack: which layers train, running a slice of them, and structured layer pruning.

``train_layers = K`` (``AlfiaConfig``) trains the top K of the encoder's L layers. The layers below are frozen,
so the hidden state entering layer L-K+1 is the same in every epoch: ALFIA computes it once per text
(``alfia.runtime.compute_frozen_states``) and each training step runs only the top K layers over it
(``run_layers``). In the paper's numbering (eq. 1) the encoder gives H^(0) (embeddings) .. H^(L); the cache
holds H^(L-K) and, when K < N_f, the frozen pooled layers H^(L-N_f+1) .. H^(L-K) as well.

This works for families whose layers are called as ``layer(hidden_states, attention_mask)`` (their row in
``alfia.models.families.FAMILIES`` names the stack); for the others (DeBERTa-v2, ModernBERT) top-K training
runs the whole encoder with the bottom frozen, which gives the same model, only slower.

Pruning (``prune_layers``, after "Parameter-Efficient Fine-Tuning with Layer Pruning", related papers) removes
whole layers from the stack before anything trains; the rule is saved in the run's config and applied again
when the run is loaded, so predict rebuilds the same encoder.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from alfia.errors import AlfiaError
from alfia.models.config import ALL_LAYERS
from alfia.models.families import family_of


def layer_stack(base_encoder: nn.Module) -> nn.ModuleList | None:
    """The encoder's ``nn.ModuleList`` of layers, or None when its family's layers cannot be run one by one."""
    path = family_of(getattr(base_encoder.config, "model_type", None)).layer_stack
    if path is None:
        return None
    module: object = base_encoder
    for part in path.split("."):
        module = getattr(module, part, None)
    return module if isinstance(module, nn.ModuleList) else None


def trained_layer_count(train_layers: int | str, depth: int) -> int:
    """K, the number of top layers that train (``"all"``: every layer). Raises if K exceeds the depth."""
    if train_layers == ALL_LAYERS:
        return depth
    if train_layers > depth:
        raise AlfiaError(f"train_layers={train_layers} is more than the encoder's {depth} layers; "
                         f"use train_layers='all' (or at most {depth})")
    return int(train_layers)


def cached_state_indices(depth: int, trained: int, n_pooled: int) -> tuple[int, ...]:
    """Indices j of the hidden states H^(j) a bottom cache holds for top-``trained`` training.

    The last one, H^(L-K), is the input of the first trained layer; before it come the frozen pooled layers
    (those of H^(L-N_f+1) .. H^(L) that lie at or below L-K)."""
    entry = depth - trained
    first_pooled = depth - n_pooled + 1
    return tuple(range(first_pooled, entry + 1)) if first_pooled <= entry else (entry,)


def bidirectional_mask(base_encoder: nn.Module, hidden: torch.Tensor, attention_mask: torch.Tensor):
    """The attention mask the encoder's own forward would build for its layers (eager or SDPA alike)."""
    from transformers.masking_utils import create_bidirectional_mask

    return create_bidirectional_mask(config=base_encoder.config, inputs_embeds=hidden, attention_mask=attention_mask)


def run_layers(stack: nn.ModuleList, first: int, last: int, hidden: torch.Tensor, mask) -> list[torch.Tensor]:
    """Run layers ``first+1 .. last`` (1-based, as H^(j) is layer j's output) from H^(first); returns their
    outputs H^(first+1) .. H^(last)."""
    outputs = []
    for index in range(first, last):
        out = stack[index](hidden, mask)
        hidden = out[0] if isinstance(out, tuple) else out
        outputs.append(hidden)
    return outputs


def resolve_pruned_layers(spec: str | None, depth: int) -> tuple[int, ...]:
    """The 0-based indices of the layers ``spec`` removes from a ``depth``-layer stack.

    ``"every-other"``: layers 0, 2, 4, ... go, so the top layer (the one pre-training shaped last) stays;
    ``"bottom:N"``: the N lowest go; ``"1,3"``: exactly those. At least one layer must remain."""
    if spec is None:
        return ()
    if spec == "every-other":
        dropped = tuple(range(depth - 2, -1, -2))[::-1]
    elif spec.startswith("bottom:"):
        count = spec.split(":", 1)[1]
        if not count.isdigit():
            raise AlfiaError(f"prune_layers={spec!r}: 'bottom:N' needs a whole number N")
        dropped = tuple(range(int(count)))
    else:
        try:
            dropped = tuple(sorted({int(x) for x in spec.split(",") if x.strip()}))
        except ValueError:
            raise AlfiaError(f"prune_layers={spec!r}: expected 'every-other', 'bottom:N' or 0-based layer indices "
                             f"such as '0,2'") from None
        outside = [i for i in dropped if not 0 <= i < depth]
        if outside:
            raise AlfiaError(f"prune_layers={spec!r}: layer(s) {outside} do not exist (the encoder has layers "
                             f"0..{depth - 1})")
    if len(dropped) >= depth:
        raise AlfiaError(f"prune_layers={spec!r} removes all {depth} layers of the encoder; keep at least one")
    return dropped


def prune_encoder(base_encoder: nn.Module, spec: str | None) -> tuple[int, ...]:
    """Remove the layers ``spec`` names from the encoder, in place; returns the 0-based indices kept."""
    stack = layer_stack(base_encoder)
    depth = len(stack) if stack is not None else getattr(base_encoder.config, "num_hidden_layers", 0)
    dropped = resolve_pruned_layers(spec, depth)
    kept = tuple(i for i in range(depth) if i not in dropped)
    if not dropped:
        return kept
    if stack is None:
        raise AlfiaError(f"prune_layers: the {base_encoder.config.model_type} encoder's layers cannot be removed "
                         "one by one (only BERT- and RoBERTa-style stacks can)")
    path = family_of(base_encoder.config.model_type).layer_stack.split(".")
    parent = base_encoder
    for part in path[:-1]:
        parent = getattr(parent, part)
    setattr(parent, path[-1], nn.ModuleList([stack[i] for i in kept]))
    base_encoder.config.num_hidden_layers = len(kept)
    return kept


def trained_parameter_names(base_encoder: nn.Module, trained: int) -> list[str]:
    """Parameter names (of ``base_encoder``) that top-``trained`` full fine-tuning updates."""
    stack = layer_stack(base_encoder)
    depth = len(stack) if stack is not None else base_encoder.config.num_hidden_layers
    if trained >= depth:
        return [name for name, _ in base_encoder.named_parameters()]
    if stack is None:
        raise AlfiaError(f"train_layers={trained} with finetune='full' needs a BERT- or RoBERTa-style layer stack; "
                         f"for the {base_encoder.config.model_type} encoder use finetune='lora' or train_layers='all'")
    wanted = {id(p) for layer in list(stack)[depth - trained:] for p in layer.parameters()}
    return [name for name, p in base_encoder.named_parameters() if id(p) in wanted]


def lora_layer_indices(depth: int, trained: int) -> Sequence[int] | None:
    """peft's ``layers_to_transform`` for top-``trained`` LoRA; None: every layer."""
    return None if trained >= depth else list(range(depth - trained, depth))
