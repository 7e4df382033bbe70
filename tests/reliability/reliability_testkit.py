"""Makers of the reliability tests' inputs (PhysioNet records, tars, outcomes) and a folder snapshot. (A
module of its own: every test folder has a ``conftest``, so ``from conftest import`` would find whichever
was imported first.)"""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

RECORD_HEADER = "Time,Parameter,Value\n"
OUTCOMES_HEADER = "RecordID,SAPS-I,SOFA,Length_of_stay,Survival,In-hospital_death\n"


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
