"""Interrupted work: `alfia train` and `alfia baselines` killed with SIGKILL (no chance to save anything)
resume to the result of an uninterrupted run; two `alfia encode` runs racing for one output leave one
complete table. Everything goes through the command line, as a user's job would."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from cli_process import run_alfia

ALFIA = [sys.executable, "-c", "from alfia.cli import main; main()"]


def _env() -> dict:
    src = str(Path(__file__).resolve().parents[2] / "src")
    return {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", ""),
            "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


def _kill_when(args: list, ready: Path, timeout: float = 900.0) -> None:
    """Start ``alfia ARGS``; SIGKILL it the moment ``ready`` exists. Fails if it ended on its own."""
    proc = subprocess.Popen([*ALFIA, *map(str, args)], env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout
    try:
        while not ready.exists():
            if proc.poll() is not None:
                pytest.fail(f"alfia {args[0]} ended (exit {proc.returncode}) before {ready.name} appeared: "
                            f"{proc.stderr.read()[-2000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"{ready} did not appear within {timeout:.0f} s")
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def text_table(tmp_path_factory):
    from alfia.cohorts.io import write_cohort
    from alfia.cohorts.sources.synthetic import generate_synthetic
    from alfia.models.testing import tiny_backbone
    from alfia.text import encode_file

    root = tmp_path_factory.mktemp("interrupted")
    write_cohort(generate_synthetic("mimic", 240, 3), root / "cohort.parquet", source="synthetic", variant="mimic")
    encode_file(root / "cohort.parquet", root / "text.parquet")
    return root / "text.parquet", tiny_backbone(root, layers=2)


def _history(run: Path) -> list[dict]:
    return [{k: v for k, v in json.loads(line).items() if k != "seconds"}
            for line in (run / "history.jsonl").read_text().splitlines()]


def test_train_killed_after_first_checkpoint_resumes_to_the_uninterrupted_result(text_table, tmp_path, capsys):
    from safetensors.torch import load_file

    text, backbone = text_table
    options = ["--backbone", backbone, "--fusion-layers", "2", "--lora-r", "4", "--epochs", "4", "--patience", "9",
               "--batch-size", "8", "--max-length", "48", "--threads", "1", "--seed", "11", "--lr", "3e-3",
               "--train-layers", "all", "--finetune", "lora", "--head-epochs", "0"]
    killed = tmp_path / "killed"
    _kill_when(["train", text, "--out", killed, *options], killed / "checkpoint" / "state.json")
    assert not (killed / "thresholds.json").exists(), "the run finished before it could be killed"
    done_before_kill = len(_history(killed))
    assert 1 <= done_before_kill < 4

    code, _, err = run_alfia(["train", "--resume", killed], capsys)
    assert code == 0, err
    code, _, err = run_alfia(["train", text, "--out", tmp_path / "straight", *options], capsys)
    assert code == 0, err

    straight = tmp_path / "straight"
    assert _history(killed) == _history(straight) and len(_history(straight)) == 4
    for weights in ("fusion_head.safetensors", "adapter/adapter_model.safetensors"):
        a, b = load_file(killed / weights), load_file(straight / weights)
        assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a), weights
    pd.testing.assert_frame_equal(pd.read_parquet(killed / "predictions.parquet"),
                                  pd.read_parquet(straight / "predictions.parquet"))
    assert json.loads((killed / "thresholds.json").read_text()) == json.loads((straight / "thresholds.json").read_text())


def test_baselines_killed_after_first_model_resume_skips_it_and_match(tmp_path, capsys):
    from alfia.cohorts.io import write_cohort
    from alfia.cohorts.sources.synthetic import generate_synthetic

    cohort = tmp_path / "cohort.parquet"
    write_cohort(generate_synthetic("mimic", 1500, 5), cohort, source="synthetic", variant="mimic")
    options = ["--models", "LinearModel,RandomForestGini,ExtraTreesGini,KNeighborsUnif", "--profile", "fast",
               "--n-boot", "20", "--seed", "3"]
    zoo = tmp_path / "zoo"
    _kill_when(["baselines", cohort, "--out", zoo, *options], zoo / "LinearModel" / "metrics.json")
    assert not (zoo / "summary.csv").exists(), "the zoo finished before it could be killed"
    first = {p.name: (p.stat().st_mtime_ns, _sha(p)) for p in (zoo / "LinearModel").iterdir() if p.is_file()}

    code, _, err = run_alfia(["baselines", cohort, "--out", zoo, *options], capsys)
    assert code == 2 and "--resume" in err  # an interrupted zoo is never silently overwritten
    code, _, err = run_alfia(["baselines", cohort, "--out", zoo, "--resume", *options], capsys)
    assert code == 0, err
    assert {p.name: (p.stat().st_mtime_ns, _sha(p)) for p in (zoo / "LinearModel").iterdir()
            if p.is_file()} == first, "the finished model was trained again"
    code, _, err = run_alfia(["baselines", cohort, "--out", tmp_path / "straight", *options], capsys)
    assert code == 0, err

    resumed = pd.read_csv(zoo / "summary.csv").drop(columns=["train_time_s"])
    straight = pd.read_csv(tmp_path / "straight" / "summary.csv").drop(columns=["train_time_s"])
    pd.testing.assert_frame_equal(resumed, straight)
    for model in ("LinearModel", "RandomForestGini", "ExtraTreesGini", "KNeighborsUnif"):
        pd.testing.assert_frame_equal(pd.read_parquet(zoo / model / "predictions.parquet"),
                                      pd.read_parquet(tmp_path / "straight" / model / "predictions.parquet"))


@pytest.mark.parametrize("overwrite", [True, False], ids=["with-overwrite", "without-overwrite"])
def test_two_encodes_racing_for_one_output_leave_one_complete_table(tmp_path, overwrite):
    from alfia.atomic import sha256_file
    from alfia.cohorts.io import read_table, write_cohort
    from alfia.cohorts.sources.synthetic import generate_synthetic

    cohorts = []
    for seed, n in ((1, 3000), (2, 2000)):  # different sizes: a mixed pair would show in the row count
        write_cohort(generate_synthetic("mimic", n, seed), tmp_path / f"c{seed}.parquet", source="synthetic",
                     variant="mimic")
        cohorts.append(tmp_path / f"c{seed}.parquet")
    out = tmp_path / "text.parquet"
    procs = [subprocess.Popen([*ALFIA, "encode", str(c), "--out", str(out), *(["--overwrite"] if overwrite else [])],
                              env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for c in cohorts]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    for p in procs:
        p.stderr.close()
    codes = sorted(code for code, _ in results)
    if overwrite:
        assert codes == [0, 0], results
    else:  # the slower one finds the file there and refuses, or (if it started later) sees it at once
        assert codes in ([0, 2],), results
        assert any("was written by another process" in e or "already exists" in e for _, e in results)
    df, manifest = read_table(out)
    assert manifest.content_sha256 == sha256_file(out) and manifest.n_rows == len(df)
    assert manifest.extra["cohort_sha256"] == sha256_file(cohorts[0 if len(df) == 3000 else 1])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c1.manifest.json", "c1.parquet", "c2.manifest.json",
                                                          "c2.parquet", "text.manifest.json", "text.parquet"]
