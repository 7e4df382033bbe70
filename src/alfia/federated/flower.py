"""Flower's side of a federated run: the ClientApp every site runs, the ServerApp (FedAvg), and the two engines.

- **ClientApp** (one site; its rows never leave it): ``query`` returns the sums of its training texts' encoder
  states (so the state standardisation is exact over all sites, and no state leaves a site); ``train`` loads the
  global ALF + ACH weights, trains them for ``local_epochs`` on the site's own training rows (AdamW, constant
  learning rate) and returns them with its row count, FedAvg's weight; ``evaluate`` returns the global model's
  BCE on the site's val rows.
- **ServerApp**: Flower's FedAvg (``flwr.serverapp.strategy.FedAvg``, McMahan et al. 2017) for up to ``rounds``
  rounds with a ``fraction`` of the sites per round. The row-weighted mean of the sites' val BCE is exactly the
  pooled val BCE: the global model of the round where it is lowest is kept, and ``patience`` rounds without a lower
  one end the run (the rounds left send nothing).
- **Engines**: ``ray`` is Flower's Simulation Engine (``flwr.simulation.run_simulation``: Ray actors, one per CPU);
  ``inprocess`` runs the same ServerApp and ClientApp in this process through :class:`InProcessGrid`, a Flower
  ``Grid`` that hands each Message to the ClientApp directly. flwr 1.42's engine has only a Ray backend, and Ray
  starts its workers and actors before the first round (15-30 s on 2 cores, ~200 MB each); the in-process engine
  starts at once, is deterministic, and is what the tests run. Both count the bytes every round exchanges.
"""

from __future__ import annotations

import copy
import logging
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")  # read when flwr is imported; no machine here reaches it

import numpy as np
import torch
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MessageType, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg

from alfia.errors import AlfiaError
from alfia.runtime import FrozenStates, forward_batch, make_loader, predict_logits, resolve_device, set_threads

ENGINES = ("inprocess", "ray")
_STATS_QUERY = f"{MessageType.QUERY}.state_sums"


# -------------------------------------------------------------------------------------------- site data
class SiteData:
    """Every site's cached encoder states (train and val) and the model its ClientApp trains.

    In this process both are held in memory. A Ray actor gets them through files: :meth:`spill` writes each site's
    states once (fp16, memory-mapped by the actors) and pickling carries only that folder and the model config;
    an actor builds its own model (the frozen encoder is never used: the states are already computed)."""

    def __init__(self, states: dict[int, dict[str, FrozenStates]], model, model_config: dict, *,
                 device: str = "cpu", threads: int | None = None):
        self._states = states  # site -> split -> FrozenStates, in this process
        self._model = model
        self._loaded: dict[tuple[int, str], FrozenStates] = {}  # read back from the folder, in an actor
        self.model_config = model_config
        self.device = device
        self.threads = threads
        self.folder: Path | None = None
        self.n_sites = len(states)

    def spill(self, folder: Path) -> None:
        """Write every site's states to ``folder``: one fp16 array per site and split, and its rows."""
        folder.mkdir(parents=True, exist_ok=True)
        for site, splits in self._states.items():
            for split, data in splits.items():
                lengths = np.array([s.shape[0] for s in data.states], dtype=np.int64)
                buffer = torch.cat(list(data.states)) if len(data) else torch.zeros((0, len(data.layers), 1))
                np.save(folder / f"{site}-{split}.f16.npy", buffer.numpy().astype(np.float16, copy=False))
                np.savez(folder / f"{site}-{split}.rows.npz", lengths=lengths, stay_id=data.stay_id,
                         split=data.split.astype(str), labels=data.labels, layers=np.array(data.layers))
        self.folder = folder

    def __getstate__(self):
        if self.folder is None:
            raise RuntimeError("SiteData must be spilled to a folder before it is sent to another process")
        return {**self.__dict__, "_states": {}, "_model": None, "_loaded": {}}

    def get(self, site: int, split: str) -> FrozenStates:
        if site in self._states:
            return self._states[site][split]
        if (site, split) not in self._loaded:
            rows = np.load(self.folder / f"{site}-{split}.rows.npz", allow_pickle=False)
            # copy-on-write mapping: the pages are shared with every actor and nothing is read twice
            buffer = torch.from_numpy(np.load(self.folder / f"{site}-{split}.f16.npy", mmap_mode="c"))
            offsets = np.concatenate([[0], np.cumsum(rows["lengths"])])
            self._loaded[(site, split)] = FrozenStates(
                [buffer[offsets[i]:offsets[i + 1]] for i in range(len(rows["lengths"]))], rows["stay_id"],
                rows["split"].astype(object), rows["labels"], tuple(int(j) for j in rows["layers"]))
        return self._loaded[(site, split)]

    def model(self):
        if self._model is None:  # a Ray actor: its own copy, built once
            from alfia.models import AlfiaConfig, build_model

            set_threads(self.threads or 1)
            self._model = build_model(AlfiaConfig.from_dict(self.model_config))
            self._model.to(resolve_device(self.device))
        return self._model


