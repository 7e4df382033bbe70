"""Benchmark: peak memory (RSS) of `alfia encode` and `alfia predict` at 10,000 and 200,000 rows.

Each command runs as its own process, exactly as a user types it; its peak resident memory is the
kernel's ``ru_maxrss`` for that one child (``os.wait4``), its time the wall clock. Steps, per size N:

1. ``alfia cohort synthetic --variant mimic --n N``
2. ``alfia encode`` of that cohort (the 200k run is the "a 200,000-row cohort encodes" check)
3. ``alfia predict`` of the text table with a tiny ALFIA run (random 2-layer BERT, hidden 32, trained
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

CLI = "from alfia.cli import main; main()"
# predict with streaming switched off: every text tokenised in one chunk (the behaviour before streaming)
UNSTREAMED = "import alfia.inference.predict as p; p.STREAM_ROWS = 10**9; from alfia.cli import main; main()"


def measure(code: str, *args) -> tuple[float, float]:
    """Run ``python -c code ARGS``; (peak RSS in MiB, wall seconds) of that process alone."""
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code, *map(str, args)], stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): alfia {' '.join(map(str, args))}")
    return usage.ru_maxrss / 1024, seconds  # Linux reports KiB


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 200_000])
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from alfia.models.testing import tiny_backbone

    backbone = tiny_backbone(out, layers=2)
    rows = []
    run = out / "tiny_run"
    for n in args.sizes:
        cohort, text = out / f"cohort_{n}.parquet", out / f"text_{n}.parquet"
        for p in (cohort, text):
            p.unlink(missing_ok=True)
            p.with_name(p.stem + ".manifest.json").unlink(missing_ok=True)
        rss, sec = measure(CLI, "cohort", "synthetic", "--variant", "mimic", "--n", n, "--out", cohort)
        rows.append((n, "alfia cohort synthetic", rss, sec))
        rss, sec = measure(CLI, "encode", cohort, "--out", text)
        rows.append((n, "alfia encode", rss, sec))
        print(rows[-2:], flush=True)
        if not (run / "fusion_head.safetensors").exists():
            measure(CLI, "train", text, "--out", run, "--backbone", backbone, "--fusion-layers", "2",
                    "--epochs", "1", "--max-train-rows", "200", "--max-length", "512", "--threads", args.threads)
        for label, code in (("alfia predict (streamed)", CLI), ("alfia predict (all texts at once)", UNSTREAMED)):
            preds = out / f"preds_{n}.parquet"
            rss, sec = measure(code, "predict", run, "--input", text, "--out", preds, "--overwrite",
                               "--batch-size", "64", "--threads", args.threads)
            rows.append((n, label, rss, sec))
            print(rows[-1], flush=True)

    print(f"\nMachine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"load average {open('/proc/loadavg').read().split()[:3]}; {date.today()}\n")
    print("| Rows | Command | Peak RSS (MiB) | Wall time (s) |\n|---:|---|---:|---:|")
    for n, label, rss, sec in rows:
        print(f"| {n:,} | {label} | {rss:,.0f} | {sec:,.1f} |")


if __name__ == "__main__":
    main()
