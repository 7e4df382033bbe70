"""LoRA on the encoder through peft (the paper's §2.3.4, eq. 20: h = W0 x + B A x, W0 frozen).

The paper's targets, ``query, key, value, output.dense``, are BERT/RoBERTa module names. They also fit
BioLinkBERT and ELECTRA. Other encoders name their projections differently (ModernBERT: ``Wqkv``/``Wo``).
When the paper's default targets match nothing, the encoder family's own names (``lora_targets`` of its
row in ``alfia.models.families.FAMILIES``) are used, with a warning. Targets that a user chose and that
match nothing are an error, and the message lists the names the encoder does have.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from torch import nn

from alfia.atomic import atomic_directory
from alfia.errors import AlfiaError
from alfia.models.config import PAPER_LORA_TARGETS, LoraSettings
from alfia.models.families import family_of

ADAPTER_WEIGHTS = "adapter_model.safetensors"
ADAPTER_CONFIG = "adapter_config.json"


def _matches(name: str, target: str) -> bool:
    # peft's rule for a list of targets: the full module name, or a dotted suffix of it.
    return name == target or name.endswith("." + target)


def linear_module_names(model: nn.Module) -> list[str]:
    return [name for name, module in model.named_modules() if isinstance(module, nn.Linear)]


def _suffixes(names: list[str]) -> list[str]:
    """'encoder.layer.0.attention.self.query' -> 'attention.self.query', deduplicated across layers."""
    seen: dict[str, None] = {}
    for name in names:
        parts = [p for p in name.split(".") if not p.isdigit()]
        seen[".".join(parts[-2:])] = None
    return list(seen)


def resolve_target_modules(model: nn.Module, settings: LoraSettings) -> tuple[str, ...]:
    """The targets to give peft for this encoder; raises AlfiaError if they match no linear layer."""
    names = linear_module_names(model)
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    targets = tuple(settings.target_modules)
    unmatched = [t for t in targets if not any(_matches(n, t) for n in names)]
    equivalent = family_of(model_type).lora_targets
    # The paper's targets are BERT names: a family with its own names uses those, even where one BERT name
    # (e.g. DeBERTa-v2's output.dense) happens to match, so LoRA covers the attention projections too.
    if targets == PAPER_LORA_TARGETS and equivalent != PAPER_LORA_TARGETS:
        warnings.warn(f"LoRA: the paper's targets ({', '.join(targets)}) are BERT names; using the {model_type} "
                      f"equivalents {', '.join(equivalent)}", UserWarning, stacklevel=3)
        targets = equivalent
        unmatched = [t for t in targets if not any(_matches(n, t) for n in names)]
    if len(unmatched) == len(targets):
        raise AlfiaError(f"LoRA target modules {', '.join(targets)} match no linear layer of the backbone "
                         f"({model_type}); its linear layers are named like: {', '.join(_suffixes(names)[:12])}. "
                         "Set lora.target_modules (--lora-targets) to some of these.")
    if unmatched:
        warnings.warn(f"LoRA target(s) {', '.join(unmatched)} match no linear layer of this {model_type} backbone; "
                      "LoRA goes on the other targets only", UserWarning, stacklevel=3)
    return targets


def lora_config(model: nn.Module, settings: LoraSettings, layers=None):
    """peft's config; ``layers``: the 0-based layer indices that get adapters (None: every layer)."""
    from peft import LoraConfig

    return LoraConfig(r=settings.r, lora_alpha=settings.alpha, lora_dropout=settings.dropout,
                      target_modules=list(resolve_target_modules(model, settings)), bias=settings.bias,
                      layers_to_transform=None if layers is None else list(layers))


def apply_lora(model: nn.Module, settings: LoraSettings, layers=None) -> nn.Module:
    """Wrap ``model`` in a peft model with fresh LoRA weights on ``layers`` (None: all); base weights are
    frozen by peft."""
    from peft import get_peft_model

    config = lora_config(model, settings, layers)
    try:
        return get_peft_model(model, config)
    except ValueError as e:
        raise AlfiaError(f"LoRA could not be applied to the backbone: {e}") from None


def save_lora_adapter(peft_model: nn.Module, adapter_dir: str | os.PathLike) -> Path:
    """Write the adapter in peft's own format (adapter_config.json + adapter_model.safetensors), atomically."""
    with atomic_directory(adapter_dir) as tmp:
        peft_model.save_pretrained(str(tmp), safe_serialization=True)
    return Path(adapter_dir)


def load_lora_adapter(model: nn.Module, adapter_dir: str | os.PathLike) -> nn.Module:
    """Put a saved adapter onto ``model``; every key must match (no silent partial load)."""
    from peft import LoraConfig, get_peft_model, set_peft_model_state_dict
    from safetensors.torch import load_file

    adapter_dir = Path(adapter_dir)
    config_file, weights_file = adapter_dir / ADAPTER_CONFIG, adapter_dir / ADAPTER_WEIGHTS
    for file in (config_file, weights_file):
        if not file.is_file():
            raise AlfiaError(f"{file}: LoRA adapter file is missing")
    try:
        config = LoraConfig.from_pretrained(str(adapter_dir))
    except Exception as e:
        raise AlfiaError(f"{config_file}: not a valid LoRA adapter config ({e})") from None
    try:
        weights = load_file(str(weights_file))
    except Exception as e:
        raise AlfiaError(f"{weights_file}: unreadable or corrupt adapter weights ({e})") from None
    config.inference_mode = False  # saved adapters say True, which would freeze them; AlfiaModel decides
    try:
        peft_model = get_peft_model(model, config)
        result = set_peft_model_state_dict(peft_model, weights)
    except (ValueError, RuntimeError) as e:
        raise AlfiaError(f"{weights_file}: adapter does not fit this backbone ({e})") from None
    missing = [k for k in result.missing_keys if "lora_" in k]
    if missing or result.unexpected_keys:
        detail = f"missing {missing[:3]}" if missing else f"unexpected {list(result.unexpected_keys)[:3]}"
        raise AlfiaError(f"{weights_file}: adapter does not fit this backbone ({detail})")
    return peft_model  # as from get_peft_model: exactly the adapter's parameters are trainable
