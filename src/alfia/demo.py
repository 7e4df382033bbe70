"""`make demo` / `python -m alfia.demo`: the whole chain on the embedded default, in minutes on a laptop.

1. a synthetic MIMIC-like CW-24 cohort (3,000 stays, calibrated to the paper's tables);
2. its clinical text;
3. ALFIA training: the offline all-MiniLM-L6-v2 backbone + LoRA + Adaptive Layer Fusion + ACH;
4. test metrics with stratified-bootstrap 95% CIs, printed as a table.

Outputs go under ./demo_output/ (cohort, text table, run directory with metrics.json and figures).
The defaults are sized to finish within 15 minutes on 2 CPU cores (see README for the measured time):
2 epochs over a stratified subsample of 1,200 training rows at lr 5e-4 with pos_weight 'auto' (the loss
weighs the rare deaths up; without it, two short epochs collapse to the base rate), texts truncated to 256
tokens (the synthetic MIMIC descriptions run about 230-255 tokens, so nothing is cut), and no dropout on the
encoder's attention probabilities (on a CPU that lets PyTorch use its fused attention kernel, which makes each
training step faster; BENCHMARKS.md). Pass --full for the paper's protocol (all rows, up to 30 epochs, 512 tokens,
the backbone's own attention dropout, early stopping; hours on a CPU).
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from rich.console import Console

DEFAULT_OUT = Path("demo_output")


def run_demo(out: Path = DEFAULT_OUT, *, n_stays: int = 3000, epochs: int = 2, max_length: int = 256,
             batch_size: int = 16, max_train_rows: int | None = 1200, lr: float = 5e-4,
             pos_weight: float | str | None = "auto", attention_dropout: float | None = 0.0, n_boot: int = 1000,
             seed: int = 42,
             console: Console | None = None) -> dict:
    from alfia.cli.evaluation import metrics_table
    from alfia.cohorts.io import write_cohort
    from alfia.cohorts.sources.synthetic import generate_synthetic
    from alfia.evaluation import evaluate_run
    from alfia.models import AlfiaConfig
    from alfia.text import encode_file
    from alfia.training import TrainConfig, train_run

    console = console or Console()
    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    cohort_path, text_path, run_dir = out / "cohort.parquet", out / "text.parquet", out / "run"

    console.rule("[bold]1. Synthetic MIMIC-like cohort")
    cohort = generate_synthetic("mimic", n_stays, seed)
    write_cohort(cohort, cohort_path, source="synthetic", variant="mimic")
    counts = cohort["split"].value_counts()
    console.print(f"{len(cohort)} stays ({', '.join(f'{s} {counts.get(s, 0)}' for s in ('train', 'val', 'test'))}), "
                  f"in-hospital mortality {cohort['hospital_expire_flag'].mean():.1%} -> {cohort_path}",
                  highlight=False)

    console.rule("[bold]2. Clinical text")
    text, _ = encode_file(cohort_path, text_path)
    console.print(f"{len(text)} descriptions -> {text_path}. First one:", highlight=False)
    console.print(f"[dim]{text['text'].iloc[0]}[/]", highlight=False)

    console.rule("[bold]3. ALFIA training (all-MiniLM-L6-v2 + LoRA + ALF + ACH)")
    if run_dir.exists():  # the demo's own previous run: start clean so the result is reproducible
        shutil.rmtree(run_dir)
    model_config = AlfiaConfig(max_length=max_length, attention_dropout=attention_dropout)
    train_config = TrainConfig(epochs=epochs, batch_size=batch_size, max_length=max_length, seed=seed, lr=lr,
                               max_train_rows=max_train_rows, patience=5,
                               pos_weight=pos_weight)
    summary = train_run(text_path, run_dir, model_config, train_config, console=console)

    console.rule("[bold]4. Test metrics")
    result = evaluate_run(run_dir, split="test", n_boot=n_boot, seed=seed)
    console.print(metrics_table(result, f"ALFIA on the synthetic test split: {result['n']} stays, "
                                        f"{result['n_pos']} deaths (95% CIs: stratified bootstrap, {n_boot} resamples)"))
    elapsed = time.perf_counter() - started
    console.print(f"Best epoch {summary.best_epoch} of {summary.epochs_run}; training {summary.train_seconds:.0f} s. "
                  f"Total demo time {elapsed / 60:.1f} min. Run directory: {run_dir} (figures in "
                  f"{run_dir / 'figures'}).", highlight=False)
    return {"result": result, "summary": summary, "seconds": elapsed}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m alfia.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--n-stays", type=int, default=3000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=5e-4,
                        help="higher than the 2e-4 of long runs: the demo has only a few hundred steps")
    parser.add_argument("--max-train-rows", type=int, default=1200,
                        help="seeded stratified subsample of the training rows (0: all of them)")
    parser.add_argument("--attention-dropout", type=float, default=0.0,
                        help="dropout on the encoder's attention probabilities (the backbone's own with --full)")
    parser.add_argument("--full", action="store_true",
                        help="the paper's protocol: all training rows, up to 30 epochs, 512 tokens, early stopping")
    args = parser.parse_args(argv)
    if args.full:
        args.epochs, args.max_length, args.max_train_rows, args.lr = 30, 512, 0, 2e-4
        args.attention_dropout = None
    from alfia.errors import AlfiaError

    try:
        run_demo(args.out, n_stays=args.n_stays, epochs=args.epochs, max_length=args.max_length,
                 batch_size=args.batch_size, max_train_rows=args.max_train_rows or None, lr=args.lr,
                 attention_dropout=args.attention_dropout)
    except AlfiaError as e:
        Console(stderr=True).print(f"[bold red]error:[/] {e}", highlight=False)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
