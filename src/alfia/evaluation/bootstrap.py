"""Stratified bootstrap confidence intervals and the paired bootstrap test.

Resampling: each resample draws n_pos rows with replacement from the positives and n_neg rows with
replacement from the negatives, so every resample keeps the split's prevalence and AUPRC stays defined.
A resample is stored as a row of counts (how often each row was drawn) and every metric is computed
as a weighted metric (see ``metrics.py``). Resamples come from ``numpy.random.default_rng(seed)`` in a
fixed order: the same labels, ``n_boot`` and seed give the same resamples, so two models scored on the
same rows with the same seed see the very same resamples.

CIs are percentile intervals: the 2.5th and 97.5th percentiles of the resampled metric. Resamples in
which a metric is undefined (e.g. PPV with nothing predicted positive) are left out of its interval.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import pandas as pd

from alfia.cohorts.schema import ID_COLUMN, SPLIT_COLUMN
from alfia.errors import AlfiaError
from alfia.evaluation.metrics import RankedScores, auprc, auroc

CI_LEVEL = 0.95
# Resamples are built in chunks of at most this many cells (rows x resamples) to bound memory.
_CHUNK_CELLS = 2_000_000


def stratified_bootstrap_weights(y, n_boot: int, seed: int) -> Iterator[np.ndarray]:
    """Yield (chunk, n) count matrices, ``n_boot`` rows in all, each a stratified resample of y."""
    y = np.asarray(y)
    if n_boot < 1:
        raise AlfiaError(f"n_boot must be at least 1, got {n_boot}")
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    if pos.size == 0 or neg.size == 0:
        raise AlfiaError("the stratified bootstrap needs both classes; the rows hold only one")
    n = y.size
    chunk = max(1, min(n_boot, _CHUNK_CELLS // n))
    rng = np.random.default_rng(seed)
    done = 0
    while done < n_boot:
        size = min(chunk, n_boot - done)
        weights = np.zeros((size, n))
        for members in (pos, neg):
            draws = rng.integers(0, members.size, size=(size, members.size))
            flat = draws + (np.arange(size) * members.size)[:, None]
            weights[:, members] = np.bincount(flat.ravel(), minlength=size * members.size).reshape(
                size, members.size)
        done += size
        yield weights


def bootstrap_distribution(y, statistic: Callable[[np.ndarray], dict[str, np.ndarray]], *, n_boot: int,
                           seed: int) -> dict[str, np.ndarray]:
    """Evaluate ``statistic(weights) -> {name: (b,) array}`` on every resample; (n_boot,) per name."""
    parts: dict[str, list[np.ndarray]] = {}
    for weights in stratified_bootstrap_weights(y, n_boot, seed):
        for name, values in statistic(weights).items():
            parts.setdefault(name, []).append(np.asarray(values, dtype=float))
    return {name: np.concatenate(chunks) for name, chunks in parts.items()}


def _finite_or_none(x) -> float | None:
    x = float(x)
    return x if np.isfinite(x) else None


def percentile_ci(samples: np.ndarray, level: float = CI_LEVEL) -> tuple[float | None, float | None]:
    """Percentile interval of the finite samples; (None, None) when none is finite."""
    finite = samples[np.isfinite(samples)]
    if finite.size == 0:
        return None, None
    alpha = (1.0 - level) / 2.0
    low, high = np.percentile(finite, [100 * alpha, 100 * (1 - alpha)])
    return float(low), float(high)


def with_ci(value, samples: np.ndarray) -> dict[str, float | None]:
    low, high = percentile_ci(samples)
    return {"value": _finite_or_none(value), "ci_low": low, "ci_high": high}


def bootstrap_p_value(differences: np.ndarray) -> float:
    """Two-sided p-value for "no difference" from bootstrap differences.

    p = 2 * min(#(d <= 0) + 1, #(d >= 0) + 1) / (B + 1), capped at 1: the share of resampled
    differences on the far side of 0 from the observed one, doubled for two sides. The +1 keeps a
    finite number of resamples from ever claiming p = 0; the smallest reportable p is 2 / (B + 1).
    A CI that excludes 0 goes with p < 0.05 (up to resampling granularity).
    """
    d = differences[np.isfinite(differences)]
    b = d.size
    if b == 0:
        return float("nan")
    below = (np.count_nonzero(d <= 0) + 1) / (b + 1)
    above = (np.count_nonzero(d >= 0) + 1) / (b + 1)
    return float(min(1.0, 2.0 * min(below, above)))


def _check_binary(y, where: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1:
        raise AlfiaError(f"{where}: labels must be one-dimensional")
    if pd.isna(y).any() or not np.isin(y, (0, 1)).all():
        raise AlfiaError(f"{where}: labels must be 0 or 1 (found {sorted(set(pd.unique(y)) - {0, 1})[:5]})")
    return y.astype(float)


def _check_prob(prob, n: int, where: str) -> np.ndarray:
    prob = np.asarray(prob, dtype=float)
    if prob.shape != (n,):
        raise AlfiaError(f"{where}: expected {n} probabilities, got shape {prob.shape}")
    if not np.isfinite(prob).all():
        raise AlfiaError(f"{where}: probabilities contain NaN or infinite values")
    return prob


class PairedResamples:
    """AUPRC and AUROC of several models on the same stratified resamples of the same rows: any pair's paired
    test is then a difference of two stored distributions (:meth:`test`), so testing every pair costs one
    bootstrap per model, not per pair. ``probs``: model name -> probabilities, aligned to ``y``."""

    METRICS = ("auprc", "auroc")

    def __init__(self, y, probs: dict[str, np.ndarray], *, n_boot: int = 1000, seed: int = 42,
                 where: str = "paired_bootstrap"):
        self.y = _check_binary(y, where)
        self.n_boot, self.seed = n_boot, seed
        self.names = list(probs)
        ranked = {name: RankedScores.of(self.y, _check_prob(prob, self.y.size, f"{where} (model {name})"))
                  for name, prob in probs.items()}

        def statistic(weights):
            out = {}
            for name, r in ranked.items():
                tps, fps = r.cumulative_counts(weights)
                out[f"{name}\0auprc"], out[f"{name}\0auroc"] = auprc(tps, fps), auroc(tps, fps)
            return out

        self.observed = {k: float(v[0]) for k, v in statistic(np.ones((1, self.y.size))).items()}
        self.samples = bootstrap_distribution(self.y, statistic, n_boot=n_boot, seed=seed)

    def test(self, a: str, b: str) -> dict:
        """The paired test of a against b: per metric the observed difference (a - b), its 95% percentile CI,
        the two-sided p-value (:func:`bootstrap_p_value`) and both values."""
        result: dict = {"n": int(self.y.size), "n_pos": int(self.y.sum()), "n_boot": self.n_boot, "seed": self.seed,
                        "method": "stratified paired bootstrap; percentile CI; p = 2*min(share<=0, share>=0)"}
        for metric in self.METRICS:
            differences = self.samples[f"{a}\0{metric}"] - self.samples[f"{b}\0{metric}"]
            low, high = percentile_ci(differences)
            va, vb = self.observed[f"{a}\0{metric}"], self.observed[f"{b}\0{metric}"]
            result[metric] = {"difference": va - vb, "ci_low": low, "ci_high": high,
                              "p_value": bootstrap_p_value(differences), "a": va, "b": vb}
        return result


def paired_bootstrap(y, prob_a, prob_b, *, n_boot: int = 1000, seed: int = 42) -> dict:
    """AUPRC and AUROC differences (a - b) of two models scored on the same rows.

    Both models are scored on the same stratified resamples, so the interval reflects the
    uncertainty of the difference itself (the two models' errors are correlated). Returns, per
    metric, the observed difference, its 95% percentile CI, a two-sided p-value
    (:func:`bootstrap_p_value`) and both models' values.
    """
    return PairedResamples(y, {"a": prob_a, "b": prob_b}, n_boot=n_boot, seed=seed).test("a", "b")


def aligned_split(pred_a: pd.DataFrame, pred_b: pd.DataFrame, split: str, name_a: str = "a",
                  name_b: str = "b") -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ``split`` rows of two prediction frames, indexed by stay_id in the same order (a's); AlfiaError when
    they do not hold the same stay_ids there, or their labels disagree for a stay."""
    rows = []
    for name, pred in ((name_a, pred_a), (name_b, pred_b)):
        missing = [c for c in (ID_COLUMN, SPLIT_COLUMN, "label", "prob") if c not in pred.columns]
        if missing:
            raise AlfiaError(f"predictions of {name}: missing column(s) {', '.join(missing)}")
        part = pred.loc[pred[SPLIT_COLUMN] == split, [ID_COLUMN, "label", "prob"]]
        if part.empty:
            raise AlfiaError(f"predictions of {name}: no rows in split {split!r}")
        dup = part[ID_COLUMN].duplicated()
        if dup.any():
            raise AlfiaError(f"predictions of {name}: stay_id {part[ID_COLUMN][dup].iloc[0]!r} appears more "
                             f"than once in split {split!r}")
        rows.append(part.set_index(ID_COLUMN))
    a, b = rows
    only_a = a.index.difference(b.index)
    only_b = b.index.difference(a.index)
    if len(only_a) or len(only_b):
        raise AlfiaError(
            f"{name_a} and {name_b} were not scored on the same {split} stays: {len(only_a)} stay_id(s) only in "
            f"{name_a} (e.g. {list(only_a[:3])}), {len(only_b)} only in {name_b} (e.g. {list(only_b[:3])})")
    b = b.loc[a.index]
    disagree = a["label"].to_numpy() != b["label"].to_numpy()
    if disagree.any():
        raise AlfiaError(f"{name_a} and {name_b} disagree on the label of stay_id {a.index[disagree][0]!r} "
                         f"({int(disagree.sum())} stay(s) in all)")
    return a, b


def paired_compare(pred_a: pd.DataFrame, pred_b: pd.DataFrame, split: str = "test", *, n_boot: int = 1000,
                   seed: int = 42, name_a: str = "a", name_b: str = "b") -> dict:
    """:func:`paired_bootstrap` on two prediction frames, rows aligned by stay_id within ``split``.

    Raises AlfiaError when the two frames do not hold the same stay_ids in that split, or their
    labels disagree for a stay.
    """
    a, b = aligned_split(pred_a, pred_b, split, name_a, name_b)
    result = paired_bootstrap(a["label"].to_numpy(), a["prob"].to_numpy(), b["prob"].to_numpy(),
                              n_boot=n_boot, seed=seed)
    return {"model_a": name_a, "model_b": name_b, "split": split, **result}
