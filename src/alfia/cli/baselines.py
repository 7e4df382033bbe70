"""`alfia baselines` and `alfia boost`: thin commands over alfia.baselines."""

from __future__ import annotations

import contextlib
import warnings
from enum import StrEnum
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from alfia.cli import SEED_MAX, Overwrite, app
from alfia.errors import AlfiaError
from alfia.progress import make_console, step

out_console = make_console()
err_console = make_console(stderr=True)


class Engine(StrEnum):
    """--engine: which library trains the zoo."""

    native = "native"
    autogluon = "autogluon"


class Profile(StrEnum):
    """--profile: the measured configuration, or tiny models for smoke tests (same code path)."""

    full = "full"
    fast = "fast"


def _split_names(value: str | None) -> list[str] | None:
    if value is None:
        return None
    names = [n.strip() for n in value.split(",") if n.strip()]
    return names or None


def summary_table(table, title: str) -> Table:
    """Headline numbers for the terminal; summary.md / summary.csv carry every CI (and summary.csv the
    test-optimal F1/F2, which are no headline: their threshold is chosen on the split they score)."""
    t = Table(title=title, title_justify="left")
    t.add_column("Model", no_wrap=True)
    for col in ("Val AUPRC", "Test AUPRC", "95% CI", "AUROC", "95% CI ", "Train (s)"):
        t.add_column(col, justify="right", no_wrap=True)
    from alfia.evaluation.format import ci_entry, interval_text

    for _, r in table.iterrows():
        t.add_row(str(r["model"]), f"{r['val_auprc']:.3f}", f"{r['test_auprc']:.3f}",
                  interval_text(ci_entry(r, "test_auprc")),
                  f"{r['test_auroc']:.3f}", interval_text(ci_entry(r, "test_auroc")),
                  f"{r['train_time_s']:.1f}")
    return t


class _ModelProgress:
    """An ``alfia.progress`` step over the models; one printed line per finished model."""

    def __init__(self, total: int | None):
        self._steps = step("training the models", total, console=err_console, unit="models")

    def __enter__(self):
        self.progress = self._steps.__enter__()
        return self

    def __exit__(self, *exc):
        return self._steps.__exit__(*exc)

    def __call__(self, event: str, name: str, row: dict | None) -> None:
        if event == "start":
            self.progress.update(description=f"training {name}")
            if not err_console.is_terminal:
                self.progress.print(f"  training {name} ...")
        else:
            self.progress.update(completed=self.progress.completed + 1)
            self.progress.print(f"  {name}: val AUPRC {row['val_auprc']:.3f}, test AUPRC {row['test_auprc']:.3f}, "
                                f"{row['train_time_s']:.1f} s")


def _check_out_dir(out: Path, inputs: list[Path], overwrite: bool, resume: bool | None) -> None:
    """``resume`` None: the command cannot resume (boost)."""
    from alfia.cohorts.io import manifest_path
    from alfia.outputs import check_output_dir

    hint = None if resume is None else ("pass --resume to keep the models that finished there, --overwrite "
                                        "to retrain them all, or choose another --out")
    check_output_dir(out, inputs=[*inputs, *map(manifest_path, inputs)], overwrite=overwrite,
                     allow_existing=bool(resume), hint=hint)


def _read_externals(paths: list[Path] | None, embeddings: list[Path] | None = None):
    """--external cohorts (and, for alfia boost, their --external-embeddings, in the same order)."""
    from alfia.baselines.runner import ExternalInput
    from alfia.cohorts.io import read_cohort, read_table
    from alfia.evaluation.external import external_names

    paths = list(paths or [])
    if embeddings is not None and len(embeddings) != len(paths):
        raise AlfiaError(f"give one --external-embeddings file per --external cohort, in the same order "
                         f"({len(paths)} cohort(s), {len(embeddings)} embeddings file(s))")
    out = []
    for i, (path, name) in enumerate(zip(paths, external_names(paths))):
        df, _, variant = read_cohort(path, csv=False)
        emb = read_table(embeddings[i])[0] if embeddings is not None else None
        out.append(ExternalInput(name, df, variant, str(path), emb))
    return out


