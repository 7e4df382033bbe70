"""`alfia train`, `alfia predict`, `alfia embed`: thin commands over alfia.training, alfia.inference and
(`embed --cross-fit`) alfia.api.crossfit."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Optional

import typer

from alfia.cli import Overwrite, SEED_MAX, app, given_options, option_flag
from alfia.errors import AlfiaError
from alfia.progress import make_console, step

console = make_console(stderr=True)

# What `alfia train` uses when an option is left out, per recipe (alfia.training.recipes; None: see _NONE).
# Written out so that `alfia --help` need not import torch; tests/reliability/test_cli_contract.py checks every
# value against the recipes and the config dataclasses.
RECIPE_DEFAULTS: dict[str, dict[str, Any]] = {
    "backbone": {"cpu": None, "paper": None, "frozen": None},
    "train_layers": {"cpu": 2, "paper": "all", "frozen": 0},
    "finetune": {"cpu": "full", "paper": "lora", "frozen": "full"},
    "prune_layers": {"cpu": None, "paper": None, "frozen": None},
    "standardise_states": {"cpu": True, "paper": True, "frozen": True},
    "pooler": {"cpu": "alf", "paper": "alf", "frozen": "alf"},
    "fusion_layers": {"cpu": 4, "paper": 4, "frozen": 4},
    "attention_dropout": {"cpu": 0.0, "paper": None, "frozen": 0.0},
    "max_length": {"cpu": 512, "paper": 512, "frozen": 512},
    "lora_r": {"cpu": 16, "paper": 16, "frozen": 16},
    "lora_alpha": {"cpu": 16, "paper": 16, "frozen": 16},
    "lora_dropout": {"cpu": 0.05, "paper": 0.05, "frozen": 0.05},
    "lora_targets": {r: ["query", "key", "value", "output.dense"] for r in ("cpu", "paper", "frozen")},
    "epochs": {"cpu": 8, "paper": 30, "frozen": 8},
    "rows_per_epoch": {"cpu": 3000, "paper": None, "frozen": None},
    "head_epochs": {"cpu": 3, "paper": 0, "frozen": 30},
    "batch_size": {"cpu": 16, "paper": 16, "frozen": 16},
    "lr": {"cpu": 2e-05, "paper": 0.0002, "frozen": 0.0002},
    "head_lr": {"cpu": 0.0002, "paper": None, "frozen": 0.0002},
    "weight_decay": {"cpu": 0.01, "paper": 0.01, "frozen": 0.01},
    "warmup_ratio": {"cpu": 0.1, "paper": 0.1, "frozen": 0.1},
    "patience": {"cpu": 5, "paper": 5, "frozen": 5},
    "pos_weight": {"cpu": None, "paper": "auto", "frozen": None},
    "calibration": {"cpu": "platt", "paper": "platt", "frozen": "platt"},
    "head_from": {"cpu": None, "paper": None, "frozen": None},
    "precision": {"cpu": "auto", "paper": "auto", "frozen": "auto"},
    "seed": {"cpu": 42, "paper": 42, "frozen": 42},
    "max_train_rows": {"cpu": None, "paper": None, "frozen": None},
    "threads": {"cpu": None, "paper": None, "frozen": None},
    "device": {"cpu": "auto", "paper": "auto", "frozen": "auto"},
}
_NONE = {"backbone": "offline all-MiniLM-L6-v2", "prune_layers": "none", "attention_dropout": "the backbone's",
         "rows_per_epoch": "all", "head_lr": "the lr", "pos_weight": "none", "head_from": "none",
         "max_train_rows": "all", "threads": "the cores available"}
# CLI option -> the config field it sets ("lora.r": AlfiaConfig.lora.r); the rest have the field's name.
FIELDS = {"fusion_layers": "n_fusion_layers", "no_gating": "gating", "lora_r": "lora.r", "lora_alpha": "lora.alpha",
          "lora_dropout": "lora.dropout", "lora_targets": "lora.target_modules", "threads": "num_threads"}


def recipe_default(option: str) -> str:
    """The --help default of a train option: one value, or each recipe's."""
    def text(value) -> str:
        if value is None:
            return _NONE[option]
        return ",".join(value) if isinstance(value, list) else str(value)

    values = RECIPE_DEFAULTS[option]
    shown = {recipe: text(v) for recipe, v in values.items()}
    if len(set(shown.values())) == 1:
        return next(iter(shown.values()))
    return "; ".join(f"{recipe} recipe: {v}" for recipe, v in shown.items())