def model_arrays(model) -> ArrayRecord:
    """What a round exchanges: ALF + ACH and the state standardisation (fusion_head.safetensors' tensors)."""
    return ArrayRecord({k: v.detach().cpu() for k, v in model.fusion_head_state().items()})


def load_arrays(model, arrays: ArrayRecord) -> None:
    state = arrays.to_torch_state_dict()
    expected = model.fusion_head_state()
    if set(state) != set(expected):
        raise AlfiaError(f"federated weights do not fit the model (got {sorted(set(state) ^ set(expected))[:3]})")
    model.load_state_dict(state, strict=False)


# -------------------------------------------------------------------------------------------- the client
@dataclass
class LocalSettings:
    """How a site trains in a round (TrainConfig's values; sent to every site with the weights)."""

    local_epochs: int
    lr: float
    batch_size: int
    eval_batch_size: int
    weight_decay: float
    grad_clip: float | None
    pos_weight: float | None
    bucket_size: int
    seed: int

    def record(self) -> ConfigRecord:
        return ConfigRecord({k.replace("_", "-"): v for k, v in self.__dict__.items() if v is not None})


def local_update(model, data: FrozenStates, config, *, round_seed: int, device) -> tuple[float, int]:
    """FedAvg's client update: ``local-epochs`` passes of AdamW over the site's training rows, from the global
    weights. Returns (mean training loss, rows seen)."""
    torch.manual_seed(round_seed)  # dropout masks depend on (seed, round, site) only
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=float(config["lr"]), weight_decay=float(config["weight-decay"]))
    pos_weight = config.get("pos-weight")
    loss_fn = torch.nn.BCEWithLogitsLoss(
        pos_weight=None if pos_weight is None else torch.tensor(float(pos_weight), device=device))
    loader, sampler = make_loader(data, int(config["batch-size"]), 0, shuffle=True, seed=round_seed,
                                  bucket_size=int(config["bucket-size"]))
    model.train()
    loss_sum, rows = 0.0, 0
    for epoch in range(int(config["local-epochs"])):
        sampler.set_epoch(epoch)
        for batch in loader:
            logits = forward_batch(model, batch, device).logits
            loss = loss_fn(logits.float().reshape(-1), batch["labels"].to(device))
            if not torch.isfinite(loss):
                raise AlfiaError(f"local training diverged (loss {loss.item()}); lower the learning rate")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.get("grad-clip"):
                torch.nn.utils.clip_grad_norm_(params, float(config["grad-clip"]))
            optimizer.step()
            loss_sum += float(loss.item()) * len(batch["labels"])
            rows += len(batch["labels"])
    model.eval()
    return loss_sum / max(rows, 1), rows


def _val_loss(model, data: FrozenStates, batch_size: int, device) -> float:
    logits = predict_logits(model, data, batch_size=batch_size, pad_token_id=0, device=device)
    return float(torch.nn.functional.binary_cross_entropy_with_logits(
        torch.as_tensor(logits), torch.as_tensor(data.labels, dtype=torch.float64)))


