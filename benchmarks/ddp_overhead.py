"""Measured, not promised: the cost of data-parallel training (torch.distributed, gloo) against one process, for one
epoch on the same rows with the same global batch.

    .venv/bin/python benchmarks/ddp_overhead.py TEXT.parquet [--nproc 2] [--batch-size 16] [--rows 3000]
        [--work-dir runs/benchmarks/ddp] [--recipe cpu]
    .venv/bin/python benchmarks/ddp_overhead.py --smoke          # tiny random BERT, synthetic rows (< 1 min idle)

Runs ``alfia train TEXT --epochs 1 --head-epochs 0 --max-train-rows ROWS`` once in one process (batch B) and once as
``alfia train --nproc N`` (batch B / N per process, the same global batch), each as a user would, and reads the
epoch's seconds from history.jsonl and the wall time of the command (process start, caches, epoch, predictions).
Writes WORK_DIR/results.json and results.md. On a machine with fewer cores than N x threads the figure is the
overhead of the collectives and the duplicated caches, not a speed-up: say so with the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(args: list[str], cwd: Path) -> float:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "alfia", *args], cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"alfia {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - started


def epoch_seconds(run_dir: Path) -> float:
    history = [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]
    return float(history[-1]["seconds"])


def smoke_table(work: Path) -> tuple[Path, list[str]]:
    sys.path.insert(0, str(ROOT / "tests"))
    from training.conftest import make_text_frame, write_text_table

    from alfia.models.testing import tiny_backbone

    text = write_text_table(make_text_frame(200, seed=1), work / "text.parquet")
    backbone = tiny_backbone(work, layers=2)
    return Path(text), ["--backbone", str(backbone), "--fusion-layers", "2", "--max-length", "48",
                        "--train-layers", "1"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("text", type=Path, nargs="?")
    parser.add_argument("--nproc", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=16, help="the global batch")
    parser.add_argument("--rows", type=int, default=3000, help="training rows (--max-train-rows)")
    parser.add_argument("--recipe", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch threads of the single process (default: "
                        "all cores; each of the N processes gets cores / N)")
    parser.add_argument("--work-dir", type=Path, default=ROOT / "runs" / "benchmarks" / "ddp")
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    work = args.work_dir / (f"smoke-{time.time_ns()}" if args.smoke else time.strftime("%Y%m%d-%H%M%S"))
    work.mkdir(parents=True)
    extra: list[str] = []
    if args.smoke:
        args.text, extra = smoke_table(work)
        args.rows = 120
    elif args.text is None:
        raise SystemExit("give TEXT.parquet (or --smoke)")
    if args.batch_size % args.nproc:
        raise SystemExit(f"--batch-size {args.batch_size} must be a multiple of --nproc {args.nproc}")
    common = [str(args.text.resolve()), "--recipe", args.recipe, "--epochs", "1", "--head-epochs", "0",
              "--max-train-rows", str(args.rows), "--rows-per-epoch", str(args.rows), *extra]
    single_threads = ["--threads", str(args.threads)] if args.threads else []
    results = {}
    wall = run(["train", *common, "--out", str(work / "single"), "--batch-size", str(args.batch_size),
                *single_threads], work)
    results["single"] = {"processes": 1, "batch_per_process": args.batch_size, "epoch_s": epoch_seconds(work / "single"),
                         "command_s": round(wall, 1)}
    wall = run(["train", *common, "--out", str(work / "ddp"), "--batch-size", str(args.batch_size // args.nproc),
                "--nproc", str(args.nproc)], work)
    results["ddp"] = {"processes": args.nproc, "batch_per_process": args.batch_size // args.nproc,
                      "epoch_s": epoch_seconds(work / "ddp"), "command_s": round(wall, 1)}
    ratio = results["ddp"]["epoch_s"] / results["single"]["epoch_s"]
    summary = {"date": date.today().isoformat(), "cpus": os.cpu_count(), "rows": args.rows,
               "global_batch": args.batch_size, "recipe": args.recipe, "smoke": args.smoke, **results,
               "epoch_ratio_ddp_over_single": round(ratio, 3), "command": " ".join(sys.argv)}
    (work / "results.json").write_text(json.dumps(summary, indent=2) + "\n")
    md = (f"| Processes | Batch per process | Epoch (s) | Command (s) |\n|---|---|---|---|\n"
          + "".join(f"| {r['processes']} | {r['batch_per_process']} | {r['epoch_s']:.1f} | {r['command_s']:.1f} |\n"
                    for r in results.values())
          + f"\nDDP epoch / single-process epoch: {ratio:.2f} ({os.cpu_count()} CPUs, {args.rows} rows, global batch "
            f"{args.batch_size}, recipe {args.recipe}{', SMOKE' if args.smoke else ''}).\n")
    (work / "results.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