def _option(option: str, *flags: str, **kwargs) -> Any:
    return typer.Option(None, *flags, show_default=recipe_default(option), **kwargs)


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
    ctx: typer.Context,
    text_table: Optional[Path] = typer.Argument(None, help="Text table (from `alfia encode`): stay_id, split, "
                                                "hospital_expire_flag, text. Optional with --resume or --config."),
    out: Optional[Path] = typer.Option(None, "--out", help="Run directory to create.", show_default="none"),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue the interrupted run in RUN_DIR "
                                          "(no other option: the run's config.json has them).", show_default="none"),
    config: Optional[Path] = typer.Option(
        None, "--config", help="A run config (JSON with 'model' and 'train' sections, e.g. a run's config.json); "
        "the options below override it.", show_default="none"),
    recipe: str = typer.Option("auto", "--recipe", help="Starting values: cpu (top 2 layers fine-tuned over a "
                               "cached bottom), paper (joint LoRA on every layer, the paper's protocol), frozen "
                               "(ALF + head over a frozen encoder), auto (paper on a GPU, else cpu). Options "
                               "below override it."),
    backbone: Optional[str] = _option("backbone", "--backbone", help="HF model id or local folder."),
    train_layers: Optional[str] = _option(
        "train_layers", "--train-layers", help="What of the encoder trains: 0 (nothing; ALF + head over cached "
        "states), K (the top K layers, over a bottom cached once), or 'all'."),
    finetune: Optional[str] = _option("finetune", "--finetune", help="How the trained layers learn: lora or full "
                                      "(their weights)."),
    prune_layers: Optional[str] = _option(
        "prune_layers", "--prune-layers", help="Drop encoder layers before training: every-other, bottom:N, or "
        "0-based indices like 0,2. Saved with the run; predict rebuilds the same encoder."),
    standardise_states: Optional[bool] = _option(
        "standardise_states", "--standardise-states/--no-standardise-states", help="Standardise the pooled "
        "layers' states per dimension before ALF."),
    # The names live in alfia.models.poolers.POOLERS; listing them here would import torch on `alfia --help`.
    pooler: Optional[str] = _option("pooler", "--pooler", help="alf (the paper's Adaptive Layer Fusion), or an "
                                    "ablation pooler (docs/model.md); a wrong name lists them all."),
    fusion_layers: Optional[int] = _option("fusion_layers", "--fusion-layers", min=1,
                                           help="N_f: top encoder layers fused."),
    no_gating: bool = typer.Option(False, "--no-gating", help="Normalised attention scores instead of the sigmoid "
                                   "gate (alf only)."),
    lora_r: Optional[int] = _option("lora_r", "--lora-r", min=1, help="LoRA rank (--finetune lora)."),
    lora_alpha: Optional[float] = _option("lora_alpha", "--lora-alpha", help="LoRA scaling alpha."),
    lora_dropout: Optional[float] = _option("lora_dropout", "--lora-dropout", help="Dropout on LoRA's input."),
    lora_targets: Optional[str] = _option("lora_targets", "--lora-targets",
                                          help="Comma-separated module names LoRA adapts."),
    attention_dropout: Optional[float] = _option(
        "attention_dropout", "--attention-dropout", help="Dropout on the encoder's attention probabilities. 0 "
        "lets CPU training use fused attention (2.4x faster at 512 tokens)."),
    epochs: Optional[int] = _option("epochs", "--epochs", help="Most epochs of the encoder phase (early stopping "
                                    "may end sooner); with --train-layers 0 use --head-epochs."),
    rows_per_epoch: Optional[int] = _option("rows_per_epoch", "--rows-per-epoch", help="Training rows per epoch, "
                                            "so validation comes that often."),
    head_epochs: Optional[int] = _option("head_epochs", "--head-epochs", help="Epochs of the head's warm start on "
                                         "cached frozen states before the encoder trains (0: none; the whole "
                                         "training with --train-layers 0)."),
    batch_size: Optional[int] = _option("batch_size", "--batch-size", help="Training rows per batch."),
    lr: Optional[float] = _option("lr", "--lr", help="AdamW peak learning rate of the trained encoder part "
                                  "(after linear warm-up)."),
    head_lr: Optional[float] = _option("head_lr", "--head-lr", help="Learning rate of the new ALF + head."),
    weight_decay: Optional[float] = _option("weight_decay", "--weight-decay", help="AdamW weight decay."),
    warmup_ratio: Optional[float] = _option("warmup_ratio", "--warmup-ratio", help="Share of the steps of "
                                            "linear warm-up."),
    patience: Optional[int] = _option("patience", "--patience", help="Epochs without a better val AUPRC before "
                                      "stopping."),
    max_length: Optional[int] = _option("max_length", "--max-length", help="Tokens kept per text."),
    pos_weight: Optional[str] = _option("pos_weight", "--pos-weight", help="BCE pos_weight: a number, 'auto' or "
                                        "'none'."),
    calibration: Optional[str] = _option("calibration", "--calibration", help="Post-hoc calibrator fitted on val: "
                                         "platt, isotonic, none."),
    head_from: Optional[str] = _option("head_from", "--head-from", help="A finished run (same texts and backbone) "
                                       "whose pooler + head start this one, instead of the warm start."),
    precision: Optional[str] = _option("precision", "--precision", help="auto (bf16 where the hardware has it), "
                                       "fp32, bf16."),
    seed: Optional[int] = _option("seed", "--seed", min=0, max=SEED_MAX, help="Seed of the subsample, "
                                  "initialisation and shuffling."),
    max_train_rows: Optional[int] = _option("max_train_rows", "--max-train-rows",
                                            help="Seeded, stratified subsample of the train rows (quick runs)."),
    threads: Optional[int] = _option("threads", "--threads", help="torch CPU threads."),
    device: Optional[str] = _option("device", "--device", help="auto, cpu, cuda, cuda:1, ..."),
    keep_checkpoint: bool = typer.Option(False, "--keep-checkpoint", help="Keep checkpoint/ (the optimizer state, "
                                         "~4x the weights) after the run finishes; by default it is deleted then."),
    nproc: Optional[int] = typer.Option(None, "--nproc", min=1, show_default="1: this process", help="Data-parallel processes on this machine "
                                        "(torchrun; gloo on CPUs, nccl on GPUs); --batch-size is per process."),
) -> None:
    """Train ALFIA on a text table; writes the run directory (see README, "Run directory").

    With no options it trains with the recipe for this machine (--recipe auto: cpu without a GPU, paper on one),
    the recipes behind BENCHMARKS.md. An option the run would not use is an error."""
    given = [name for name in given_options(ctx) if name not in ("text_table", "out", "resume", "keep_checkpoint", "nproc")]
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
            if given:
                raise AlfiaError(f"--resume continues the run with its own config.json; it does not take "
                                 f"{', '.join(map(option_flag, given))}")
            summary = train_run(text_table, resume, resume=True, console=console, keep_checkpoint=keep_checkpoint)
        else:
            if out is None:
                raise AlfiaError("give --out RUN_DIR (or --resume RUN_DIR)")
            from alfia.training.applicable import refuse_inapplicable
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
            flags = {FIELDS.get(name, name): option_flag(name) for name in given}
            refuse_inapplicable(model_config, train_config, flags, flag_of=flags.get)
            summary = train_run(text_table, out, model_config, train_config, console=console, recipe=recipe_name,
                                keep_checkpoint=keep_checkpoint)
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


