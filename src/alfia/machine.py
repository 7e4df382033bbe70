"""What this machine offers to CPU-bound work: the one place that counts cores.

Every library the toolkit drives (torch, LightGBM, XGBoost, CatBoost, scikit-learn, AutoGluon) gets at
most this many threads unless the caller sets another number; more threads than cores only adds
contention.
"""

from __future__ import annotations

import os


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


def resolve_jobs(n_jobs: int | None) -> int:
    """``n_jobs`` when set (>= 1), else :func:`available_cores`."""
    if n_jobs is None:
        return available_cores()
    if int(n_jobs) < 1:
        from alfia.errors import AlfiaError

        raise AlfiaError(f"the number of threads must be >= 1, got {n_jobs}")
    return int(n_jobs)


def process_peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB: one read of the kernel's high-water mark (VmHWM; no
    sampling thread), else ``getrusage``'s. What a command reports of its own memory at its end."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
