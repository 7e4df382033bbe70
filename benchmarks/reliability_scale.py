"""Benchmark: peak memory (RSS) of `alfia encode` and `alfia predict` at 10,000 and 200,000 rows.

Each command runs as its own process, exactly as a user types it; its peak resident memory is its own
VmHWM (read from /proc/self/status as it exits), its time the wall clock. Per size N, on a cohort from
``alfia cohort synthetic --variant mimic --n N`` (not measured):

1. ``alfia encode`` of that cohort (the 200k run is the "a 200,000-row cohort encodes" check)
2. ``alfia predict`` of the text table with a tiny ALFIA run (random 2-layer BERT, hidden 32, trained
   one epoch on 200 rows, --max-length 512): the real MiniLM would take hours on 200k rows on 2 CPU
   cores, while memory for texts and token ids — what streaming bounds — is the same for any encoder.
   Run twice: as shipped (texts tokenised and scored ``STREAM_ROWS`` at a time), and with
   ``STREAM_ROWS`` set above N (every text tokenised at once, as before streaming).

    .venv/bin/python benchmarks/reliability_scale.py --out /tmp/bench_scale [--sizes 10000 200000]

Prints a Markdown table for BENCHMARKS.md with the machine, load average and date.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

# Each command records its own peak RSS (VmHWM of /proc/self/status) at exit. ru_maxrss from wait4 would
# not do: Linux carries the parent's high-water mark across fork+exec into the child's figure.
_HWM = ("import atexit, os; atexit.register(lambda: open(os.environ['BENCH_HWM'], 'w').write("
        "[l for l in open('/proc/self/status') if l.startswith('VmHWM')][0])); ")
CLI = _HWM + "from alfia.cli import main; main()"
# predict with streaming switched off: every text tokenised in one chunk (the behaviour before streaming)
# (sys.modules: the attribute alfia.inference.predict is the function, not the module)
UNSTREAMED = _HWM + ("import sys, alfia.inference.predict; sys.modules['alfia.inference.predict'].STREAM_ROWS = 10**9; "
                     "from alfia.cli import main; main()")


def measure(code: str, *args, hwm: Path) -> tuple[float, float]:
    """Run ``python -c code ARGS``; (peak RSS in MiB, wall seconds) of that process alone."""
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code, *map(str, args)], stdout=subprocess.DEVNULL,
                          env={**os.environ, "BENCH_HWM": str(hwm)})
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): alfia {' '.join(map(str, args))}")
    return int(hwm.read_text().split()[1]) / 1024, seconds  # VmHWM is in kB


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 200_000])
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    hwm = out / "vmhwm.txt"
    # The tiny backbone is written by a child, so this process never grows (it only launches commands).
    backbone = out / "tiny-bert-2l-32h-s0"
    subprocess.run([sys.executable, "-c", f"from alfia.models.testing import tiny_backbone; "
                    f"tiny_backbone({str(out)!r}, layers=2)"], check=True, stdout=subprocess.DEVNULL)
    rows = []
    run = out / "tiny_run"
    for n in args.sizes:
        cohort, text = out / f"cohort_{n}.parquet", out / f"text_{n}.parquet"
        if not cohort.exists():  # not measured: `alfia cohort synthetic` is not the subject here
            subprocess.run([sys.executable, "-c", CLI, "cohort", "synthetic", "--variant", "mimic", "--n", str(n),
                            "--out", str(cohort)], check=True, stdout=subprocess.DEVNULL,
                           env={**os.environ, "BENCH_HWM": str(hwm)})
        rss, sec = measure(CLI, "encode", cohort, "--out", text, "--overwrite", hwm=hwm)
        rows.append((n, "alfia encode", rss, sec))
        print(rows[-1], flush=True)
        if not (run / "fusion_head.safetensors").exists():
            measure(CLI, "train", text, "--out", run, "--backbone", backbone, "--fusion-layers", "2", "--epochs", "1",
                    "--max-train-rows", "200", "--max-length", "512", "--threads", args.threads, hwm=hwm)
        for label, code in (("alfia predict (streamed)", CLI), ("alfia predict (all texts at once)", UNSTREAMED)):
            preds = out / f"preds_{n}.parquet"
            rss, sec = measure(code, "predict", run, "--input", text, "--out", preds, "--overwrite",
                               "--batch-size", "64", "--threads", args.threads, hwm=hwm)
            rows.append((n, label, rss, sec))
            print(rows[-1], flush=True)

    print(f"\nMachine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"load average {open('/proc/loadavg').read().split()[:3]}; {date.today()}\n")
    print("| Rows | Command | Peak RSS (MiB) | Wall time (s) |\n|---:|---|---:|---:|")
    for n, label, rss, sec in rows:
        print(f"| {n:,} | {label} | {rss:,.0f} | {sec:,.1f} |")


if __name__ == "__main__":
    main()
