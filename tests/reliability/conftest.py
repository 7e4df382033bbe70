"""Fixtures of the reliability tests: a small valid cohort, its text table, a tiny trained run, and a way
to run ``alfia`` in-process exactly as the console script does (one error line, exit status 2)."""

from __future__ import annotations

import hashlib
import io
import os
import sys
import tarfile
from pathlib import Path
from types import SimpleNamespace

import pytest

RECORD_HEADER = "Time,Parameter,Value\n"
OUTCOMES_HEADER = "RecordID,SAPS-I,SOFA,Length_of_stay,Survival,In-hospital_death\n"


def run_alfia(args, capsys) -> tuple[int, str, str]:
    """``alfia ARGS`` in-process through ``alfia.cli.main``: (exit code, stdout, stderr on one line)."""
    from alfia.cli import main

    old = sys.argv
    sys.argv = ["alfia", *map(str, args)]
    try:
        main()
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        sys.argv = old
    captured = capsys.readouterr()
    return code, captured.out, " ".join(captured.err.split())  # rich may wrap long lines


def snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` (links followed) -> SHA-256 of its bytes; folders -> "dir"."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        out[rel] = "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def record_text(record_id: int, *, age=60, series=()) -> str:
    lines = [RECORD_HEADER, f"00:00,RecordID,{record_id}\n", f"00:00,Age,{age}\n", "00:00,Gender,1\n",
             "00:00,Height,175\n", "00:00,ICUType,3\n", "00:00,Weight,80\n"]
    lines += [f"{t},{p},{v}\n" for t, p, v in series]
    return "".join(lines)


def write_tar(path: Path, members: dict[str, str | bytes]) -> Path:
    """A gzipped tar whose members carry exactly the given names (no folder prefix added)."""
    with tarfile.open(path, "w:gz") as tar:
        for name, text in members.items():
            data = text.encode() if isinstance(text, str) else text
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def write_outcomes(path: Path, ids, deaths=None) -> Path:
    deaths = deaths or [int(i % 3 == 0) for i in ids]
    path.write_text(OUTCOMES_HEADER + "".join(f"{i},10,3,5,-1,{d}\n" for i, d in zip(ids, deaths)))
    return path


@pytest.fixture(scope="session")
def assets(tmp_path_factory):
    """A valid mimic cohort (Parquet + manifest), its text table, and a tiny trained ALFIA run."""
    from alfia.cohorts.io import write_cohort
    from alfia.cohorts.sources.synthetic import generate_synthetic
    from alfia.models import AlfiaConfig
    from alfia.models.testing import tiny_backbone
    from alfia.text import encode_file
    from alfia.training import TrainConfig, train_run

    root = tmp_path_factory.mktemp("reliability")
    cohort = generate_synthetic("mimic", 60, 42)
    write_cohort(cohort, root / "cohort.parquet", source="synthetic", variant="mimic")
    text, _ = encode_file(root / "cohort.parquet", root / "text.parquet")
    backbone = tiny_backbone(root, layers=2)
    train_run(root / "text.parquet", root / "run",
              AlfiaConfig(backbone=str(backbone), n_fusion_layers=2, max_length=48),
              TrainConfig(epochs=1, batch_size=16, lr=1e-3, num_threads=1, freeze_backbone=False, head_epochs=0), progress=False)
    return SimpleNamespace(root=root, cohort=cohort, cohort_path=root / "cohort.parquet", text=text,
                           text_path=root / "text.parquet", run=root / "run", backbone=backbone)


@pytest.fixture()
def cwd_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    return tmp_path
