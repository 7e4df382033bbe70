"""`alfia train`, `alfia predict`, `alfia embed`: thin commands over alfia.training, alfia.inference and
(`embed --cross-fit`) alfia.api.crossfit."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from alfia.cli import Overwrite, app
from alfia.errors import AlfiaError

console = Console(emoji=False, stderr=True)


def _pos_weight(value: Optional[str]):
    if value is None or value.lower() == "none":
        return None
    return "auto" if value == "auto" else value


def _without_nproc(argv: list[str]) -> list[str]:
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            out.append(arg)
    return out


@app.command()
def train(
    text_table: Optional[Path] = typer.Argument(None, help="Text table (from `alfia encode`): stay_id, split, "
                                                "hospital_expire_flag, text. Optional with --resume or --config."),
    out: Optional[Path] = typer.Option(None, "--out", help="Run directory to create."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue the interrupted run in RUN_DIR."),
    config: Optional[Path] = typer.Option(
        None, "--config", help="A run config (JSON with 'model' and 'train' sections, e.g. a run's config.json); "
        "the options below override it."),
    recipe: str = typer.Option("auto", "--recipe", help="Starting values: cpu (top 2 layers fine-tuned over a "
                               "cached bottom), paper (joint LoRA on every layer, the paper's protocol), frozen "
                               "(ALF + head over a frozen encoder), auto (paper on a GPU, else cpu). Options "
                               "below override it."),
    backbone: Optional[str] = typer.Option(None, help="HF model id or local folder; default: offline all-MiniLM-L6-v2."),
    train_layers: Optional[str] = typer.Option(
        None, "--train-layers", help="What of the encoder trains: 0 (nothing; ALF + head over cached states), K "
        "(the top K layers, over a bottom cached once), or 'all'. Recipe cpu: 2; paper: all."),
    finetune: Optional[str] = typer.Option(None, "--finetune", help="How the trained layers learn: lora or full "
                                           "(their weights). Recipe cpu: full; paper: lora."),
    prune_layers: Optional[str] = typer.Option(
        None, "--prune-layers", help="Drop encoder layers before training: every-other, bottom:N, or 0-based "
        "indices like 0,2. Saved with the run; predict rebuilds the same encoder."),
    standardise_states: Optional[bool] = typer.Option(
        None, "--standardise-states/--no-standardise-states", help="Standardise the pooled layers' states per "
        "dimension before ALF (default on)."),
    # The names live in alfia.models.poolers.POOLERS; listing them here would import torch on `alfia --help`.
    pooler: Optional[str] = typer.Option(None, help="alf (the paper's Adaptive Layer Fusion), or an ablation "
                                                    "pooler (docs/model.md); a wrong name lists them all."),
    fusion_layers: Optional[int] = typer.Option(None, "--fusion-layers", help="N_f: top encoder layers fused."),
    no_gating: bool = typer.Option(False, "--no-gating", help="Normalised attention scores instead of the sigmoid gate."),
    lora_r: Optional[int] = typer.Option(None, "--lora-r"),
    lora_alpha: Optional[float] = typer.Option(None, "--lora-alpha"),
    lora_dropout: Optional[float] = typer.Option(None, "--lora-dropout"),
    lora_targets: Optional[str] = typer.Option(None, "--lora-targets", help="Comma-separated module names LoRA adapts."),
    attention_dropout: Optional[float] = typer.Option(
        None, "--attention-dropout", help="Dropout on the encoder's attention probabilities. 0 lets CPU training "
        "use fused attention (2.4x faster at 512 tokens)."),
    epochs: Optional[int] = typer.Option(None, help="Most epochs of the encoder phase (early stopping may end "
                                                    "sooner). Recipe cpu: 8; paper: 30."),
    rows_per_epoch: Optional[int] = typer.Option(None, "--rows-per-epoch", help="Training rows per epoch, so "
                                                 "validation comes that often (recipe cpu: 3000; paper: all)."),
    head_epochs: Optional[int] = typer.Option(None, "--head-epochs", help="Epochs of the head's warm start on "
                                              "cached frozen states before the encoder trains (0: none; the whole "
                                              "training with --train-layers 0). Recipe cpu: 3; paper: 0."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size"),
    lr: Optional[float] = typer.Option(None, help="AdamW peak learning rate of the trained encoder part (after "
                                       "linear warm-up). Recipe cpu: 2e-5; paper: 2e-4."),
    head_lr: Optional[float] = typer.Option(None, "--head-lr", help="Learning rate of the new ALF + head."),
    weight_decay: Optional[float] = typer.Option(None, "--weight-decay"),
    warmup_ratio: Optional[float] = typer.Option(None, "--warmup-ratio"),
    patience: Optional[int] = typer.Option(None, help="Epochs without a better val AUPRC before stopping."),
    max_length: Optional[int] = typer.Option(None, "--max-length", help="Tokens kept per text (default 512)."),
    pos_weight: Optional[str] = typer.Option(None, "--pos-weight", help="BCE pos_weight: a number, 'auto' or 'none'."),
    calibration: Optional[str] = typer.Option(None, help="Post-hoc calibrator fitted on val: platt, isotonic, none."),
    head_from: Optional[str] = typer.Option(None, "--head-from", help="A finished run (same texts and backbone) "
                                            "whose pooler + head start this one, instead of the warm start."),
    precision: Optional[str] = typer.Option(None, help="auto (bf16 where the hardware has it), fp32, bf16."),
    seed: Optional[int] = typer.Option(None),
    max_train_rows: Optional[int] = typer.Option(None, "--max-train-rows",
                                                 help="Seeded, stratified subsample of the train rows (quick runs)."),
    threads: Optional[int] = typer.Option(None, "--threads", help="torch CPU threads (default: the cores available)."),
    device: Optional[str] = typer.Option(None, help="auto, cpu, cuda, cuda:1, ..."),
    nproc: Optional[int] = typer.Option(None, "--nproc", min=1, help="Data-parallel processes on this machine "
                                        "(torchrun; gloo on CPUs, nccl on GPUs); --batch-size is per process."),
) -> None:
    """Train ALFIA on a text table; writes the run directory (see README, "Run directory").

    With no options it trains with the recipe for this machine (--recipe auto: cpu without a GPU, paper on one),
    the recipes behind BENCHMARKS.md."""
    # Options given on the command line (a flag's default is False, every other option's None).
    locals_given = {k: v for k, v in locals().items()
                    if k not in ("text_table", "out", "resume", "config", "recipe", "nproc") and v is not False}
    if nproc is not None and nproc > 1 and "WORLD_SIZE" not in os.environ:
        from alfia.training.distributed import launch

        raise typer.Exit(launch(nproc, _without_nproc(sys.argv[1:])))  # the same command, in nproc processes
    from alfia.training import TrainingInterrupted, train_run

    if resume is None and out is not None and not (out / "config.json").exists():  # a run there: train_run says so
        from alfia.outputs import check_output_dir

        check_output_dir(out, inputs=[text_table], hint="choose another --out")
    try:
        if resume is not None:
            if out is not None and out.resolve() != resume.resolve():
                raise AlfiaError("--resume RUN_DIR continues RUN_DIR; leave out --out or give the same folder")
            given = [name for name, value in locals_given.items() if value is not None]
            if given or recipe != "auto" or config is not None:
                raise AlfiaError(f"--resume continues the run with its own config.json; it does not take "
                                 f"{', '.join('--' + g.replace('_', '-') for g in given) or '--recipe/--config'}")
            summary = train_run(text_table, resume, resume=True, console=console)
        else:
            if out is None:
                raise AlfiaError("give --out RUN_DIR (or --resume RUN_DIR)")
            from alfia.training.run import configs_from

            lora = {k: v for k, v in (("r", lora_r), ("alpha", lora_alpha), ("dropout", lora_dropout),
                                      ("target_modules", lora_targets)) if v is not None}
            model_options = dict(backbone=backbone, n_fusion_layers=fusion_layers, pooler=pooler,
                                 attention_dropout=attention_dropout, max_length=max_length,
                                 gating=False if no_gating else None, train_layers=train_layers, finetune=finetune,
                                 prune_layers=prune_layers, standardise_states=standardise_states)
            train_options = dict(lr=lr, head_lr=head_lr, batch_size=batch_size, epochs=epochs, head_epochs=head_epochs,
                                 rows_per_epoch=rows_per_epoch, warmup_ratio=warmup_ratio, weight_decay=weight_decay,
                                 patience=patience, seed=seed, num_threads=threads, device=device,
                                 max_train_rows=max_train_rows, calibration=calibration, precision=precision,
                                 head_from=head_from)
            if pos_weight is not None:
                train_options["pos_weight"] = _pos_weight(pos_weight)
            text_table, model_config, train_config, recipe_name = configs_from(
                config, text_table, model_options, train_options, lora, recipe=recipe)
            summary = train_run(text_table, out, model_config, train_config, console=console, recipe=recipe_name)
    except TrainingInterrupted as e:
        where = e.checkpoint or "(no checkpoint yet)"
        console.print(f"[yellow]interrupted[/]: training state saved to {where}; continue with "
                      f"`alfia train --resume {resume or out}`", highlight=False)
        sys.exit(130)
    from alfia.evaluation.thresholds import DECISION_POINT, run_thresholds
    from alfia.training.distributed import world

    if not world().is_main:  # torchrun's other ranks: rank 0 reports
        return
    threshold = run_thresholds(summary.run_dir)[DECISION_POINT].threshold
    console.print(f"[green]done[/]: best epoch {summary.best_epoch} (val AUPRC {summary.best_val_auprc:.4f}), "
                  f"{summary.epochs_run} epochs{' (stopped early)' if summary.stopped_early else ''} in "
                  f"{summary.train_seconds:.0f} s; threshold {threshold:.4f} (max F1 on val). Run directory: "
                  f"{summary.run_dir}. Next: `alfia evaluate {summary.run_dir}`", highlight=False)


def _load(run_dir: Path, input_path: Path, threads: Optional[int], device: str):
    from alfia.inference import load_run, read_inference_input

    run = load_run(run_dir, device=device, num_threads=threads)
    return run, read_inference_input(input_path, run)


def _check_out(out: Path, run_dir: Path, input_path: Path, overwrite: bool, companions=()) -> list[Path]:
    """The output is none of the run's files nor the input (or its manifest); see alfia.outputs. Returns
    those inputs."""
    from alfia.cohorts.io import manifest_path
    from alfia.outputs import check_output

    run_files = list(run_dir.iterdir()) if run_dir.is_dir() else []
    inputs = [input_path, manifest_path(input_path), run_dir, *run_files]
    check_output(out, inputs=inputs, overwrite=overwrite, companions=companions)
    return inputs


@app.command()
def predict(
    run_dir: Path = typer.Argument(..., help="A trained ALFIA run directory."),
    input: Path = typer.Option(..., "--input", help="Cohort rows or a text table (.parquet/.csv), or a .txt "
                                                    "file with one text per line."),
    out: Optional[Path] = typer.Option(None, "--out", help="Predictions file (.parquet or .csv); default "
                                                           "INPUT stem + .predictions.parquet beside the input."),
    batch_size: int = typer.Option(64, "--batch-size"),
    threads: Optional[int] = typer.Option(None, "--threads"),
    device: str = typer.Option("auto"),
    overwrite: Overwrite = False,
) -> None:
    """Mortality probabilities and labels at the run's threshold; prints ms/sample and peak memory."""
    from alfia.atomic import write_atomic
    from alfia.inference import predict as run_predict

    out = out or input.with_name(input.name.split(".")[0] + ".predictions.parquet")
    _check_out(out, run_dir, input, overwrite)
    run, inputs = _load(run_dir, input, threads, device)
    preds, perf = run_predict(run, inputs, batch_size=batch_size)
    if out.suffix.lower() == ".csv":
        write_atomic(out, lambda p: preds.to_csv(p, index=False))
    else:
        write_atomic(out, lambda p: preds.to_parquet(p, index=False))
    console.print(f"{len(preds)} predictions -> {out} (threshold {run.threshold:.4f} from {run.threshold_source}; "
                  f"{int(preds['pred_label'].sum())} predicted deaths)", highlight=False)
    console.print(perf.describe(), highlight=False)


