"""Figures of one run and of a comparison, as PNG files written atomically.

Built on ``matplotlib.figure.Figure`` with the Agg canvas rather than pyplot: no global state, no
display needed, safe to call from tests and servers.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless everywhere; the CLI never opens a window

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from sklearn.metrics import precision_recall_curve, roc_curve  # noqa: E402

from alfia.atomic import write_atomic  # noqa: E402
from alfia.evaluation.calibration import N_BINS  # noqa: E402

DPI = 110


@dataclass(frozen=True)
class Curve:
    """One model's scores on one split, for overlaid curves."""

    name: str
    y: np.ndarray
    prob: np.ndarray
    highlight: bool = False


def _new_figure(width: float, height: float, ncols: int = 1, nrows: int = 1, **kw):
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, **kw)
    return fig, axes


def figure_png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def save_figure(fig: Figure, path: str | os.PathLike) -> Path:
    png = figure_png(fig)
    return write_atomic(path, lambda p: p.write_bytes(png))


def _colors(n: int):
    cmap = matplotlib.colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def _legend(fig: Figure, ax, n_curves: int, loc: str) -> None:
    """Inside the axes for a few curves; below them, in two columns, when many would hide the curves."""
    if n_curves > 5:
        fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncols=2, fontsize=7, frameon=False)
    else:
        ax.legend(loc=loc, fontsize=8)


def _style(curve: Curve, color) -> dict:
    return {"color": color, "linewidth": 2.4 if curve.highlight else 1.3, "alpha": 1.0 if curve.highlight else 0.85,
            "zorder": 3 if curve.highlight else 2}


def roc_figure(curves: Sequence[Curve], title: str = "ROC curve") -> Figure:
    fig, ax = _new_figure(5.6, 5.0 + (0.13 * len(curves) if len(curves) > 5 else 0))
    for curve, color in zip(curves, _colors(len(curves))):
        fpr, tpr, _ = roc_curve(curve.y, curve.prob)
        auc = np.trapezoid(tpr, fpr)
        ax.plot(fpr, tpr, label=f"{curve.name} (AUROC {auc:.3f})", **_style(curve, color))
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey", linewidth=1, label="chance")
    ax.set(xlabel="1 - specificity (false positive rate)", ylabel="sensitivity (true positive rate)", title=title,
           xlim=(0, 1), ylim=(0, 1.01), aspect="equal")
    ax.grid(alpha=0.3)
    _legend(fig, ax, len(curves), "lower right")
    return fig


def pr_figure(curves: Sequence[Curve], title: str = "Precision-recall curve") -> Figure:
    fig, ax = _new_figure(5.6, 5.0 + (0.13 * len(curves) if len(curves) > 5 else 0))
    for curve, color in zip(curves, _colors(len(curves))):
        precision, recall, _ = precision_recall_curve(curve.y, curve.prob)
        ap = -np.sum(np.diff(recall) * precision[:-1])
        ax.plot(recall, precision, drawstyle="steps-post", label=f"{curve.name} (AUPRC {ap:.3f})",
                **_style(curve, color))
    prevalence = float(np.mean(curves[0].y))
    ax.axhline(prevalence, linestyle=":", color="grey", linewidth=1, label=f"prevalence {prevalence:.3f}")
    ax.set(xlabel="recall (sensitivity)", ylabel="precision (PPV)", title=title, xlim=(0, 1), ylim=(0, 1.01))
    ax.grid(alpha=0.3)
    _legend(fig, ax, len(curves), "upper right")
    return fig


# In an overlay of several models, bins this sparse are left out: their observed rate is noise.
MIN_BIN_COUNT_OVERLAY = 10


HIST_BINS = 30  # of the histogram under the reliability diagram, over the range of the predictions


