"""The bad-input catalogue: every command, fed something broken or hostile, answers with one error line
that names the file, row or column at fault (exit status 2), and leaves every file it found untouched.

Each case builds its files in a fresh folder, usually including an *earlier output* at the path the
command is told to write (with ``--overwrite`` where the command takes it, so the refusal is the bad
input's and not the guard's). After the command fails, the folder must be byte-for-byte what it was.
"""

from __future__ import annotations

import gzip
import json
import pickle
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cli_process import run_alfia
from reliability_testkit import record_text, snapshot, write_outcomes, write_tar

EARLIER = b"earlier output: must survive a failed command"


class Ctx:
    """The folder of one case and the shared valid assets it damages."""

    def __init__(self, tmp: Path, assets):
        self.tmp, self.assets = tmp, assets

    def path(self, name: str) -> Path:
        return self.tmp / name

    def cohort_df(self) -> pd.DataFrame:
        return self.assets.cohort.copy()

    def cohort(self, df: pd.DataFrame | None = None, name: str = "cohort.parquet") -> Path:
        from alfia.cohorts.io import write_cohort

        write_cohort(self.cohort_df() if df is None else df, self.tmp / name, source="synthetic",
                     variant="mimic")
        return self.tmp / name

    def text_df(self) -> pd.DataFrame:
        return self.assets.text.copy()

    def text(self, df: pd.DataFrame | None = None, name: str = "text.parquet") -> Path:
        from alfia.cohorts.io import Manifest, write_table

        df = self.text_df() if df is None else df
        write_table(df, self.tmp / name, Manifest(kind="text", source="synthetic", variant="mimic",
                                                  n_rows=len(df), splits={}, extra={"template": "mimic"}))
        return self.tmp / name

    def run(self) -> Path:
        return Path(shutil.copytree(self.assets.run, self.tmp / "run"))

    def earlier(self, name: str = "out.parquet") -> Path:
        p = self.tmp / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(EARLIER)
        return p

    def train_args(self, text: Path, *extra) -> list:
        return ["train", text, "--out", self.path("newrun"), "--backbone", self.assets.backbone,
                "--fusion-layers", "2", "--epochs", "1", "--threads", "1", "--max-length", "48", *extra]

    def predict_args(self, run: Path, input: Path, *extra) -> list:
        return ["predict", run, "--input", input, "--out", self.earlier("preds.parquet"), "--overwrite",
                "--threads", "1", *extra]


@dataclass(frozen=True)
class Case:
    id: str
    build: Callable[[Ctx], list]  # writes the case's files, returns the alfia arguments
    expect: tuple[str, ...]  # fragments the one error line must hold ("{tmp}" = the case's folder)


CASES: list[Case] = []


def case(id: str, *expect: str):
    def register(fn):
        CASES.append(Case(id, fn, expect))
        return fn
    return register


# --- cohorts -------------------------------------------------------------------------------------

@case("cohort-missing-column", "cohort.parquet", "hospital_expire_flag")
def _(t):
    return ["cohort", "validate", t.cohort(t.cohort_df().drop(columns=["hospital_expire_flag"]))]


@case("cohort-wrong-dtype", "cohort.parquet", "'weight'", "row 3", "'heavy'")
def _(t):
    df = t.cohort_df()
    df["weight"] = df["weight"].astype(str)
    df.loc[3, "weight"] = "heavy"
    return ["encode", t.cohort(df), "--out", t.earlier("text.parquet"), "--overwrite"]


@case("cohort-unknown-category", "cohort.parquet", "'gender'", "'Martian'")
def _(t):
    df = t.cohort_df()
    df.loc[5, "gender"] = "Martian"
    return ["encode", t.cohort(df), "--out", t.earlier("text.parquet"), "--overwrite"]


@case("cohort-nan-label", "cohort.parquet", "hospital_expire_flag")
def _(t):
    df = t.cohort_df()
    df["hospital_expire_flag"] = df["hospital_expire_flag"].astype(float)
    df.loc[7, "hospital_expire_flag"] = np.nan
    return ["cohort", "validate", t.cohort(df)]


@case("cohort-inf-label", "cohort.parquet", "hospital_expire_flag")
def _(t):
    df = t.cohort_df()
    df["hospital_expire_flag"] = df["hospital_expire_flag"].astype(float)
    df.loc[2, "hospital_expire_flag"] = np.inf
    df.to_parquet(t.path("cohort.parquet"), index=False)  # no manifest: write_cohort counts deaths
    return ["baselines", t.path("cohort.parquet"), "--out", t.path("zoo"), "--models", "LinearModel",
            "--profile", "fast", "--n-boot", "5"]


@case("cohort-label-2", "cohort.parquet", "hospital_expire_flag", "2")
def _(t):
    df = t.cohort_df()
    df.loc[4, "hospital_expire_flag"] = 2
    return ["cohort", "validate", t.cohort(df)]


@case("cohort-label-minus-1", "cohort.parquet", "hospital_expire_flag", "-1")
def _(t):
    df = t.cohort_df()
    df.loc[4, "hospital_expire_flag"] = -1
    return ["baselines", t.cohort(df), "--out", t.path("zoo"), "--models", "LinearModel",
            "--profile", "fast", "--n-boot", "5"]


@case("cohort-validate-counts-rows-from-0", "cohort.parquet", "row 4 (stay_id=")
def _(t):  # issue 26: validate said row 5 where encode and train said row 4; every message counts from 0 now
    df = t.cohort_df()
    df.loc[4, "hospital_expire_flag"] = 2
    return ["cohort", "validate", t.cohort(df)]


@case("cohort-label-2-at-encode", "cohort.parquet", "hospital_expire_flag", "got 2", "row 4")
def _(t):  # issue 26: encoded with exit 0
    df = t.cohort_df()
    df.loc[4, "hospital_expire_flag"] = 2
    return ["encode", t.cohort(df), "--out", t.earlier("text.parquet"), "--overwrite"]


