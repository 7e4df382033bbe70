"""Distributed data-parallel training with torch.distributed: ``torchrun --nproc_per_node N -m alfia train ...``
(or ``alfia train --nproc N``, which launches torchrun).

One process per device: gloo on CPUs, nccl on GPUs (``cuda:LOCAL_RANK``). The training loop
(``alfia.training.loop.train``) calls the hooks below; in a single process each is the identity, so nothing
changes there. In N processes:

- **Batches**: the length-bucketed sampler draws the *global* batches (``batch_size`` x N rows, the same on every
  rank: they depend on (seed, epoch) only) and each rank takes every N-th row of each (:class:`ShardedBatchSampler`).
  No row is lost or seen twice; a rank left without a row in a short last batch gets one row with weight 0, so it
  still joins the gradient all-reduce.
- **Gradients**: the model is wrapped in ``DistributedDataParallel``; each rank's loss is
  ``N * sum_i w_i l_i / rows of the global batch``, so DDP's mean over ranks is exactly the single-process gradient
  of the global batch's mean loss. A run on N processes with ``batch_size`` B matches one process with B x N.
- **Validation**: each rank scores every N-th val row; the logits are gathered in row order on every rank, so the
  AUPRC, the best state and early stopping see all ranks' predictions.
- **Early stopping**: decided once, on rank 0, and broadcast.
- **Writing**: only rank 0 runs the writing callbacks (history, checkpoints, progress) and writes the run directory
  (``training.run``); the others compute the caches and train, and write nothing.

torch.distributed over Accelerate: the loop already owns devices, precision and checkpoints; what it lacks is the
process group, the sharded sampler, the gradient all-reduce and three collectives, which torch provides directly.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from alfia.errors import AlfiaError
from alfia.runtime.batches import FrozenStates, LengthBucketedBatchSampler, PadStates, PadToLongest, make_loader
from alfia.runtime.forward import forward_batch, predict_logits


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0
    local_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def world() -> World:
    """This process's place in the job, from torchrun's environment (one process when not launched by it)."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    return World(int(os.environ["RANK"]), size, int(os.environ.get("LOCAL_RANK", "0")),
                 int(os.environ.get("LOCAL_WORLD_SIZE", str(size))))


def backend_for(device: str) -> str:
    return "nccl" if device.startswith("cuda") or (device == "auto" and torch.cuda.is_available()) else "gloo"


