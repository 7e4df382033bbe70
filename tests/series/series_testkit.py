"""Tiny hourly data for the time-series tests: synthetic arrays with a planted signal, PhysioNet record
folders and a YAIB-style export written to tmp_path. (A module of its own: every test folder has a
``conftest``, so ``from conftest import`` would find whichever was imported first.)"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from alfia.series.hourly import HourlyArrays
from alfia.series.variables import SeriesVariable

HEADER = "Time,Parameter,Value\n"


def make_arrays(n: int = 96, hours: int = 6, seed: int = 0, drop: str | None = None) -> HourlyArrays:
    """Stays whose death depends on heart rate; lactate measured now and then; FiO2 as a fraction."""
    rng = np.random.default_rng(seed)
    label = (np.arange(n) % 3 == 0).astype(np.int64)
    hr = rng.normal(80, 5, (n, hours)) + 30 * label[:, None]
    lac = np.where(rng.random((n, hours)) < 0.3, rng.normal(2, 0.5, (n, hours)) + label[:, None], np.nan)
    fio2 = np.where(rng.random((n, hours)) < 0.5, rng.uniform(21, 60, (n, hours)), np.nan)
    variables = [SeriesVariable("heart_rate", "bpm", "mean", "HR"),
                 SeriesVariable("lactate", "mmol/L", "mean", "lactate"),
                 SeriesVariable("fio2", "%", "mean", "FiO2")]
    values = np.stack([hr, lac, fio2], axis=2)
    if drop:
        keep = [i for i, v in enumerate(variables) if v.name != drop]
        values, variables = values[:, :, keep], [variables[i] for i in keep]
    split = np.array(["train"] * n, dtype=object)
    split[np.arange(n) % 8 == 1] = "val"
    split[np.arange(n) % 8 == 2] = "test"
    split[np.arange(n) % 8 == 5] = "val"
    split[np.arange(n) % 8 == 6] = "test"
    return HourlyArrays(np.arange(1000, 1000 + n), label, split, values, variables, "synthetic")


def record_text(record_id: int, series, *, age=60, gender=1, height=175, weight=80) -> str:
    lines = [HEADER, f"00:00,RecordID,{record_id}\n", f"00:00,Age,{age}\n", f"00:00,Gender,{gender}\n",
             f"00:00,Height,{height}\n", "00:00,ICUType,3\n", f"00:00,Weight,{weight}\n"]
    return "".join(lines + [f"{t},{p},{v}\n" for t, p, v in series])


def write_physionet(folder: Path, records: dict[int, list], outcomes: dict[int, int]) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    for rid, series in records.items():
        (folder / f"{rid}.txt").write_text(record_text(rid, series))
    out = folder.parent / "Outcomes.txt"
    out.write_text("RecordID,SAPS-I,SOFA,Length_of_stay,Survival,In-hospital_death\n"
                   + "".join(f"{r},10,2,5,-1,{y}\n" for r, y in outcomes.items()))
    return folder, out


def write_yaib(folder: Path, n: int = 24, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    ids = np.arange(1, n + 1, dtype=np.int32)
    rows = []
    for s in ids:
        for t in range(25):  # ricu exports t = 0..24; t = 24 is after the window
            rows.append({"stay_id": s, "time": pd.Timedelta(hours=t), "hr": 70 + t + rng.normal(),
                         "mg": 2.0 if t == 3 else np.nan, "bicar": 24.0 if t % 6 == 0 else np.nan,
                         "fio2": 40.0 if t == 24 else np.nan})
    pd.DataFrame(rows).to_parquet(folder / "dyn.parquet")
    pd.DataFrame({"stay_id": ids, "age": rng.uniform(20, 90, n), "sex": ["Male", "Female"] * (n // 2),
                  "height": 170.0, "weight": 75.0}).to_parquet(folder / "sta.parquet")
    pd.DataFrame({"stay_id": ids, "label": (ids % 4 == 0).astype(np.int32)}).to_parquet(folder / "outc.parquet")
    return folder