def prediction_range(curves: Sequence[Curve]) -> tuple[float, float]:
    """[min, max] of every curve's predictions, padded by 4% and kept inside [0, 1] (at least 0.02 wide)."""
    probs = np.concatenate([np.asarray(c.prob, dtype=float) for c in curves])
    low, high = float(probs.min()), float(probs.max())
    pad = max(0.04 * (high - low), 0.01)
    return max(0.0, low - pad), min(1.0, high + pad)


def calibration_figure(curves: Sequence[Curve], title: str = "Calibration", *, band: bool = True) -> Figure:
    """Reliability diagram (10 equal-width bins, the ECE's) above a histogram of the predictions.

    One model: every non-empty bin, marker area proportional to its stays. Several models: bins with
    fewer than ``MIN_BIN_COUNT_OVERLAY`` stays are not drawn. ``band``: a shaded Wilson 95% interval of
    each bin's observed mortality (``curves.calibration_band``).
    """
    from alfia.evaluation.curves import calibration_band

    many = len(curves) > 1
    fig, (ax, hist) = _new_figure(5.6, 6.2 + (0.13 * len(curves) if len(curves) > 5 else 0), nrows=2,
                                  gridspec_kw={"height_ratios": [3, 1]}, sharex=True)
    low, high = prediction_range(curves)
    edges = np.linspace(low, high, HIST_BINS + 1)
    observed = []
    for curve, color in zip(curves, _colors(len(curves))):
        rel = {k: np.asarray(v) for k, v in calibration_band(curve.y, curve.prob).items() if k != "method"}
        if many:
            keep = rel["count"] >= MIN_BIN_COUNT_OVERLAY
            rel = {k: v[keep] for k, v in rel.items()}
        if band and rel["count"].size:
            ax.fill_between(rel["mean_prob"], rel["ci_low"], rel["ci_high"], color=color,
                            alpha=0.12 if many else 0.22, linewidth=0,
                            label=None if many else "95% CI (Wilson, per bin)")
            if not many:  # whiskers too: a band needs two bins to show
                ax.errorbar(rel["mean_prob"], rel["observed"], yerr=[rel["observed"] - rel["ci_low"],
                            rel["ci_high"] - rel["observed"]], fmt="none", ecolor=color, alpha=0.6, capsize=3)
        elif rel["count"].size:  # every bin below MIN_BIN_COUNT_OVERLAY (a small test split): nothing to mark
            ax.scatter(rel["mean_prob"], rel["observed"], s=8 + 200 * rel["count"] / rel["count"].max(),
                       color=color, alpha=0.5, zorder=4)
        ax.plot(rel["mean_prob"], rel["observed"], marker="o", markersize=3.5, label=curve.name,
                **_style(curve, color))
        observed.extend(rel["observed"].tolist())
        hist.hist(curve.prob, bins=edges, histtype="step", color=color, linewidth=1.2)
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey", linewidth=1, label="perfect calibration")
    # Both axes on the range of the predictions (and of the observed rates drawn), not [0, 1]: risks of a rare
    # outcome crowd the bottom-left corner otherwise.
    y_low, y_high = min([low, *observed]), max([high, *observed])
    pad = 0.04 * (y_high - y_low)
    ax.set(ylabel="observed mortality in bin", title=title, xlim=(low, high),
           ylim=(max(0.0, y_low - pad), min(1.01, y_high + pad)))
    ax.grid(alpha=0.3)
    if many:
        _legend(fig, ax, len(curves) + 1, "upper left")
    else:
        ax.legend(loc="upper left", fontsize=8)
    hist.set(xlabel=f"predicted probability (reliability: {N_BINS} equal-width bins of [0, 1])", ylabel="stays")
    hist.set_yscale("log")
    hist.grid(alpha=0.3)
    return fig


