"""`alfia series ...`: hourly tables, sequence models, hour-by-hour risk and transfer (alfia.series)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from alfia.cli import SEED_MAX, Overwrite, app, given_options, option_flag
from alfia.progress import make_console, step

series_app = typer.Typer(help="Time series: hourly first-24 h tables, BiLSTM+Transformer fusion and "
                              "reference models, hour-by-hour risk, transfer.", no_args_is_help=True)
build_app = typer.Typer(help="Build an hourly table (value, measured mask, time since last per variable).",
                        no_args_is_help=True)
series_app.add_typer(build_app, name="build")
app.add_typer(series_app, name="series")

out = make_console()
err = make_console(stderr=True)

Hours = Annotated[int, typer.Option(min=1, max=48, help="Window: hours 1..HOURS after ICU admission.")]
Seed = Annotated[int, typer.Option(min=0, max=SEED_MAX, help="Seed of the train/val/test split (as the cohort's).")]
Out = Annotated[Path, typer.Option("--out", help="Output hourly Parquet file (a manifest is written beside it).")]
Task = Annotated[str, typer.Option(help="mortality, los3 (ICU stay > 3 days) or los7 (> 7 days): the stays' label, "
                                        "as the cohort built with the same --task.")]


def _check_out(out_path: Path, inputs: list, overwrite: bool) -> None:
    """Before anything is read: the table and its manifest are no input, and replace a file only with --overwrite."""
    from alfia.outputs import check_table_output

    check_table_output(out_path, inputs=inputs, overwrite=overwrite)


def _write(frame, variables, report, out_path: Path, source: str, hours: int) -> None:
    from alfia.series.hourly import write_hourly

    manifest = write_hourly(frame, out_path, source=source, variables=variables, hours=hours,
                            extra={"report": report, **({"task": report["task"]} if "task" in report else {})})
    s = manifest.splits
    out.print(f"wrote {out_path}: {manifest.extra['n_stays']:,} stays x {hours} h, {len(variables)} variables; "
              + ", ".join(f"{k} {v['n']:,} ({v['deaths']:,} deaths)" for k, v in s.items() if k != "all")
              + f"; {report.get('excluded_after_window', 0):,} values after the window excluded", highlight=False)


@build_app.command("physionet2012")
def build_physionet2012(
    records: Annotated[list[Path], typer.Option(help="A record set (set-a.tar.gz or a folder). Repeat to combine.")],
    outcomes: Annotated[list[Path], typer.Option(help="An outcomes file (Outcomes-a.txt). Repeat, one per set.")],
    hours: Hours = 24,
    seed: Seed = 42,
    out_path: Out = Path("physionet2012_hourly.parquet"),
    overwrite: Overwrite = False,
    task: Task = "mortality",
) -> None:
    """Hourly table of PhysioNet 2012 stays (same stays and split as `alfia cohort physionet2012`)."""
    from alfia.series.sources import build_physionet2012_hourly

    _check_out(out_path, [*records, *outcomes], overwrite)
    with step("reading records", console=err, unit="records") as bar:
        frame, variables, report = build_physionet2012_hourly(
            records, outcomes, hours, seed=seed, task=task, progress=lambda done, total: bar.update(completed=done,
                                                                                         total=total or None))
    _write(frame, variables, report, out_path, "physionet2012", hours)


@build_app.command("yaib-eicu")
def build_yaib_eicu(
    yaib_dir: Annotated[Path, typer.Option("--yaib-dir", help="YAIB export folder (dyn/sta/outc.parquet).")],
    hours: Hours = 24,
    seed: Seed = 42,
    out_path: Out = Path("eicu_hourly.parquet"),
    overwrite: Overwrite = False,
) -> None:
    """Hourly table from YAIB's eICU export (ricu concepts mapped to ALFIA's variables by name and unit)."""
    from alfia.series.sources import build_yaib_eicu_hourly

    _check_out(out_path, [yaib_dir], overwrite)
    with step(f"reading {yaib_dir}", console=err):
        frame, variables, report = build_yaib_eicu_hourly(yaib_dir, hours, seed=seed)
    _write(frame, variables, report, out_path, "yaib-eicu", hours)


@build_app.command("mimic-iv")
def build_mimic_iv(
    mimic_dir: Annotated[Path, typer.Option("--mimic-dir", help="MIMIC-IV folder holding hosp/ and icu/.")],
    hours: Hours = 24,
    seed: Seed = 42,
    out_path: Out = Path("mimic_hourly.parquet"),
    overwrite: Overwrite = False,
    task: Task = "mortality",
) -> None:
    """Hourly table of the CW-24 MIMIC-IV stays: vitals, labs, urine output, vasopressor rates, ventilation."""
    from alfia.series.sources import build_mimic_iv_hourly

    _check_out(out_path, [mimic_dir], overwrite)
    with step(f"extracting from {mimic_dir}", console=err):
        frame, variables, report = build_mimic_iv_hourly(mimic_dir, hours, seed=seed, task=task)
    _write(frame, variables, report, out_path, "mimic-iv", hours)


# A model setting is a count (sizes, layers, heads, kernel, levels, hours) or a dropout; alfia.series.models.
_DROPOUT_SETTINGS = ("dropout",)


def _settings(pairs: list[str] | None) -> dict:
    """--set KEY=VALUE pairs, range-checked here: a size of 0 would reach torch as a traceback."""
    from alfia.errors import AlfiaError

    settings = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep:
            raise AlfiaError(f"--set {pair!r}: expected KEY=VALUE (e.g. --set hidden_size=64)")
        try:
            number = json.loads(value)
        except json.JSONDecodeError:
            raise AlfiaError(f"--set {pair!r}: the value must be a number") from None
        if isinstance(number, bool) or not isinstance(number, (int, float)):
            raise AlfiaError(f"--set {pair!r}: the value must be a number")
        if key == "input_size":
            raise AlfiaError(f"--set {pair!r}: input_size is the hourly table's feature count, set by training")
        if key in _DROPOUT_SETTINGS:
            if not 0 <= number < 1:
                raise AlfiaError(f"--set {pair!r}: {key} must be in [0, 1)")
        elif not (isinstance(number, int) and number >= 1):
            raise AlfiaError(f"--set {pair!r}: {key} is a size or a count and must be a whole number >= 1")
        settings[key] = number
    return settings


@series_app.command("train")
def train(
    ctx: typer.Context,
    hourly: Annotated[Path | None, typer.Argument(help="Hourly table from `alfia series build` (not with "
                                                       "--resume: the run records it).")] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Run directory to create.",
                                                 show_default="none")] = None,
    resume: Annotated[Path | None, typer.Option("--resume", help="Continue the interrupted run in RUN_DIR "
                                                "(no other option: the run's config.json has them).",
                                                show_default="none")] = None,
    model: Annotated[str, typer.Option(help="bilstm-transformer, bilstm, transformer, gru or tcn.")] = "bilstm-transformer",
    epochs: Annotated[int, typer.Option(min=1, help="Most epochs.")] = 30,
    batch_size: Annotated[int, typer.Option(min=1, help="Stays per batch.")] = 64,
    lr: Annotated[float, typer.Option(help="AdamW learning rate.")] = 1e-3,
    patience: Annotated[int, typer.Option(min=1, help="Stop after this many epochs without a better val AUPRC.")] = 5,
    seed: Annotated[int, typer.Option(min=0, max=SEED_MAX, help="Seed of initialisation and shuffling.")] = 42,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Model setting KEY=VALUE (repeat), e.g. "
                                                   "hidden_size=64.", show_default="the model's own")] = None,
    threads: Annotated[int | None, typer.Option(min=1, help="torch CPU threads.",
                                                show_default="the cores available")] = None,
    device: Annotated[str, typer.Option(help="auto (a GPU when there is one), cpu, cuda, cuda:1, ...")] = "auto",
) -> None:
    """Train a sequence model; select on val AUPRC; write a run directory `alfia evaluate` reads.

    `--resume RUN_DIR` continues an interrupted run, as `alfia train --resume` does."""
    from alfia.errors import AlfiaError
    from alfia.series.hourly import read_hourly
    from alfia.series.train import SeriesTrainConfig, train_series

    log = lambda m: err.print(m, highlight=False)  # noqa: E731
    if resume is not None:
        from alfia.atomic import read_json_object
        from alfia.runs import RunLayout

        given = [n for n in given_options(ctx) if n not in ("hourly", "out_dir", "resume")]
        if given:
            raise AlfiaError(f"--resume continues the run with its own config.json; it does not take "
                             f"{', '.join(option_flag(n.rstrip('_')) for n in given)}")
        if out_dir is not None and out_dir.resolve() != resume.resolve():
            raise AlfiaError("--resume RUN_DIR continues RUN_DIR; leave out --out or give the same folder")
        doc = read_json_object(RunLayout.of(resume).require().config)
        if not isinstance(doc.get("train"), dict):
            raise AlfiaError(f"{RunLayout.of(resume).config}: no 'train' section; not a series run")
        cfg = SeriesTrainConfig.from_dict(doc["train"])
        if hourly is not None and hourly.resolve() != Path(cfg.hourly).resolve():
            raise AlfiaError(f"{hourly}: --resume continues {resume}, which was trained on {cfg.hourly}; leave "
                             f"out the data argument or pass that file")
        summary = train_series(read_hourly(cfg.hourly), resume, cfg, resume=True, log=log)
        out_dir = resume
    else:
        if hourly is None or out_dir is None:
            raise AlfiaError("give an HOURLY table and --out RUN_DIR (or --resume RUN_DIR)")
        if not (out_dir / "config.json").exists():  # a run there: train_series names it and --resume
            from alfia.cohorts.io import manifest_path
            from alfia.outputs import check_output_dir

            check_output_dir(out_dir, inputs=[hourly, manifest_path(hourly)], hint="choose another --out")
        arrays = read_hourly(hourly)
        cfg = SeriesTrainConfig(model=model, model_settings=_settings(set_), epochs=epochs, batch_size=batch_size,
                                lr=lr, patience=patience, seed=seed, device=device, threads=threads,
                                hourly=str(hourly.resolve()))
        summary = train_series(arrays, out_dir, cfg, log=log)
    out.print(f"wrote {out_dir}: best epoch {summary['best_epoch']} of {summary['epochs_run']}, val AUPRC "
              f"{summary['val_auprc']:.4f}, {summary['n_parameters']:,} parameters", highlight=False)


@series_app.command("predict")
def predict(
    run_dir: Annotated[Path, typer.Argument(help="Run directory from `alfia series train`.")],
    input_path: Annotated[Path, typer.Option("--input", help="Hourly table to score.")],
    out_path: Annotated[Path, typer.Option("--out", help="Output Parquet: stay_id (hour), prob, and split and "
                                                         "hospital_expire_flag where the table has them.")],
    hourly: Annotated[bool, typer.Option("--hourly", help="Risk after each hour 1..H from hours observed by then.")] = False,
    overwrite: Overwrite = False,
) -> None:
    """Predict in-hospital mortality per stay, or hour by hour."""
    from alfia.atomic import write_atomic
    from alfia.cohorts.io import manifest_path
    from alfia.outputs import check_output
    from alfia.series.hourly import read_hourly
    from alfia.series.predict import load_series_run, predict_hourly, predict_stays

    run_files = list(run_dir.iterdir()) if run_dir.is_dir() else []
    check_output(out_path, inputs=[input_path, manifest_path(input_path), run_dir, *run_files], overwrite=overwrite)
    run = load_series_run(run_dir)
    arrays = read_hourly(input_path)
    with step(f"scoring {input_path.name}" + (" hour by hour" if hourly else ""), console=err):
        df, alignment = (predict_hourly if hourly else predict_stays)(run, arrays)
    if alignment.absent:
        err.print(f"[yellow]warning:[/] {len(alignment.absent)} model variable(s) absent from {input_path}, "
                  f"masked as never measured: {', '.join(sorted(alignment.absent))}", highlight=False)
    write_atomic(out_path, lambda tmp: df.to_parquet(tmp, index=False))
    out.print(f"wrote {out_path}: {len(df):,} rows", highlight=False)


@series_app.command("transfer")
def transfer(
    run_dir: Annotated[Path, typer.Argument(help="Source run (e.g. trained on PhysioNet 2012).")],
    input_path: Annotated[Path, typer.Option("--input", help="Target hourly table (e.g. YAIB eICU).")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for zero-shot/, fine-tuned/, transfer.json.")],
    epochs: Annotated[int, typer.Option(min=1, help="Most fine-tuning epochs.")] = 10,
    lr: Annotated[float, typer.Option(help="Fine-tuning learning rate.")] = 3e-4,
    patience: Annotated[int, typer.Option(min=1, help="Fine-tuning early-stopping patience.")] = 3,
    sensitivity: Annotated[float, typer.Option(min=0, max=1,
                                               help="Rule-out threshold: val sensitivity to reach.")] = 0.9,
    n_boot: Annotated[int, typer.Option(min=1, help="Bootstrap resamples for the CIs.")] = 1000,
    seed: Annotated[int, typer.Option(min=0, max=SEED_MAX, help="Seed of fine-tuning and bootstrap.")] = 42,
) -> None:
    """Zero-shot, then lightly fine-tuned, on another source; AUROC/AUPRC with CIs, rule-out NPV."""
    from alfia.cohorts.io import manifest_path
    from alfia.outputs import check_output_dir
    from alfia.series.hourly import read_hourly
    from alfia.series.transfer import transfer as run_transfer

    check_output_dir(out_dir, inputs=[run_dir, input_path, manifest_path(input_path)], hint="choose another --out")
    target = read_hourly(input_path)
    result = run_transfer(run_dir, target, out_dir, epochs=epochs, lr=lr, patience=patience,
                          target_sensitivity=sensitivity, n_boot=n_boot, seed=seed,
                          log=lambda m: err.print(m, highlight=False))

    from alfia.evaluation.format import ci_text

    def ci(m):
        return ci_text(m, style="dash")

    for name in ("zero_shot", "fine_tuned"):
        r = result[name]
        out.print(f"{name:>10}: AUROC {ci(r['auroc'])}  AUPRC {ci(r['auprc'])}  at rule-out threshold "
                  f"{r['threshold']:.4f}: sensitivity {ci(r['sensitivity'])}  NPV {ci(r['npv'])}", highlight=False)
    out.print(f"wrote {out_dir}/transfer.json; `alfia compare {out_dir}` compares the two runs", highlight=False)
