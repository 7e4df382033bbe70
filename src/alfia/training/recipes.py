"""Named training recipes: the starting values of a run's model and training configs.

``alfia train --recipe NAME`` starts from a recipe; a config file (``--config``) and every option given on
the command line go on top, and config.json records the recipe's name with the values that ran.

- ``cpu``: the dataclass defaults of ``AlfiaConfig`` and ``TrainConfig``. The top 2 encoder layers are fully
  fine-tuned over a cached bottom (the authors' reference code unfreezes the top 2 layers in its non-LoRA mode),
  after a 3-epoch head warm start; attention dropout 0 for the fused CPU attention kernel; validation every
  3,000 rows. Chosen by measurement on the validation split (BENCHMARKS.md, "Fine-tuning on a CPU").
- ``paper``: the paper's protocol (§2.3–2.4, §3): LoRA (r=16, alpha=16) jointly with ALF + ACH on every
  layer from the start, no warm start, ``pos_weight`` negatives/positives, AdamW lr 2e-4, batch 16, up to 30
  epochs of all rows, patience 5, 512 tokens. The default on a GPU.
- ``frozen``: the encoder frozen; ALF + ACH train over its cached top-N_f states (round 2's CPU default).
- ``auto``: ``paper`` on a GPU, ``cpu`` otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from alfia.errors import AlfiaError


@dataclass(frozen=True)
class Recipe:
    name: str
    model: dict[str, Any] = field(default_factory=dict)  # AlfiaConfig fields that differ from its defaults
    train: dict[str, Any] = field(default_factory=dict)  # TrainConfig fields that differ from its defaults


RECIPES: dict[str, Recipe] = {
    "cpu": Recipe("cpu"),
    "paper": Recipe("paper",
                    model={"train_layers": "all", "finetune": "lora", "attention_dropout": None},
                    train={"lr": 2e-4, "head_lr": None, "head_epochs": 0, "pos_weight": "auto", "batch_size": 16,
                           "epochs": 30, "rows_per_epoch": None, "patience": 5}),
    "frozen": Recipe("frozen", model={"train_layers": 0},
                     train={"lr": 2e-4, "head_lr": 2e-4, "head_epochs": 30, "rows_per_epoch": None}),
}
RECIPE_NAMES = ("auto", *RECIPES)


def resolve_recipe(name: str | None, device: str | None = "auto") -> Recipe:
    """The recipe ``name`` stands for on ``device`` (``auto``: ``paper`` on a GPU, else ``cpu``)."""
    name = name or "auto"
    if name == "auto":
        from alfia.runtime import resolve_device

        name = "paper" if resolve_device(device or "auto").type == "cuda" else "cpu"
    if name not in RECIPES:
        raise AlfiaError(f"unknown recipe {name!r}; choose one of {', '.join(RECIPE_NAMES)}")
    return RECIPES[name]
