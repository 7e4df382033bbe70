"""Measured, not promised: LeMoF on PhysioNet 2012 sets A and B (8,000 stays), for mortality and ICU LOS > 3 days.

    .venv/bin/python benchmarks/lemof_physionet2012.py [--work-dir runs/benchmarks/lemof_physionet2012]
        [--tasks mortality,los3] [--text-run RUN | --text-run los3=RUN] [--series-run RUN | --series-run los3=RUN]
        [--text-config CONFIG.json] [--series-model bilstm-transformer] [--series-epochs 30] [--epochs 60]
        [--n-boot 1000] [--threads N] [--smoke]

Per task, in WORK_DIR/<task>/: the PhysioNet 2012 cohort built for the task (the fixed, seeded split, assigned on
mortality, so both tasks share it), its hourly table and its clinical text; ``alfia lemof train --ablations``
(the text and series encoders trained there unless ``--text-run`` / ``--series-run`` give finished runs of that
task: ``--text-run RUN`` is the mortality run, ``--text-run los3=RUN`` the LOS one); LightGBM on the same
cohort (``alfia baselines``, full profile). Then the test split of every model with stratified-bootstrap 95%
CIs, and paired bootstrap tests (``alfia.evaluation.bootstrap.paired_compare``) of every row against the best
single modality (by val AUPRC) and against LightGBM. The fusion's training time (and per epoch), the torch
threads and the load average go with it. Results: WORK_DIR/results.json and results.md. The data are read in
place and never copied.

``--smoke``: the same code path on 160 synthetic stays with a tiny random BERT and tiny encoders, mortality
only, LightGBM in the fast profile; it checks the pipeline in about a minute and measures nothing.
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
DATA = Path(os.environ.get("PN_DATA") or ROOT.parent / "shared" / "data" / "physionet2012")
ROWS = ("lemof", "lemof-no-global", "single-level", "early-fusion", "late-fusion", "text", "series", "tabular",
        "LightGBM")
SINGLES = ("text", "series", "tabular")


def build_inputs(folder: Path, task: str, console) -> dict[str, Path]:
    """cohort, hourly and text tables of P12 A+B for ``task`` (reused when present)."""
    from alfia.api import cohort as api
    from alfia.series.hourly import write_hourly
    from alfia.series.sources import build_physionet2012_hourly
    from alfia.text import encode_file

    paths = {"cohort": folder / "cohort.parquet", "series": folder / "hourly.parquet", "text": folder / "text.parquet"}
    if all(p.exists() for p in paths.values()):
        console.print(f"{task}: reusing the inputs in {folder}")
        return paths
    if not DATA.exists():
        raise SystemExit(f"real data absent: {DATA} (needs ../shared/data beside the repository)")
    folder.mkdir(parents=True, exist_ok=True)
    records, outcomes = [DATA / "set-a.tar.gz", DATA / "set-b.tar.gz"], [DATA / "Outcomes-a.txt", DATA / "Outcomes-b.txt"]
    t0 = time.perf_counter()
    api.physionet2012(records, outcomes, out=paths["cohort"], task=task)
    frame, variables, report = build_physionet2012_hourly(records, outcomes, 24, task=task)
    write_hourly(frame, paths["series"], source="physionet2012", variables=variables, hours=24,
                 extra={"report": report, "task": report["task"]})
    encode_file(paths["cohort"], paths["text"])
    console.print(f"{task}: cohort, hourly table and text in {time.perf_counter() - t0:.0f} s")
    return paths


def smoke_inputs(folder: Path) -> tuple[dict[str, Path], Path]:
    sys.path.insert(0, str(ROOT / "tests" / "multimodal"))
    from lemof_testkit import tiny_text_config, write_inputs

    folder.mkdir(parents=True, exist_ok=True)
    return write_inputs(folder, n=160), tiny_text_config(folder)


def per_task(value: list[str] | None) -> dict[str, Path]:
    """--text-run RUN (mortality) or TASK=RUN, repeatable."""
    out = {}
    for item in value or []:
        task, sep, path = item.partition("=")
        out[task if sep else "mortality"] = Path(path if sep else task)
    return out


def train(paths: dict[str, Path], run: Path, args, task: str, text_config, console) -> dict:
    from alfia.multimodal.fit import FitConfig
    from alfia.multimodal.model import LemofConfig
    from alfia.multimodal.run import EncoderSettings, train_lemof

    if (run / "config.json").exists() and "result" in json.loads((run / "config.json").read_text()):
        console.print(f"{task}: reusing the finished LeMoF run {run}")
        return json.loads((run / "config.json").read_text())["result"]
    tiny = args.smoke
    encoders = EncoderSettings(text_config=str(text_config) if text_config else None, series_model=args.series_model,
                               series_epochs=2 if tiny else args.series_epochs,
                               series_settings={"hidden_size": 8, "d_model": 8, "n_heads": 2, "dim_feedforward": 16}
                               if tiny else None)
    fit = FitConfig(epochs=4 if tiny else args.epochs, seed=args.seed, threads=args.threads)
    return train_lemof(paths["text"], paths["series"], paths["cohort"], run, config=LemofConfig(d_model=16 if tiny else 64),
                       fit_config=fit, encoders=encoders, text_run=per_task(args.text_run).get(task),
                       series_run=per_task(args.series_run).get(task), ablations=True, console=console)


def lightgbm(cohort: Path, out: Path, args) -> Path:
    from alfia.baselines.runner import run_baselines
    from alfia.cohorts.io import read_cohort

    df, _, variant = read_cohort(cohort)
    run_baselines(df, variant, out, ["LightGBM"], args.seed, profile="fast" if args.smoke else "full",
                  n_boot=args.n_boot, source=str(cohort), resume=True, n_jobs=args.threads)
    return out / "LightGBM"


def table(run: Path, lgbm: Path, args) -> dict:
    from alfia.evaluation.bootstrap import paired_compare
    from alfia.evaluation.report import evaluate_predictions
    from alfia.runs import read_predictions

    dirs = {"lemof": run, **{n: run / "ablations" / n for n in ROWS if n not in ("lemof", "LightGBM")},
            "LightGBM": lgbm}
    preds = {name: read_predictions(d / "predictions.parquet") for name, d in dirs.items()}

    def val_auprc(name):
        from sklearn.metrics import average_precision_score

        val = preds[name][preds[name]["split"] == "val"]
        return float(average_precision_score(val["label"], val["prob"]))

    best_single = max(SINGLES, key=val_auprc)
    rows = {}
    for name, pred in preds.items():
        metrics = evaluate_predictions(pred, split="test", n_boot=args.n_boot, seed=args.seed)["metrics"]
        row = {m: metrics[m] for m in ("auroc", "auprc")} | {"val_auprc": val_auprc(name)}
        for against in (best_single, "LightGBM"):
            if against != name:
                test = paired_compare(pred, preds[against], "test", n_boot=args.n_boot, seed=args.seed,
                                      name_a=name, name_b=against)
                row[f"vs_{'best_single' if against == best_single else 'lightgbm'}"] = {
                    m: {k: test[m][k] for k in ("difference", "ci_low", "ci_high", "p_value")} for m in ("auroc", "auprc")}
        rows[name] = row
    return {"best_single": best_single, "rows": rows}


def _ci(m: dict) -> str:
    return f"{m['value']:.3f} ({m['ci_low']:.3f}-{m['ci_high']:.3f})"


def _diff(d: dict | None) -> str:
    if not d:
        return "-"
    return f"{d['auroc']['difference']:+.3f} (p={d['auroc']['p_value']:.3f}) / {d['auprc']['difference']:+.3f} (p={d['auprc']['p_value']:.3f})"


def markdown(results: dict) -> str:
    lines = [f"# LeMoF on PhysioNet 2012 A+B ({results['date']}{', SMOKE: measures nothing' if results['smoke'] else ''})",
             "", f"Machine: {results['machine']}; seed {results['seed']}; {results['n_boot']} bootstrap resamples.", ""]
    for task, r in results["tasks"].items():
        res = r["lemof_result"]
        lines += [f"## {task}", "",
                  f"Fusion training {res['fusion_train_seconds']:.1f} s ({res['epochs_run']} epochs, "
                  f"{res['seconds_per_epoch']:.2f} s/epoch, {res['threads']} threads; load average before "
                  f"{res['load_average_1min_before']}); encoders {res.get('encoder_seconds')} s, level cache "
                  f"{res.get('level_cache_seconds')} s; load average at the end {r['load_average_end']}.",
                  f"Best single modality by val AUPRC: {r['table']['best_single']}.", "",
                  "| model | test AUROC (95% CI) | test AUPRC (95% CI) | vs best single: dAUROC / dAUPRC | vs LightGBM |",
                  "|---|---|---|---|---|"]
        for name in ROWS:
            row = r["table"]["rows"][name]
            lines.append(f"| {name} | {_ci(row['auroc'])} | {_ci(row['auprc'])} | {_diff(row.get('vs_best_single'))} "
                         f"| {_diff(row.get('vs_lightgbm'))} |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work-dir", type=Path, default=ROOT / "runs" / "benchmarks" / "lemof_physionet2012")
    parser.add_argument("--tasks", default="mortality,los3")
    parser.add_argument("--text-run", action="append", help="RUN (mortality) or TASK=RUN; repeatable")
    parser.add_argument("--series-run", action="append", help="RUN (mortality) or TASK=RUN; repeatable")
    parser.add_argument("--text-config", type=Path, default=None, help="run config of the text encoders it trains")
    parser.add_argument("--series-model", default="bilstm-transformer")
    parser.add_argument("--series-epochs", type=int, default=30)
    parser.add_argument("--epochs", type=int, default=60, help="most epochs of the fusion and the tabular MLP")
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--smoke", action="store_true", help="tiny synthetic check of the pipeline (~1 min)")
    args = parser.parse_args(argv)
    from rich.console import Console

    console = Console(emoji=False, stderr=True)
    if args.smoke:
        args.n_boot, args.tasks = min(args.n_boot, 50), "mortality"
    results = {"date": date.today().isoformat(), "smoke": args.smoke, "seed": args.seed, "n_boot": args.n_boot,
               "machine": f"{platform.machine()}, {os.cpu_count()} cores ({platform.platform()})",
               "load_average_start": os.getloadavg(), "tasks": {}}
    for task in args.tasks.split(","):
        folder = args.work_dir / task
        if args.smoke:
            paths, text_config = smoke_inputs(folder / "inputs")
        else:
            paths, text_config = build_inputs(folder / "inputs", task, console), args.text_config
        result = train(paths, folder / "lemof", args, task, text_config, console)
        lgbm = lightgbm(paths["cohort"], folder / "zoo", args)
        results["tasks"][task] = {"lemof_result": result, "table": table(folder / "lemof", lgbm, args),
                                  "inputs": {k: str(v) for k, v in paths.items()},
                                  "load_average_end": [round(x, 2) for x in os.getloadavg()]}
    from alfia.atomic import write_json_atomic, write_text_atomic

    write_json_atomic(args.work_dir / "results.json", results)
    write_text_atomic(args.work_dir / "results.md", markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