def _print_external(out: Path) -> None:
    from alfia.baselines.runner import EXTERNAL_SUMMARY_FILE

    path = out / EXTERNAL_SUMMARY_FILE
    if not path.exists():
        return
    import pandas as pd

    from alfia.evaluation.external import headline, read_shift
    from alfia.evaluation.format import ci_entry, interval_text

    table = pd.read_csv(path)
    for name, part in table.groupby("external", sort=False):
        t = Table(title=f"External cohort {name}: {int(part['n'].iloc[0])} stays, "
                        f"{int(part['n_pos'].iloc[0])} deaths — scored whole", title_justify="left")
        for col in ("Model", "AUPRC", "95% CI", "AUROC", "95% CI ", "Internal test AUPRC"):
            t.add_column(col, justify="left" if col == "Model" else "right", no_wrap=True)
        for _, r in part.iterrows():
            t.add_row(str(r["model"]), f"{r['auprc']:.3f}", interval_text(ci_entry(r, "auprc")),
                      f"{r['auroc']:.3f}", interval_text(ci_entry(r, "auroc")),
                      f"{r['internal_test_auprc']:.3f}")
        out_console.print(t)
        shift = read_shift(out / str(part["model"].iloc[0]), str(name))
        if shift is not None:
            out_console.print(f"  shift: {headline(shift)}", highlight=False)
    out_console.print(f"External results in {out}/<Model>/external/<name>/ and {path}", highlight=False)


@app.command()
def baselines(
    cohort: Path = typer.Argument(None, help="Cohort Parquet file with a train/val/test 'split' column."),
    out: Path = typer.Option(None, "--out", "-o", help="Output folder: one run directory per model.",
                             show_default="none"),
    models: str = typer.Option(None, "--models", help="Comma-separated model names. See --list-models.",
                               show_default="all + WeightedEnsemble"),
    engine: Engine = typer.Option(Engine.native, help="native (scikit-learn, LightGBM, XGBoost, "
                                  "CatBoost, torch) or autogluon (pip install .\\[autogluon])."),
    seed: int = typer.Option(42, min=0, max=SEED_MAX, help="Seed of every model and of the bootstrap."),
    profile: Profile = typer.Option(Profile.full, help="full (measured configuration) or fast "
                                    "(tiny models, for smoke tests)."),
    n_boot: int = typer.Option(1000, "--n-boot", min=1, help="Bootstrap resamples for the 95% CIs."),
    jobs: int = typer.Option(None, "--jobs", min=1, help="Threads per model.", show_default="the machine's cores"),
    presets: str = typer.Option("medium_quality", help="AutoGluon presets (--engine autogluon)."),
    time_limit: float = typer.Option(None, "--time-limit", min=1,
                                     help="AutoGluon time limit in seconds.", show_default="none"),
    list_models: bool = typer.Option(False, "--list-models", help="List the model names and exit."),
    resume: bool = typer.Option(False, "--resume", help="Keep models that already finished in OUT with "
                                "the same settings; train the rest (the ensemble is always rebuilt)."),
    external: list[Path] = typer.Option(None, "--external", show_default="none", help="External cohort (repeatable), scored "
                                        "whole by every model after training; another CW-24 variant is "
                                        "mapped into this one. Writes OUT/<Model>/external/<name>/. With "
                                        "--resume, models that finished score it with their saved model "
                                        "(OUT/<Model>/model/), without refitting."),
    overwrite: Overwrite = False,
) -> None:
    """Train the tabular baseline zoo of the paper's Table 3 on the cohort's own split.

    Model selection and early stopping use validation AUPRC; preprocessing is fitted on train only.
    Writes OUT/<Model>/{config.json, predictions.parquet, metrics.json, figures/, model/} and
    OUT/summary.csv/.md; `alfia predict OUT/<Model> --input COHORT` scores new stays with the saved model.
    For ALFIA-boost / ALFIA-nn on ALF embeddings use `alfia boost`.
    """
    from alfia.baselines.registry import ENSEMBLE_NAME, MODELS, resolve_models
    from alfia.cohorts.io import read_cohort

    if list_models:
        t = Table(title="Baseline models", title_justify="left")
        for col in ("Name", "Library", "What"):
            t.add_column(col)
        for entry in MODELS.values():
            t.add_row(entry.name, entry.library, entry.description)
        t.add_row(ENSEMBLE_NAME, "alfia", "greedy ensemble selection (Caruana et al. 2004) on val AUPRC")
        out_console.print(t)
        return
    if cohort is None or out is None:
        raise AlfiaError("alfia baselines needs a COHORT file and --out DIR (see --help)")
    names = resolve_models(_split_names(models))
    _check_out_dir(out, [cohort], overwrite, resume)
    df, _, variant = read_cohort(cohort, csv=False)
    externals = _read_externals(external)
    if externals and engine != Engine.native:
        raise AlfiaError("--external works with --engine native only")
    if engine == Engine.autogluon:
        from alfia.baselines.engine_autogluon import run_autogluon

        with _ModelProgress(None) as progress:
            table = run_autogluon(df, variant, out, _split_names(models), seed, n_boot=n_boot,
                                  presets=presets, time_limit=time_limit, callback=progress,
                                  source=str(cohort), n_jobs=jobs, overwrite=overwrite)
    else:
        from alfia.baselines.runner import run_baselines

        with _ModelProgress(len(names)) as progress:
            table = run_baselines(df, variant, out, names, seed, profile=profile.value, n_boot=n_boot,
                                  callback=progress, source=str(cohort), resume=resume,
                                  externals=externals, n_jobs=jobs, overwrite=overwrite)
    out_console.print(summary_table(
        table, f"{cohort.name} ({variant}) — test split, sorted by AUPRC; {n_boot} bootstrap resamples"))
    out_console.print(f"Run directories and summary.csv/summary.md in {out}", highlight=False)
    if externals:
        _print_external(out)


