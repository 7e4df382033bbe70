"""Benchmark: wall time to build cohorts (PhysioNet 2012 set-a, set-a + set-b, synthetic 20k).

    .venv/bin/python benchmarks/cohort_build.py [--repeat 3] [--data ../shared/data/physionet2012]

Times ``build_physionet2012`` and ``generate_synthetic`` in-process (best and median of --repeat runs;
interpreter start and imports excluded) and prints one Markdown row per measurement.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import psutil

from alfia.cohorts.sources.physionet2012 import build_physionet2012
from alfia.cohorts.sources.synthetic import generate_synthetic


def timed(fn, repeat: int) -> tuple[float, float, object]:
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--data", type=Path,
                        default=Path(__file__).resolve().parents[2] / "shared/data/physionet2012")
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {psutil.cpu_count()} CPUs, "
          f"{psutil.virtual_memory().total / 2**30:.0f} GiB RAM, Python {platform.python_version()}")
    print("| what | rows | best (s) | median (s) |")
    print("|---|---:|---:|---:|")
    jobs = []
    if args.data.exists():
        d = args.data
        jobs += [
            ("PhysioNet 2012 set-a (24 h)", lambda: build_physionet2012(
                [d / "set-a.tar.gz"], [d / "Outcomes-a.txt"])[0]),
            ("PhysioNet 2012 set-a + set-b (24 h)", lambda: build_physionet2012(
                [d / "set-a.tar.gz", d / "set-b.tar.gz"],
                [d / "Outcomes-a.txt", d / "Outcomes-b.txt"])[0]),
        ]
    else:
        print(f"(skipping PhysioNet 2012: {args.data} absent)")
    jobs += [
        ("synthetic mimic, n = 20,000", lambda: generate_synthetic("mimic", 20_000)),
        ("synthetic eicu, n = 20,000", lambda: generate_synthetic("eicu", 20_000)),
        ("synthetic mimic, n = 200,000", lambda: generate_synthetic("mimic", 200_000)),
    ]
    for name, fn in jobs:
        best, median, df = timed(fn, args.repeat)
        print(f"| {name} | {len(df):,} | {best:.2f} | {median:.2f} |", flush=True)


if __name__ == "__main__":
    main()
