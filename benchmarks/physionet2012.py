"""Measured, not promised: ALFIA on the real PhysioNet 2012 sets A and B (8,000 ICU stays).

    .venv/bin/python benchmarks/physionet2012.py [--epochs 30] [--max-length 512] [--max-train-rows N]
        [--backbone ID_OR_DIR] [--work-dir runs/benchmarks/physionet2012] [--skip-ablation]

Steps: build the CW-24 PhysioNet 2012 cohort from ../shared/data/physionet2012 (fixed, seeded split
assigned by the cohort builder), encode it as clinical text, train ALFIA (ALF pooling) and the ablation
with a static mean over the same top N_f layers, score both on the test split with stratified-bootstrap
95% CIs (alfia.evaluation), compare them with a paired bootstrap, and time inference at batch sizes 1
and 64. Everything lands in WORK_DIR (results.json, results.md, one run directory per model). The data
are read in place and never copied into the repository.

The paper's protocol (all training rows, up to 30 epochs, 512 tokens, patience 5) needs a GPU; on a
2-core CPU pass a smaller configuration and report it with the numbers (results.md records it).
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
# ../shared/data beside the repository, or shared/data inside it (a device machine's copy), or PN_DATA.
DATA = Path(os.environ.get("PN_DATA") or next(
    (p for p in (ROOT.parent / "shared" / "data" / "physionet2012", ROOT / "shared" / "data" / "physionet2012")
     if p.exists()), ROOT.parent / "shared" / "data" / "physionet2012"))
AGGREGATES = "compact"  # the default cohort; --aggregates full for all 266 predictors


def build_text(work: Path, console) -> Path:
    from alfia.cohorts.io import write_cohort
    from alfia.cohorts.sources.physionet2012 import build_physionet2012
    from alfia.text import encode_file

    cohort_path, text_path = work / "cohort.parquet", work / "text.parquet"
    if text_path.exists():
        console.print(f"reusing {text_path}")
        return text_path
    if not DATA.exists():
        raise SystemExit(f"real data absent: {DATA} (needs ../shared/data beside the repository)")
    started = time.perf_counter()
    cohort, report = build_physionet2012([DATA / "set-a.tar.gz", DATA / "set-b.tar.gz"],
                                         [DATA / "Outcomes-a.txt", DATA / "Outcomes-b.txt"], hours=24.0,
                                         aggregates=AGGREGATES)
    write_cohort(cohort, cohort_path, source="physionet2012", variant=report["variant"],
                 extra={"report": report})
    encode_file(cohort_path, text_path)
    console.print(f"cohort + text: {len(cohort)} stays in {time.perf_counter() - started:.0f} s -> {text_path}")
    return text_path


def train_and_evaluate(text_path: Path, run_dir: Path, pooler: str, args, console) -> dict:
    from alfia.atomic import write_json_atomic
    from alfia.evaluation import evaluate_run
    from alfia.models import AlfiaConfig
    from alfia.runs import read_alfia_config
    from alfia.training import TrainConfig, train_run

    if (run_dir / "metrics.json").exists():
        console.print(f"reusing finished run {run_dir}")
    else:
        resume = (run_dir / "checkpoint").exists() and not (run_dir / "predictions.parquet").exists()
        # The recipe (what `alfia train --recipe NAME` does with no other option); only options given on this
        # command line change it.
        from alfia.training.run import configs_from

        model_options = {k: getattr(args, k) for k in ("backbone", "attention_dropout", "max_length", "train_layers",
                                                       "finetune", "prune_layers")}
        train_options = {k: getattr(args, k) for k in ("epochs", "head_epochs", "batch_size", "lr", "head_lr",
                                                       "max_train_rows", "patience", "rows_per_epoch")}
        if args.pos_weight is not None:
            train_options["pos_weight"] = None if args.pos_weight == "none" else args.pos_weight
        _, model_config, train_config, recipe = configs_from(
            None, text_path, {**model_options, "pooler": pooler}, {**train_options, "seed": args.seed,
                                                                    "num_threads": args.threads,
                                                                    "device": args.device}, recipe=args.recipe)
        load_before = os.getloadavg()[0]
        if resume:
            train_run(None, run_dir, resume=True, console=console)
        else:
            train_run(text_path, run_dir, model_config, train_config, console=console, recipe=recipe)
        load_after = os.getloadavg()[0]  # 1-minute load average: other processes slow the timings
        gpu = {}
        import torch

        if torch.cuda.is_available():  # what a lent GPU used: its name and the peak memory of the training
            gpu = {"gpu": torch.cuda.get_device_name(0),
                   "peak_gpu_memory_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1)}
        write_json_atomic(run_dir / "load_average.json", {"before_training": load_before, "after_training": load_after,
                                                          **gpu})
        evaluate_run(run_dir, split="test", n_boot=args.n_boot, seed=args.seed)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    config = read_alfia_config(run_dir)
    load = json.loads((run_dir / "load_average.json").read_text()) if (run_dir / "load_average.json").exists() else {}
    return {"run_dir": str(run_dir), "metrics": metrics["metrics"], "n": metrics["n"], "n_pos": metrics["n_pos"],
            "training": config.get("result", {}), "rows": config["data"]["n_rows"], "load_average": load,
            "train_config": {k: v for k, v in config["train"].items() if v is not None}}


def time_inference(run_dir: Path, text_path: Path, args, console) -> dict:
    from alfia.cohorts.io import read_table
    from alfia.inference import frame_to_input, load_run, predict

    run = load_run(run_dir, num_threads=args.threads)
    df, _ = read_table(text_path)
    test = df[df["split"] == "test"].reset_index(drop=True)
    out = {}
    for batch_size, n in ((1, args.n_batch1), (64, args.n_batch64)):
        rows = test.iloc[:n]
        inputs = frame_to_input(rows, str(text_path), run)
        predict(run, frame_to_input(rows.iloc[:min(8, n)], str(text_path), run), batch_size=batch_size)  # warm-up
        _, perf = predict(run, inputs, batch_size=batch_size, measure_memory=True)
        console.print(f"batch size {batch_size}: {perf.describe()}")
        out[str(batch_size)] = perf.to_dict()
    return out


def _ci(m: dict) -> str:
    return f"{m['value']:.3f} ({m['ci_low']:.3f}–{m['ci_high']:.3f})"


def markdown(results: dict) -> str:
    a, b = results["alf"], results.get("static_mean")
    cfg = results["config"]
    lines = [
        f"Command: `{results['command']}`  ",
        f"Machine: {results['machine']}; date {results['date']}. 1-minute load average before/after each training "
        f"(on {os.cpu_count()} cores; above the core count, other processes slowed the timings): "
        + "; ".join(f"{name} {r['load_average'].get('before_training', float('nan')):.1f}/"
                    f"{r['load_average'].get('after_training', float('nan')):.1f}"
                    for name, r in (("ALF", a), ("static mean", b)) if r is not None) + ".  ",
        f"Configuration (TrainConfig defaults unless given on the command line): backbone "
        f"{cfg['backbone'] or 'all-MiniLM-L6-v2 (offline default)'}; run config: {a['train_config']}; training rows "
        f"{a['rows']['train']}, val {a['rows']['val']}, test {a['rows']['test']}.",
        "",
        "| Model | Test AUPRC (95% CI) | Test AUROC (95% CI) | Best epoch | Epochs run | Training time |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in (("ALFIA (ALF pooling)", a), ("Ablation: static mean of top 4 layers", b)):
        if r is None:
            continue
        t = r["training"]
        lines.append(f"| {name} | {_ci(r['metrics']['auprc'])} | {_ci(r['metrics']['auroc'])} | "
                     f"{t.get('best_epoch')} | {t.get('epochs_run')} | {t.get('train_seconds_total', 0) / 60:.1f} min |")
    if "paired" in results:
        p = results["paired"]
        lines += ["", f"ALF minus static mean, paired bootstrap on the {a['n']} test stays: "
                      f"ΔAUPRC {p['auprc']['difference']:+.3f} (95% CI {p['auprc']['ci_low']:+.3f} to {p['auprc']['ci_high']:+.3f}, "
                      f"p={p['auprc']['p_value']:.3f}); ΔAUROC {p['auroc']['difference']:+.3f} "
                      f"(95% CI {p['auroc']['ci_low']:+.3f} to {p['auroc']['ci_high']:+.3f}, p={p['auroc']['p_value']:.3f})."]
    inf = results["inference"]
    lines += ["", "| Inference (ALFIA run, CPU) | ms/sample | Peak RSS of the process | Samples timed |", "|---|---|---|---|"]
    for bs in ("1", "64"):
        x = inf[bs]
        lines.append(f"| batch size {bs} | {x['ms_per_sample']:.1f} | {x['peak_rss_mb']:.0f} MB | {x['n_samples']} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    import torch
    from rich.console import Console

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", type=Path, default=ROOT / "runs" / "benchmarks" / "physionet2012")
    parser.add_argument("--backbone", default=None)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--head-epochs", type=int, default=None)
    parser.add_argument("--max-length", type=int, default=None)
    parser.add_argument("--max-train-rows", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--head-lr", type=float, default=None)
    parser.add_argument("--patience", type=int, default=None)
    parser.add_argument("--device", default=None, help="auto (default), cpu, cuda, ...")
    parser.add_argument("--recipe", default="auto", help="cpu, paper, frozen or auto (paper on a GPU, else cpu)")
    parser.add_argument("--train-layers", default=None, help="0, K or all (default: the recipe's)")
    parser.add_argument("--finetune", default=None, help="lora or full (default: the recipe's)")
    parser.add_argument("--prune-layers", default=None, help="every-other, bottom:N or indices")
    parser.add_argument("--rows-per-epoch", type=int, default=None)
    parser.add_argument("--pos-weight", default=None, help="BCE pos_weight: a number or 'auto' (default: none)")
    parser.add_argument("--attention-dropout", type=float, default=None,
                        help="encoder attention dropout (default: the backbone's); 0 lets CPU training use fused "
                             "attention, 2.4x faster at 512 tokens")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--n-batch1", type=int, default=100, help="test texts timed one at a time")
    parser.add_argument("--n-batch64", type=int, default=640, help="test texts timed in batches of 64")
    parser.add_argument("--skip-ablation", action="store_true")
    parser.add_argument("--inference-only", action="store_true",
                        help="only time inference of the finished ALF run, in this fresh process (its peak RSS "
                             "then reflects inference alone, not the training that preceded it)")
    args = parser.parse_args(argv)
    console = Console(stderr=True)
    work = args.work_dir
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    text_path = build_text(work, console)
    if args.inference_only:
        timing = time_inference(work / "alfia_alf", text_path, args, console)
        from alfia.atomic import write_json_atomic

        write_json_atomic(work / "inference.json", {"command": "python benchmarks/physionet2012.py " + " ".join(
            sys.argv[1:] if argv is None else argv), "date": str(date.today()), "inference": timing})
        for bs, x in timing.items():
            print(f"| batch size {bs} | {x['ms_per_sample']:.1f} | {x['peak_rss_mb']:.0f} MB "
                  f"(+{x['rss_increase_mb']:.0f} MB during inference) | {x['n_samples']} |")
        return
    results = {
        "command": "python benchmarks/physionet2012.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": (torch.cuda.get_device_name(0) if torch.cuda.is_available()
                    else f"{platform.machine()}, {os.cpu_count()} CPU cores, no GPU"),
        "date": str(date.today()),
        "config": {k: v for k, v in vars(args).items() if k != "work_dir"},
    }
    results["alf"] = train_and_evaluate(text_path, work / "alfia_alf", "alf", args, console)
    if not args.skip_ablation:
        results["static_mean"] = train_and_evaluate(text_path, work / "alfia_static_mean", "static_mean", args,
                                                    console)
        from alfia.evaluation import paired_compare
        from alfia.runs import read_predictions

        results["paired"] = paired_compare(read_predictions(work / "alfia_alf" / "predictions.parquet"),
                                           read_predictions(work / "alfia_static_mean" / "predictions.parquet"),
                                           "test", n_boot=args.n_boot, seed=args.seed)
    results["inference"] = time_inference(work / "alfia_alf", text_path, args, console)
    results["wall_seconds"] = round(time.perf_counter() - started, 1)
    from alfia.atomic import write_json_atomic, write_text_atomic

    write_json_atomic(work / "results.json", results)
    write_text_atomic(work / "results.md", markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
