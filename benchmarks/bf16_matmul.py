"""Is bf16 worth it on this CPU? GFLOPS of one square matmul in fp32 and bf16, and what "auto" picks.

    .venv/bin/python benchmarks/bf16_matmul.py [--n 2048] [--repeats 5]

`TrainConfig(precision="auto")` uses bf16 autocast only where `alfia.runtime.bf16_is_fast` says the
hardware runs bf16 matmuls natively; this prints the measurement behind that rule.
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import date

import torch

from alfia.runtime import bf16_is_fast, set_threads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    threads = set_threads()  # the cores this process may use
    a, b = torch.randn(args.n, args.n), torch.randn(args.n, args.n)
    print(f"date {date.today()}; torch {torch.__version__}; CPU capability {torch.backends.cpu.get_cpu_capability()}; "
          f"{threads} threads; load average {os.getloadavg()[0]:.1f}; bf16 'auto' -> "
          f"{'bf16' if bf16_is_fast(torch.device('cpu')) else 'fp32'}")
    for dtype in (torch.float32, torch.bfloat16):
        x, y = a.to(dtype), b.to(dtype)
        x @ y  # warm-up
        started = time.perf_counter()
        for _ in range(args.repeats):
            x @ y
        seconds = (time.perf_counter() - started) / args.repeats
        print(f"{str(dtype):15s} {2 * args.n ** 3 / seconds / 1e9:8.2f} GFLOPS ({seconds * 1000:.0f} ms per matmul)")


if __name__ == "__main__":
    main()
