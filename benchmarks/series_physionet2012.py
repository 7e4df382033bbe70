"""Benchmark: the time-series branch on PhysioNet 2012 sets A + B, against the zoo's LightGBM.

Builds the hourly table (first 24 h, 8,000 stays) and the CW-24 cohort from ../shared/data with the
project's builders (same stays, same fixed split: checked), trains LightGBM from the tabular zoo on the
cohort, then the BiLSTM + Transformer fusion model, its two ablations, GRU and TCN on the hourly table,
and scores every model on the same 1,000 test stays: AUROC and AUPRC with stratified-bootstrap 95% CIs,
a paired bootstrap test against LightGBM, training seconds per epoch, inference milliseconds per stay
(features + forward pass on the test stays) and the process's peak resident memory while training.
Prints the Markdown table BENCHMARKS.md records; everything also goes to OUT/results.json.

    nice -n 19 .venv/bin/python benchmarks/series_physionet2012.py --out /tmp/bench_series

Sized to finish in about 10 minutes on a 2-core CPU: small models (hidden 16), at most --epochs epochs
with early stopping on validation AUPRC (patience 3). Then `alfia compare OUT/runs OUT/zoo/LightGBM`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "physionet2012"
MODELS = ("bilstm-transformer", "gru", "tcn", "transformer", "bilstm")
# Small on purpose (see the docstring): the same widths for every model.
SETTINGS = {
    "bilstm-transformer": {"hidden_size": 16, "d_model": 16, "n_heads": 2, "dim_feedforward": 32},
    "bilstm": {"hidden_size": 16},
    "transformer": {"d_model": 16, "n_heads": 2, "dim_feedforward": 32},
    "gru": {"hidden_size": 16},
    "tcn": {"channels": 16},
}


class PeakRSS:
    """Samples the process's resident memory every 50 ms while active; ``peak`` in MiB."""

    def __init__(self):
        import psutil

        self.proc, self.peak, self._stop = psutil.Process(), 0.0, threading.Event()

    def __enter__(self):
        self.peak = self.proc.memory_info().rss / 2**20
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, self.proc.memory_info().rss / 2**20)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench_series"))
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--zoo-run", type=Path, default=None,
                        help="reuse a finished LightGBM run directory (same cohort, seed) instead of training one")
    parser.add_argument("--reuse-hourly", action="store_true", help="read OUT/physionet2012_hourly.parquet if present")
    args = parser.parse_args()
    for p in (DATA / "set-a.tar.gz", DATA / "set-b.tar.gz", DATA / "Outcomes-a.txt", DATA / "Outcomes-b.txt"):
        if not p.exists():
            sys.exit(f"real data absent: {p} (needs ../shared/data beside the repository)")
    import numpy as np

    from alfia.baselines.runner import run_baselines
    from alfia.cohorts.io import write_cohort
    from alfia.cohorts.schema import ID_COLUMN, SPLIT_COLUMN
    from alfia.cohorts.sources.physionet2012 import build_physionet2012
    from alfia.evaluation.bootstrap import paired_compare
    from alfia.evaluation.report import evaluate_predictions
    from alfia.runs import RunLayout, read_predictions
    from alfia.runtime import set_threads
    from alfia.series.hourly import read_hourly, write_hourly
    from alfia.series.predict import features, load_series_run, probabilities
    from alfia.series.sources import build_physionet2012_hourly
    from alfia.series.train import SeriesTrainConfig, train_series

    set_threads(args.threads)
    started = datetime.now(timezone.utc)
    load_start = Path("/proc/loadavg").read_text().strip() if Path("/proc/loadavg").exists() else "n/a"
    t_all = time.perf_counter()
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    records = [DATA / "set-a.tar.gz", DATA / "set-b.tar.gz"]
    outcomes = [DATA / "Outcomes-a.txt", DATA / "Outcomes-b.txt"]

    t0 = time.perf_counter()
    hourly_path = out / "physionet2012_hourly.parquet"
    if not (args.reuse_hourly and hourly_path.exists()):
        frame, variables, report = build_physionet2012_hourly(records, outcomes, 24)
        write_hourly(frame, hourly_path, source="physionet2012", variables=variables, hours=24,
                     extra={"report": report})
    arrays = read_hourly(hourly_path)
    variables = arrays.variables
    build_s = time.perf_counter() - t0
    cohort, _ = build_physionet2012(records, outcomes, 24.0)
    write_cohort(cohort, out / "physionet2012_cohort.parquet", source="physionet2012", variant="physionet2012")
    same = (np.array_equal(np.sort(cohort[ID_COLUMN].to_numpy()), arrays.stay_id)
            and (cohort.set_index(ID_COLUMN).loc[arrays.stay_id, SPLIT_COLUMN].to_numpy() == arrays.split).all())
    if not same:
        sys.exit("the hourly table and the cohort disagree on stays or split")
    print(f"hourly table: {len(arrays.stay_id)} stays, {len(variables)} variables, built in {build_s:.1f} s; "
          f"same stays and split as the cohort", flush=True)

    t0 = time.perf_counter()
    zoo_run = args.zoo_run or out / "zoo" / "LightGBM"
    if args.zoo_run is None:
        with PeakRSS() as mem:
            run_baselines(cohort, "physionet2012", out / "zoo", models=["LightGBM"], seed=args.seed,
                          n_boot=args.n_boot)
        zoo = {"train_s": time.perf_counter() - t0, "peak_rss_mib": mem.peak}
    else:
        zoo_config = json.loads(RunLayout.of(zoo_run).config.read_text())
        zoo = {"train_s": zoo_config.get("train_time_seconds", float("nan")), "peak_rss_mib": float("nan")}
    lgbm_pred = read_predictions(RunLayout.of(zoo_run).predictions)
    print(f"LightGBM: {zoo['train_s']:.1f} s", flush=True)

    test = arrays.rows_of("test")
    results = {"LightGBM (zoo, CW-24 cohort)": {**_metrics(evaluate_predictions(lgbm_pred, n_boot=args.n_boot)),
                                               "train_s": round(zoo["train_s"], 1),
                                               "peak_rss_mib": zoo["peak_rss_mib"]}}
    for name in args.models.split(","):
        cfg = SeriesTrainConfig(model=name, model_settings=SETTINGS[name], epochs=args.epochs,
                                batch_size=args.batch_size, lr=args.lr, patience=3, seed=args.seed,
                                threads=args.threads, hourly=str(hourly_path))
        run_dir = out / "runs" / name
        if RunLayout.of(run_dir).config.exists():
            import shutil

            shutil.rmtree(run_dir)
        t0 = time.perf_counter()
        with PeakRSS() as mem:
            summary = train_series(arrays, run_dir, cfg, log=lambda m: print(f"  {name}: {m}", flush=True))
        train_s = time.perf_counter() - t0
        run = load_series_run(run_dir)
        sub = arrays.subset(test)
        t1 = time.perf_counter()
        x, _ = features(run, sub)
        probabilities(run.model, x)
        ms_per_stay = 1000 * (time.perf_counter() - t1) / len(test)
        pred = read_predictions(RunLayout.of(run_dir).predictions)
        paired = paired_compare(pred, lgbm_pred, n_boot=args.n_boot, seed=args.seed, name_a=name, name_b="LightGBM")
        results[name] = {**_metrics(evaluate_predictions(pred, n_boot=args.n_boot)), "train_s": round(train_s, 1),
                         "epochs_run": summary["epochs_run"], "best_epoch": summary["best_epoch"],
                         "val_auprc": round(summary["val_auprc"], 4),
                         "s_per_epoch": round(summary["mean_train_seconds_per_epoch"], 2),
                         "infer_ms_per_stay": round(ms_per_stay, 3), "peak_rss_mib": round(mem.peak),
                         "n_parameters": summary["n_parameters"],
                         "vs_lightgbm": {m: {k: paired[m][k] for k in ("difference", "ci_low", "ci_high", "p_value")}
                                         for m in ("auroc", "auprc")}}
        print(f"{name}: test AUROC {results[name]['auroc']}, {train_s:.0f} s", flush=True)
        partial = {"load_now": Path("/proc/loadavg").read_text().strip(), "elapsed_s": time.perf_counter() - t_all}
        (out / "results.partial.json").write_text(json.dumps({"results": results, **partial}, indent=2) + "\n")
    total_s = time.perf_counter() - t_all
    load_end = Path("/proc/loadavg").read_text().strip() if Path("/proc/loadavg").exists() else "n/a"
    meta = {"date": started.isoformat(timespec="seconds"), "command": " ".join(sys.argv),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs", "torch_threads": args.threads,
            "loadavg_start": load_start, "loadavg_end": load_end, "total_s": round(total_s, 1),
            "settings": SETTINGS, "epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
            "n_test": int(len(test)), "n_test_deaths": int(arrays.label[test].sum())}
    (out / "results.json").write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
    print(markdown(results))
    print(json.dumps(meta, indent=1))


def _metrics(result: dict) -> dict:
    m = result["metrics"]
    return {k: f"{m[k]['value']:.3f} ({m[k]['ci_low']:.3f}-{m[k]['ci_high']:.3f})" for k in ("auroc", "auprc")}


def markdown(results: dict) -> str:
    lines = ["| Model | Test AUROC (95% CI) | Test AUPRC (95% CI) | ΔAUROC vs LightGBM (95% CI), p | "
             "Epochs (best) | Train s/epoch | Train s | Inference ms/stay | Peak RSS MiB |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        v = r.get("vs_lightgbm")
        diff = (f"{v['auroc']['difference']:+.3f} ({v['auroc']['ci_low']:+.3f} to {v['auroc']['ci_high']:+.3f}), "
                f"p = {v['auroc']['p_value']:.3f}") if v else "-"
        epochs = f"{r['epochs_run']} ({r['best_epoch']})" if "epochs_run" in r else "-"
        lines.append(f"| {name} | {r['auroc']} | {r['auprc']} | {diff} | {epochs} | {r.get('s_per_epoch', '-')} | "
                     f"{r['train_s']} | {r.get('infer_ms_per_stay', '-')} | {r['peak_rss_mib']} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
