"""The summary table of an output folder keeps what earlier runs wrote there."""

from __future__ import annotations

import pandas as pd

from alfia.baselines.runner import write_summary


def _metrics(auprc: float) -> dict:
    keys = ("auprc", "auroc", "best_f1", "best_f2")
    return {"metrics": {k: {"value": auprc, "ci_low": auprc - 0.05, "ci_high": auprc + 0.05}
                        for k in keys}}


def _row(name: str, family: str, auprc: float) -> dict:
    from alfia.baselines.runner import summary_row

    return summary_row(name, family, auprc, _metrics(auprc), 1.0)


def test_a_later_call_adds_rows_and_replaces_only_its_own_models(tmp_path):
    write_summary([_row("LightGBM", "baseline", 0.40), _row("CatBoost", "baseline", 0.45)], tmp_path)
    table = write_summary([_row("ALFIA-nn", "alfia-nn", 0.42), _row("LightGBM", "baseline", 0.30)],
                          tmp_path)

    on_disk = pd.read_csv(tmp_path / "summary.csv")
    assert list(on_disk["model"]) == ["CatBoost", "ALFIA-nn", "LightGBM"]  # sorted by test AUPRC
    assert on_disk.loc[on_disk["model"] == "LightGBM", "test_auprc"].item() == 0.30  # re-run wins
    assert list(table["model"]) == list(on_disk["model"])
    assert "ALFIA-nn" in (tmp_path / "summary.md").read_text()


def test_overwrite_keeps_only_this_calls_models(tmp_path):
    write_summary([_row("LightGBM", "baseline", 0.40), _row("CatBoost", "baseline", 0.45)], tmp_path)
    table = write_summary([_row("ALFIA-nn", "alfia-nn", 0.42)], tmp_path, overwrite=True)

    assert list(pd.read_csv(tmp_path / "summary.csv")["model"]) == ["ALFIA-nn"] == list(table["model"])
    assert "CatBoost" not in (tmp_path / "summary.md").read_text()


def test_test_optimal_f1_and_f2_are_in_the_csv_but_not_in_the_headline_tables(tmp_path):
    """Their threshold is picked on the split they score (issue 20): summary.csv keeps them, the tables do not."""
    from rich.console import Console

    from alfia.cli.baselines import summary_table

    table = write_summary([_row("LightGBM", "baseline", 0.40)], tmp_path)
    assert {"test_best_f1", "test_best_f2"} <= set(pd.read_csv(tmp_path / "summary.csv").columns)
    header = (tmp_path / "summary.md").read_text().splitlines()[0]
    assert "AUROC (95% CI)" in header and "F1" not in header and "F2" not in header
    console = Console(record=True, width=200)
    console.print(summary_table(table, "zoo"))
    shown = console.export_text()
    assert "0.350–0.450" in shown and "F1" not in shown and "F2" not in shown
