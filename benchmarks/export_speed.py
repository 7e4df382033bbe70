"""Measured, not promised: torch vs fp32 ONNX vs int8 ONNX on one run, side by side (issue 22).

    .venv/bin/python benchmarks/export_speed.py [--run runs/benchmarks/physionet2012/alfia_alf]
        [--texts runs/benchmarks/physionet2012/text.parquet] [--split test] [--batch-size 64] [--threads 2]
        [--n N] [--batch1 64] [--work-dir runs/benchmarks/export_speed]

Steps: export the run twice (`alfia export`, fp32 and `--quantize int8`) into WORK_DIR, then score the split's
texts with each of the three in its own fresh process, one after the other (so each peak RSS is that backend's
alone: model load included), after a warm-up batch. Each process reports ms per stay at the batch size, its
peak RSS (getrusage) and its probabilities. The parent reports AUROC/AUPRC of each on the split, the largest
probability change against torch, the speed-up over torch, and the 1-minute load average before and after each
timing (other processes slow them). `--batch1 K` also scores the first K stays one at a time with int8: dynamic
int8 quantises activations with one scale per batch, so a stay's int8 probability depends a little on the
stays it shares a batch with; the largest such change is reported.

Results: WORK_DIR/export_speed.json and a Markdown table on stdout. The targets of issue 22: int8 <= 10 ms per
stay at batch 64 on 2 idle cores, >= 3x faster than torch, peak RSS <= 600 MB, AUROC within 0.005 of the run's.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "runs" / "benchmarks" / "physionet2012"
BACKENDS = ("torch", "onnx-fp32", "onnx-int8")


def peak_rss_mb() -> float:
    """This process's peak resident memory: VmHWM, which starts anew at exec (getrusage's ru_maxrss does not on
    Linux: a child spawned by a big parent would report the parent's peak)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker(args) -> None:
    """One backend in this process: load, warm up, time the split, write probabilities and costs."""
    from alfia.cohorts.io import read_table
    from alfia.inference import frame_to_input, load_run, predict

    started = time.perf_counter()
    run = load_run(args.source, num_threads=args.threads, device="cpu")
    load_seconds = time.perf_counter() - started
    df, _ = read_table(args.texts)
    rows = df[df["split"] == args.split].reset_index(drop=True) if "split" in df.columns else df
    if args.n:
        rows = rows.iloc[:args.n]
    inputs = frame_to_input(rows, str(args.texts), run)
    predict(run, frame_to_input(rows.iloc[:args.batch_size], str(args.texts), run), batch_size=args.batch_size)
    load_before = os.getloadavg()[0]
    preds, perf = predict(run, inputs, batch_size=args.batch_size, measure_memory=True)
    load_after = os.getloadavg()[0]
    out = {"backend": args.worker, "source": str(args.source), "load_seconds": round(load_seconds, 2),
           "performance": perf.to_dict(), "load_average": [load_before, load_after],
           "peak_rss_mb_process": peak_rss_mb(),
           "prob": preds["prob"].tolist(), "stay_id": preds["stay_id"].tolist()}
    if args.batch1:
        one = frame_to_input(rows.iloc[:args.batch1], str(args.texts), run)
        alone, _ = predict(run, one, batch_size=1)
        out["prob_batch1"] = alone["prob"].tolist()
    if "hospital_expire_flag" in rows.columns:
        out["label"] = rows["hospital_expire_flag"].astype(int).tolist()
    Path(args.result).write_text(json.dumps(out))