@app.command()
def embed(
    run_dir: Path = typer.Argument(..., help="A trained ALFIA run directory."),
    input: Path = typer.Option(..., "--input", help="Cohort rows or a text table (.parquet/.csv), or a .txt file; "
                                                    "with --cross-fit, the run's own text table."),
    out: Path = typer.Option(..., "--out", help="Embeddings Parquet: stay_id, split, label, alf_*, layer_weight_*."),
    cross_fit: Optional[int] = typer.Option(
        None, "--cross-fit", help="K: embed each training row with a model refitted (the run's recipe) on the "
        "other K-1 folds of the training split, so no training row's embedding saw its label (for ALFIA-boost); "
        "val/test rows get the run's own. Adds column embedding_source and OUT.manifest.json."),
    fold_seed: Optional[int] = typer.Option(None, "--fold-seed", help="Seed of the stratified folds "
                                            "(default: the run's training seed)."),
    fold_dir: Optional[Path] = typer.Option(None, "--fold-dir", help="Empty folder for the K fold runs "
                                            "(default: a temporary one)."),
    keep_folds: bool = typer.Option(False, "--keep-folds", help="Keep the fold runs instead of deleting them."),
    batch_size: int = typer.Option(64, "--batch-size"),
    threads: Optional[int] = typer.Option(None, "--threads"),
    device: str = typer.Option("auto"),
    overwrite: Overwrite = False,
) -> None:
    """L2-normalised fused (ALF) embeddings and layer weights, one row per stay (Algorithm 2)."""
    from alfia.atomic import write_atomic
    from alfia.cohorts.io import manifest_path
    from alfia.inference import embed as run_embed

    # OUT.manifest.json belongs to a cross-fitted file (below); a plain one replacing it must not keep it.
    companion = manifest_path(out)
    if cross_fit is None:
        if fold_seed is not None or fold_dir is not None or keep_folds:
            raise AlfiaError("--fold-seed, --fold-dir and --keep-folds go with --cross-fit K")
        _check_out(out, run_dir, input, overwrite, companions=[companion])
        run, inputs = _load(run_dir, input, threads, device)
        frame, perf = run_embed(run, inputs, batch_size=batch_size)
        write_atomic(out, lambda p: frame.to_parquet(p, index=False))
        companion.unlink(missing_ok=True)  # it described the cross-fitted embeddings this file replaced
        dims = sum(c.startswith("alf_") for c in frame.columns)
        console.print(f"{len(frame)} embeddings of dimension {dims} -> {out}", highlight=False)
        console.print(perf.describe(), highlight=False)
        return
    from alfia.api.crossfit import check_k, cross_fit_embeddings
    from alfia.outputs import check_output_dir

    check_k(cross_fit)
    inputs = _check_out(out, run_dir, input, overwrite, companions=[companion])
    if fold_dir is not None:  # never --overwrite: what is written there is deleted afterwards
        check_output_dir(fold_dir, inputs=[*inputs, out], flag="--fold-dir",
                         hint="give an empty or new --fold-dir (the fold runs are deleted unless --keep-folds)")
    result = cross_fit_embeddings(run_dir, input, cross_fit, seed=fold_seed, fold_dir=fold_dir,
                                  keep_folds=keep_folds, batch_size=batch_size, device=device, num_threads=threads,
                                  console=console, progress=True)
    result.write(out, exclusive=not overwrite)
    record = result.record()
    kept = f"; fold runs kept in {result.fold_runs[0].parents[1]}" if result.fold_runs else ""
    console.print(f"{len(result.frame)} embeddings -> {out} (+ {companion.name}): {record['n_out_of_fold']} "
                  f"training rows out-of-fold ({result.k} folds, seed {result.seed}), {record['n_full_run']} from "
                  f"the run itself; {result.seconds:.0f} s{kept}", highlight=False)