@case("cohort-string-stay-id-at-baselines", "cohort.parquet", "'stay_id'", "integers", "row 0")
def _(t):  # issue 26: trained with exit 0, and then broke `alfia compare`
    df = t.cohort_df()
    df["stay_id"] = "stay-" + df["stay_id"].astype(str)
    df.to_parquet(t.path("cohort.parquet"), index=False)
    return ["baselines", t.path("cohort.parquet"), "--out", t.path("zoo"), "--models", "LinearModel",
            "--profile", "fast", "--n-boot", "5"]


@case("cohort-duplicate-stay-id", "cohort.parquet", "stay_id")
def _(t):
    df = t.cohort_df()
    df.loc[9, "stay_id"] = df.loc[8, "stay_id"]
    return ["encode", t.cohort(df), "--out", t.earlier("text.parquet"), "--overwrite"]


@case("cohort-empty-file", "empty.parquet", "empty")
def _(t):
    t.path("empty.parquet").write_bytes(b"")
    return ["encode", t.path("empty.parquet"), "--out", t.earlier("text.parquet"), "--overwrite"]


@case("cohort-truncated-parquet", "cohort.parquet", "not a readable Parquet file")
def _(t):
    p = t.cohort()
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    return ["cohort", "describe", p]


@case("cohort-truncated-csv-gz", "cohort.csv.gz", "truncated")
def _(t):  # issue 26: printed only "Aborted." and named no file
    data = gzip.compress(t.cohort_df().to_csv(index=False).encode())
    t.path("cohort.csv.gz").write_bytes(data[: len(data) // 2])
    return ["cohort", "validate", t.path("cohort.csv.gz")]


@case("cohort-csv-renamed-parquet", "cohort.parquet", "not a readable Parquet file")
def _(t):
    t.cohort_df().to_csv(t.path("cohort.parquet"), index=False)
    return ["baselines", t.path("cohort.parquet"), "--out", t.path("zoo"), "--profile", "fast"]


@case("cohort-manifest-of-another-table", "cohort.manifest.json", "60", "30")
def _(t):
    p = t.cohort()
    other = t.cohort(t.cohort_df().head(30), name="other.parquet")
    shutil.copy(other.with_name("other.manifest.json"), p.with_name("cohort.manifest.json"))
    return ["encode", p, "--out", t.earlier("text.parquet"), "--overwrite"]


@case("cohort-manifest-not-json", "cohort.manifest.json", "not valid JSON")
def _(t):
    p = t.cohort()
    p.with_name("cohort.manifest.json").write_text("{ not json")
    return ["cohort", "validate", p]


@case("cohort-csv-of-something-else", "cohort.csv", "variant")
def _(t):
    t.path("cohort.csv").write_text("just,some\n1,2\n")
    return ["cohort", "validate", t.path("cohort.csv")]


# --- PhysioNet records ---------------------------------------------------------------------------

def _physionet(t, records: Path, ids=(1, 2, 3)) -> list:
    return ["cohort", "physionet2012", "--records", records, "--outcomes",
            write_outcomes(t.path("Outcomes-a.txt"), list(ids)), "--out", t.earlier("p.parquet"), "--overwrite"]


@case("physionet-bad-header", "set/2.txt", "line 1")
def _(t):
    (folder := t.path("set")).mkdir()
    for i in (1, 3):
        (folder / f"{i}.txt").write_text(record_text(i))
    (folder / "2.txt").write_text("Tijd;Parameter;Waarde\n00:00;RecordID;2\n")
    return _physionet(t, folder)


@case("physionet-empty-tar", "set-a.tar.gz", "no record files")
def _(t):
    return _physionet(t, write_tar(t.path("set-a.tar.gz"), {}))


@case("physionet-tar-dotdot-member", "set-a.tar.gz", "../1.txt", "outside")
def _(t):
    return _physionet(t, write_tar(t.path("set-a.tar.gz"), {"../1.txt": record_text(1),
                                                            "2.txt": record_text(2)}))


@case("physionet-tar-absolute-member", "set-a.tar.gz", "/tmp/alfia-evil/1.txt", "outside")
def _(t):
    return _physionet(t, write_tar(t.path("set-a.tar.gz"), {"/tmp/alfia-evil/1.txt": record_text(1),
                                                            "2.txt": record_text(2)}))


@case("physionet-duplicate-record-across-sets", "RecordID 2", "set-a", "set-b")
def _(t):
    a = write_tar(t.path("set-a.tar.gz"), {"1.txt": record_text(1), "2.txt": record_text(2)})
    b = write_tar(t.path("set-b.tar.gz"), {"2.txt": record_text(2), "3.txt": record_text(3)})
    return ["cohort", "physionet2012", "--records", a, "--records", b,
            "--outcomes", write_outcomes(t.path("Outcomes-a.txt"), [1, 2]),
            "--outcomes", write_outcomes(t.path("Outcomes-b.txt"), [3]),
            "--out", t.earlier("p.parquet"), "--overwrite"]


@case("physionet-outcome-label-2", "Outcomes-a.txt", "In-hospital_death", "2")
def _(t):
    tar = write_tar(t.path("set-a.tar.gz"), {"1.txt": record_text(1), "2.txt": record_text(2)})
    return ["cohort", "physionet2012", "--records", tar, "--outcomes",
            write_outcomes(t.path("Outcomes-a.txt"), [1, 2], deaths=[0, 2]),
            "--out", t.earlier("p.parquet"), "--overwrite"]


# --- MIMIC-IV / eICU folders ---------------------------------------------------------------------

def _gz(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(text.encode()))
    return path


def _mimic(t) -> list:
    return ["cohort", "mimic-iv", "--mimic-dir", t.path("mimic"), "--out", t.earlier("m.parquet"),
            "--overwrite", "--threads", "1", "--memory-limit", "500MB"]


@case("mimic-missing-table", "patients")
def _(t):
    (t.path("mimic") / "hosp").mkdir(parents=True)
    (t.path("mimic") / "icu").mkdir()
    return _mimic(t)


@case("mimic-empty-table", "patients", "empty")
def _(t):
    (t.path("mimic") / "icu").mkdir(parents=True)
    (t.path("mimic") / "hosp").mkdir()
    (t.path("mimic") / "hosp" / "patients.csv.gz").write_bytes(b"")
    return _mimic(t)


@case("mimic-bad-gzip", "patients")
def _(t):
    (t.path("mimic") / "icu").mkdir(parents=True)
    (t.path("mimic") / "hosp").mkdir()
    (t.path("mimic") / "hosp" / "patients.csv.gz").write_bytes(b"\x1f\x8bnot really gzip at all" * 10)
    return _mimic(t)


@case("mimic-wrong-columns", "patients", "missing column")
def _(t):
    (t.path("mimic") / "icu").mkdir(parents=True)
    _gz(t.path("mimic") / "hosp" / "patients.csv.gz", "who,what\n1,2\n")
    return _mimic(t)


@case("eicu-missing-patient-table", "eicu", "patient")
def _(t):
    t.path("eicu").mkdir()
    _gz(t.path("eicu") / "hospital.csv.gz", "hospitalid,numbedscategory,teachingstatus,region\n1,,,\n")
    return ["cohort", "eicu", "--eicu-dir", t.path("eicu"), "--out", t.earlier("e.parquet"), "--overwrite",
            "--threads", "1"]


@case("eicu-wrong-columns", "patient", "missing column")
def _(t):
    _gz(t.path("eicu") / "patient.csv.gz", "who,what\n1,2\n")
    return ["cohort", "eicu", "--eicu-dir", t.path("eicu"), "--out", t.earlier("e.parquet"), "--overwrite",
            "--threads", "1"]


# --- text ----------------------------------------------------------------------------------------

@case("text-empty", "text.parquet", "'text'", "row 6")
def _(t):
    df = t.text_df()
    df.loc[6, "text"] = "   "
    return t.predict_args(t.run(), t.text(df))


@case("text-only-control-characters", "text.parquet", "'text'", "row 2")
def _(t):
    df = t.text_df()
    df.loc[2, "text"] = "\x00\x07\x1b\x7f"
    return t.train_args(t.text(df))


@case("text-file-not-utf8", "texts.txt", "UTF-8", "line 2")
def _(t):
    t.path("texts.txt").write_bytes("a 70 year old patient\nun patient \xe2g\xe9\n".encode("latin-1"))
    return t.predict_args(t.run(), t.path("texts.txt"))


@case("text-csv-not-utf8", "texts.csv", "UTF-8")
def _(t):
    t.path("texts.csv").write_bytes("stay_id,text\n1,patient \xe2g\xe9 de 70 ans\n".encode("latin-1"))
    return t.predict_args(t.run(), t.path("texts.csv"))


@case("text-duplicate-stay-id-in-predict", "text.parquet", "'stay_id'", "repeats", "row 9")
def _(t):  # issue 26: predicted with exit 0, two rows for one stay
    df = t.text_df()
    df.loc[9, "stay_id"] = df.loc[8, "stay_id"]
    return t.predict_args(t.run(), t.text(df))


@case("text-table-without-text-column", "cohort.parquet", "stay_id")
def _(t):
    df = t.cohort_df().drop(columns=["stay_id"])
    return t.predict_args(t.run(), t.cohort(df))


# --- labels --------------------------------------------------------------------------------------

@case("labels-single-class-train", "text.parquet", "'train'", "hospital_expire_flag=0")
def _(t):
    df = t.text_df()
    df.loc[df.split == "train", "hospital_expire_flag"] = 0
    return t.train_args(t.text(df))


@case("labels-single-class-val", "text.parquet", "'val'", "hospital_expire_flag=1")
def _(t):
    df = t.text_df()
    df.loc[df.split == "val", "hospital_expire_flag"] = 1
    return t.train_args(t.text(df))


@case("labels-2-in-predict-input", "text.parquet", "hospital_expire_flag", "2", "row 11")
def _(t):
    df = t.text_df()
    df.loc[11, "hospital_expire_flag"] = 2
    return t.predict_args(t.run(), t.text(df))


@case("labels-nan-in-train", "text.parquet", "hospital_expire_flag", "NaN")
def _(t):
    df = t.text_df()
    df["hospital_expire_flag"] = df["hospital_expire_flag"].astype(float)
    df.loc[0, "hospital_expire_flag"] = np.nan
    return t.train_args(t.text(df))


# --- run directories -----------------------------------------------------------------------------

@case("run-corrupt-weights", "fusion_head.safetensors")
def _(t):
    run = t.run()
    (run / "fusion_head.safetensors").write_bytes(b"\x00garbage\xff" * 100)
    return t.predict_args(run, t.assets.text_path)


@case("run-truncated-weights", "fusion_head.safetensors")
def _(t):
    run = t.run()
    data = (run / "fusion_head.safetensors").read_bytes()
    (run / "fusion_head.safetensors").write_bytes(data[: len(data) // 2])
    return t.predict_args(run, t.assets.text_path)


@case("run-truncated-adapter", "adapter")
def _(t):
    run = t.run()
    weights = next((run / "adapter").glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:200])
    return t.predict_args(run, t.assets.text_path)


@case("run-pickle-instead-of-weights", "fusion_head.safetensors")
def _(t):
    run = t.run()
    # Unpickling this would create the marker file; the folder snapshot proves it never happened.
    (run / "fusion_head.safetensors").write_bytes(pickle.dumps(_Trap(str(t.path("UNPICKLED")))))
    return t.predict_args(run, t.assets.text_path)


@case("run-pickle-instead-of-adapter", "adapter")
def _(t):
    run = t.run()
    weights = next((run / "adapter").glob("*.safetensors"))
    weights.write_bytes(pickle.dumps(_Trap(str(t.path("UNPICKLED")))))
    return t.predict_args(run, t.assets.text_path)


@case("run-missing-config", "run", "config.json")
def _(t):
    run = t.run()
    (run / "config.json").unlink()
    return t.predict_args(run, t.assets.text_path)


@case("run-malformed-config", "config.json", "not valid JSON")
def _(t):
    run = t.run()
    (run / "config.json").write_text('{"model": {')
    return t.predict_args(run, t.assets.text_path)


@case("run-model-config-unknown-key", "config.json: model", "unknown key", "fusion_layerz")
def _(t):
    run = t.run()
    cfg = json.loads((run / "config.json").read_text())
    cfg["model"]["fusion_layerz"] = 3
    (run / "config.json").write_text(json.dumps(cfg))
    return t.predict_args(run, t.assets.text_path)


@case("run-model-config-wrong-type", "config.json: model", "n_fusion_layers", "'two'")
def _(t):
    run = t.run()
    cfg = json.loads((run / "config.json").read_text())
    cfg["model"]["n_fusion_layers"] = "two"
    (run / "config.json").write_text(json.dumps(cfg))
    return t.predict_args(run, t.assets.text_path)


def _edit_json(path: Path, edit) -> Path:
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))  # json writes NaN and Infinity as such
    return path


@case("run-calibration-deleted", "calibration.json", "missing", "'platt'")
def _(t):  # its thresholds were chosen on calibrated probabilities: predicting without it is wrong (issue 26)
    run = t.run()
    (run / "calibration.json").unlink()
    return t.predict_args(run, t.assets.text_path)


def _predict_after_editing(id: str, edits: dict, *expect: str) -> None:
    """A catalogue case: predict with a run whose JSON files were edited (``{file name: edit of its object}``)."""
    @case(id, *expect)
    def _(t):
        run = t.run()
        for name, edit in edits.items():
            _edit_json(run / name, edit)
        return t.predict_args(run, t.assets.text_path)


# Files a run is loaded from, each edited into something that is not a valid run (issue 26): a named error.
_predict_after_editing("run-calibration-of-another-method", {"calibration.json": lambda d: d.update(method="none")},
                       "calibration.json", "'none'", "'platt'")
_predict_after_editing("run-calibration-slope-nan", {"calibration.json": lambda d: d.update(slope=float("nan"))},
                       "calibration.json", "'slope'", "finite")
_predict_after_editing("run-calibration-intercept-a-string", {"calibration.json": lambda d: d.update(intercept="0.5")},
                       "calibration.json", "'intercept'")
_predict_after_editing("run-calibration-knot-above-1", {
    "calibration.json": lambda d: d.update(method="isotonic", knots_x=[-1.0, 1.0], knots_y=[0.1, 3.0]),
    "config.json": lambda d: d["train"].update(calibration="isotonic")}, "calibration.json", "'knots_y'", "[0, 1]")
_predict_after_editing("run-threshold-outside-0-1",
                       {"thresholds.json": lambda d: d["operating_points"]["f1"].update(threshold=5.0)},
                       "thresholds.json", "threshold", "[0, 1]", "5.0")
_predict_after_editing("run-threshold-nan",
                       {"thresholds.json": lambda d: d["operating_points"]["f1"].update(threshold=float("nan"))},
                       "thresholds.json", "threshold", "nan")
_predict_after_editing("run-threshold-decision-point-missing",
                       {"thresholds.json": lambda d: d["operating_points"].pop("f1")}, "thresholds.json", "'f1'")
_predict_after_editing("run-config-train-not-an-object", {"config.json": lambda d: d.update(train="platt")},
                       "config.json", "'train'", "object")


@case("run-weights-nan", "run", "no valid probability", "fusion_head.safetensors")
def _(t):  # weights that load but compute NaN: no NaN probability is written
    from safetensors.torch import load_file, save_file

    run = t.run()
    weights = load_file(run / "fusion_head.safetensors")
    save_file({k: v.float().fill_(float("nan")) if v.is_floating_point() else v for k, v in weights.items()},
              run / "fusion_head.safetensors")
    return t.predict_args(run, t.assets.text_path)


@case("embed-weights-nan", "run", "no valid embedding")
def _(t):
    from safetensors.torch import load_file, save_file

    run = t.run()
    weights = load_file(run / "fusion_head.safetensors")
    save_file({k: v.float().fill_(float("nan")) if v.is_floating_point() else v for k, v in weights.items()},
              run / "fusion_head.safetensors")
    return ["embed", run, "--input", t.assets.text_path, "--out", t.earlier("e.parquet"), "--overwrite",
            "--threads", "1"]


@case("run-not-a-folder", "nowhere", "not a run directory")
def _(t):
    return t.predict_args(t.path("nowhere"), t.assets.text_path)


@case("resume-config-wrong-type", "config.json", "epochs")
def _(t):
    run = t.run()
    cfg = json.loads((run / "config.json").read_text())
    cfg["train"]["epochs"] = "many"
    (run / "config.json").write_text(json.dumps(cfg))
    return ["train", "--resume", run]


@case("evaluate-interrupted-run", "run", "interrupted", "alfia train --resume")
def _(t):  # issue 26: said "no predictions file"
    run = t.run()
    for name in ("predictions.parquet", "thresholds.json", "calibration.json", "fusion_head.safetensors"):
        (run / name).unlink()
    shutil.rmtree(run / "adapter")
    return ["evaluate", run, "--n-boot", "10"]


@case("evaluate-corrupt-predictions", "predictions.parquet")
def _(t):
    run = t.run()
    (run / "predictions.parquet").write_bytes(b"PAR1 this is no parquet PAR1")
    return ["evaluate", run, "--n-boot", "10"]


@case("evaluate-predictions-label-2", "predictions.parquet", "label")
def _(t):
    run = t.run()
    preds = pd.read_parquet(run / "predictions.parquet")
    preds.loc[0, "label"] = 2
    preds.to_parquet(run / "predictions.parquet", index=False)
    return ["evaluate", run, "--n-boot", "10"]


@case("evaluate-external-one-class", "site.parquet", "hospital_expire_flag", "deaths and survivors")
def _(t):  # refused before anything is written: no external/site/, metrics.json as it was (issue 26)
    df = t.cohort_df()
    df["stay_id"] += 1_000_000  # other stays
    df["hospital_expire_flag"] = 0
    return ["evaluate", t.run(), "--n-boot", "10", "--external", t.cohort(df, name="site.parquet")]


@case("evaluate-external-is-the-training-table", "text.parquet", "the run's own rows", "train", "val")
def _(t):  # the run's own training rows are no external validation
    return ["evaluate", t.run(), "--n-boot", "10", "--external", t.text()]


@case("evaluate-external-is-the-training-cohort", "cohort.parquet", "the run's own rows")
def _(t):
    return ["evaluate", t.run(), "--n-boot", "10", "--external", t.cohort()]


@case("evaluate-external-without-labels", "site.parquet", "hospital_expire_flag")
def _(t):  # refused before the internal evaluation rewrites metrics.json
    df = t.cohort_df().drop(columns=["hospital_expire_flag"])
    df["stay_id"] += 1_000_000
    df.to_parquet(t.path("site.parquet"), index=False)
    return ["evaluate", t.run(), "--n-boot", "10", "--external", t.path("site.parquet")]


@case("evaluate-cohort-matching-no-stay", "other.parquet", "none of its", "stay_ids")
def _(t):  # issue 26: exit 0 with every subgroup "unmatched"
    df = t.cohort_df()
    df["stay_id"] += 1_000_000
    return ["evaluate", t.run(), "--n-boot", "10", "--cohort", t.cohort(df, name="other.parquet")]


@case("compare-folder-without-runs", "empty-folder")
def _(t):
    t.path("empty-folder").mkdir()
    return ["compare", t.path("empty-folder"), "--out", t.path("report"), "--n-boot", "10"]


@case("boost-embeddings-missing-stays", "emb.parquet", "stay")
def _(t):
    ids = t.cohort_df()["stay_id"].to_numpy()[:20]
    pd.DataFrame({"stay_id": ids, "alf_0": np.zeros(len(ids)), "alf_1": np.ones(len(ids))}).to_parquet(
        t.path("emb.parquet"), index=False)
    return ["boost", t.cohort(), "--embeddings", t.path("emb.parquet"), "--out", t.path("boosted"),
            "--learner", "lightgbm", "--profile", "fast", "--n-boot", "5"]


# --- time series ---------------------------------------------------------------------------------

def _hourly(t, edit=None, *, manifest: bool = True) -> Path:
    """A small valid hourly table (40 stays x 6 hours, 3 variables), edited by ``edit(frame)``."""
    from alfia.series.hourly import frame_from_arrays, write_hourly
    from alfia.series.variables import VOCABULARY

    variables = [VOCABULARY[n] for n in ("age", "heart_rate", "lactate")]
    rng = np.random.default_rng(0)
    values = rng.normal(80, 10, size=(40, 6, 3))
    values[rng.random(values.shape) < 0.3] = np.nan
    split = np.array(["train"] * 24 + ["val"] * 8 + ["test"] * 8, dtype=object)
    frame = frame_from_arrays(np.arange(40) + 1000, (np.arange(40) % 4 == 0).astype(int), split, values,
                              [v.name for v in variables])
    if edit is not None:
        edit(frame)
    path = t.path("hourly.parquet")
    if manifest:
        write_hourly(frame, path, source="synthetic", variables=variables, hours=6)
    else:
        frame.to_parquet(path, index=False)
    return path


def _series_train(t, hourly: Path) -> list:
    return ["series", "train", hourly, "--out", t.path("srun"), "--epochs", "1", "--threads", "1"]


@case("series-label-differs-within-a-stay", "hourly.parquet", "hospital_expire_flag", "stay 1001")
def _(t):  # issue 26: it trained with exit 0
    def edit(f):
        f.loc[(f.stay_id == 1001) & (f.hour == 3), "hospital_expire_flag"] = 1
    return _series_train(t, _hourly(t, edit))


@case("series-split-differs-within-a-stay", "hourly.parquet", "'split'", "stay 1002")
def _(t):
    def edit(f):
        f.loc[(f.stay_id == 1002) & (f.hour == 6), "split"] = "test"
    return _series_train(t, _hourly(t, edit))


@case("series-inf-value", "hourly.parquet", "'heart_rate'", "inf", "stay 1003", "hour 2")
def _(t):  # issue 26: scikit-learn's "Input contains NaN" traceback, config.json left behind
    def edit(f):
        f["heart_rate"] = f["heart_rate"].where(~((f.stay_id == 1003) & (f.hour == 2)), np.inf)
    return _series_train(t, _hourly(t, edit))


@case("series-table-without-manifest", "hourly.parquet", "no manifest", "hourly.manifest.json")
def _(t):  # issue 26: predicted with every variable "absent" (their units live in the manifest alone)
    return _series_train(t, _hourly(t, manifest=False))


# --- outputs -------------------------------------------------------------------------------------

@case("out-equals-input-predict", "text.parquet", "input")
def _(t):
    text = t.text()
    return ["predict", t.run(), "--input", text, "--out", text, "--overwrite", "--threads", "1"]


@case("out-equals-input-encode", "cohort.parquet", "input")
def _(t):
    cohort = t.cohort()
    return ["encode", cohort, "--out", cohort, "--overwrite"]


@case("out-equals-input-manifest", "cohort.manifest.json", "input")
def _(t):
    cohort = t.cohort()
    return ["encode", cohort, "--out", t.path("cohort.manifest.json")]


@case("out-is-a-run-file", "predictions.parquet", "input")
def _(t):
    run = t.run()
    return ["predict", run, "--input", t.assets.text_path, "--out", run / "predictions.parquet",
            "--overwrite"]


@case("out-existing-without-overwrite", "preds.parquet", "already exists", "--overwrite")
def _(t):
    return ["predict", t.run(), "--input", t.assets.text_path, "--out", t.earlier("preds.parquet")]


@case("out-existing-cohort-without-overwrite", "c.parquet", "already exists")
def _(t):
    return ["cohort", "synthetic", "--n", "50", "--out", t.earlier("c.parquet")]


@case("out-folder-is-a-file", "not-a-folder", "not a folder")
def _(t):
    t.path("not-a-folder").write_text("a file")
    return ["embed", t.run(), "--input", t.assets.text_path, "--out", t.path("not-a-folder") / "e.parquet"]


@case("out-compare-into-a-run", "run", "input")
def _(t):
    run = t.run()
    return ["compare", run, "--out", run, "--overwrite"]


@case("out-baselines-nonempty-folder", "zoo", "not empty", "--resume")
def _(t):
    t.earlier("zoo/summary.csv")
    return ["baselines", t.cohort(), "--out", t.path("zoo"), "--profile", "fast"]


@case("out-train-into-text-table", "text.parquet", "input")
def _(t):
    text = t.text()
    return ["train", text, "--out", text]


@case("message-with-emoji-code-printed-as-text", "root:x:0:0.txt", "no such file")
def _(t):  # issue 26: rich printed "root:x:0" as "root❌0"
    return t.predict_args(t.run(), t.path("root:x:0:0.txt"))


# --- flags ---------------------------------------------------------------------------------------

@case("flag-negative-epochs", "epochs")
def _(t):
    return t.train_args(t.assets.text_path, "--epochs", "-1")


@case("flag-lr-zero", "lr")
def _(t):
    return t.train_args(t.assets.text_path, "--lr", "0")


@case("flag-batch-size-zero", "batch_size")
def _(t):
    return t.train_args(t.assets.text_path, "--batch-size", "0")


@case("flag-predict-batch-size-zero", "--batch-size", "0")
def _(t):
    return t.predict_args(t.run(), t.assets.text_path, "--batch-size", "0")


@case("flag-max-length-zero", "max_length")
def _(t):
    return t.train_args(t.assets.text_path, "--max-length", "0")


@case("flag-unknown-pooler", "pooler", "'attention'")
def _(t):
    return t.train_args(t.assets.text_path, "--pooler", "attention")


@case("flag-unknown-backbone", "no-such-model")
def _(t):
    args = t.train_args(t.assets.text_path)
    args[args.index("--backbone") + 1] = str(t.path("no-such-model"))
    return args


@case("flag-threads-zero", "threads", ">= 1")
def _(t):  # checked with every other option, before the run folder is created (issue 26)
    return t.train_args(t.assets.text_path, "--threads", "0")


@case("flag-head-from-not-a-run", "nowhere", "--head-from")
def _(t):
    return t.train_args(t.assets.text_path, "--head-from", str(t.path("nowhere")))


@case("flag-unknown-baseline-model", "NoSuchForest")
def _(t):
    return ["baselines", t.cohort(), "--out", t.path("zoo"), "--models", "NoSuchForest"]


@case("flag-unknown-template", "klingon")
def _(t):
    return ["encode", t.cohort(), "--out", t.path("text.parquet"), "--template", "klingon"]


# --- issue 20: the outsider's catalogue, and the class of each case --------------------------------

def _records_tar(t, name: str = "set-a.tar.gz", bad: bytes | None = None) -> Path:
    members: dict[str, str | bytes] = {f"{i}.txt": record_text(i, series=[("01:00", "HR", 80)]) for i in (1, 2, 3)}
    if bad is not None:
        members["2.txt"] = record_text(2).encode() + bad
    return write_tar(t.path(name), members)


@case("physionet-record-invalid-utf8", "set-a.tar.gz:2.txt", "line 8", "UTF-8")
def _(t):  # a pyarrow "invalid UTF8 data" traceback
    return _physionet(t, _records_tar(t, bad=b"01:00,HR,8\xff0\n"))


@case("series-build-record-invalid-utf8", "set-a.tar.gz:2.txt", "line 8", "UTF-8")
def _(t):
    return ["series", "build", "physionet2012", "--records", _records_tar(t, bad=b"01:00,HR,8\xff0\n"),
            "--outcomes", write_outcomes(t.path("Outcomes-a.txt"), [1, 2, 3]), "--out", t.earlier("h.parquet"),
            "--overwrite"]


@case("seed-negative-train", "--seed", "-1", "0<=x")
def _(t):  # numpy's "Seed must be between 0 and 2**32 - 1" traceback
    return t.train_args(t.assets.text_path, "--seed", "-1")


@case("seed-negative-cohort-synthetic", "--seed", "-5")
def _(t):
    return ["cohort", "synthetic", "--n", "50", "--seed", "-5", "--out", t.earlier("c.parquet"), "--overwrite"]


@case("seed-too-large-baselines", "--seed", "4294967296")
def _(t):
    return ["baselines", t.cohort(), "--out", t.path("zoo"), "--seed", str(2**32), "--profile", "fast"]


@case("series-model-size-zero", "--set", "hidden_size", ">= 1")
def _(t):  # a torch traceback
    return [*_series_train(t, _hourly(t)), "--model", "gru", "--set", "hidden_size=0"]


@case("series-model-size-negative", "--set", "d_model", ">= 1")
def _(t):
    return [*_series_train(t, _hourly(t)), "--set", "d_model=-4"]


@case("series-model-dropout-above-1", "--set", "dropout", "[0, 1)")
def _(t):
    return [*_series_train(t, _hourly(t)), "--set", "dropout=1.5"]


@case("table-is-a-folder-encode", "a folder, not a table file")
def _(t):  # "PosixPath('.') has an empty name"
    return ["encode", ".", "--out", t.earlier("text.parquet"), "--overwrite"]


@case("table-is-a-folder-baselines", "a folder, not a table file")
def _(t):
    return ["baselines", ".", "--out", t.path("zoo"), "--profile", "fast"]


@case("table-is-a-folder-series-train", "a folder, not a table file")
def _(t):
    return ["series", "train", ".", "--out", t.path("srun"), "--epochs", "1"]


def _series_run(t) -> Path:
    from alfia.series.hourly import read_hourly
    from alfia.series.train import SeriesTrainConfig, train_series

    hourly = _hourly(t)
    train_series(read_hourly(hourly), t.path("srun"), SeriesTrainConfig(model="gru", epochs=1, threads=1,
                                                                       hourly=str(hourly)))
    return t.path("srun")


@case("series-predict-text-value", "hourly2.parquet", "'heart_rate'", "'high'", "stay 1005", "hour 3")
def _(t):  # a numpy "could not convert string to float" traceback
    run = _series_run(t)
    from alfia.series.hourly import read_hourly, write_hourly

    arrays = read_hourly(t.path("hourly.parquet"))
    frame = arrays.to_frame()
    frame["heart_rate"] = frame["heart_rate"].astype(str)
    frame.loc[(frame.stay_id == 1005) & (frame.hour == 3), "heart_rate"] = "high"
    write_hourly(frame, t.path("hourly2.parquet"), source="synthetic", variables=arrays.variables, hours=6)
    return ["series", "predict", run, "--input", t.path("hourly2.parquet"), "--out", t.earlier("p.parquet"),
            "--overwrite"]


@case("evaluate-cohort-age-is-text", "other.parquet", "'admission_age'", "'old'", "row 3")
def _(t):  # counted silently as a "missing" age band
    df = t.cohort_df()
    df["admission_age"] = df["admission_age"].astype(str)
    df.loc[3, "admission_age"] = "old"
    df.to_parquet(t.path("other.parquet"), index=False)
    return ["evaluate", t.run(), "--n-boot", "10", "--cohort", t.path("other.parquet")]


@case("option-epochs-with-train-layers-0", "--epochs does not apply", "--head-epochs")
def _(t):  # on the frozen recipe --epochs did nothing
    args = t.train_args(t.assets.text_path, "--train-layers", "0")
    return args


@case("option-lora-with-full-finetune", "--lora-r does not apply", "--finetune lora")
def _(t):
    return t.train_args(t.assets.text_path, "--train-layers", "1", "--finetune", "full", "--lora-r", "4")


@case("option-gating-with-mean-pooler", "--no-gating does not apply")
def _(t):
    return t.train_args(t.assets.text_path, "--pooler", "mean", "--no-gating")


@case("resume-with-an-override", "--resume", "does not take --head-epochs")
def _(t):  # alfia train --resume RUN --head-epochs 8 ignored the option
    return ["train", "--resume", t.run(), "--head-epochs", "8"]


@case("series-resume-with-an-override", "--resume", "does not take --epochs")
def _(t):
    return ["series", "train", "--resume", _series_run(t), "--epochs", "3"]


# --- issue 24: the commands that skipped the output guard ---------------------------------------

@case("out-existing-series-build-without-overwrite", "h.parquet", "already exists", "--overwrite")
def _(t):
    return ["series", "build", "physionet2012", "--records", _records_tar(t), "--outcomes",
            write_outcomes(t.path("Outcomes-a.txt"), [1, 2, 3]), "--out", t.earlier("h.parquet")]


@case("out-existing-series-predict-without-overwrite", "p.parquet", "already exists", "--overwrite")
def _(t):
    run = _series_run(t)
    return ["series", "predict", run, "--input", t.path("hourly.parquet"), "--out", t.earlier("p.parquet")]


@case("out-series-predict-equals-input", "hourly.parquet", "input")
def _(t):
    run = _series_run(t)
    return ["series", "predict", run, "--input", t.path("hourly.parquet"), "--out", t.path("hourly.parquet"),
            "--overwrite"]


@case("out-series-predict-into-the-run", "model.safetensors", "input")
def _(t):
    run = _series_run(t)
    return ["series", "predict", run, "--input", t.path("hourly.parquet"), "--out", run / "model.safetensors",
            "--overwrite"]


@case("out-existing-card-without-overwrite", "card.md", "already exists", "--overwrite")
def _(t):
    return ["card", t.run(), "--out", t.earlier("card.md")]


@case("out-existing-card-html-without-overwrite", "card.html", "already exists")
def _(t):
    t.earlier("card.html")
    return ["card", t.run(), "--out", t.path("card.md")]


@case("out-card-over-the-run-config", "config.json", "input")
def _(t):
    run = t.run()
    return ["card", run, "--out", run / "config.json", "--overwrite"]


class _Trap:
    """A pickle payload that touches a marker file when loaded."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_the_catalogue_is_large_and_names_are_unique():
    assert len(CASES) >= 40
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("bad", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_refused_by_name_and_changes_nothing(bad: Case, assets, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = bad.build(Ctx(tmp_path, assets))
    before = snapshot(tmp_path)
    run_before = snapshot(assets.root)
    code, out, err = run_alfia(args, capsys)
    assert code == 2, f"exit {code}; stdout: {out}\nstderr: {err}"
    assert err.count("error: ") == 1, err  # one line (progress bars of model loading may precede it)
    for fragment in bad.expect:
        assert fragment in err, f"{fragment!r} not in: {err}"
    assert snapshot(tmp_path) == before, "a failed command changed, added or removed a file"
    assert snapshot(assets.root) == run_before
    assert not Path("/tmp/alfia-evil").exists() and not (tmp_path.parent / "1.txt").exists()


# --- hostile but valid: accepted, with a warning that names the place ---------------------------

ACCEPTED: list[Case] = []


def accepted(id: str, *expect: str):
    def register(fn):
        ACCEPTED.append(Case(id, fn, expect))
        return fn
    return register


@accepted("physionet-non-numeric-value-skipped", "1 malformed lines skipped", "set-a.tar.gz:1.txt:8")
def _(t):
    tar = write_tar(t.path("set-a.tar.gz"), {"1.txt": record_text(1, series=[("01:00", "HR", "fast")]),
                                             "2.txt": record_text(2), "3.txt": record_text(3)})
    return ["cohort", "physionet2012", "--records", tar, "--outcomes",
            write_outcomes(t.path("Outcomes-a.txt"), [1, 2, 3]), "--out", t.path("p.parquet")]


@accepted("physionet-negative-time-skipped", "1 malformed lines skipped", "set-a.tar.gz:2.txt:8")
def _(t):
    tar = write_tar(t.path("set-a.tar.gz"), {"1.txt": record_text(1), "3.txt": record_text(3),
                                             "2.txt": record_text(2, series=[("-01:00", "HR", 80)])})
    return ["cohort", "physionet2012", "--records", tar, "--outcomes",
            write_outcomes(t.path("Outcomes-a.txt"), [1, 2, 3]), "--out", t.path("p.parquet")]


@accepted("physionet-minute-75-skipped", "1 malformed lines skipped", "set-a.tar.gz:3.txt:8")
def _(t):  # issue 26: read as 06:15 without notice
    tar = write_tar(t.path("set-a.tar.gz"), {"1.txt": record_text(1), "2.txt": record_text(2),
                                             "3.txt": record_text(3, series=[("05:75", "HR", 80)])})
    return ["cohort", "physionet2012", "--records", tar, "--outcomes",
            write_outcomes(t.path("Outcomes-a.txt"), [1, 2, 3]), "--out", t.path("p.parquet")]


@accepted("physionet-line-with-4-fields-skipped", "1 malformed lines skipped", "set-a.tar.gz:2.txt:8")
def _(t):  # issue 20 saw a pyarrow "Expected 3 columns, got 4" traceback
    return ["cohort", "physionet2012", "--records", _records_tar(t, bad=b"02:00,HR,80,5\n"), "--outcomes",
            write_outcomes(t.path("Outcomes-a.txt"), [1, 2, 3]), "--out", t.path("p.parquet")]


@accepted("series-build-line-with-4-fields-skipped", "wrote")
def _(t):
    return ["series", "build", "physionet2012", "--records", _records_tar(t, bad=b"02:00,HR,80,5\n"), "--outcomes",
            write_outcomes(t.path("Outcomes-a.txt"), [1, 2, 3]), "--out", t.path("p.parquet")]


@accepted("text-100k-characters-truncated", "predictions")
def _(t):
    df = t.text_df()
    df.loc[0, "text"] = ("sepsis lactate ventilated " * 4000)[:100_000]
    return ["predict", t.run(), "--input", t.text(df), "--out", t.path("p.parquet"), "--threads", "1"]


@accepted("text-control-characters-inside", "predictions")
def _(t):
    df = t.text_df()
    df.loc[0, "text"] = "patient\x00 with \x1b[31msepsis\x07 and\ttabs\r\n"
    return ["predict", t.run(), "--input", t.text(df), "--out", t.path("p.parquet"), "--threads", "1"]


def test_texts_of_another_template_are_scored_with_a_warning(assets, tmp_path, capsys):
    """eICU texts scored by a MIMIC-IV run (issue 26: without notice): a warning says so and what to do."""
    from alfia.cohorts.io import write_cohort
    from alfia.cohorts.sources.synthetic import generate_synthetic
    from alfia.text import encode_file
    from alfia.text.encode import TextEncodingWarning

    write_cohort(generate_synthetic("eicu", 20, 3), tmp_path / "eicu.parquet", source="synthetic", variant="eicu")
    encode_file(tmp_path / "eicu.parquet", tmp_path / "eicu_text.parquet")
    with pytest.warns(TextEncodingWarning, match=r"eicu_text.parquet: texts written with the 'eicu' template.*"
                                                 r"trained on 'mimic' texts.*--external"):
        code, _, err = run_alfia(["predict", assets.run, "--input", tmp_path / "eicu_text.parquet", "--out",
                                  tmp_path / "p.parquet", "--threads", "1"], capsys)
    assert code == 0, err


def test_text_file_ids_keep_their_line_index_after_blank_lines(assets, tmp_path, capsys):
    """Blank lines are skipped with a warning and keep their index (issue 26: the ids were renumbered)."""
    from alfia.text.encode import TextEncodingWarning

    (tmp_path / "texts.txt").write_text("first patient\n\n   \nfourth patient\n")
    with pytest.warns(TextEncodingWarning, match=r"texts.txt: 2 blank line\(s\) skipped \(the first: line 2\)"):
        code, _, err = run_alfia(["predict", assets.run, "--input", tmp_path / "texts.txt", "--out",
                                  tmp_path / "p.parquet", "--threads", "1"], capsys)
    assert code == 0, err
    assert pd.read_parquet(tmp_path / "p.parquet")["stay_id"].tolist() == [0, 3]  # as with no blank lines


@pytest.mark.parametrize("odd", ACCEPTED, ids=[c.id for c in ACCEPTED])
def test_odd_but_valid_input_is_accepted_and_reported(odd: Case, assets, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = odd.build(Ctx(tmp_path, assets))
    before = snapshot(tmp_path)
    code, out, err = run_alfia(args, capsys)
    assert code == 0, err
    said = "".join((out + err).split())  # rich wraps long paths anywhere
    for fragment in odd.expect:
        assert "".join(fragment.split()) in said, f"{fragment!r} not in: {out + err}"
    after = snapshot(tmp_path)
    assert {k: after.get(k) for k in before} == before  # new output only; nothing earlier touched
    assert (tmp_path / "p.parquet").exists()
    if args[0] == "predict":
        assert np.isfinite(pd.read_parquet(tmp_path / "p.parquet")["prob"]).all()


def test_max_length_beyond_the_backbone_is_clamped(assets, tmp_path, capsys):
    """--max-length 100000 cannot crash inference later: the model keeps the backbone's 512 positions."""
    from alfia.inference import load_run

    ctx = Ctx(tmp_path, assets)
    args = ctx.train_args(assets.text_path, "--max-length", "100000")
    with pytest.warns(UserWarning, match="truncated to 512"):
        code, _, err = run_alfia(args, capsys)
    assert code == 0, err
    assert load_run(tmp_path / "newrun", num_threads=1).max_length == 512