def confusion_figure(operating_points: dict, title: str = "") -> Figure:
    """Confusion matrices at the max-F1 and max-F2 thresholds chosen on val."""
    fig, axes = _new_figure(4.2 * len(operating_points), 4.0, ncols=len(operating_points))
    axes = np.atleast_1d(axes)
    for ax, (name, op) in zip(axes, operating_points.items()):
        cm = op["confusion_matrix"]
        matrix = np.array([[cm["tn"], cm["fp"]], [cm["fn"], cm["tp"]]])
        row_share = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
        ax.imshow(row_share, cmap="Blues", vmin=0, vmax=1)
        for i in range(2):
            for j in range(2):
                ax.text(j, i, f"{matrix[i, j]}\n({row_share[i, j]:.1%})", ha="center", va="center",
                        color="white" if row_share[i, j] > 0.5 else "black", fontsize=10)
        ax.set_xticks([0, 1], ["survived", "died"])
        ax.set_yticks([0, 1], ["survived", "died"])
        ax.set(xlabel="predicted", ylabel="actual",
               title=f"max-{name.upper()} threshold {op['threshold']:.3f}\n(chosen on {op['chosen_on']})")
    if title:
        fig.suptitle(title)
    return fig


def training_curves_figure(history: pd.DataFrame, title: str = "Training") -> Figure:
    """Train loss and validation AUPRC/AUROC per epoch; the best val-AUPRC epoch marked."""
    has_lr = "lr" in history.columns and history["lr"].notna().any()
    fig, axes = _new_figure(11 if has_lr else 8, 3.6, ncols=3 if has_lr else 2)
    history = history.reset_index(drop=True)
    # Epochs count on across phases (head warm start, then LoRA): epoch k of the run, not of its phase.
    epoch = pd.Series(np.arange(1, len(history) + 1)) if "phase" in history else history["epoch"]
    history = history.assign(epoch=epoch)
    loss_ax, val_ax = axes[0], axes[1]
    if "train_loss" in history:
        loss_ax.plot(epoch, history["train_loss"], marker="o", markersize=3, color="tab:red")
    loss_ax.set(xlabel="epoch", ylabel="train loss", title="Training loss")
    for column, label, color in (("val_auprc", "val AUPRC", "tab:blue"), ("val_auroc", "val AUROC", "tab:green")):
        if column in history:
            val_ax.plot(epoch, history[column], marker="o", markersize=3, color=color, label=label)
    if "val_auprc" in history and history["val_auprc"].notna().any():
        best = history.loc[history["val_auprc"].idxmax()]
        val_ax.axvline(best["epoch"], linestyle=":", color="grey")
        val_ax.annotate(f"best epoch {int(best['epoch'])}\nval AUPRC {best['val_auprc']:.3f}",
                        (best["epoch"], best["val_auprc"]), textcoords="offset points", xytext=(5, -28), fontsize=8)
    val_ax.set(xlabel="epoch", ylabel="score", title="Validation")
    val_ax.legend(fontsize=8, loc="upper left")
    if "val_prob_sd" in history and history["val_prob_sd"].notna().any():
        spread_ax = val_ax.twinx()  # the spread across patients: near 0 means every stay gets one probability
        spread_ax.plot(epoch, history["val_prob_sd"], linestyle="--", color="tab:orange", label="SD of val probabilities")
        spread_ax.set_ylabel("SD of probabilities across stays")
        spread_ax.set_ylim(bottom=0)
        spread_ax.legend(fontsize=8, loc="lower right")
    if has_lr:
        axes[2].plot(epoch, history["lr"], color="tab:purple")
        axes[2].set(xlabel="epoch", ylabel="learning rate", title="Learning rate")
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    return fig


