"""`alfia lemof train` and `alfia lemof predict`: thin commands over alfia.multimodal (LeMoF)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from alfia.cli import Overwrite, app

lemof_app = typer.Typer(help="LeMoF: level-guided fusion of the text, hourly-series and tabular encoders "
                             "(docs/lemof.md).", no_args_is_help=True)
app.add_typer(lemof_app, name="lemof")

out = Console(emoji=False)
err = Console(emoji=False, stderr=True)

Text = Annotated[Path, typer.Option("--text", help="Text table (`alfia text encode`) of the stays.")]
Series = Annotated[Path, typer.Option("--series", help="Hourly table (`alfia series build`) of the same stays.")]
Cohort = Annotated[Path, typer.Option("--cohort", help="Cohort table of the same stays (labels, split, the row).")]


def _settings(pairs: list[str] | None) -> dict:
    from alfia.errors import AlfiaError

    settings = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep:
            raise AlfiaError(f"--series-set {pair!r}: expected KEY=VALUE (e.g. --series-set hidden_size=64)")
        try:
            settings[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            raise AlfiaError(f"--series-set {pair!r}: the value must be a number") from None
    return settings


@lemof_app.command("train")
def train(
    text: Text,
    series: Series,
    cohort: Cohort,
    out_dir: Annotated[Path, typer.Option("--out", help="Run directory to create.")],
    text_run: Annotated[Optional[Path], typer.Option("--text-run", help="A finished ALFIA run to reuse as the text "
                                                     "encoder (else one is trained into RUN/encoders/text).")] = None,
    series_run: Annotated[Optional[Path], typer.Option("--series-run", help="A finished series run to reuse (else "
                                                       "one is trained into RUN/encoders/series).")] = None,
    text_config: Annotated[Optional[Path], typer.Option("--text-config", help="Run config of the text encoder it "
                                                        "trains (as `alfia train --config`); default: the recipe.")] = None,
    series_model: Annotated[str, typer.Option(help="Series encoder it trains: bilstm-transformer, bilstm, "
                                                   "transformer, gru or tcn.")] = "bilstm-transformer",
    series_epochs: Annotated[int, typer.Option(help="Most epochs of the series encoder it trains.")] = 30,
    series_set: Annotated[Optional[list[str]], typer.Option("--series-set", help="Series model setting KEY=VALUE "
                                                            "(repeat).")] = None,
    epochs: Annotated[int, typer.Option(help="Most epochs of the fusion (and the tabular MLP).")] = 60,
    batch_size: Annotated[int, typer.Option(help="Stays per batch of the fusion.")] = 128,
    lr: Annotated[float, typer.Option(help="AdamW learning rate of the fusion.")] = 1e-3,
    patience: Annotated[int, typer.Option(help="Stop after this many epochs without a better val AUPRC.")] = 8,
    d_model: Annotated[int, typer.Option(help="Fusion width D (eq. 1).")] = 64,
    top_k: Annotated[Optional[int], typer.Option(help="Hard selection: only each modality's k heaviest levels "
                                                      "enter the attention (default: soft, by the weights).")] = None,
    no_global_heads: Annotated[bool, typer.Option("--no-global-heads", help="Without the global modality heads "
                                                  "(eqs. 6-7).")] = False,
    ablations: Annotated[bool, typer.Option("--ablations", help="Also train the ablations into RUN/ablations/.")] = False,
    seed: Annotated[int, typer.Option(help="Seed of every encoder it trains and of the fusion.")] = 42,
    threads: Annotated[Optional[int], typer.Option(help="torch CPU threads.")] = None,
) -> None:
    """Train LeMoF: the encoders it needs, their levels cached once, the fusion over them; a run directory."""
    from alfia.multimodal.fit import FitConfig
    from alfia.multimodal.model import LemofConfig
    from alfia.multimodal.run import EncoderSettings, train_lemof
    from alfia.outputs import check_output_dir

    # A run folder is never replaced (weeks of CPU may be in its encoders): it must be new or empty.
    check_output_dir(out_dir, inputs=[text, series, cohort, text_run, series_run],
                     hint="it holds files; choose another --out")
    config = LemofConfig(d_model=d_model, top_k=top_k, global_heads=not no_global_heads)
    fit_config = FitConfig(epochs=epochs, batch_size=batch_size, lr=lr, patience=patience, seed=seed, threads=threads)
    encoders = EncoderSettings(text_config=str(text_config) if text_config else None, series_model=series_model,
                               series_epochs=series_epochs, series_settings=_settings(series_set))
    result = train_lemof(text, series, cohort, out_dir, config=config, fit_config=fit_config, encoders=encoders,
                         text_run=text_run, series_run=series_run, ablations=ablations, console=err)
    out.print(f"wrote {out_dir}: best epoch {result['best_epoch']} of {result['epochs_run']}, val AUPRC "
              f"{result['best_val_auprc']:.4f}, fusion {result['fusion_train_seconds']:.1f} s "
              f"({result['seconds_per_epoch']:.2f} s/epoch)" + (f"; ablations in {out_dir}/ablations" if ablations else ""),
              highlight=False)


@lemof_app.command("predict")
def predict(
    run_dir: Annotated[Path, typer.Argument(help="Run directory from `alfia lemof train`.")],
    text: Text,
    series: Series,
    cohort: Cohort,
    out_path: Annotated[Optional[Path], typer.Option("--out", help="Output Parquet: stay_id, prob, pred_label "
                                                     "(+ split, label when the cohort has them).")] = None,
    external: Annotated[bool, typer.Option("--external", help="Score these stays as an external cohort: "
                                           "RUN/external/<cohort name>/, which `alfia evaluate RUN --external "
                                           "COHORT` reads.")] = False,
    n_boot: Annotated[int, typer.Option(help="Bootstrap resamples of --external's CIs.")] = 1000,
    overwrite: Overwrite = False,
) -> None:
    """Predict with a LeMoF run; stays must match across the three inputs by stay_id."""
    from alfia.errors import AlfiaError
    from alfia.multimodal.run import load_lemof, predict_lemof, read_inputs
    from alfia.outputs import check_output

    if out_path is None and not external:
        raise AlfiaError("give --out PRED.parquet, --external, or both")
    if out_path is not None:
        check_output(out_path, inputs=[text, series, cohort, run_dir], overwrite=overwrite)
    run = load_lemof(run_dir)
    inputs = read_inputs(text, series, cohort, variant=run.config.get("variant"))
    if external and not inputs.labelled:
        raise AlfiaError(f"{cohort}: --external needs the label of every stay")
    pred = predict_lemof(run, inputs)
    if out_path is not None:
        from alfia.atomic import write_atomic

        write_atomic(out_path, lambda p: pred.to_parquet(p, index=False))
        out.print(f"wrote {out_path}: {len(pred):,} stays", highlight=False)
    if external:
        from alfia.cohorts.schema import ID_COLUMN, OUTCOME_COLUMN
        from alfia.evaluation.external import external_name, write_external

        name = external_name(cohort)
        metrics = write_external(run_dir, name, pred[ID_COLUMN], pred[OUTCOME_COLUMN], pred["prob"], n_boot=n_boot,
                                 extra={"external_source": str(cohort)})
        out.print(f"wrote {run_dir}/external/{name}: AUROC {metrics['metrics']['auroc']['value']:.3f}, AUPRC "
                  f"{metrics['metrics']['auprc']['value']:.3f}", highlight=False)
