"""Benchmark: the native baseline zoo + greedy ensemble on the real PhysioNet 2012 sets A and B.

Builds the CW-24-style PhysioNet 2012 cohort (8,000 stays, first 24 hours) from ../shared/data with the
project's cohort builder and its fixed split, trains every model of ``alfia baselines`` (full profile)
and prints the Markdown table that BENCHMARKS.md records (test AUPRC, AUROC, best F1, best F2 with
stratified-bootstrap 95% CIs, and training time per model).

    .venv/bin/python benchmarks/baselines_physionet2012.py --out /tmp/bench_baselines

Use --models to run a subset, --cohort to reuse a cohort Parquet built earlier.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from datetime import date
from pathlib import Path

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "physionet2012"


def build_cohort(out: Path):
    from alfia.cohorts.io import write_cohort
    from alfia.cohorts.sources.physionet2012 import build_physionet2012

    records = [DATA / "set-a.tar.gz", DATA / "set-b.tar.gz"]
    outcomes = [DATA / "Outcomes-a.txt", DATA / "Outcomes-b.txt"]
    for p in records + outcomes:
        if not p.exists():
            sys.exit(f"real data absent: {p} (needs ../shared/data beside the repository)")
    t0 = time.perf_counter()
    df, report = build_physionet2012(records, outcomes, hours=24.0)
    print(f"cohort built in {time.perf_counter() - t0:.1f} s: {len(df)} stays", flush=True)
    path = out / "physionet2012_cohort.parquet"
    write_cohort(df, path, source="physionet2012", variant="physionet2012")
    return df, path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench_baselines"))
    parser.add_argument("--cohort", type=Path, default=None, help="reuse a cohort Parquet built earlier")
    parser.add_argument("--models", default=None, help="comma-separated subset (default: all + ensemble)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--resume", action="store_true",
                        help="keep models that already finished in OUT/runs (training times are theirs)")
    args = parser.parse_args()
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    logging.getLogger("alfia.baselines").setLevel(logging.INFO)  # per-epoch lines of MLP / FT-T

    from alfia.baselines.runner import run_baselines, summary_markdown
    from alfia.cohorts.io import infer_variant, read_table

    args.out.mkdir(parents=True, exist_ok=True)
    if args.cohort:
        df, manifest = read_table(args.cohort)
        variant, source = infer_variant(df, manifest, args.cohort), str(args.cohort)
    else:
        df, path = build_cohort(args.out)
        variant, source = "physionet2012", str(path)
    counts = df.groupby("split")["hospital_expire_flag"].agg(["size", "sum"])
    print(counts.to_string(), flush=True)

    started = time.perf_counter()

    def progress(event, name, row):
        if event == "start":
            print(f"[{time.perf_counter() - started:7.1f} s] training {name}", flush=True)
        else:
            print(f"[{time.perf_counter() - started:7.1f} s] {name}: val AUPRC {row['val_auprc']:.4f}, "
                  f"test AUPRC {row['test_auprc']:.4f}, train {row['train_time_s']:.1f} s", flush=True)

    models = [m for m in args.models.split(",")] if args.models else None
    table = run_baselines(df, variant, args.out / "runs", models, args.seed, profile="full",
                          n_boot=args.n_boot, callback=progress, source=source,
                          resume=args.resume)
    total = time.perf_counter() - started
    print()
    print(f"Date {date.today().isoformat()}; machine: {platform.machine()}, {os.cpu_count()} cores "
          f"({platform.platform()}); total wall time {total / 60:.1f} min; seed {args.seed}; "
          f"{args.n_boot} bootstrap resamples")
    print(f"splits: " + ", ".join(f"{s} {int(r['size'])} stays / {int(r['sum'])} deaths"
                                  for s, r in counts.iterrows()))
    print()
    print(summary_markdown(table))


if __name__ == "__main__":
    main()
