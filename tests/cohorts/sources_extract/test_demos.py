"""Extraction on the real MIMIC-IV and eICU demos (skipped when ../shared/data is absent)."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from alfia.cli import _register, app
from alfia.cohorts.io import read_table, verify_hash
from alfia.cohorts.schema import EICU, MIMIC_IV
from alfia.cohorts.sources.eicu import EicuConfig, extract_eicu, parse_age
from alfia.cohorts.sources.mimic_iv import MimicConfig, extract_mimic_iv
from alfia.errors import AlfiaError

from .conftest import mirror

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def mimic_out(mimic_demo, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("mimic") / "mimic.parquet"
    spill = out.parent / "duckdb"
    _register()
    res = CliRunner().invoke(app, ["cohort", "mimic-iv", "--mimic-dir", str(mimic_demo),
                                   "--out", str(out), "--temp-directory", str(spill)])
    assert res.exit_code == 0, res.output
    assert list(spill.iterdir()) == []  # the scratch database is deleted after the extraction
    return out


@pytest.fixture(scope="module")
def eicu_out(eicu_demo, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("eicu") / "eicu.parquet"
    spill = out.parent / "duckdb"
    _register()
    res = CliRunner().invoke(app, ["cohort", "eicu", "--eicu-dir", str(eicu_demo), "--out", str(out),
                                   "--temp-directory", str(spill)])
    assert res.exit_code == 0, res.output
    assert list(spill.iterdir()) == []  # the scratch database is deleted after the extraction
    assert "missing sapsii" in res.output  # the console names missing variables and why
    return out


def test_mimic_demo_inclusion_schema_and_manifest(mimic_out):
    df, m = read_table(mimic_out)
    assert m.extra["attrition"]["icu_stays"] == 140
    assert m.extra["attrition"]["first_icu_stay"] == len(df) == 100  # one first ICU stay per patient
    assert df["subject_id"].is_unique and df["stay_id"].is_unique
    assert set(MIMIC_IV.predictor_names) <= set(df.columns)
    for v in MIMIC_IV.predictors:
        s = df[v.name].dropna()
        if v.is_categorical:
            assert set(s) <= set(v.categories), v.name
        elif v.valid_range:
            assert s.between(*v.valid_range).all(), v.name
    # every score computed from the raw demo tables
    for score in ("apsiii", "sapsii", "sirs", "lods", "meld", "oasis", "sofa_dynamic_max",
                  "gcs_dynamic_min"):
        assert df[score].notna().mean() > 0.9, score
    assert (df["gcs_dynamic_min"] <= df["gcs_dynamic_avg"] + 1e-9).all()
    assert (df["sofa_dynamic_avg"] <= df["sofa_dynamic_max"] + 1e-9).all()
    ti = m.extra["temporal_integrity"]
    assert ti["values_used"] > 0 and ti["values_excluded_out_of_window"] > 0
    for name, r in ti["by_variable"].items():
        if r.get("first_used_h") is not None:
            assert -6 <= r["first_used_h"] and r["last_used_h"] <= 24, name
    assert verify_hash(mimic_out, m)
    import importlib.util

    if importlib.util.find_spec("alfia.cohorts.validate") is not None:
        assert m.extra["validation"].startswith("passed"), m.extra["validation"]
    assert set(df["split"]) == {"train", "val", "test"}
    assert df.groupby("subject_id")["split"].nunique().max() == 1


def test_eicu_demo_builds_what_present_tables_allow(eicu_out):
    df, m = read_table(eicu_out)
    assert m.extra["attrition"]["unit_stays"] == 2520
    assert len(df) == m.extra["attrition"]["known_hospital_discharge_status"]
    missing = m.extra["missing_variables"]
    assert {"sapsii", "oasis", "sofa_dynamic_*"} <= set(missing)
    assert "lab" in missing["sapsii"] and "absent" in missing["sapsii"]
    assert df["sapsii"].isna().all() and df["sofa_dynamic_max"].isna().all()  # never invented
    assert df["apacheiv"].notna().mean() > 0.5 and df["gcs_dynamic_min"].notna().mean() > 0.5
    assert df["age"].max() == 90  # '> 89'
    for v in EICU.predictors:
        s = df[v.name].dropna()
        if v.is_categorical:
            assert set(s) <= set(v.categories), v.name
    assert m.extra["extraction"]["apache_version"] == "IV"
    assert abs(df["hospital_expire_flag"].mean() - 0.084) < 0.01


def test_eicu_demo_carries_hospitalid_for_federated_sites(eicu_out):
    from alfia.cohorts.validate import find_leakage
    from alfia.federated import plan_sites

    df, _ = read_table(eicu_out)
    assert df["hospitalid"].notna().all() and df["hospitalid"].nunique() > 150  # 186 hospitals in the demo
    assert "hospitalid" not in EICU.predictor_names and find_leakage(["hospitalid"], "eicu") == []
    plan = plan_sites(df, "hospitalid")  # the defaults: >= 200 training stays and 5 deaths a site
    assert 5 <= len(plan.sites) <= 10 and (plan.row_site >= 0).all() and plan.skipped == ()


def test_eicu_age_parsing():
    assert parse_age(pd.Series(["> 89", "45", "", None])).tolist()[:2] == [90.0, 45.0]


def test_describe_works_on_extracted_cohorts(mimic_out, eicu_out):
    import importlib.util

    if importlib.util.find_spec("alfia.cohorts.describe") is None:
        pytest.skip("alfia cohort describe not built yet")
    for out in (mimic_out, eicu_out):
        res = CliRunner().invoke(app, ["cohort", "describe", str(out)])
        assert res.exit_code == 0, res.output


def _plant_chartevents(demo: Path, dst: Path, stay_id: int, hours: float, value: float) -> None:
    """Copy of the demo with one heart-rate row planted at ``hours`` after that stay's admission."""
    mirror(demo, dst, skip=("icu/chartevents.csv.gz",))
    con = duckdb.connect()
    intime = con.execute(f"SELECT intime FROM read_csv('{demo}/icu/icustays.csv.gz') "
                         f"WHERE stay_id = {stay_id}").fetchone()[0]
    con.execute(f"""COPY (
        SELECT * FROM read_csv('{demo}/icu/chartevents.csv.gz')
        UNION ALL SELECT s.subject_id, s.hadm_id, s.stay_id,
                         TIMESTAMP '{intime}' + INTERVAL {int(hours * 60)} MINUTE, 220045, {value}, 'bpm'
        FROM read_csv('{demo}/icu/icustays.csv.gz') s WHERE s.stay_id = {stay_id}
    ) TO '{dst}/icu/chartevents.csv.gz' (HEADER, COMPRESSION gzip)""")


