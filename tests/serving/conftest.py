"""Two small trained runs on a 4-layer tiny BERT and their exports, shared by the serving tests.

``lora``: LoRA on every layer (``train_layers="all"``, the adapter is merged into the graph); ``default``: the
dataclass defaults of AlfiaConfig (the top 2 layers fully fine-tuned over a frozen bottom). Each is exported in
fp32 and int8."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from alfia.cohorts.io import write_cohort
from alfia.cohorts.sources.synthetic import generate_synthetic

RUNS = ("lora", "default")


@pytest.fixture(scope="session")
def served(tmp_path_factory):
    from alfia.inference.export import export_run
    from alfia.models import AlfiaConfig
    from alfia.models.testing import tiny_backbone
    from alfia.text import encode_file
    from alfia.training import TrainConfig, train_run

    root = tmp_path_factory.mktemp("serving")
    cohort = generate_synthetic("mimic", 80, 42)
    write_cohort(cohort, root / "cohort.parquet", source="synthetic", variant="mimic")
    encode_file(root / "cohort.parquet", root / "text.parquet")
    backbone = str(tiny_backbone(root, layers=4))
    configs = {"lora": AlfiaConfig(backbone=backbone, n_fusion_layers=2, max_length=48, train_layers="all",
                                   finetune="lora"),
               "default": AlfiaConfig(backbone=backbone, n_fusion_layers=2, max_length=48)}
    runs, exports = {}, {}
    for name in RUNS:
        runs[name] = root / "runs" / name
        train_run(root / "text.parquet", runs[name], configs[name],
                  TrainConfig(epochs=1, batch_size=8, lr=1e-3, num_threads=1, head_epochs=0), progress=False)
        for precision, quantize in (("fp32", None), ("int8", "int8")):
            exports[name, precision] = root / "exports" / f"{name}-{precision}"
            export_run(runs[name], exports[name, precision], quantize=quantize, num_threads=1)
    return SimpleNamespace(root=root, cohort=cohort, cohort_path=root / "cohort.parquet",
                           text_path=root / "text.parquet", backbone=backbone, runs=runs, exports=exports)