def make_client_app(sites: SiteData) -> ClientApp:
    """The ClientApp of every site; a site knows its data by its partition id (its index in the site plan)."""
    app = ClientApp()

    def _config(msg: Message) -> dict[str, Any]:
        return dict(msg.content["config"])

    @app.query("state_sums")
    def state_sums(msg: Message, context: Context) -> Message:
        site = int(context.node_config["partition-id"])
        total, squares, count = sites.model().state_sums(sites.get(site, "train").states)
        return Message(RecordDict({"arrays": ArrayRecord({"sum": total, "squares": squares}),
                                   "metrics": MetricRecord({"tokens": int(count), "site": site})}), reply_to=msg)

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        site = int(context.node_config["partition-id"])
        config = _config(msg)
        model, device = sites.model(), resolve_device(sites.device)
        load_arrays(model, msg.content["arrays"])
        round_seed = int(config["seed"]) + 1000 * int(config["server-round"]) + site
        loss, rows = local_update(model, sites.get(site, "train"), config, round_seed=round_seed, device=device)
        n = len(sites.get(site, "train"))
        return Message(RecordDict({"arrays": model_arrays(model),
                                   "metrics": MetricRecord({"num-examples": n, "train-loss": loss, "rows-seen": rows})}),
                       reply_to=msg)

    @app.evaluate()
    def evaluate(msg: Message, context: Context) -> Message:
        site = int(context.node_config["partition-id"])
        config = _config(msg)
        model, device = sites.model(), resolve_device(sites.device)
        load_arrays(model, msg.content["arrays"])
        val = sites.get(site, "val")
        loss = _val_loss(model, val, int(config["eval-batch-size"]), device) if len(val) else 0.0
        return Message(RecordDict({"metrics": MetricRecord({"num-examples": len(val), "val-loss": loss})}),
                       reply_to=msg)

    return app


# -------------------------------------------------------------------------------------------- the server
def _record_bytes(content: RecordDict) -> int:
    return sum(r.count_bytes() for group in (content.array_records, content.metric_records, content.config_records)
               for r in group.values())


class ExchangeGrid(Grid):
    """The Grid the strategy talks to: the engine's own, counting the bytes each way and turning a site's
    failure into an AlfiaError (FedAvg alone would go on without that site)."""

    def __init__(self, inner: Grid):
        self.inner = inner
        self.bytes_down = self.bytes_up = 0

    def set_run(self, run) -> None:
        self.inner.set_run(run)

    @property
    def run(self):
        return self.inner.run

    def create_message(self, content, message_type, dst_node_id, group_id, ttl=None):
        return self.inner.create_message(content, message_type, dst_node_id, group_id, ttl)

    def get_node_ids(self):
        return self.inner.get_node_ids()

    def get_nodes(self):
        return self.inner.get_nodes()

    def push_messages(self, messages):
        return self.inner.push_messages(messages)

    def pull_messages(self, message_ids):
        return self.inner.pull_messages(message_ids)

    def send_and_receive(self, messages, *, timeout: float | None = None):
        messages = list(messages)
        self.bytes_down += sum(_record_bytes(m.content) for m in messages)
        replies = list(self.inner.send_and_receive(messages, timeout=timeout))
        for reply in replies:
            if reply.has_error():
                raise AlfiaError(f"a site failed in federated training: {reply.error.reason}")
        if len(replies) < len(messages):
            raise AlfiaError(f"{len(messages) - len(replies)} site(s) did not answer within {timeout} s")
        self.bytes_up += sum(_record_bytes(r.content) for r in replies)
        return replies