def _check_out(out: Path, run_dir: Path, input_path: Path, overwrite: bool, companions=(), inputs=()) -> list[Path]:
    """The output is none of the run's files nor the input (or its manifest, or other ``inputs``); see
    alfia.outputs. Returns those inputs."""
    from alfia.cohorts.io import manifest_path
    from alfia.outputs import check_output

    run_files = list(run_dir.iterdir()) if run_dir.is_dir() else []
    inputs = [input_path, manifest_path(input_path), run_dir, *run_files, *(p for p in inputs if p is not None)]
    check_output(out, inputs=inputs, overwrite=overwrite, companions=companions)
    return inputs


def _is_baseline_run(run_dir: Path) -> bool:
    from alfia.runs import read_config

    if not (run_dir / "config.json").is_file():
        return False  # load_run names what is missing
    from alfia.baselines.scoring import is_baseline_run

    return is_baseline_run(read_config(run_dir))


@app.command()
def predict(
    run_dir: Path = typer.Argument(..., help="A trained run directory: ALFIA (or its export), or one model of "
                                             "`alfia baselines` / `alfia boost`."),
    input: Path = typer.Option(..., "--input", help="Cohort rows or a text table (.parquet/.csv), or a .txt "
                                                    "file with one text per line (ALFIA runs). A baseline run "
                                                    "reads cohort rows; another variant is mapped into its own."),
    out: Optional[Path] = typer.Option(None, "--out", help="Predictions file (.parquet or .csv).",
                                       show_default="INPUT stem + .predictions.parquet beside the input"),
    embeddings: Optional[Path] = typer.Option(None, "--embeddings", show_default="none", help="ALFIA-boost / "
                                              "ALFIA-nn runs: the input's ALF embeddings (alfia embed ALFIA_RUN --input INPUT)."),
    batch_size: int = typer.Option(64, "--batch-size", min=1, help="Texts per forward pass."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="torch CPU threads.",
                                          show_default="the cores available"),
    device: str = typer.Option("auto", help="auto, cpu, cuda, cuda:1, ..."),
    overwrite: Overwrite = False,
) -> None:
    """Mortality probabilities and labels at the run's threshold; prints ms/sample and peak memory."""
    import time

    from alfia.atomic import write_atomic

    out = out or input.with_name(input.name.split(".")[0] + ".predictions.parquet")
    _check_out(out, run_dir, input, overwrite, inputs=[embeddings])
    started = time.perf_counter()
    if _is_baseline_run(run_dir):
        from alfia.baselines.scoring import predict_file

        preds, run = predict_file(run_dir, input, embeddings)
        perf = f"{len(preds)} stays in {time.perf_counter() - started:.2f} s (saved model, {run.run_dir})"
    else:
        from alfia.inference import predict as run_predict

        if embeddings is not None:
            raise AlfiaError("--embeddings goes with an ALFIA-boost / ALFIA-nn run; an ALFIA run reads texts")
        run, inputs = _load(run_dir, input, threads, device)
        with step(f"scoring {input.name}", len(inputs), console=console, unit="texts") as progress:
            preds, performance = run_predict(run, inputs, batch_size=batch_size, progress=progress)
        perf = performance.describe()
    if out.suffix.lower() == ".csv":
        write_atomic(out, lambda p: preds.to_csv(p, index=False))
    else:
        write_atomic(out, lambda p: preds.to_parquet(p, index=False))
    console.print(f"{len(preds)} predictions -> {out} (threshold {run.threshold:.4f} from {run.threshold_source}; "
                  f"{int(preds['pred_label'].sum())} predicted deaths)", highlight=False)
    console.print(_with_process_memory(perf), highlight=False)


