"""Settings a user gave that a run would not use: each one is an error, never silently ignored (issue 20).

``alfia train`` checks the options typed on its command line; the names are the configs' field names
(``n_fusion_layers``, ``lora.r``, ...), and each comes with the reason it does not apply and what would::

    for name, why in inapplicable_settings(model_config, train_config, given={"epochs"}):
        ...
"""

from __future__ import annotations

from collections.abc import Iterable

from alfia.errors import AlfiaError


def inapplicable_settings(model_config, train_config, given: Iterable[str]) -> list[tuple[str, str]]:
    """(setting, why it does not apply) for every name in ``given`` that the run described by the two configs
    would not use."""
    from alfia.models.poolers import POOLERS

    given = set(given)
    out: list[tuple[str, str]] = []

    def refuse(names: Iterable[str], why: str) -> None:
        out.extend((name, why) for name in names if name in given)

    lora = [f"lora.{k}" for k in ("r", "alpha", "dropout", "target_modules")]
    if not model_config.trains_encoder:
        only_head = "with train_layers 0 nothing of the encoder trains: ALF + the head train over cached states"
        refuse(["epochs"], f"{only_head}, for head_epochs epochs; set --head-epochs")
        refuse(["rows_per_epoch"], f"{only_head}, on every training row each epoch")
        refuse(["finetune", *lora, "head_from"], only_head)
        if train_config.head_lr is not None:
            refuse(["lr"], f"{only_head}, at head_lr ({train_config.head_lr:g}); set --head-lr")
    elif model_config.finetune != "lora":
        refuse(lora, f"finetune is {model_config.finetune!r}: the trained layers learn their own weights, no LoRA "
                     "adapter is made; add --finetune lora")
    if model_config.trains_encoder and train_config.head_from is not None:
        refuse(["head_epochs"], f"head_from ({train_config.head_from}) replaces the head's warm start")
    if model_config.pooler != "alf":
        refuse(["gating"], f"pooler {model_config.pooler!r} has no gate (only alf does)")
        spec = POOLERS.get(model_config.pooler)
        if spec is not None and not spec.reads_top_layers:
            refuse(["n_fusion_layers"], f"pooler {model_config.pooler!r} reads the last layer only")
    return out


def refuse_inapplicable(model_config, train_config, given: Iterable[str], flag_of=lambda name: name) -> None:
    """Raise one AlfiaError naming every given setting that would not apply (``flag_of`` names it as the user
    typed it, e.g. ``--epochs``)."""
    found = inapplicable_settings(model_config, train_config, given)
    if found:
        raise AlfiaError("; ".join(f"{flag_of(name)} does not apply: {why}" for name, why in found))
