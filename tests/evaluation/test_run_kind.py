"""One run kind (issue 24, point 4): runs.RunKind and run_kind(config), read by compare, the card and the CLI."""

from __future__ import annotations

import pytest

from alfia.errors import AlfiaError
from alfia.evaluation import compare_runs
from alfia.runs import RunKind, run_kind

from .fabricate import make_run


@pytest.mark.parametrize("config, kind", [
    ({"model_type": "alfia"}, RunKind.ALFIA),
    ({"model_family": "alfia-boost"}, RunKind.ALFIA_BOOST),
    ({"model_family": "alfia-nn"}, RunKind.ALFIA_NN),
    ({"model_family": "baseline"}, RunKind.BASELINE),
    ({"model_family": "ensemble"}, RunKind.ENSEMBLE),
    ({"model_family": "series"}, RunKind.SERIES),
    ({"model_family": "alfia", "external_validation": {"model_run": "RUN"}}, RunKind.EXTERNAL),
    ({"model_name": "ALFIA look-alike"}, RunKind.OTHER),  # a name says nothing
    ({}, RunKind.OTHER),
])
def test_run_kind_reads_what_the_config_records(config, kind):
    assert run_kind(config) is kind


def test_alfia_family_kinds_are_the_ones_marked_alfia():
    assert {k for k in RunKind if k.is_alfia} == {RunKind.ALFIA, RunKind.ALFIA_BOOST, RunKind.ALFIA_NN}
    assert str(RunKind.ALFIA_BOOST) == "alfia-boost" and RunKind("series") is RunKind.SERIES


def test_an_unknown_kind_is_named_with_its_file():
    with pytest.raises(AlfiaError, match=r"RUN/config.json: unknown model_family 'lemof-typo'; a run's kind is one "
                                         r"of alfia, alfia-boost"):
        run_kind({"model_family": "lemof-typo"}, "RUN/config.json")


def test_compare_never_guesses_alfia_from_a_name(tmp_path, cohort):
    """A baseline called "ALFIA-like" is a baseline; an ALFIA-boost run is ALFIA whatever its name."""
    stay_id, split, label, prob, latent = cohort
    common = dict(stay_id=stay_id, split=split, label=label)
    make_run(tmp_path / "runs", "a", prob, config={"model_name": "ALFIA-like GBM", "model_family": "baseline"},
             **common)
    make_run(tmp_path / "runs", "b", prob ** 1.1, config={"model_name": "my boost", "model_family": "alfia-boost"},
             **common)
    comparison = compare_runs([tmp_path / "runs"], tmp_path / "report", n_boot=30)
    kinds = {r["model"]: (r["kind"], r["is_alfia"]) for r in comparison["runs"]}
    assert kinds == {"ALFIA-like GBM": ("baseline", False), "my boost": ("alfia-boost", True)}
    assert comparison["best_baseline"] == "ALFIA-like GBM"
    assert [t["model_a"] for t in comparison["paired_tests"]] == ["my boost"]
