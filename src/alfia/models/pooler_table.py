"""``POOLERS``, the one table of poolers: each ``--pooler`` name, the class it builds and the layers it reads.

The table names its classes lazily (``"module:Class"``, imported when a model is built), so ``AlfiaConfig`` can
validate a pooler name against it without importing the pooler modules, which import the config back for their
``from_config``. A row may also hold the class itself (a pooler registered at run time, as in a test).
``alfia.models.poolers`` re-exports the table and builds from it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class PoolerSpec:
    """One row of ``POOLERS``: the module class (or ``"module:Class"``), and which of the encoder's layers it reads."""

    module_class: type | str  # has from_config(config, hidden_size) -> module
    reads_top_layers: bool  # True: the top N_f (config.n_fusion_layers) layers; False: the last layer only

    def resolve(self) -> type:
        """The pooler class of this row (imported now if the row names it)."""
        if not isinstance(self.module_class, str):
            return self.module_class
        module, _, name = self.module_class.partition(":")
        return getattr(importlib.import_module(module), name)


POOLERS: dict[str, PoolerSpec] = {
    "alf": PoolerSpec("alfia.models.adaptive_layer_fusion:AdaptiveLayerFusion", reads_top_layers=True),
    "cls": PoolerSpec("alfia.models.poolers:CLSPooler", reads_top_layers=False),
    "mean": PoolerSpec("alfia.models.poolers:MeanPooler", reads_top_layers=False),
    "max": PoolerSpec("alfia.models.poolers:MaxPooler", reads_top_layers=False),
    "static_mean": PoolerSpec("alfia.models.poolers:StaticMeanPooler", reads_top_layers=True),
}
