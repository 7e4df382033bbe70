"""Where and how tensors run: device, CPU threads, seeds, and the bf16 autocast decision."""

from __future__ import annotations

import contextlib
import random

import numpy as np
import torch

from alfia.errors import AlfiaError
from alfia.machine import resolve_jobs


def resolve_device(name: str) -> torch.device:
    """``auto`` (CUDA when present, else CPU), ``cpu``, ``cuda``, ``cuda:1``, ..."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise AlfiaError(f"unknown device {name!r} ({e})") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise AlfiaError(f"device {name!r} requested but CUDA is not available")
    return device


def set_threads(num_threads: int | None = None) -> int:
    """torch's intra-op threads: ``num_threads``, else the cores available. Returns the number set."""
    # More threads than cores only adds contention.
    threads = resolve_jobs(num_threads)
    torch.set_num_threads(threads)
    return threads


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


@contextlib.contextmanager
def process_state_kept():
    """Run a block that sets torch's thread count or seeds (training, loading), then put them back.

    ``set_threads`` and ``seed_everything`` change the whole process: torch's intra-op threads and the torch,
    CUDA, NumPy and ``random`` generators. A library call (``ALFIAClassifier.fit``, ``from_pretrained``, a zoo
    model's ``fit``) must not leave them changed for its caller, as scikit-learn estimators do not.
    """
    threads = torch.get_num_threads()
    python_state, numpy_state, torch_state = random.getstate(), np.random.get_state(), torch.random.get_rng_state()
    cuda_state = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        random.setstate(python_state)
        np.random.set_state(numpy_state)
        torch.random.set_rng_state(torch_state)
        if cuda_state is not None:
            torch.cuda.set_rng_state_all(cuda_state)


def bf16_is_fast(device: torch.device) -> bool:
    """bf16 matmuls run natively: CUDA with bf16 support, or a CPU with AVX-512 BF16 / AMX.

    Without them oneDNN emulates bf16 and a matmul is hundreds of times slower than fp32 (measured on
    an AVX2-only CPU, BENCHMARKS.md), so "auto" stays in fp32 there.
    """
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def autocast_context(precision: str, device: torch.device):
    """bf16 autocast for "bf16", and for "auto" on a CUDA device with bf16. On a CPU "auto" is fp32 even
    where bf16 matmuls are native (AVX-512 BF16 / AMX): CPU training is specified in fp32, so that a run gives
    the same numbers on the AVX2-only machines it also runs on; ``--precision bf16`` asks for it explicitly."""
    if precision == "bf16" or (precision == "auto" and device.type == "cuda" and bf16_is_fast(device)):
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