def forest_figure(names: Sequence[str], values, lows, highs, highlight: Sequence[bool], *,
                  metric: str = "AUPRC", title: str = "") -> Figure:
    """Point estimates with 95% CIs, best at the top."""
    n = len(names)
    fig, ax = _new_figure(7.0, 1.2 + 0.38 * n)
    ypos = np.arange(n)[::-1]
    values, lows, highs = (np.asarray(a, dtype=float) for a in (values, lows, highs))
    for yi, v, lo, hi, hl in zip(ypos, values, lows, highs, highlight):
        color = "tab:red" if hl else "tab:blue"
        ax.errorbar(v, yi, xerr=[[v - lo], [hi - v]], fmt="o", color=color, capsize=3,
                    markersize=6 if hl else 5, linewidth=1.6 if hl else 1.2)
        ax.annotate(f"{v:.3f} [{lo:.3f}, {hi:.3f}]", (hi, yi), textcoords="offset points", xytext=(6, -3),
                    fontsize=8)
    ax.set_yticks(ypos, names)
    span = np.nanmax(highs) - np.nanmin(lows)
    ax.set_xlim(np.nanmin(lows) - 0.05 * span, np.nanmax(highs) + 0.45 * span)
    ax.set(xlabel=f"{metric} (95% bootstrap CI)", title=title or f"{metric} with 95% CI")
    ax.grid(axis="x", alpha=0.3)
    return fig


def decision_curve_figure(curves: Sequence[Curve], title: str = "Decision curve") -> Figure:
    """Net benefit against the threshold probability, with treat-all and treat-none (Vickers & Elkin 2006)."""
    from alfia.evaluation.curves import DCA_PLOT_MAX, DCA_THRESHOLDS, net_benefit, treat_all

    t = DCA_THRESHOLDS[DCA_THRESHOLDS <= DCA_PLOT_MAX]
    fig, ax = _new_figure(5.6, 4.6 + (0.13 * len(curves) if len(curves) > 5 else 0))
    for curve, color in zip(curves, _colors(len(curves))):
        ax.plot(t, net_benefit(curve.y, curve.prob, t), label=curve.name, **_style(curve, color))
    prevalence = float(np.mean(curves[0].y))
    everyone = treat_all(prevalence, t)
    ax.plot(t, everyone, color="black", linestyle="--", linewidth=1, label="treat all")
    ax.axhline(0.0, color="grey", linestyle=":", linewidth=1.2, label="treat none")
    ax.set(xlabel="threshold probability p_t", ylabel="net benefit (per stay)", title=title, xlim=(0, DCA_PLOT_MAX),
           ylim=(-0.05 * max(prevalence, 0.02), max(prevalence, 0.02) * 1.1))
    ax.grid(alpha=0.3)
    _legend(fig, ax, len(curves) + 2, "upper right")
    return fig


def run_figures(y, prob, result: dict, folder: str | os.PathLike, *, title: str,
                history: pd.DataFrame | None = None) -> dict[str, Path]:
    """The figures of one evaluated run, written into ``folder``; returns name -> path."""
    folder = Path(folder)
    split = result["split"]
    curve = [Curve(title, np.asarray(y), np.asarray(prob))]
    figures = {
        "roc": roc_figure(curve, f"ROC — {title} ({split})"),
        "pr": pr_figure(curve, f"Precision-recall — {title} ({split})"),
        "calibration": calibration_figure(curve, f"Calibration — {title} ({split})"),
        "decision_curve": decision_curve_figure(curve, f"Decision curve — {title} ({split})"),
        "confusion_matrix": confusion_figure(result["operating_points"], f"{title} ({split})"),
    }
    if history is not None:
        figures["training_curves"] = training_curves_figure(history, f"Training — {title}")
    return {name: save_figure(fig, folder / f"{name}.png") for name, fig in figures.items()}


