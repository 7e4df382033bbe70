"""The figure of LeMoF's level weights: alpha_m of eq. (2), one panel per modality, one bar per level."""

from __future__ import annotations

import os
from pathlib import Path


def plot_level_weights(weights: dict[str, dict[str, float]], path: str | os.PathLike) -> Path:
    """``weights``: modality -> {level name: weight} (lower to upper), as level_weights.json holds them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from alfia.atomic import atomic_path

    n = len(weights)
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n + 0.5, 3.0), squeeze=False)
    for ax, (modality, levels) in zip(axes[0], weights.items()):
        names, values = list(levels), list(levels.values())
        ax.bar(range(len(values)), values, color="tab:blue")
        ax.axhline(1.0 / len(values), color="grey", lw=0.8, ls="--", label="uniform")
        ax.set_xticks(range(len(values)), names, rotation=60, ha="right", fontsize=7)
        ax.set(title=modality, ylim=(0, max(1.0 / len(values), max(values)) * 1.15), ylabel="level weight")
    axes[0][0].legend(fontsize=7, frameon=False)
    fig.suptitle("LeMoF level weights (alpha, eq. 2)", fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=130, format="png")
    plt.close(fig)
    return path
