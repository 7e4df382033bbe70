"""How long `alfia analyze` takes on N stays of a run (issue 23: 1,000 stays in <= 5 min on 2 cores).

    .venv/bin/python benchmarks/analyze_speed.py [--run runs/benchmarks/physionet2012/alfia_alf]
        [--texts runs/benchmarks/physionet2012/text.parquet] [--n 1000] [--threads 2]
        [--work-dir runs/benchmarks/analyze_speed] [--robustness-n 0]
    .venv/bin/python benchmarks/analyze_speed.py --smoke      # a tiny random BERT run, under a minute

Runs `alfia analyze RUN --input TEXTS --max-stays N` (the full MLP profile, 1,000 bootstrap resamples, as a user
runs it) in this process with ``--threads`` threads, and reports the wall time of each phase (encoding, the MLP
and UMAP of each representation) and the 1-minute load average before and after (other processes on the machine
slow it down: the number is the machine's, not the code's alone). ``--robustness-n K`` also times
`alfia robustness` on K test stays. Results: WORK_DIR/analyze_speed.json and a line on stdout per phase.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "runs" / "benchmarks" / "physionet2012"
TARGET_SECONDS = 300.0
TARGET_STAYS = 1000


def _smoke_run(folder: Path) -> tuple[Path, Path]:
    """A tiny random BERT trained for one head epoch on 150 random PhysioNet 2012 (compact) stays."""
    sys.path.insert(0, str(ROOT / "tests"))
    sys.path.insert(0, str(ROOT / "tests" / "text"))
    import numpy as np
    from text_testkit import compact_from_full, random_cohort

    from alfia.cohorts.io import write_cohort
    from alfia.models import AlfiaConfig
    from alfia.models.testing import tiny_backbone
    from alfia.text import encode_file
    from alfia.training import TrainConfig, train_run

    cohort = compact_from_full(random_cohort("physionet2012", 150, seed=1))
    cohort["hospital_expire_flag"] = (cohort["gcs_dynamic_min"].fillna(15) < 9).astype(int)
    cohort["split"] = np.array(["train", "val", "test"])[np.arange(len(cohort)) % 3]
    write_cohort(cohort, folder / "cohort.parquet", source="synthetic", variant="physionet2012_compact")
    encode_file(folder / "cohort.parquet", folder / "text.parquet")
    train_run(folder / "text.parquet", folder / "run",
              AlfiaConfig(backbone=str(tiny_backbone(folder, layers=2)), n_fusion_layers=2, max_length=96,
                          train_layers=0),
              TrainConfig(epochs=1, batch_size=16, num_threads=1, head_epochs=1), progress=False)
    return folder / "run", folder / "text.parquet"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", type=Path, default=WORK / "alfia_alf")
    parser.add_argument("--texts", type=Path, default=WORK / "text.parquet")
    parser.add_argument("--n", type=int, default=TARGET_STAYS, help="stays analysed (a seeded subset)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--work-dir", type=Path, default=ROOT / "runs" / "benchmarks" / "analyze_speed")
    parser.add_argument("--robustness-n", type=int, default=0, help="also time alfia robustness on K test stays")
    parser.add_argument("--smoke", action="store_true", help="a tiny random BERT run on 150 stays, fast profile")
    args = parser.parse_args()

    from alfia.analysis import analyze, robustness
    from alfia.runtime import set_threads

    set_threads(args.threads)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    work = args.work_dir
    scratch = None
    if args.smoke:
        scratch = Path(tempfile.mkdtemp(prefix="alfia-analyze-smoke-"))
        args.run, args.texts = _smoke_run(scratch)
        args.n, work = min(args.n, 150), scratch / "bench"
    work.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    doc = analyze([args.run], args.texts, work / "analysis", max_stays=args.n, n_jobs=args.threads,
                  profile="fast" if args.smoke else "full", n_boot=100 if args.smoke else 1000, overwrite=True,
                  progress=lambda message: print(f"  {time.perf_counter() - started:7.1f} s  {message}", flush=True))
    seconds = time.perf_counter() - started
    result = {"date": date.today().isoformat(), "machine": platform.processor() or platform.machine(),
              "cpu_count": os.cpu_count(), "threads": args.threads, "run": str(args.run), "texts": str(args.texts),
              "n_stays": doc["n_stays"], "analyze_seconds": round(seconds, 1), "phases_s": doc["timings_s"],
              "load_average_1min": {"before": load_before, "after_analyze": os.getloadavg()[0]},
              "target": f"{TARGET_STAYS} stays in <= {TARGET_SECONDS:.0f} s on 2 cores",
              "met": doc["n_stays"] >= TARGET_STAYS and seconds <= TARGET_SECONDS, "smoke": args.smoke}
    if args.robustness_n:
        t = time.perf_counter()
        rob = robustness([args.run], args.texts, work / "robustness", max_stays=args.robustness_n, overwrite=True)
        result.update(robustness_seconds=round(time.perf_counter() - t, 1), robustness_stays=rob["n_stays"],
                      robustness_targets=rob["targets"])
        result["load_average_1min"]["after_robustness"] = os.getloadavg()[0]
    (work / "analyze_speed.json").write_text(json.dumps(result, indent=2))
    for phase, s in doc["timings_s"].items():
        print(f"{phase:>40}: {s:7.1f} s")
    print(f"alfia analyze: {doc['n_stays']:,} stays in {seconds:.1f} s with {args.threads} threads (load average "
          f"{load_before:.1f} -> {result['load_average_1min']['after_analyze']:.1f}); target {result['target']}: "
          f"{'met' if result['met'] else 'not met'}")
    if args.robustness_n:
        print(f"alfia robustness: {result['robustness_stays']:,} stays in {result['robustness_seconds']:.1f} s")
    if scratch is not None:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