def _spawn(backend: str, source: Path, args, result: Path) -> dict:
    command = [sys.executable, __file__, "--worker", backend, "--source", str(source), "--texts", str(args.texts),
               "--split", args.split, "--batch-size", str(args.batch_size), "--result", str(result)]
    if args.threads:
        command += ["--threads", str(args.threads)]
    if args.n:
        command += ["--n", str(args.n)]
    if backend == "onnx-int8" and args.batch1:
        command += ["--batch1", str(args.batch1)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    subprocess.run(command, check=True, env=env)
    return json.loads(result.read_text())


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=WORK / "alfia_alf", help="a finished ALFIA run directory")
    parser.add_argument("--texts", type=Path, default=WORK / "text.parquet", help="its text table")
    parser.add_argument("--split", default="test")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=None, help="default: the cores available")
    parser.add_argument("--n", type=int, default=None, help="only the split's first N stays")
    parser.add_argument("--batch1", type=int, default=64, help="int8 stays also scored one at a time (0: none)")
    parser.add_argument("--work-dir", type=Path, default=ROOT / "runs" / "benchmarks" / "export_speed")
    parser.add_argument("--worker", choices=BACKENDS, help=argparse.SUPPRESS)
    parser.add_argument("--source", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args)

    import numpy as np
    from sklearn.metrics import average_precision_score, roc_auc_score

    from alfia.atomic import write_json_atomic
    from alfia.inference.export import export_run

    for path in (args.run, args.texts):
        if not path.exists():
            raise SystemExit(f"{path}: not found (train the run first: benchmarks/physionet2012.py)")
    work = args.work_dir
    work.mkdir(parents=True, exist_ok=True)
    exports = {"onnx-fp32": work / "export-fp32", "onnx-int8": work / "export-int8"}
    records = {}
    for backend, folder in exports.items():
        started = time.perf_counter()
        records[backend] = export_run(args.run, folder, quantize="int8" if backend == "onnx-int8" else None,
                                      overwrite=True, num_threads=args.threads)
        print(f"exported {backend} in {time.perf_counter() - started:.0f} s -> {folder}", file=sys.stderr)
    sources = {"torch": args.run, **exports}
    results = {b: _spawn(b, sources[b], args, work / f"{b}.json") for b in BACKENDS}

    torch_prob = np.asarray(results["torch"]["prob"])
    label = np.asarray(results["torch"].get("label", []))
    rows = {}
    for backend, r in results.items():
        prob, perf = np.asarray(r["prob"]), r["performance"]
        row = {"ms_per_stay": perf["ms_per_sample"], "speedup_vs_torch": None,
               "peak_rss_mb": r["peak_rss_mb_process"], "peak_rss_mb_during_predict": perf["peak_rss_mb"],
               "load_seconds": r["load_seconds"], "load_average": r["load_average"],
               "mean_tokens": perf["extra"].get("mean_tokens"), "n": len(prob),
               "largest_prob_change_vs_torch": float(np.max(np.abs(prob - torch_prob))),
               "mean_prob_change_vs_torch": float(np.mean(np.abs(prob - torch_prob)))}
        if len(label) and 0 < label.sum() < len(label):
            row["auroc"], row["auprc"] = float(roc_auc_score(label, prob)), float(average_precision_score(label, prob))
        if "prob_batch1" in r:
            alone = np.asarray(r["prob_batch1"])
            row["largest_prob_change_batch1_vs_batch"] = float(np.max(np.abs(alone - prob[:len(alone)])))
        rows[backend] = row
    for backend, row in rows.items():
        row["speedup_vs_torch"] = rows["torch"]["ms_per_stay"] / row["ms_per_stay"]
        if "auroc" in row:
            row["auroc_change_vs_torch"] = row["auroc"] - rows["torch"]["auroc"]
    summary = {
        "command": "python benchmarks/export_speed.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "date": str(date.today()), "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores",
        "run": str(args.run), "texts": str(args.texts), "split": args.split, "batch_size": args.batch_size,
        "threads": args.threads, "results": rows,
        "exports": {b: {"fusions": r["model"]["fusions"], "quantization": r["model"]["quantization"],
                        "check": r["check"]} for b, r in records.items()},
    }
    write_json_atomic(work / "export_speed.json", summary)
    print(f"| backend | ms/stay (batch {args.batch_size}) | x torch | peak RSS | AUROC | AUPRC | largest prob change "
          f"| load avg |")
    print("|---|---|---|---|---|---|---|---|")
    for backend, row in rows.items():
        auroc = f"{row['auroc']:.4f}" if "auroc" in row else "-"
        auprc = f"{row['auprc']:.4f}" if "auprc" in row else "-"
        print(f"| {backend} | {row['ms_per_stay']:.1f} | {row['speedup_vs_torch']:.2f} | {row['peak_rss_mb']:.0f} MB "
              f"| {auroc} | {auprc} | {row['largest_prob_change_vs_torch']:.2g} | "
              f"{row['load_average'][0]:.1f} -> {row['load_average'][1]:.1f} |")
    if "largest_prob_change_batch1_vs_batch" in rows["onnx-int8"]:
        print(f"int8, the first {args.batch1} stays one at a time vs in batches of {args.batch_size}: largest "
              f"probability change {rows['onnx-int8']['largest_prob_change_batch1_vs_batch']:.2g}")
    print(f"-> {work / 'export_speed.json'}", file=sys.stderr)


if __name__ == "__main__":
    main()
