"""`alfia federated train`: FedAvg across hospitals with Flower (alfia.federated)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from alfia.cli import app
from alfia.cli.model import RECIPE_DEFAULTS

federated_app = typer.Typer(help="Federated training across hospitals (Flower, FedAvg): each site trains ALF + "
                                 "the head over a frozen encoder on its own rows.", no_args_is_help=True)
app.add_typer(federated_app, name="federated")

err = Console(emoji=False, stderr=True)


def _frozen(option: str) -> str:
    """The --help default of an option the frozen recipe sets (the recipe federated training uses)."""
    return str(RECIPE_DEFAULTS[option]["frozen"])


@federated_app.command("train")
def train(
    table: Path = typer.Argument(..., help="Text table (alfia encode) or cohort (encoded on the way), with the "
                                 "site column, split and hospital_expire_flag."),
    out: Path = typer.Option(..., "--out", help="Run directory to create (an ordinary ALFIA run directory)."),
    site_column: str = typer.Option("hospitalid", "--site-column", help="The column that says where a row lives "
                                    "(eICU: hospitalid; PhysioNet 2012: icu_type)."),
    rounds: int = typer.Option(30, "--rounds", min=1, help="Most FedAvg rounds (R)."),
    fraction: float = typer.Option(1.0, "--fraction", max=1.0, help="Share of the sites trained each round (client "
                                   "fraction; at least one site)."),
    local_epochs: int = typer.Option(1, "--local-epochs", min=1, help="Passes over a site's training rows per round."),
    patience: int = typer.Option(5, "--patience", min=1, help="Rounds without a lower federated val loss before stopping."),
    min_stays: int = typer.Option(200, "--min-stays", min=1, help="Training stays a site needs; smaller hospitals are "
                                  "grouped (or skipped with --no-group-small)."),
    min_deaths: int = typer.Option(5, "--min-deaths", min=1, help="Training deaths a site needs."),
    group_small: bool = typer.Option(True, "--group-small/--no-group-small", help="Pool small hospitals into "
                                     "groups that reach the minimums, or skip them."),
    group_by: Optional[str] = typer.Option(None, "--group-by", show_default="none", help="Pool small hospitals only within each value "
                                           "of this column (e.g. region)."),
    engine: str = typer.Option("inprocess", "--engine", help="inprocess (Flower's ServerApp, ClientApp and FedAvg "
                               "in this process) or ray (Flower's Simulation Engine)."),
    ray_cpus: Optional[int] = typer.Option(None, "--ray-cpus", min=1, show_default="all", help="CPUs the ray engine may use."),
    centralised: bool = typer.Option(False, "--centralised", help="Also train the same model on the same rows in "
                                     "one place (RUN/centralised/), the comparison."),
    backbone: Optional[str] = typer.Option(None, show_default="offline all-MiniLM-L6-v2",
                                            help="HF model id or local folder."),
    fusion_layers: Optional[int] = typer.Option(None, "--fusion-layers", min=1, show_default=_frozen("fusion_layers"), help="N_f: top encoder layers fused."),
    max_length: Optional[int] = typer.Option(None, "--max-length", min=8, show_default=_frozen("max_length"), help="Tokens kept per text."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", min=1, show_default=_frozen("batch_size")),
    head_lr: Optional[float] = typer.Option(None, "--lr", show_default=_frozen("head_lr"), help="Learning rate of a site's AdamW."),
    seed: Optional[int] = typer.Option(None, min=0, show_default=_frozen("seed")),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, show_default="the cores available", help="torch CPU threads."),
    device: Optional[str] = typer.Option(None, show_default=_frozen("device"), help="auto, cpu, cuda, ..."),
) -> None:
    """Train ALFIA by FedAvg across the sites of --site-column; writes an ordinary run directory (evaluate,
    compare, card and predict read it), federation.json (sites, rounds, bytes) and sites.csv (metrics per site)."""
    from alfia.federated import FederatedConfig, federated_train
    from alfia.federated.run import default_configs
    from alfia.outputs import check_output_dir

    check_output_dir(out, inputs=[table], hint="choose another --out")
    federated = FederatedConfig(site_column=site_column, rounds=rounds, local_epochs=local_epochs, fraction=fraction,
                                patience=patience, min_stays=min_stays, min_deaths=min_deaths,
                                group_small=group_small, group_by=group_by, engine=engine, ray_cpus=ray_cpus)
    model_config, train_config = default_configs(
        dict(backbone=backbone, n_fusion_layers=fusion_layers, max_length=max_length),
        dict(batch_size=batch_size, head_lr=head_lr, seed=seed, num_threads=threads, device=device))
    summary = federated_train(table, out, federated, model_config, train_config, centralised=centralised,
                              console=err)
    test = summary.site_table[summary.site_table["split"] == "test"]
    err.print(f"wrote {summary.run_dir}: {len(summary.sites.sites)} sites, best round {summary.best_round} of "
              f"{summary.rounds_run}{' (stopped early)' if summary.stopped_early else ''}, "
              f"{summary.bytes_per_round / 1e6:.2f} MB exchanged per round; per-site metrics in sites.csv"
              + (f" ({len(test)} sites with test rows)" if len(test) else "")
              + (f"; centralised comparison in {summary.centralised_dir}" if summary.centralised_dir else ""),
              highlight=False)