def internal_external_forest_figure(names: Sequence[str], internal, external, highlight: Sequence[bool], *,
                                    metric: str = "AUPRC", title: str = "") -> Figure:
    """Each model's internal test and external estimate with 95% CIs on one row, best external first.

    ``internal`` / ``external``: (values, lows, highs), each a sequence aligned with ``names``.
    """
    n = len(names)
    fig, ax = _new_figure(7.5, 1.4 + 0.45 * n)
    ypos = np.arange(n)[::-1].astype(float)
    series = (("internal test", internal, "tab:gray", "s", +0.14), ("external", external, "tab:blue", "o", -0.14))
    lows_all, highs_all = [], []
    for label, (values, lows, highs), color, marker, dy in series:
        values, lows, highs = (np.asarray(a, dtype=float) for a in (values, lows, highs))
        lows_all.append(lows)
        highs_all.append(highs)
        for i, (yi, v, lo, hi) in enumerate(zip(ypos, values, lows, highs)):
            c = "tab:red" if (highlight[i] and label == "external") else color
            ax.errorbar(v, yi + dy, xerr=[[v - lo], [hi - v]], fmt=marker, color=c, capsize=3, markersize=5,
                        linewidth=1.2, label=label if i == 0 else None)
            if label == "external":
                ax.annotate(f"{v:.3f} [{lo:.3f}, {hi:.3f}]", (hi, yi + dy), textcoords="offset points",
                            xytext=(6, -3), fontsize=8)
    ax.set_yticks(ypos, names)
    lo_all, hi_all = np.nanmin(np.concatenate(lows_all)), np.nanmax(np.concatenate(highs_all))
    span = max(hi_all - lo_all, 1e-6)
    ax.set_xlim(lo_all - 0.05 * span, hi_all + 0.45 * span)
    ax.set(xlabel=f"{metric} (95% bootstrap CI)", title=title or f"{metric}: internal test vs external")
    ax.legend(loc="lower right", fontsize=8, frameon=False)
    ax.grid(axis="x", alpha=0.3)
    return fig


def shift_figure(shift: dict, title: str = "", max_rows: int = 40) -> Figure:
    """Covariate shift a clinician can read: standardised mean differences (left; |SMD| > 0.1 shaded
    as a notable difference) and missing share in training vs external (right), one row per predictor."""
    rows = list(shift["predictors"])
    rows.sort(key=lambda r: (r["smd"] is None, -abs(r["smd"] or 0.0)))
    rows = rows[:max_rows]
    n = len(rows)
    fig, (ax, bx) = _new_figure(10.0, 1.6 + 0.28 * n, ncols=2, sharey=True,
                                gridspec_kw={"width_ratios": [3, 2]})
    ypos = np.arange(n)[::-1]
    labels = [r["variable"] + (f" = {r['smd_level']}" if r.get("smd_level") else "") for r in rows]
    smd = np.array([np.nan if r["smd"] is None else r["smd"] for r in rows], dtype=float)
    ax.axvspan(-0.1, 0.1, color="tab:green", alpha=0.08)
    ax.axvline(0.0, color="black", linewidth=0.8)
    big = np.abs(smd) > 0.1
    ax.scatter(smd[~big], ypos[~big], color="tab:blue", s=22, zorder=3)
    ax.scatter(smd[big], ypos[big], color="tab:red", s=26, zorder=3)
    for yi, v in zip(ypos, smd):
        if np.isnan(v):
            ax.annotate("not measured (or < 10 values)", (0, yi), xytext=(4, -3), textcoords="offset points", fontsize=7,
                        color="gray")
    ax.set_yticks(ypos, labels, fontsize=8)
    lim = max(0.5, float(np.nanmax(np.abs(smd))) * 1.1) if np.isfinite(smd).any() else 0.5
    ax.set_xlim(-lim, lim)
    ax.set(xlabel="Standardised mean difference (external − training)", title="Covariate shift")
    ax.grid(axis="x", alpha=0.3)
    h = 0.38
    mt = np.array([r["missing_train"] for r in rows]) * 100
    me = np.array([r["missing_external"] for r in rows]) * 100
    bx.barh(ypos + h / 2, mt, height=h, color="tab:gray", label="training")
    bx.barh(ypos - h / 2, me, height=h, color="tab:orange", label="external")
    bx.set_xlim(0, 100)
    bx.set(xlabel="Missing (% of stays)", title="Missingness")
    bx.legend(loc="lower right", fontsize=8, frameon=False)
    bx.grid(axis="x", alpha=0.3)
    if title:
        fig.suptitle(title)
    return fig