def test_planted_out_of_window_value_is_excluded_and_counted(mimic_demo, mimic_out, tmp_path):
    df, m = read_table(mimic_out)
    stay = int(df["stay_id"].iloc[0])
    planted = tmp_path / "mimic"
    _plant_chartevents(mimic_demo, planted, stay, hours=30.0, value=250.0)  # HR 250 at +30 h
    res = extract_mimic_iv(MimicConfig(str(planted)))
    before = m.extra["temporal_integrity"]["by_variable"]["chart.heart_rate"]
    after = res.extra["temporal_integrity"]["by_variable"]["chart.heart_rate"]
    assert after["excluded_out_of_window"] == before["excluded_out_of_window"] + 1
    assert after["used"] == before["used"]
    row_before = df.set_index("stay_id").loc[stay]
    row_after = res.df.set_index("stay_id").loc[stay]
    for score in ("apsiii", "sapsii", "sirs", "lods", "oasis"):
        assert row_after[score] == row_before[score], score  # HR 250 would change each of them


# --- bad input -----------------------------------------------------------------------------------

def test_wrong_directory(tmp_path):
    with pytest.raises(AlfiaError, match="does not exist"):
        extract_mimic_iv(MimicConfig(str(tmp_path / "nope")))
    (tmp_path / "x").mkdir()
    with pytest.raises(AlfiaError, match="not a MIMIC-IV directory"):
        extract_mimic_iv(MimicConfig(str(tmp_path / "x")))
    with pytest.raises(AlfiaError, match="not an eICU directory.*patient"):
        extract_eicu(EicuConfig(str(tmp_path / "x")))


def test_missing_required_table(mimic_demo, tmp_path):
    mirror(mimic_demo, tmp_path / "m", skip=("hosp/patients.csv.gz",))
    with pytest.raises(AlfiaError, match="required table 'patients' not found"):
        extract_mimic_iv(MimicConfig(str(tmp_path / "m")))


def test_missing_column_names_table_and_column(mimic_demo, eicu_demo, tmp_path):
    mirror(mimic_demo, tmp_path / "m", skip=("hosp/admissions.csv.gz",))
    adm = pd.read_csv(mimic_demo / "hosp" / "admissions.csv.gz").drop(columns=["race"])
    adm.to_csv(tmp_path / "m" / "hosp" / "admissions.csv.gz", index=False)
    with pytest.raises(AlfiaError, match=r"table 'admissions'.*missing column\(s\) race"):
        extract_mimic_iv(MimicConfig(str(tmp_path / "m")))
    mirror(eicu_demo, tmp_path / "e", skip=("hospital.csv.gz",))
    pd.read_csv(eicu_demo / "hospital.csv.gz").drop(columns=["region"]).to_csv(
        tmp_path / "e" / "hospital.csv.gz", index=False)
    with pytest.raises(AlfiaError, match=r"table 'hospital'.*missing column\(s\) region"):
        extract_eicu(EicuConfig(str(tmp_path / "e")))


def test_truncated_gzip_names_the_table(mimic_demo, tmp_path):
    mirror(mimic_demo, tmp_path / "m", skip=("icu/icustays.csv.gz",))
    raw = (mimic_demo / "icu" / "icustays.csv.gz").read_bytes()
    (tmp_path / "m" / "icu" / "icustays.csv.gz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(AlfiaError, match=r"'icustays'.*(truncated|corrupt|could not be read)"):
        extract_mimic_iv(MimicConfig(str(tmp_path / "m")))


def test_cli_error_is_one_line_exit_2(tmp_path):
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-c", "from alfia.cli import main; main()", "cohort", "eicu",
                        "--eicu-dir", str(tmp_path), "--out", str(tmp_path / "o.parquet")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "not an eICU directory" in " ".join(r.stderr.split())
    assert not (tmp_path / "o.parquet").exists()
