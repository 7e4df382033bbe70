"""``alfia federated train``: a text table (or a cohort, encoded on the way) in, a complete ALFIA run directory out,
trained with Flower's FedAvg across the sites of a site column (``alfia.federated.sites``).

The model each site trains is ALF + ACH over the frozen encoder's cached top-N_f states: ALFIA with
``train_layers=0`` (the ``frozen`` recipe). Of the candidates it fits best: the pattern of "Federated Learning
for ICD Classification with Lightweight Models and Pretrained Embeddings" (frozen public text encoder, a small
classifier per site, FedAvg) with ALFIA's own pooler and head; only ALF + ACH (3.48 M parameters with MiniLM,
13.9 MB a message) travel; and the global model *is* an ALFIA run, so predict, export, serve, evaluate,
compare and card read it with no new code. The MLP over ``alfia embed`` embeddings needs an ALFIA run trained on
pooled rows first (no longer federated), and the zoo's gradient-boosted trees have no weights to average.

1. read and check the table, plan the sites, leave out the skipped sites' rows;
2. the frozen encoder's states of every row, once: in a federation each site computes its own with the same
   public encoder; the simulation computes them in one pass and gives each site its rows;
3. Flower (``alfia.federated.flower``): the standardisation query, then FedAvg rounds;
4. ``training.run.finish_run`` with the best round's weights: the val/test predictions (each site scores its own
   rows with the global model; here they are pooled), the calibrator fitted on val, the thresholds;
5. ``sites.csv`` (the global model's metrics per site) and ``federation.json``; with ``centralised``, the same
   model from the same initial weights trained on the same rows in one place (``RUN/centralised/``).
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console

from alfia import __version__
from alfia.atomic import sha256_file, write_atomic, write_json_atomic, write_text_atomic
from alfia.cohorts.io import read_table
from alfia.cohorts.schema import ID_COLUMN, SITE_COLUMN, SPLIT_COLUMN, SPLITS
from alfia.cohorts.validate import split_for_training
from alfia.config_base import JsonConfig, require
from alfia.errors import AlfiaError
from alfia.federated.sites import SitePlan, plan_sites
from alfia.outputs import hold_output_dir
from alfia.progress import step
from alfia.runs import RunLayout, read_predictions
from alfia.text.table import TEXT_COLUMN, check_texts
from alfia.training.config import TrainConfig
from alfia.training.recipes import RECIPES

RECIPE = "frozen"  # the model of every site: ALF + ACH over a frozen encoder (alfia.training.recipes)


@dataclass
class FederatedConfig(JsonConfig):
    """How the federation runs. The model is ``AlfiaConfig`` (train_layers 0) and each site's optimiser
    ``TrainConfig`` (``head_lr``, ``batch_size``, ``weight_decay``, ``grad_clip``, ``pos_weight``, ``seed``).

    ``rounds``: most FedAvg rounds; ``patience``: rounds without a lower federated val loss before stopping.
    ``fraction``: the share of sites trained each round (at least one). ``local_epochs``: passes over a site's
    training rows per round. ``min_stays`` / ``min_deaths``: training stays and deaths a site needs; smaller
    ones are grouped (``group_small``, within ``group_by`` when given) or skipped. ``engine``: "inprocess" or
    "ray" (Flower's Simulation Engine); ``ray_cpus``: CPUs Ray may use (None: the machine's)."""

    site_column: str = SITE_COLUMN
    rounds: int = 30
    local_epochs: int = 1
    fraction: float = 1.0
    patience: int = 5
    min_stays: int = 200
    min_deaths: int = 5
    group_small: bool = True
    group_by: str | None = None
    engine: str = "inprocess"
    ray_cpus: int | None = None

    def validate(self) -> None:
        from alfia.federated.flower import ENGINES

        for name in ("rounds", "local_epochs", "patience", "min_stays", "min_deaths"):
            require(getattr(self, name) >= 1, f"FederatedConfig: {name} must be >= 1")
        require(0 < self.fraction <= 1, "FederatedConfig: fraction must be in (0, 1]")
        require(self.engine in ENGINES, f"FederatedConfig: engine must be one of {', '.join(ENGINES)}")
        require(self.ray_cpus is None or self.ray_cpus >= 1, "FederatedConfig: ray_cpus must be >= 1")


@dataclass
class FederatedSummary:
    run_dir: Path
    sites: SitePlan
    best_round: int
    rounds_run: int
    stopped_early: bool
    bytes_per_round: float  # mean over the rounds run, both directions
    site_table: pd.DataFrame
    centralised_dir: Path | None = None


def default_configs(model_options: dict | None = None, train_options: dict | None = None):
    """(AlfiaConfig, TrainConfig) of the ``frozen`` recipe with the options that are not None on top."""
    from alfia.models import AlfiaConfig

    recipe = RECIPES[RECIPE]
    model_doc = {**recipe.model, **{k: v for k, v in (model_options or {}).items() if v is not None}}
    train_doc = {**recipe.train, **{k: v for k, v in (train_options or {}).items() if v is not None}}
    return AlfiaConfig.from_dict(model_doc, source="options: model"), TrainConfig.from_dict(train_doc)


def read_rows(path: Path) -> tuple[pd.DataFrame, Any, str]:
    """The table as text rows: a text table as it is, a cohort encoded with its variant's template.
    Returns (rows, manifest, kind)."""
    df, manifest = read_table(path)
    if TEXT_COLUMN in df.columns or (manifest is not None and manifest.kind == "text"):
        check_texts(df, str(path))
        return df, manifest, "text"
    from alfia.cohorts.io import infer_variant
    from alfia.text.encode import encode_cohort

    return encode_cohort(df, infer_variant(df, manifest, path), source=str(path)), manifest, "cohort"


def _check_configs(model_config, federated: FederatedConfig) -> None:
    if model_config.trains_encoder:
        raise AlfiaError(f"federated training trains ALF + the head over a frozen encoder: train_layers must be 0, "
                         f"got {model_config.train_layers!r}")


def federated_train(data_path: str | os.PathLike, out_dir: str | os.PathLike,
                    federated: FederatedConfig | None = None, model_config=None,
                    train_config: TrainConfig | None = None, *, centralised: bool = False,
                    console: Console | None = None, progress: bool = True) -> FederatedSummary:
    """Train ALFIA by FedAvg across the sites of ``federated.site_column``; write the run directory ``out_dir``."""
    from alfia.models import build_model
    from alfia.runtime import compute_frozen_states, pad_token_id_of, resolve_device, seed_everything, set_threads
    from alfia.runtime import tokenize_table
    from alfia.training.run import RunPlan, describe_encoder_training, model_name_for

    console = console or Console(emoji=False, stderr=True)
    federated = federated or FederatedConfig()
    if model_config is None or train_config is None:
        default_model, default_train = default_configs()
        model_config, train_config = model_config or default_model, train_config or default_train
    _check_configs(model_config, federated)
    layout = RunLayout.of(out_dir)
    if layout.config.exists():
        raise AlfiaError(f"{layout.root}: already holds a run (config.json exists); choose another --out")
    path = Path(data_path).resolve()
    source = str(path)
    df, manifest, kind = read_rows(path)
    split_for_training(df, source, need_test=False)  # labels and splits checked before the sites read them
    sites = plan_sites(df, federated.site_column, min_stays=federated.min_stays, min_deaths=federated.min_deaths,
                       group_small=federated.group_small, group_by=federated.group_by, source=source)
    for line in sites.messages:
        console.print(line, highlight=False)
    kept = df.assign(_site=sites.row_site)[sites.row_site >= 0].reset_index(drop=True)
    parts = split_for_training(kept, f"{source} (its sites' rows)", need_test=False)
    parts = {s: p for s, p in parts.items() if not p.empty}

    device = resolve_device(train_config.device)
    set_threads(train_config.num_threads)
    seed_everything(train_config.seed)
    model = build_model(model_config)
    initial_state = {k: v.clone() for k, v in model.fusion_head_state().items()}  # the centralised run starts here too
    data = {s: tokenize_table(p, model.tokenizer, model.max_length) for s, p in parts.items()}
    config_doc: dict[str, Any] = {
        "model_name": f"{model_name_for(model_config)}, federated",
        "model_type": "alfia",
        "alfia_version": __version__,
        "recipe": RECIPE,
        "model": model_config.to_dict(),
        "train": train_config.to_dict(),
        "data": {"path": source, "sha256": sha256_file(path), "kind": kind,
                 "template": manifest.extra.get("template") if manifest is not None else None,
                 "source": manifest.source if manifest is not None else None,
                 "variant": manifest.variant if manifest is not None else None,
                 "n_rows": {s: int(len(p)) for s, p in parts.items()}},
        "federated": {**federated.to_dict(), "sites": sites.to_dict(),
                      "selection": "the round with the lowest federated val loss (the row-weighted mean of the "
                                   "sites' val BCE = the pooled val BCE)",
                      "engine_detail": _engine_detail(federated.engine)},
        "encoder": describe_encoder_training(model),
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    plan = RunPlan(layout, model_config, train_config, config_doc, parts, None, device, console, progress, (),
                   time.perf_counter())
    with hold_output_dir(layout.root):
        if layout.config.exists():
            raise AlfiaError(f"{layout.root}: already holds a run (config.json exists); choose another --out")
        write_json_atomic(layout.config, config_doc)
        with step(f"caching the frozen encoder's top {model.n_pooled_layers} layer states",
                  sum(len(d) for d in data.values()), console=console, unit="rows") as progress:
            states = {s: compute_frozen_states(model, d, progress=progress, **plan.cache_options(model))
                      for s, d in data.items()}
        del data
        result, federation = _federate(model, plan, states, parts, sites, federated)
        summary_rounds = result.history
        _finish(model, plan, states, result, federation)
        table = site_table(layout.root, sites, parts)
        central_dir = None
        if centralised:
            central_dir = train_centralised(plan, states, initial_state, federation.standardisation, federated)
            table = _add_centralised_columns(table, central_dir, sites, parts)
        write_atomic(layout.sites, lambda p: table.to_csv(p, index=False))
    bytes_total = [r["bytes_down"] + r["bytes_up"] for r in summary_rounds]
    return FederatedSummary(layout.root, sites, result.best_epoch, len(summary_rounds), result.stopped_early,
                            float(np.mean(bytes_total)) if bytes_total else 0.0, table, central_dir)


def _engine_detail(engine: str) -> str:
    if engine == "ray":
        return "Flower's Simulation Engine (flwr.simulation.run_simulation, Ray backend)"
    return ("Flower ServerApp/ClientApp and FedAvg in one process (alfia.federated.flower.InProcessGrid, a Flower "
            "Grid that hands each Message to the ClientApp)")


def _site_states(states: dict, parts: dict, sites: SitePlan) -> dict[int, dict]:
    out = {}
    for i in range(len(sites.sites)):
        out[i] = {s: states[s].subset(np.flatnonzero(parts[s]["_site"].to_numpy() == i))
                  for s in ("train", "val") if s in states}
    return out


def _federate(model, plan, states: dict, parts: dict, sites: SitePlan, federated: FederatedConfig):
    import json

    import torch

    from alfia.federated.flower import LocalSettings, ServerSettings, SiteData, model_arrays, run_federation
    from alfia.machine import resolve_jobs
    from alfia.training.loop import resolve_pos_weight
    from alfia.training.state import TrainResult

    config, console = plan.train_config, plan.console
    pos_weight = resolve_pos_weight(config, states["train"].labels)  # "auto": the pooled ratio, from site counts
    local = LocalSettings(local_epochs=federated.local_epochs, lr=config.head_lr_value, batch_size=config.batch_size,
                          eval_batch_size=config.eval_batch_size, weight_decay=config.weight_decay,
                          grad_clip=config.grad_clip, pos_weight=pos_weight, bucket_size=config.bucket_size,
                          seed=config.seed)
    settings = ServerSettings(rounds=federated.rounds, fraction=federated.fraction, patience=federated.patience,
                              local=local, standardise=model.config.standardise_states)
    site_data = SiteData(_site_states(states, parts, sites), model, model.config.to_dict(),
                         device=str(plan.device), threads=1)

    def set_standardisation(total, squares, tokens):
        model.set_state_standardisation(torch.as_tensor(total), torch.as_tensor(squares), int(tokens))
        return model_arrays(model)

    history: list[dict] = []

    def on_round(record: dict) -> None:
        history.append(record)  # history.jsonl after every round, as alfia train writes it after every epoch
        write_text_atomic(plan.layout.history, "".join(json.dumps(r) + "\n" for r in history))
        if plan.progress:
            mark = " [green]best[/]" if record["best"] else ""
            console.print(f"round {record['round']:>3}/{federated.rounds}  sites {record['sites_trained']}  train loss "
                          f"{record['train_loss']:.4f}  federated val loss {record['val_loss']:.4f}  "
                          f"{(record['bytes_down'] + record['bytes_up']) / 1e6:.1f} MB  {record['seconds']:.0f}s{mark}",
                          highlight=False)

    console.print(f"FedAvg over {len(sites.sites)} sites, up to {federated.rounds} rounds of {federated.local_epochs} "
                  f"local epoch(s), {federated.fraction:g} of the sites a round ({federated.engine} engine) -> "
                  f"{plan.layout.root}", highlight=False)
    scratch = plan.layout.root / ".federated-sites"
    try:
        federation = run_federation(site_data, model_arrays(model), settings, engine=federated.engine,
                                    set_standardisation=set_standardisation, on_round=on_round,
                                    ray_cpus=resolve_jobs(federated.ray_cpus), scratch=scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    from alfia.federated.flower import load_arrays

    load_arrays(model, federation.best_arrays)
    result = TrainResult(federation.best_round, _val_auprc(model, plan, states), federation.history,
                         stopped_early=federation.stopped_early)
    return result, federation


def _val_auprc(model, plan, states) -> float:
    from scipy.special import expit

    from alfia.runtime import predict_logits
    from alfia.evaluation.metrics import discrimination

    logits = predict_logits(model, states["val"], batch_size=plan.train_config.eval_batch_size, pad_token_id=0,
                            device=plan.device)
    return discrimination(states["val"].labels, expit(logits))[0]


def _finish(model, plan, states, result, federation) -> None:
    from alfia.training.run import finish_run

    layout = plan.layout
    finish_run(model, plan, states, result, "federated")
    rounds = federation.history
    write_json_atomic(layout.federation, {
        "sites": plan.config_doc["federated"]["sites"],
        "best_round": federation.best_round, "best_val_loss": federation.best_val_loss,
        "rounds_run": len(rounds), "stopped_early": federation.stopped_early,
        "setup_bytes": federation.setup_bytes,
        "bytes_per_round": {"mean": float(np.mean([r["bytes_down"] + r["bytes_up"] for r in rounds])),
                            "down_mean": float(np.mean([r["bytes_down"] for r in rounds])),
                            "up_mean": float(np.mean([r["bytes_up"] for r in rounds]))},
        "rounds": rounds})


def site_table(run_dir: Path, sites: SitePlan, parts: dict, *, n_boot: int = 1000) -> pd.DataFrame:
    """The run's val and test metrics per site (AUROC, AUPRC with 95% CIs; sensitivity/specificity at the run's
    max-F1 threshold), one row per (split, site): ``evaluation.subgroups.subgroup_metrics`` with the site as the
    subgroup."""
    from alfia.evaluation.subgroups import subgroup_metrics
    from alfia.evaluation.thresholds import run_thresholds

    pred = read_predictions(RunLayout.of(run_dir).predictions)
    site_of = pd.concat([p[[ID_COLUMN, "_site"]] for p in parts.values()]).set_index(ID_COLUMN)["_site"]
    names = np.array([s.name for s in sites.sites], dtype=object)
    attributes = pd.DataFrame({"site": names[site_of.to_numpy()]}, index=site_of.index)
    threshold = run_thresholds(run_dir)["f1"].threshold if RunLayout.of(run_dir).thresholds.exists() else 0.5
    rows = []
    for split in ("val", "test"):
        part = pred[pred[SPLIT_COLUMN] == split]
        if part.empty:
            continue
        block = subgroup_metrics(part, attributes, threshold, n_boot=n_boot, source="site")
        for entry in block["groups"]["site"]:
            site = next(s for s in sites.sites if s.name == entry["level"])
            row = {"split": split, "site": entry["level"], "members": len(site.members),
                   "train_stays": site.rows["train"], "stays": entry["n"], "deaths": entry["n_pos"]}
            for metric in ("auroc", "auprc", "sensitivity", "specificity"):
                m = entry["metrics"][metric]
                row.update({metric: m["value"], f"{metric}_ci_low": m["ci_low"], f"{metric}_ci_high": m["ci_high"]})
            rows.append(row)
    return pd.DataFrame(rows)


def _add_centralised_columns(table: pd.DataFrame, central_dir: Path, sites: SitePlan, parts: dict) -> pd.DataFrame:
    central = site_table(central_dir, sites, parts)[["split", "site", "auroc", "auprc"]]
    return table.merge(central.rename(columns={"auroc": "centralised_auroc", "auprc": "centralised_auprc"}),
                       on=["split", "site"], how="left")


def train_centralised(plan, states: dict, initial_state: dict, standardisation, federated: FederatedConfig) -> Path:
    """The comparison: the same model, from the same initial weights and state standardisation, trained on the same
    rows in one place with the ordinary loop (``training.run.train_head``: AdamW, warm-up and decay, early stopping
    on val AUPRC), for as many passes over the rows as the federation's most (rounds x local epochs)."""
    import torch

    from alfia.models import build_model
    from alfia.training.run import RunPlan, finish_run, train_head

    layout = RunLayout.of(plan.layout.centralised)
    config = replace(plan.train_config, head_epochs=federated.rounds * federated.local_epochs,
                     patience=federated.patience * federated.local_epochs)
    doc = {**{k: v for k, v in plan.config_doc.items() if k not in ("federated", "result")},
           "model_name": plan.config_doc["model_name"].replace(", federated", ", centralised"),
           "train": config.to_dict(),
           "centralised": {"rows": "the federated run's rows (its sites'), pooled", "federated_run": str(plan.layout.root)}}
    central = RunPlan(layout, plan.model_config, config, doc, plan.parts, None, plan.device, plan.console,
                      plan.progress, (), time.perf_counter())
    model = build_model(plan.model_config)
    model.load_state_dict(initial_state, strict=False)
    if standardisation is not None:
        total, squares, tokens = standardisation
        model.set_state_standardisation(torch.as_tensor(total), torch.as_tensor(squares), int(tokens))
    with hold_output_dir(layout.root):
        write_json_atomic(layout.config, doc)
        plan.console.print(f"centralised comparison on the same {len(states['train'])} training rows -> {layout.root}",
                           highlight=False)
        result = train_head(model, central, {s: states[s] for s in ("train", "val")})
        finish_run(model, central, states, result, "head")
    return layout.root