def _with_process_memory(line: str) -> str:
    # One read of the process's high-water mark at the end; the call itself samples nothing (benchmarks do).
    from alfia.machine import process_peak_rss_mb

    return f"{line}; peak RSS {process_peak_rss_mb():.0f} MB (this process)"


@app.command()
def embed(
    run_dir: Path = typer.Argument(..., help="A trained ALFIA run directory."),
    input: Path = typer.Option(..., "--input", help="Cohort rows or a text table (.parquet/.csv), or a .txt file; "
                                                    "with --cross-fit, the run's own text table."),
    out: Path = typer.Option(..., "--out", help="Embeddings Parquet: stay_id, split, label, alf_*, layer_weight_*."),
    cross_fit: Optional[int] = typer.Option(
        None, "--cross-fit", show_default="none: the run's own embeddings for every row", help="K: embed each training row with a model refitted (the run's recipe) on the "
        "other K-1 folds of the training split, so no training row's embedding saw its label (for ALFIA-boost); "
        "val/test rows get the run's own. Adds column embedding_source and OUT.manifest.json."),
    fold_seed: Optional[int] = typer.Option(None, "--fold-seed", min=0, max=SEED_MAX,
                                            help="Seed of the stratified folds.",
                                            show_default="the run's training seed"),
    fold_dir: Optional[Path] = typer.Option(None, "--fold-dir", help="Empty folder for the K fold runs.",
                                            show_default="a temporary folder"),
    keep_folds: bool = typer.Option(False, "--keep-folds", help="Keep the fold runs instead of deleting them."),
    batch_size: int = typer.Option(64, "--batch-size", min=1, help="Texts per forward pass."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="torch CPU threads.",
                                          show_default="the cores available"),
    device: str = typer.Option("auto", help="auto, cpu, cuda, cuda:1, ..."),
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
        with step(f"embedding {input.name}", len(inputs), console=console, unit="texts") as progress:
            frame, perf = run_embed(run, inputs, batch_size=batch_size, progress=progress)
        write_atomic(out, lambda p: frame.to_parquet(p, index=False))
        companion.unlink(missing_ok=True)  # it described the cross-fitted embeddings this file replaced
        dims = sum(c.startswith("alf_") for c in frame.columns)
        console.print(f"{len(frame)} embeddings of dimension {dims} -> {out}", highlight=False)
        console.print(_with_process_memory(perf.describe()), highlight=False)
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
