"""`alfia card`: every TRIPOD+AI item appears; what the run knows is filled in, the rest is marked."""

from __future__ import annotations

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from alfia.cohorts.io import Manifest, mortality_by_split, write_table
from alfia.evaluation.card import ITEMS, TO_COMPLETE, card_items

from .fabricate import make_run


def _cohort(path, stay_id, split, label):
    rng = np.random.default_rng(0)
    n = len(stay_id)
    df = pd.DataFrame({"stay_id": stay_id, "split": split, "hospital_expire_flag": label,
                       "gender": rng.choice(["Female", "Male"], n), "admission_age": rng.uniform(20, 90, n),
                       "careunit": rng.choice(["Medical Intensive Care Unit (MICU)", "Trauma SICU (TSICU)"], n),
                       "apsiii": np.where(rng.random(n) < 0.2, np.nan, rng.integers(10, 120, n))})
    write_table(df, path, Manifest(kind="cohort", source="synthetic", variant="mimic", n_rows=n,
                                   splits=mortality_by_split(df), extra={"generator": {"calibration": "test"}}))


def test_card_lists_every_tripod_ai_item_and_fills_what_the_run_knows(tmp_path, cohort):
    from alfia.cli import _register, app

    stay_id, split, label, prob, _ = cohort
    _cohort(tmp_path / "cohort.parquet", stay_id, split, label)
    run = make_run(tmp_path, "lgbm", prob, stay_id=stay_id, split=split, label=label,
                   config={"model_name": "LightGBM", "model_family": "baseline", "variant": "mimic",
                           "cohort": str(tmp_path / "cohort.parquet"), "library": "lightgbm",
                           "n_rows": {"val": 600, "test": 800}})
    _register()
    result = CliRunner().invoke(app, ["card", str(run), "--out", str(tmp_path / "card.md")])
    assert result.exit_code == 0, result.output
    md = (tmp_path / "card.md").read_text()
    page = (tmp_path / "card.html").read_text()
    assert len(ITEMS) == len(card_items()) >= 45
    for item in ITEMS:
        assert f"### {item.number}. {item.title}" in md, item.number
        assert f"{item.number}. {item.title}" in page
    sections = md.split("\n### ")
    body = {s.split(".", 1)[0]: s for s in sections[1:]}
    # Known from the run: source, missing data, internal performance with CIs, subgroups
    assert "synthetic" in body["5a"] and "SHA-256" in body["5a"]
    assert "apsiii" in body["11"] and "%" in body["11"]
    assert "AUPRC" in body["23a"] and "95% CI" in body["23a"] and "Wilson" in body["23a"]
    assert "Female" in body["23b"] and "ICU unit type" in body["23b"]
    # Unknowable from the files: marked for the deploying team
    for number in ("17", "18a", "19"):
        assert TO_COMPLETE in body[number]
    # Not applicable, with the reason (issue 20): synthetic data have no collection period
    assert "Not applicable: synthetic data" in body["5b"]
    assert "Not applicable" in body["12g"] and "no external validation" in body["12g"]
    assert 'src="data:image/png;base64,' in page and "http" not in page.split("<body>")[1].split("TRIPOD")[0]