@contextlib.contextmanager
def _in_sample_warnings_printed():
    """Print run_boost's InSampleEmbeddingsWarning as one named line when it is raised (before training);
    every other warning goes where it went before."""
    from alfia.baselines.boost import InSampleEmbeddingsWarning

    with warnings.catch_warnings():
        warnings.simplefilter("always", InSampleEmbeddingsWarning)
        shown = warnings.showwarning

        def show(message, category, *args, **kwargs):
            if issubclass(category, InSampleEmbeddingsWarning):
                # One whole line, never wrapped inside a path (logs and terminals alike).
                err_console.print(f"[yellow]warning (in-sample embeddings):[/] {escape(str(message))}",
                                  highlight=False, soft_wrap=True)
            else:
                shown(message, category, *args, **kwargs)

        warnings.showwarning = show
        yield


@app.command()
def boost(
    cohort: Path = typer.Argument(..., help="Cohort Parquet (or a text table that keeps the predictor "
                                  "columns) with the same stays and split as the embeddings."),
    embeddings: Path = typer.Option(..., "--embeddings", "-e", help="Parquet from `alfia embed` "
                                    "(stay_id, alf_0..alf_{d-1})."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder: one run directory per learner."),
    learner: str = typer.Option("lightgbm,catboost,mlp", "--learner", help="Comma-separated: lightgbm "
                                "and/or catboost (ALFIA-boost), mlp (ALFIA-nn)."),
    seed: int = typer.Option(42, min=0, max=SEED_MAX, help="Seed of every model and of the bootstrap."),
    profile: Profile = typer.Option(Profile.full, help="full or fast (tiny models, for smoke tests)."),
    n_boot: int = typer.Option(1000, "--n-boot", min=1, help="Bootstrap resamples for the 95% CIs."),
    jobs: int = typer.Option(None, "--jobs", min=1, help="Threads per model.", show_default="the machine's cores"),
    layer_weights: bool = typer.Option(False, "--layer-weights/--no-layer-weights",
                                       help="Also use the per-stay ALF layer weights as features."),
    external: list[Path] = typer.Option(None, "--external", show_default="none", help="External cohort "
                                        "(repeatable), scored whole after training; needs --external-embeddings."),
    external_embeddings: list[Path] = typer.Option(None, "--external-embeddings", show_default="none",
                                                   help="ALF embeddings "
                                                   "of each --external cohort, same order (alfia embed "
                                                   "RUN_DIR --input EXTERNAL --out EMB.parquet)."),
    overwrite: Overwrite = False,
) -> None:
    """ALFIA-boost / ALFIA-nn: ALF embeddings + original predictors -> LightGBM, CatBoost or the MLP.

    The embeddings must come from an ALFIA run trained on this cohort's training split, cross-fitted
    (`alfia embed RUN_DIR --input COHORT_TEXT --out EMB.parquet --cross-fit 5`); in-sample embeddings of the
    training rows leak their labels and get a warning. Labels in the embeddings file are never used as
    features. Output: OUT/ALFIA-boost-LightGBM/, OUT/ALFIA-boost-CatBoost/, OUT/ALFIA-nn/.
    """
    from alfia.baselines.boost import resolve_learners, run_boost
    from alfia.cohorts.io import read_cohort, read_table

    keys = resolve_learners(_split_names(learner))
    _check_out_dir(out, [cohort, embeddings], overwrite, None)
    df, _, variant = read_cohort(cohort, csv=False)
    emb, _ = read_table(embeddings)
    externals = _read_externals(external, list(external_embeddings or []))
    with _in_sample_warnings_printed(), _ModelProgress(len(keys)) as progress:
        table = run_boost(df, emb, variant, out, keys, seed, profile=profile.value, n_boot=n_boot,
                          include_layer_weights=layer_weights, callback=progress,
                          cohort_source=str(cohort), embeddings_source=str(embeddings),
                          externals=externals, n_jobs=jobs, overwrite=overwrite)
    out_console.print(summary_table(table, f"ALFIA-boost / ALFIA-nn on {cohort.name} ({variant}) — "
                                           f"test split, sorted by AUPRC"))
    out_console.print(f"Run directories and summary.csv/summary.md in {out}; compare them with the "
                      f"baselines and ALFIA using `alfia compare`.", highlight=False)
    if externals:
        _print_external(out)
