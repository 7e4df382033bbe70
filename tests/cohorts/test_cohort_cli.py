"""`alfia cohort ...` end to end: files written atomically with manifests, deterministic bytes, clear
one-message failures that leave nothing behind, describe output; patient-grouped splits."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from alfia.cohorts.describe import describe_cohort, to_markdown
from alfia.atomic import sha256_file
from alfia.cohorts.io import read_cohort, read_table, write_cohort
from alfia.cohorts.sources.synthetic import generate_synthetic
from alfia.cohorts.splits import assign_splits
from alfia.errors import AlfiaError
from cli_process import run_alfia
from cohort_testkit import record_text, write_outcomes, write_set, write_tar


def test_synthetic_writes_cohort_and_manifest(tmp_path, capsys):
    out = tmp_path / "c.parquet"
    code, stdout, _ = run_alfia(["cohort", "synthetic", "--variant", "eicu", "--n", "400",
                               "--seed", "5", "--out", out], capsys)
    assert code == 0 and "400" in stdout
    df, manifest = read_table(out)
    assert len(df) == 400 and manifest.variant == "eicu" and manifest.source == "synthetic"
    assert manifest.extra["generator"]["seed"] == 5
    assert manifest.content_sha256 == sha256_file(out)
    assert set(manifest.splits) == {"all", "train", "val", "test"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.manifest.json", "c.parquet"]


def test_same_input_and_seed_give_the_same_bytes(tmp_path, capsys):
    paths = [tmp_path / "a.parquet", tmp_path / "b.parquet"]
    for p in paths:
        assert run_alfia(["cohort", "synthetic", "--n", "300", "--out", p], capsys)[0] == 0
    assert paths[0].read_bytes() == paths[1].read_bytes()
    run_alfia(["cohort", "synthetic", "--n", "300", "--seed", "43", "--out", paths[1], "--overwrite"], capsys)
    assert paths[0].read_bytes() != paths[1].read_bytes()


def test_physionet_cohort_bytes_are_deterministic(tmp_path, capsys):
    folder = write_set(tmp_path / "set", {
        i: record_text(i, age=40 + i, series=[("01:00", "HR", 70 + i), ("02:00", "GCS", 15)])
        for i in range(1, 21)})
    outcomes = write_outcomes(tmp_path / "o.txt", [(i, 10, 3, 5, -1, int(i % 5 == 0))
                                                   for i in range(1, 21)])
    tar = write_tar(tmp_path / "set.tar.gz", {f"{i}.txt": record_text(
        i, age=40 + i, series=[("01:00", "HR", 70 + i), ("02:00", "GCS", 15)]) for i in range(1, 21)})
    outs = [tmp_path / "x.parquet", tmp_path / "y.parquet"]
    for src, out in zip([folder, tar], outs):
        code, stdout, err = run_alfia(["cohort", "physionet2012", "--records", src, "--outcomes",
                                     outcomes, "--out", out], capsys)
        assert code == 0, err
    # a folder and the same records in a tar give the same cohort, byte for byte
    assert outs[0].read_bytes() == outs[1].read_bytes()
    manifest = json.loads((tmp_path / "x.manifest.json").read_text())
    assert manifest["extra"]["report"]["n_stays"] == 20 and manifest["window_hours"] == 24
    assert run_alfia(["cohort", "validate", outs[0]], capsys)[0] == 0
    code, _, _ = run_alfia(["cohort", "physionet2012", "--records", folder, "--outcomes", outcomes,
                          "--hours", "1.5", "--aggregates", "full", "--out", outs[1], "--overwrite"], capsys)
    short = json.loads((tmp_path / "y.manifest.json").read_text())
    assert code == 0 and short["window_hours"] == 1.5
    assert read_table(outs[1])[0]["gcs_count"].eq(0).all()  # GCS at 02:00 is after 1.5 h


def test_bad_physionet_input_fails_cleanly_and_keeps_old_output(tmp_path, capsys):
    out = tmp_path / "cohort.parquet"
    out.write_bytes(b"previous")
    tar = write_tar(tmp_path / "set.tar.gz", {"1.txt": record_text(1), "notes.csv": "x"})
    outcomes = write_outcomes(tmp_path / "o.txt", [(1, 1, 1, 1, -1, 0)])
    code, _, err = run_alfia(["cohort", "physionet2012", "--records", tar, "--outcomes", outcomes,
                            "--out", out, "--overwrite"], capsys)
    assert code == 2
    assert "error:" in err and "set-x/notes.csv: not a PhysioNet 2012 record" in err
    assert out.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cohort.parquet", "o.txt", "set.tar.gz"]


@pytest.mark.parametrize("damage, expected", [
    (lambda df: df.drop(columns=["sapsii"]), "missing required column 'sapsii'"),
    (lambda df: df.assign(unittype=df["unittype"].where(df.index != 3, "Ward")),
     "column 'unittype': unknown category 'Ward' at row 3"),
    (lambda df: df.assign(age=df["age"].astype(object).where(df.index != 0, "old")),
     "column 'age': non-numeric value 'old' at row 0"),
    (lambda df: df.assign(hospital_expire_flag=df["hospital_expire_flag"].where(df.index != 5, 3)),
     "label 3 is not 0 or 1 at row 5"),
    (lambda df: df.assign(hosp_mort=df["hospital_expire_flag"]), "column 'hosp_mort' is refused"),
])
def test_validate_bad_csv(tmp_path, capsys, damage, expected):
    path = tmp_path / "cohort.csv"
    damage(generate_synthetic("eicu", 50, seed=1)).to_csv(path, index=False)
    code, _, err = run_alfia(["cohort", "validate", path, "--variant", "eicu"], capsys)
    assert code == 2
    assert err.startswith(f"error: {path}") and expected in err


def test_validate_empty_files(tmp_path, capsys):
    for name in ("empty.csv", "empty.parquet"):
        (tmp_path / name).write_bytes(b"")
        code, _, err = run_alfia(["cohort", "validate", tmp_path / name], capsys)
        assert code == 2 and f"{tmp_path / name}: file is empty" in err


def test_validate_warns_when_file_changed_after_writing(tmp_path, capsys):
    df = generate_synthetic("mimic", 100)
    path = tmp_path / "c.parquet"
    write_cohort(df, path, source="synthetic", variant="mimic")
    write_cohort(df.iloc[::-1], tmp_path / "other.parquet", source="synthetic", variant="mimic")
    (tmp_path / "other.parquet").replace(path)  # content no longer matches the manifest's hash
    code, stdout, err = run_alfia(["cohort", "validate", path], capsys)
    assert code == 0 and "ok" in stdout and "content hash differs" in err


def test_read_cohort_csv_and_parquet_agree(tmp_path):
    df = generate_synthetic("eicu", 60, seed=2)
    write_cohort(df, tmp_path / "c.parquet", source="synthetic", variant="eicu")
    df.to_csv(tmp_path / "c.csv", index=False)
    from_parquet, manifest, variant = read_cohort(tmp_path / "c.parquet")
    from_csv, no_manifest, inferred = read_cohort(tmp_path / "c.csv")
    assert (variant, inferred) == ("eicu", "eicu") and manifest.variant == "eicu" and no_manifest is None
    assert list(from_csv.columns) == list(from_parquet.columns) and len(from_csv) == 60
    assert read_cohort(tmp_path / "c.csv", "mimic")[2] == "mimic"  # a named variant wins
    with pytest.raises(AlfiaError, match="not a readable Parquet file"):  # CSV refused where Parquet is due
        read_cohort(tmp_path / "c.csv", csv=False)


def test_describe_markdown_and_rich(tmp_path, capsys):
    path = tmp_path / "c.parquet"
    run_alfia(["cohort", "synthetic", "--n", "500", "--out", path], capsys)
    code, stdout, _ = run_alfia(["cohort", "describe", path, "--markdown"], capsys)
    assert code == 0
    assert stdout.startswith("| Characteristic | Survived (N=446) | Died (N=54) | Overall (N=500) |")
    assert "APACHE III score (points), mean ± SD" in stdout
    code, stdout, _ = run_alfia(["cohort", "describe", path], capsys)
    assert code == 0 and "Survived" in stdout and "Overall" in stdout


def test_describe_known_answer():
    df = pd.DataFrame({
        "stay_id": [1, 2, 3, 4], "hospital_expire_flag": [0, 0, 1, 1],
        "gender": ["Male", "Female", "Male", None], "apsiii": [10.0, 20.0, 60.0, np.nan],
    })
    table = describe_cohort(df, "mimic").set_index("Characteristic")
    assert list(table.columns) == ["Survived (N=2)", "Died (N=2)", "Overall (N=4)"]
    assert table.loc["APACHE III score (points), mean ± SD", "Survived (N=2)"] == "15.00 ± 7.07"
    assert table.loc["APACHE III score (points), mean ± SD", "Died (N=2)"] == "60.00 (1 missing)"
    assert table.loc["    Male", "Overall (N=4)"] == "2 (50.00%)"
    assert table.loc["    (missing)", "Died (N=2)"] == "1 (50.00%)"
    md = to_markdown(table.reset_index())
    assert md.count("\n") == len(table) + 2 and "&nbsp;&nbsp;&nbsp;&nbsp;Male" in md


def test_splits_keep_a_patients_stays_together_and_are_stratified():
    rng = np.random.default_rng(0)
    n = 4000
    df = pd.DataFrame({"stay_id": np.arange(n), "subject_id": rng.integers(0, 1500, n),
                       "hospital_expire_flag": (rng.random(n) < 0.1).astype(int)})
    split = assign_splits(df)
    assert (df.assign(split=split).groupby("subject_id")["split"].nunique() == 1).all()
    shares = split.value_counts(normalize=True)
    assert abs(shares["train"] - 0.75) < 0.03 and abs(shares["test"] - 0.125) < 0.03
    rates = df.groupby(split)["hospital_expire_flag"].mean()
    assert rates.max() - rates.min() < 0.03
    # same rows in another order, same seed: same assignment
    shuffled = df.sample(frac=1, random_state=1)
    pd.testing.assert_series_equal(assign_splits(shuffled).sort_index(), split.sort_index())