class InProcessGrid(Grid):
    """A Flower Grid whose nodes are ClientApp calls in this process: node ``i + 1`` is site ``i``."""

    def __init__(self, client_app: ClientApp, n_sites: int):
        from flwr.common.constant import SUPERLINK_NODE_ID
        from flwr.supercore.task_identity import TaskIdentity

        # What flwr.simulation.run_simulation sets for its server thread: Messages read the run from here.
        TaskIdentity.task_id, TaskIdentity.run_id, TaskIdentity.node_id = 1, 1, SUPERLINK_NODE_ID
        self.client_app = client_app
        self.contexts = {i + 1: Context(run_id=1, node_id=i + 1, state=RecordDict(), run_config={},
                                        node_config={"partition-id": i, "num-partitions": n_sites})
                         for i in range(n_sites)}
        self._pending: dict[str, Message] = {}
        self._run = None

    def set_run(self, run) -> None:
        self._run = run

    @property
    def run(self):
        return self._run

    def create_message(self, content, message_type, dst_node_id, group_id, ttl=None):
        return Message(content, dst_node_id, message_type, ttl=ttl, group_id=group_id)

    def get_node_ids(self):
        return list(self.contexts)

    def get_nodes(self):
        raise NotImplementedError("InProcessGrid has no node records")

    def push_messages(self, messages):
        ids = []
        for message in messages:
            message.metadata.__dict__["_message_id"] = uuid.uuid4().hex  # as Flower's InMemoryGrid does
            self._pending[message.metadata.message_id] = message
            ids.append(message.metadata.message_id)
        return ids

    def pull_messages(self, message_ids):
        replies = []
        for message_id in message_ids:
            message = self._pending.pop(message_id)
            replies.append(self.client_app(message, self.contexts[message.metadata.dst_node_id]))
        return replies

    def send_and_receive(self, messages, *, timeout: float | None = None):
        return self.pull_messages(self.push_messages(messages))


@dataclass
class ServerSettings:
    rounds: int
    fraction: float
    patience: int
    local: LocalSettings
    standardise: bool
    timeout_s: float = 3600.0


@dataclass
class FederationResult:
    best_round: int = 0
    best_val_loss: float = float("inf")
    best_arrays: ArrayRecord | None = None
    history: list[dict] = field(default_factory=list)
    stopped_early: bool = False
    setup_bytes: int = 0
    standardisation: tuple | None = None  # (sum, squares, tokens) over every site's training texts


class _FedAvgWithPatience(FedAvg):
    """Flower's FedAvg, remembering each round's aggregated metrics; once ``stopped`` it sends nothing."""

    stopped = False
    train_metrics: MetricRecord | None = None
    val_metrics: MetricRecord | None = None
    sampled = 0

    def configure_train(self, server_round, arrays, config, grid):
        if self.stopped:
            return []
        messages = list(super().configure_train(server_round, arrays, config, grid))
        self.sampled = len(messages)
        return messages

    def configure_evaluate(self, server_round, arrays, config, grid):
        return [] if self.stopped else super().configure_evaluate(server_round, arrays, config, grid)

    def aggregate_train(self, server_round, replies):
        arrays, self.train_metrics = super().aggregate_train(server_round, replies)
        return arrays, self.train_metrics

    def aggregate_evaluate(self, server_round, replies):
        self.val_metrics = super().aggregate_evaluate(server_round, replies)
        return self.val_metrics


def _wait_for_nodes(grid: Grid, n_sites: int, timeout_s: float) -> list[int]:
    """Every site's node id, once all are connected (Ray's engine registers them while the ServerApp starts)."""
    deadline = time.monotonic() + timeout_s
    while len(nodes := sorted(grid.get_node_ids())) < n_sites:
        if time.monotonic() > deadline:
            raise AlfiaError(f"{len(nodes)} of {n_sites} sites connected within {timeout_s:g} s")
        time.sleep(0.2)
    return nodes


