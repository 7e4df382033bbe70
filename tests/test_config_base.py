"""The one JSON config base (alfia.config_base.JsonConfig): round trips, unknown keys, types, old files."""

from __future__ import annotations

import json
import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from alfia.config_base import JsonConfig, require
from alfia.errors import AlfiaError


@dataclass
class Inner(JsonConfig):
    width: int = 4
    names: tuple[str, ...] = ("a", "b")

    def validate(self) -> None:
        require(self.width >= 1, f"width must be >= 1, got {self.width}")


@dataclass
class Outer(JsonConfig):
    rate: float = 0.5
    steps: int = 3
    flag: bool = True
    label: str | None = None
    choice: int | str = "all"
    inner: Inner = field(default_factory=Inner)
    mode: Literal["full", "fast"] = "full"

    @classmethod
    def upgrade(cls, data: dict) -> dict:
        if "n_steps" in data:  # an old file's name of steps
            data["steps"] = data.pop("n_steps")
        return data


def test_json_round_trip_keeps_every_field_and_nesting(tmp_path):
    c = Outer(rate=0.25, steps=7, flag=False, label="x", choice=2, inner=Inner(width=9, names=("q",)))
    path = c.to_json(tmp_path / "sub" / "c.json")
    assert json.loads(path.read_text())["inner"] == {"width": 9, "names": ["q"]}
    assert Outer.from_json(path) == c
    assert Outer.from_dict(c.to_dict()) == c


def test_an_unknown_key_is_named_with_the_source():
    with pytest.raises(AlfiaError, match=r"run\.json: unknown key\(s\) stepz; expected choice, flag, inner"):
        Outer.from_dict({"stepz": 3}, source="run.json")
    with pytest.raises(AlfiaError, match=r"run\.json: inner: unknown key\(s\) depth"):
        Outer.from_dict({"inner": {"depth": 3}}, source="run.json")


@pytest.mark.parametrize("kwargs, message", [
    ({"steps": "two"}, "Outer: steps must be an integer, got 'two'"),
    ({"steps": 2.5}, "Outer: steps must be an integer, got 2.5"),
    ({"steps": True}, "Outer: steps must be an integer, got True"),
    ({"rate": "1e-3"}, "Outer: rate must be a number, got '1e-3'"),
    ({"flag": "yes"}, "Outer: flag must be true or false, got 'yes'"),
    ({"label": 3}, "Outer: label must be a text (or None), got 3"),
    ({"choice": 1.5}, "Outer: choice must be an integer or a text, got 1.5"),
    ({"inner": 3}, "Outer: inner must be an object, got 3"),
    ({"mode": "quick"}, "Outer: mode must be one of 'full', 'fast', got 'quick'"),
])
def test_types_come_from_the_annotations(kwargs, message):
    with pytest.raises(AlfiaError) as e:
        Outer(**kwargs)
    assert str(e.value) == message


def test_fits_are_normalised():
    c = Outer(steps=2.0, inner={"width": 3.0, "names": ["z"]})  # JSON gives floats and lists
    assert c.steps == 2 and isinstance(c.steps, int)
    assert c.inner == Inner(width=3, names=("z",))
    assert Outer(rate=1).rate == 1  # an integer is a number
    assert Outer(label=Path("runs/a")).label == "runs/a"  # a path given for a text field (a run folder)


def test_validation_runs_on_construction_and_names_the_file(tmp_path):
    with pytest.raises(AlfiaError, match="width must be >= 1, got 0"):
        Inner(width=0)
    path = tmp_path / "bad.json"
    path.write_text('{"inner": {"width": 0}}')
    with pytest.raises(AlfiaError, match=r"bad\.json: inner: width must be >= 1, got 0"):
        Outer.from_json(path)
    path.write_text('{"steps": "x"}')
    with pytest.raises(AlfiaError, match=r"bad\.json: steps must be an integer, got 'x'"):
        Outer.from_json(path)


def test_files_that_are_missing_or_not_json_are_named(tmp_path):
    with pytest.raises(AlfiaError, match=r"none\.json: file is missing"):
        Outer.from_json(tmp_path / "none.json")
    (tmp_path / "torn.json").write_text('{"steps": ')
    with pytest.raises(AlfiaError, match=r"torn\.json: not valid JSON"):
        Outer.from_json(tmp_path / "torn.json")
    with pytest.raises(AlfiaError, match="Outer: expected a JSON object, got list"):
        Outer.from_dict([1, 2])


def test_an_old_file_loads_through_upgrade():
    assert Outer.from_dict({"n_steps": 5}).steps == 5


def test_the_package_configs_derive_from_the_base():
    from alfia.models.config import AlfiaConfig, LoraSettings
    from alfia.series.models import MODELS
    from alfia.series.train import SeriesTrainConfig
    from alfia.training.config import TrainConfig

    for cls in (AlfiaConfig, LoraSettings, TrainConfig, SeriesTrainConfig, *(entry[0] for entry in MODELS.values())):
        assert issubclass(cls, JsonConfig), cls


# The configs moved onto the base later (issue 24): each as a run saves it, read back whole; an unknown key named.
MOVED = [
    ("alfia.multimodal.model", "LemofConfig", {"d_model": 32, "top_k": 2, "modalities": ["text"],
                                               "level_names": {"text": ["l0"]}, "level_widths": {"text": [8]}}),
    ("alfia.multimodal.tabular", "TabularConfig", {"input_size": 12, "hidden": (16,), "dropout": 0.1}),
    ("alfia.federated.run", "FederatedConfig", {"rounds": 3, "engine": "inprocess", "ray_cpus": 2}),
    ("alfia.baselines.runner", "BaselineRunConfig", {"variant": "mimic", "models": ["LightGBM"], "profile": "fast",
                                                     "n_jobs": 1, "externals_sha256": {"e": "ab"}}),
    ("alfia.cohorts.sources.duck", "DuckSettings", {"memory_limit": "1GB", "threads": 2}),
    ("alfia.cohorts.sources.mimic_iv", "MimicConfig", {"mimic_dir": "m", "derived_dir": "d", "min_age": 16.0}),
    ("alfia.cohorts.sources.eicu", "EicuConfig", {"eicu_dir": "e", "duck": {"memory_limit": "2GB"}}),
]


@pytest.mark.parametrize("module, name, kwargs", MOVED, ids=[m[1] for m in MOVED])
def test_the_moved_configs_round_trip_and_refuse_unknown_keys(tmp_path, module, name, kwargs):
    cls = getattr(importlib.import_module(module), name)
    assert issubclass(cls, JsonConfig)
    config = cls.from_dict(kwargs)
    assert cls.from_json(config.to_json(tmp_path / "c.json")) == config
    assert json.loads((tmp_path / "c.json").read_text()) == config.to_dict()
    with pytest.raises(AlfiaError, match=r"c\.json: unknown key\(s\) bogus_key"):
        cls.from_dict({**config.to_dict(), "bogus_key": 1}, source="c.json")


def test_old_run_configs_still_load():
    """config.json files of older runs: finetune="frozen" before train_layers, max_length in the train section."""
    from alfia.models.config import AlfiaConfig
    from alfia.training.config import TrainConfig

    assert AlfiaConfig.from_dict({"finetune": "frozen"}).train_layers == 0
    assert AlfiaConfig.from_dict({"finetune": "lora"}).train_layers == "all"
    assert TrainConfig.from_dict({"max_length": 256, "freeze_backbone": True, "epochs": 2}).epochs == 2
