"""Helpers shared by the cohort tests: the real-data skip, tiny PhysioNet 2012 files, CLI runs."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from shared_data import shared_dataset  # noqa: F401  (re-exported for the cohort tests)

HEADER = "Time,Parameter,Value\n"


def record_text(record_id: int, *, age=60, gender=1, height=175, icu=3, weight=80,
                series: list[tuple[str, str, float]] = ()) -> str:
    lines = [HEADER, f"00:00,RecordID,{record_id}\n", f"00:00,Age,{age}\n",
             f"00:00,Gender,{gender}\n", f"00:00,Height,{height}\n", f"00:00,ICUType,{icu}\n",
             f"00:00,Weight,{weight}\n"]
    lines += [f"{t},{p},{v}\n" for t, p, v in series]
    return "".join(lines)


def write_set(folder: Path, records: dict[int, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for rid, text in records.items():
        (folder / f"{rid}.txt").write_text(text)
    return folder


def write_tar(path: Path, members: dict[str, str | bytes], top: str = "set-x") -> Path:
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo(top)
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
        for name, text in members.items():
            data = text.encode() if isinstance(text, str) else text
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def write_outcomes(path: Path, rows: list[tuple]) -> Path:
    text = "RecordID,SAPS-I,SOFA,Length_of_stay,Survival,In-hospital_death\n"
    text += "".join(",".join(str(x) for x in r) + "\n" for r in rows)
    path.write_text(text)
    return path
