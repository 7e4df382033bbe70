"""Measured, not promised: federated ALFIA (Flower's FedAvg across hospitals) against centralised training on the
same rows, on the eICU demo (186 hospitals grouped into sites) and on PhysioNet 2012 split by ICU type.

    .venv/bin/python benchmarks/federated_eicu.py [--work-dir runs/benchmarks/federated] [--rounds 30]
        [--engine inprocess|ray] [--setting eicu|p12|both] [--smoke]

Steps per setting: build the CW-24 cohort (eICU demo: ``alfia cohort eicu``, hospitalid carried as an identifier;
P12: sets A + B), encode it, run ``alfia federated train --centralised`` (the federated run and, in
RUN/centralised/, the same model from the same initial weights trained on the same rows in one place), then on the
same test stays: AUROC and AUPRC of both with stratified-bootstrap 95% CIs and the paired difference
(``alfia.evaluation.paired_bootstrap``); rounds to convergence (the first round whose federated val loss is within
1% of the run's lowest, and the best round); bytes exchanged per round (both directions, from Flower's messages).
Everything lands in WORK_DIR (results.json, results.md, one run directory per setting).

``--smoke`` (< 1 min): a synthetic eICU cohort of 300 stays over 12 fake hospitals, a tiny random BERT, 2 rounds;
it checks the pipeline, not the numbers. Target (issue 25): federated AUROC within 0.02 of centralised.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = next((p for p in (ROOT.parent / "shared" / "data", ROOT / "shared" / "data") if p.exists()),
              ROOT.parent / "shared" / "data")
CONVERGED_WITHIN = 0.01  # a round has converged when its federated val loss is within 1% of the run's lowest


def eicu_text(work: Path, console) -> Path:
    from alfia.api import cohort as cohorts
    from alfia.text import encode_file

    text = work / "eicu.text.parquet"
    if not text.exists():
        source = SHARED / "eicu-demo"
        if not source.exists():
            raise SystemExit(f"real data absent: {source}")
        cohorts.eicu(source, out=work / "eicu.parquet")
        encode_file(work / "eicu.parquet", text)
    console.print(f"eICU demo text: {text}")
    return text


def p12_text(work: Path, console) -> Path:
    from alfia.cohorts.io import write_cohort
    from alfia.cohorts.sources.physionet2012 import build_physionet2012
    from alfia.text import encode_file

    text = work / "p12.text.parquet"
    if not text.exists():
        data = SHARED / "physionet2012"
        if not data.exists():
            raise SystemExit(f"real data absent: {data}")
        cohort, report = build_physionet2012([data / "set-a.tar.gz", data / "set-b.tar.gz"],
                                             [data / "Outcomes-a.txt", data / "Outcomes-b.txt"], hours=24.0)
        write_cohort(cohort, work / "p12.parquet", source="physionet2012", variant=report["variant"],
                     extra={"report": report})
        encode_file(work / "p12.parquet", text)
    console.print(f"PhysioNet 2012 text: {text}")
    return text


def smoke_text(work: Path) -> Path:
    import numpy as np

    from alfia.cohorts.io import write_cohort
    from alfia.cohorts.splits import assign_splits
    from alfia.cohorts.sources.synthetic import generate_synthetic
    from alfia.text import encode_file

    cohort = generate_synthetic("eicu", 300, seed=5)
    cohort["hospitalid"] = np.arange(len(cohort)) % 12 + 100
    if "split" not in cohort:
        cohort["split"] = assign_splits(cohort)
    write_cohort(cohort, work / "smoke.parquet", source="synthetic", variant="eicu")
    encode_file(work / "smoke.parquet", work / "smoke.text.parquet")
    return work / "smoke.text.parquet"


def measure(name: str, text: Path, site_column: str, run_dir: Path, args, console, model_options: dict,
            train_options: dict, min_stays: int, min_deaths: int) -> dict:
    from alfia.evaluation import paired_compare
    from alfia.evaluation.report import evaluate_predictions
    from alfia.federated import FederatedConfig, federated_train
    from alfia.federated.run import default_configs
    from alfia.runs import RunLayout, read_predictions

    if run_dir.exists():
        raise SystemExit(f"{run_dir} exists; remove it or pass another --work-dir")
    model, train = default_configs(model_options, train_options)
    federated = FederatedConfig(site_column=site_column, rounds=args.rounds, fraction=args.fraction,
                                min_stays=min_stays, min_deaths=min_deaths, engine=args.engine)
    started = time.perf_counter()
    summary = federated_train(text, run_dir, federated, model, train, centralised=True, console=console)
    seconds = time.perf_counter() - started
    layout = RunLayout(run_dir)
    fed_pred, central_pred = read_predictions(layout.predictions), read_predictions(layout.centralised / "predictions.parquet")
    record = json.loads(layout.federation.read_text())
    rounds = record["rounds"]
    lowest = min(r["val_loss"] for r in rounds)
    converged = next(r["round"] for r in rounds if r["val_loss"] <= lowest * (1 + CONVERGED_WITHIN))
    metrics = {}
    for label, pred in (("federated", fed_pred), ("centralised", central_pred)):
        m = evaluate_predictions(pred, split="test", n_boot=args.n_boot)
        metrics[label] = {k: m["metrics"][k] for k in ("auroc", "auprc")}
    paired = paired_compare(fed_pred, central_pred, split="test", n_boot=args.n_boot, name_a="federated",
                            name_b="centralised")
    test = fed_pred[fed_pred["split"] == "test"]
    return {"setting": name, "site_column": site_column, "sites": [s.to_dict() for s in summary.sites.sites],
            "skipped": record["sites"]["skipped"], "test_stays": int(len(test)), "test_deaths": int(test["label"].sum()),
            "metrics": metrics, "paired_difference": {k: paired[k] for k in ("auroc", "auprc")},
            "rounds_run": len(rounds), "best_round": record["best_round"], "converged_round": converged,
            "bytes_per_round": record["bytes_per_round"], "setup_bytes": record["setup_bytes"],
            "seconds_total": round(seconds, 1), "run_dir": str(run_dir)}


def _ci(m: dict) -> str:
    return f"{m['value']:.3f} ({m['ci_low']:.3f}–{m['ci_high']:.3f})"


def markdown(results: list[dict], args) -> str:
    lines = [f"# Federated vs centralised ALFIA ({date.today().isoformat()}, {platform.machine()}, "
             f"{os.cpu_count()} CPUs, engine {args.engine}{', SMOKE' if args.smoke else ''})", "",
             "| Setting | Sites | Test stays (deaths) | Federated AUROC | Centralised AUROC | AUROC diff (95% CI) "
             "| Federated AUPRC | Centralised AUPRC | Best / converged round | MB per round |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        d = r["paired_difference"]["auroc"]
        lines.append(f"| {r['setting']} | {len(r['sites'])} | {r['test_stays']} ({r['test_deaths']}) | "
                     f"{_ci(r['metrics']['federated']['auroc'])} | {_ci(r['metrics']['centralised']['auroc'])} | "
                     f"{d['difference']:+.3f} ({d['ci_low']:+.3f}–{d['ci_high']:+.3f}) | "
                     f"{_ci(r['metrics']['federated']['auprc'])} | {_ci(r['metrics']['centralised']['auprc'])} | "
                     f"{r['best_round']} / {r['converged_round']} of {r['rounds_run']} | "
                     f"{r['bytes_per_round']['mean'] / 1e6:.2f} |")
    lines += ["", f"Converged round: the first whose federated val loss is within {CONVERGED_WITHIN:.0%} of the "
              "run's lowest. Bytes: Flower's messages, server to sites (train + evaluate) and back, per round.",
              "Command: `" + " ".join([Path(sys.executable).name, *sys.argv]) + "`"]
    return "\n".join(lines) + "\n"


def main() -> None:
    from rich.console import Console

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", type=Path, default=ROOT / "runs" / "benchmarks" / "federated")
    parser.add_argument("--setting", choices=("eicu", "p12", "both"), default="both")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--fraction", type=float, default=1.0)
    parser.add_argument("--engine", choices=("inprocess", "ray"), default="inprocess")
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--smoke", action="store_true", help="tiny synthetic run (< 1 min): the pipeline, not numbers")
    args = parser.parse_args()
    console = Console(emoji=False, stderr=True)
    work = args.work_dir / ("smoke" if args.smoke else "")
    work.mkdir(parents=True, exist_ok=True)
    train_options = {"num_threads": args.threads}
    results = []
    if args.smoke:
        from alfia.models.testing import tiny_backbone

        args.rounds, args.n_boot = min(args.rounds, 2), min(args.n_boot, 100)
        backbone = str(tiny_backbone(work, layers=2))
        model_options = {"backbone": backbone, "n_fusion_layers": 2, "max_length": 64}
        train_options.update(batch_size=16, num_threads=args.threads or 1)
        results.append(measure("smoke (synthetic eICU)", smoke_text(work), "hospitalid", work / f"run-{time.time_ns()}",
                               args, console, model_options, train_options, min_stays=40, min_deaths=3))
    else:
        if args.setting in ("eicu", "both"):
            results.append(measure("eICU demo (hospitals)", eicu_text(work, console), "hospitalid", work / "eicu",
                                   args, console, {}, train_options, min_stays=200, min_deaths=5))
        if args.setting in ("p12", "both"):
            results.append(measure("PhysioNet 2012 (ICU types)", p12_text(work, console), "icu_type", work / "p12",
                                   args, console, {}, train_options, min_stays=200, min_deaths=5))
    (work / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (work / "results.md").write_text(markdown(results, args))
    console.print(markdown(results, args), highlight=False)


if __name__ == "__main__":
    main()