def serve(grid: Grid, initial_arrays: ArrayRecord, n_sites: int, settings: ServerSettings,
          set_standardisation: Callable[[np.ndarray, np.ndarray, int], ArrayRecord],
          on_round: Callable[[dict], None] = lambda record: None) -> FederationResult:
    """The ServerApp's work on ``grid``: the standardisation query, then FedAvg rounds."""
    result = FederationResult()
    exchange = ExchangeGrid(grid)
    arrays = initial_arrays
    nodes = _wait_for_nodes(exchange, n_sites, settings.timeout_s)
    if settings.standardise:
        replies = exchange.send_and_receive(
            [Message(RecordDict({"config": ConfigRecord({})}), node, _STATS_QUERY) for node in nodes],
            timeout=settings.timeout_s)
        total = sum(r.content["arrays"]["sum"].numpy() for r in replies)
        squares = sum(r.content["arrays"]["squares"].numpy() for r in replies)
        tokens = sum(int(r.content["metrics"]["tokens"]) for r in replies)
        result.standardisation = (total, squares, tokens)
        arrays = set_standardisation(total, squares, tokens)
    result.setup_bytes = exchange.bytes_down + exchange.bytes_up
    strategy = _FedAvgWithPatience(fraction_train=settings.fraction, fraction_evaluate=1.0, min_train_nodes=1,
                                   min_evaluate_nodes=n_sites, min_available_nodes=n_sites)
    counted = {"down": exchange.bytes_down, "up": exchange.bytes_up, "at": time.perf_counter()}

    def after_round(server_round: int, global_arrays: ArrayRecord):
        if server_round == 0 or strategy.stopped:
            return None
        val_loss = float(strategy.val_metrics["val-loss"])
        record = {"epoch": server_round, "round": server_round, "sites_trained": strategy.sampled,
                  "train_loss": float(strategy.train_metrics["train-loss"]), "val_loss": val_loss,
                  "bytes_down": exchange.bytes_down - counted["down"], "bytes_up": exchange.bytes_up - counted["up"],
                  "seconds": round(time.perf_counter() - counted["at"], 3)}
        counted.update(down=exchange.bytes_down, up=exchange.bytes_up, at=time.perf_counter())
        record["best"] = val_loss < result.best_val_loss
        if record["best"]:
            result.best_round, result.best_val_loss = server_round, val_loss
            result.best_arrays = copy.deepcopy(global_arrays)
        result.history.append(record)
        on_round(record)
        if server_round - result.best_round >= settings.patience and server_round < settings.rounds:
            strategy.stopped = result.stopped_early = True
        return None

    flwr_log = logging.getLogger("flwr")
    level = flwr_log.level
    flwr_log.setLevel(logging.WARNING)  # Flower logs every sampling and aggregation at INFO
    try:
        strategy.start(grid=exchange, initial_arrays=arrays, num_rounds=settings.rounds,
                       timeout=settings.timeout_s, train_config=settings.local.record(),
                       evaluate_config=settings.local.record(), evaluate_fn=after_round)
    finally:
        flwr_log.setLevel(level)
    if result.best_arrays is None:
        raise AlfiaError("federated training ran no round")
    return result


def run_federation(sites: SiteData, initial_arrays: ArrayRecord, settings: ServerSettings, *, engine: str,
                   set_standardisation, on_round=lambda record: None, ray_cpus: int = 1,
                   scratch: Path | None = None) -> FederationResult:
    """Run the ServerApp and the sites' ClientApp on ``engine`` ("inprocess" or "ray")."""
    if engine not in ENGINES:
        raise AlfiaError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    client_app = make_client_app(sites)
    if engine == "inprocess":
        return serve(InProcessGrid(client_app, sites.n_sites), initial_arrays, sites.n_sites, settings,
                     set_standardisation, on_round)
    import importlib.util

    if importlib.util.find_spec("ray") is None:
        raise AlfiaError("--engine ray needs Ray: pip install \"flwr[simulation]\"")
    from flwr.simulation import run_simulation

    if scratch is None:
        raise AlfiaError("the ray engine needs a scratch folder for the sites' states")
    sites.spill(scratch)
    outcome: dict[str, FederationResult] = {}
    server_app = ServerApp()

    @server_app.main()
    def main(grid: Grid, context: Context) -> None:
        outcome["result"] = serve(grid, initial_arrays, sites.n_sites, settings, set_standardisation, on_round)

    flwr_log = logging.getLogger("flwr")
    level = flwr_log.level
    flwr_log.setLevel(logging.WARNING)
    try:
        run_simulation(server_app, client_app, num_supernodes=sites.n_sites,
                       backend_config={"client_resources": {"num_cpus": 1, "num_gpus": 0.0},
                                       "init_args": {"num_cpus": ray_cpus, "include_dashboard": False,
                                                     "log_to_driver": False}})
    except RuntimeError as e:
        raise AlfiaError(f"Flower's simulation engine (ray) stopped: {e} (an overloaded machine can time out Ray's "
                         f"start; --engine inprocess runs the same apps without it)") from None
    finally:
        flwr_log.setLevel(level)
        import ray

        if ray.is_initialized():  # a failed start leaves Ray up; its processes must not outlive the run
            ray.shutdown()
    if "result" not in outcome:
        raise AlfiaError("Flower's simulation engine (ray) ended without a result")
    return outcome["result"]