def init(device: str = "auto") -> World:
    """Join the process group (once; a no-op in a single process) with the backend for ``device``."""
    w = world()
    if not w.distributed:
        return w
    import torch.distributed as dist

    backend = backend_for(device)
    if backend == "nccl":
        if not torch.cuda.is_available():
            raise AlfiaError(f"device {device!r}: CUDA is not available for the nccl backend")
        torch.cuda.set_device(w.local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return w


def rank_device(device: str, w: World) -> str:
    """The device of this rank: ``cuda:LOCAL_RANK`` for "auto"/"cuda" in a GPU job, else ``device`` itself (the
    config keeps the name it was given, so every rank's run fingerprint is the same)."""
    if w.distributed and backend_for(device) == "nccl" and device in ("auto", "cuda"):
        return f"cuda:{w.local_rank}"
    return device


def threads(num_threads: int | None, w: World) -> int | None:
    """torch threads of this rank: ``num_threads``, else the machine's cores shared among its ranks (torch's
    default would give each rank all of them)."""
    if num_threads is not None or not w.distributed:
        return num_threads
    from alfia.machine import available_cores

    return max(1, available_cores() // max(w.local_size, 1))


def finish() -> None:
    """Leave the process group (after the last collective of the run)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def barrier() -> None:
    if world().distributed:
        import torch.distributed as dist

        dist.barrier()


def describe(w: World, batch_size: int, device: str) -> dict:
    """config.json's ``distributed`` section."""
    return {"world_size": w.size, "backend": backend_for(device) if w.distributed else None,
            "batch_size_per_process": batch_size, "global_batch": batch_size * w.size}


# --- batches ---------------------------------------------------------------------------------------------------

class ShardedBatchSampler(Sampler[list[int]]):
    """Rank ``rank``'s rows of each global batch of a :class:`LengthBucketedBatchSampler` (every ``size``-th row).

    A rank whose share of a short batch is empty gets that batch's first row as ``-(row + 1)``: the row with weight
    0 (:class:`_RankRows`), so every rank runs every step."""

    def __init__(self, global_sampler: LengthBucketedBatchSampler, w: World):
        self.sampler = global_sampler
        self.world = w

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self.sampler.batches():
            mine = batch[self.world.rank::self.world.size]
            yield mine if mine else [-(batch[0] + 1)]

    def __len__(self) -> int:
        return len(self.sampler)


class _RankRows(Dataset):
    """The rows of a rank: ``data[i]`` with weight 1, or (index ``-(i + 1)``) with weight 0."""

    def __init__(self, data):
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> dict:
        item = self.data[i if i >= 0 else -i - 1]
        item["weight"] = 1.0 if i >= 0 else 0.0
        return item


class _WeightedCollate:
    def __init__(self, collate):
        self.collate = collate

    def __call__(self, items: list[dict]) -> dict:
        batch = self.collate(items)
        batch["weight"] = torch.as_tensor([it["weight"] for it in items], dtype=torch.float32)
        return batch


def train_loader(data, batch_size: int, pad_token_id: int, w: World, *, seed: int, bucket_size: int,
                 num_workers: int = 0, rows_per_epoch: int | None = None):
    """(loader, sampler) of the training rows of this rank: ``batch_size`` rows a step, of a global batch of
    ``batch_size * w.size`` (one process: ``runtime.make_loader``'s)."""
    if not w.distributed:
        return make_loader(data, batch_size, pad_token_id, shuffle=True, seed=seed, bucket_size=bucket_size,
                           num_workers=num_workers, rows_per_epoch=rows_per_epoch)
    global_sampler = LengthBucketedBatchSampler(data.lengths, batch_size * w.size, bucket_size=bucket_size,
                                                shuffle=True, seed=seed, rows_per_epoch=rows_per_epoch)
    sampler = ShardedBatchSampler(global_sampler, w)
    collate = PadStates(data.layers) if isinstance(data, FrozenStates) else PadToLongest(pad_token_id)
    loader = torch.utils.data.DataLoader(_RankRows(data), batch_sampler=sampler, collate_fn=_WeightedCollate(collate),
                                         num_workers=num_workers, generator=torch.Generator().manual_seed(seed))
    return loader, sampler


# --- the step --------------------------------------------------------------------------------------------------

class _BatchForward(torch.nn.Module):
    """``forward_batch`` as a module's forward, so DDP sees every path (token ids or cached states)."""

    def __init__(self, model, device):
        super().__init__()
        self.model = model
        self.device = device

    def forward(self, batch: dict) -> torch.Tensor:
        return forward_batch(self.model, batch, self.device).logits


class Step:
    """The loop's forward and loss of one batch; :meth:`loss` returns (loss to backpropagate, the batch's summed
    loss over all ranks' rows, those rows), both counts the same on every rank."""

    def __init__(self, model, device, w: World, loss_fn: torch.nn.BCEWithLogitsLoss, data=None):
        self.world, self.device, self.loss_fn = w, device, loss_fn
        if w.distributed:
            from torch.nn.parallel import DistributedDataParallel

            # The head warm start reads cached top states: the encoder layers that train in the next phase get no
            # gradient there (AdamW skips them, as in one process), and DDP must be told.
            top_states = isinstance(data, FrozenStates) and tuple(data.layers) == tuple(model.pooled_indices)
            unused = top_states and any(p.requires_grad for n, p in model.named_parameters() if n.startswith("encoder."))
            # forward_sync_buffers=False: the state standardisation is fitted identically on every rank
            self.forward = DistributedDataParallel(_BatchForward(model, device), forward_sync_buffers=False,
                                                   find_unused_parameters=unused,
                                                   device_ids=[device.index] if device.type == "cuda" else None)
        else:
            self.forward = lambda batch: forward_batch(model, batch, device).logits

    def loss(self, batch: dict, logits: torch.Tensor) -> tuple[torch.Tensor, float, int]:
        labels = batch["labels"].to(self.device)
        logits = logits.float().reshape(-1)
        if not self.world.distributed:
            loss = self.loss_fn(logits, labels)
            return loss, float(loss.item()) * len(labels), len(labels)
        import torch.distributed as dist

        weight = batch["weight"].to(self.device)
        per_row = torch.nn.functional.binary_cross_entropy_with_logits(
            logits, labels, pos_weight=self.loss_fn.pos_weight, reduction="none")
        summed = (per_row * weight).sum()
        counts = torch.stack([summed.detach(), weight.sum()]).double()
        dist.all_reduce(counts)  # the global batch's loss sum and rows
        rows = int(round(float(counts[1])))
        # DDP averages the ranks' gradients: N x (this rank's sum) / (all rows) averages to the global batch's mean
        return summed * self.world.size / rows, float(counts[0]), rows


def val_logits(model, data, w: World, **options) -> np.ndarray:
    """The val rows' logits in row order: each rank scores every ``w.size``-th row, all ranks get all of them."""
    if not w.distributed:
        return predict_logits(model, data, **options)
    import torch.distributed as dist

    mine = np.arange(w.rank, len(data), w.size)
    local = predict_logits(model, data.subset(mine), **options) if len(mine) else np.zeros(0)
    gathered: list = [None] * w.size
    dist.all_gather_object(gathered, (mine, local))
    logits = np.empty(len(data), dtype=np.float64)
    for rows, values in gathered:
        logits[rows] = values
    return logits


def agree(flag: bool, w: World) -> bool:
    """Rank 0's ``flag`` on every rank (the early-stopping decision, made once)."""
    if not w.distributed:
        return flag
    import torch.distributed as dist

    box = [bool(flag)]
    dist.broadcast_object_list(box, src=0)
    return bool(box[0])


def rank_callbacks(callbacks: Sequence, w: World) -> list:
    """The callbacks this rank runs: all on rank 0; on the others only those that write nothing (EarlyStopping),
    whose decision rank 0's overrides anyway."""
    if w.is_main:
        return list(callbacks)
    from alfia.training.callbacks import EarlyStopping

    return [cb for cb in callbacks if isinstance(cb, EarlyStopping)]


@contextlib.contextmanager
def main_writes(w: World, hold):
    """``hold`` (the output folder's lock) on rank 0; nothing on the others."""
    if w.is_main:
        with hold:
            yield
    else:
        yield


def launch(nproc: int, argv: Sequence[str]) -> int:
    """Run ``python -m alfia ARGV`` in ``nproc`` processes under torchrun (single machine); its exit status."""
    import subprocess
    import sys

    if nproc < 1:
        raise AlfiaError(f"--nproc must be >= 1, got {nproc}")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
               "-m", "alfia", *argv]
    return subprocess.call(command)
