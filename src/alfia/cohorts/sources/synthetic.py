"""Synthetic CW-24 cohorts calibrated to the paper's Tables 1 and 2 (the embedded default data).

The generator draws the outcome first (an exact count of deaths at the published rate), then every
predictor from its *published per-outcome distribution* (``shared/seeds/cw24-*-variables.txt``, Table 1
of each file). Within an outcome group, variables share a latent severity ``z`` through a Gaussian
copula, so a stay with a high APACHE also has a high SOFA and a low GCS, as in a real ICU; height and
weight share a second, body-size factor.

How each kind of variable is drawn:

* continuous scores, age, height, weight: a Beta distribution on a plausible support, with the
  published mean and SD of the outcome group (method of moments), read through the copula;
* SIRS (published as category shares): the published per-outcome shares, read through the copula;
* GCS / SOFA window aggregates: on a "badness" scale (15 - GCS, or SOFA), the best and worst values of
  the window come from integer distributions fitted to the published mean and SD (maximum entropy on
  the score's range), coupled comonotonically; first and last lie at a binomial position between
  them, the mean at a Beta position, and the SD is a Beta fraction of the range. Every position's
  expectation is solved from the published means, so each aggregate's mean is reproduced while
  ``min <= first, last, avg <= max`` and ``std >= 0`` hold row by row, and GCS stays an integer 3-15;
* categorical variables with published shares: those shares, per outcome;
* MIMIC-IV race, language, admission type, admission location and first care unit (no published
  shares): the shares of the MIMIC-IV Clinical Database Demo v2.2 (``icustays`` joined with
  ``admissions``, 140 ICU stays), plus a pseudo-count of 0.25 per schema category so rare categories
  appear; the same for both outcome groups.

The strength of the shared factor sets how separable the outcome is; it is chosen so that a default
LightGBM reaches a test AUROC near the ~0.89 reported for CW-24 MIMIC-IV (realistic, not trivially
separable). ``tests/cohorts/test_synthetic.py`` checks every published figure.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
from scipy import optimize, special, stats

from alfia.cohorts.schema import (
    ID_COLUMN, OUTCOME_COLUMN, SPLIT_COLUMN, CohortSchema, get_schema,
)
from alfia.cohorts.splits import DEFAULT_SEED, assign_splits
from alfia.errors import AlfiaError

# (mean, SD) for survived, then died: Table 1 of the seed files.
Moments = tuple[tuple[float, float], tuple[float, float]]


@dataclass(frozen=True)
class ContinuousSpec:
    moments: Moments
    support: tuple[float, float]  # Beta support: plausible clinical range, inside the schema range
    decimals: int  # 0 for integer-valued scores
    body_loading: float = 0.0  # weight on the shared body-size factor (height, weight)


@dataclass(frozen=True)
class DynamicSpec:
    """Published (mean, SD) per outcome of the six window aggregates of one score."""

    max: Moments
    min: Moments
    first: Moments
    last: Moments
    avg: Moments
    stddev: Moments


@dataclass(frozen=True)
class Calibration:
    variant: str
    mortality_rate: float
    continuous: dict[str, ContinuousSpec]
    # Published shares per outcome: {column: {category: (share_survived, share_died)}}
    categorical: dict[str, dict[str, tuple[float, float]]]
    # Same shares for both outcomes (no published figures): {column: {category: count}}
    unpublished: dict[str, dict[str, float]]
    ordinal: dict[str, dict[int, tuple[float, float]]]  # integer scores published as shares
    dynamic: dict[str, DynamicSpec]
    severity_scale: float  # loading = standardized mortality difference / scale (see _loading)
    stay_id_offset: int


# --- MIMIC-IV: cw24-mimic-variables.txt, Table 1 ------------------------------------------------

# MIMIC-IV Demo v2.2 (icustays x admissions, 140 stays): counts per category.
_DEMO_RACE = {
    "WHITE": 91, "BLACK/AFRICAN AMERICAN": 16, "UNKNOWN": 12, "OTHER": 4,
    "HISPANIC/LATINO - SALVADORAN": 3, "PATIENT DECLINED TO ANSWER": 3, "UNABLE TO OBTAIN": 3,
    "HISPANIC/LATINO - CUBAN": 2, "WHITE - BRAZILIAN": 1, "BLACK/CAPE VERDEAN": 1, "PORTUGUESE": 1,
    "HISPANIC OR LATINO": 1, "WHITE - OTHER EUROPEAN": 1, "HISPANIC/LATINO - PUERTO RICAN": 1,
}
_DEMO_LANGUAGE = {"English": 127, "Unknown": 13}  # demo writes 'ENGLISH' and '?'
_DEMO_ADMISSION_TYPE = {
    "EW EMER.": 67, "URGENT": 31, "OBSERVATION ADMIT": 17, "SURGICAL SAME DAY ADMISSION": 15,
    "DIRECT EMER.": 5, "ELECTIVE": 5,
}
_DEMO_ADMISSION_LOCATION = {
    "EMERGENCY ROOM": 68, "TRANSFER FROM HOSPITAL": 34, "PHYSICIAN REFERRAL": 26,
    "CLINIC REFERRAL": 4, "PROCEDURE SITE": 3, "PACU": 2,
    "TRANSFER FROM SKILLED NURSING FACILITY": 2, "INFORMATION NOT AVAILABLE": 1,
}
_DEMO_CAREUNIT = {
    "Medical Intensive Care Unit (MICU)": 29, "Surgical Intensive Care Unit (SICU)": 29,
    "Cardiac Vascular Intensive Care Unit (CVICU)": 25,
    "Medical/Surgical Intensive Care Unit (MICU/SICU)": 23, "Trauma SICU (TSICU)": 16,
    "Coronary Care Unit (CCU)": 13, "Neuro Surgical Intensive Care Unit (Neuro SICU)": 3,
    "Neuro Stepdown": 1, "Neuro Intermediate": 1,
}
_PSEUDO_COUNT = 0.25


def _pct(*pairs: tuple[str, float, float]) -> dict[str, tuple[float, float]]:
    return {name: (s / 100.0, d / 100.0) for name, s, d in pairs}


MIMIC_CALIBRATION = Calibration(
    variant="mimic",
    mortality_rate=0.1084,
    continuous={
        "admission_age": ContinuousSpec(((64.30, 17.17), (71.08, 15.53)), (18, 91), 1),
        "height": ContinuousSpec(((169.93, 10.61), (168.22, 10.62)), (120, 220), 1, 0.7),
        "weight": ContinuousSpec(((82.05, 34.86), (78.68, 24.32)), (30, 300), 1, 0.6),
        "apsiii": ContinuousSpec(((38.90, 17.16), (65.53, 26.95)), (0, 220), 0),
        "sapsii": ContinuousSpec(((32.90, 12.62), (50.24, 16.24)), (0, 130), 0),
        "lods": ContinuousSpec(((3.72, 2.56), (7.18, 3.55)), (0, 22), 0),
        "meld": ContinuousSpec(((12.50, 6.92), (19.47, 10.06)), (6, 40), 2),
        "oasis": ContinuousSpec(((29.58, 7.96), (38.63, 9.06)), (0, 80), 0),
    },
    categorical={
        "gender": _pct(("Female", 43.59, 45.78), ("Male", 56.41, 54.22)),
        "marital_status": _pct(("Divorced", 7.10, 5.72), ("Married", 45.49, 38.67),
                               ("Single", 27.36, 20.12), ("Widowed", 11.12, 14.48),
                               ("Unknown", 8.94, 21.01)),
        "insurance": _pct(("Medicaid", 14.59, 12.01), ("Medicare", 51.38, 63.75),
                          ("No Charge", 0.01, 0.01), ("Other", 2.76, 1.76),
                          ("Private", 29.46, 17.99), ("Unknown", 1.79, 4.47)),
        "smoker": _pct(("No", 93.40, 95.15), ("Yes", 6.60, 4.85)),
        "alcohol_abuse": _pct(("No", 99.06, 99.35), ("Yes", 0.94, 0.65)),
    },
    unpublished={
        "race": _DEMO_RACE, "language": _DEMO_LANGUAGE, "admission_type": _DEMO_ADMISSION_TYPE,
        "admission_location": _DEMO_ADMISSION_LOCATION, "careunit": _DEMO_CAREUNIT,
    },
    ordinal={
        "sirs": {0: (0.0243, 0.0065), 1: (0.1480, 0.0532), 2: (0.3384, 0.2350),
                 3: (0.3635, 0.4268), 4: (0.1257, 0.2786)},
    },
    dynamic={
        "gcs": DynamicSpec(
            max=((14.88, 0.59), (14.59, 1.50)), min=((13.82, 2.48), (12.76, 3.70)),
            first=((14.40, 1.96), (14.04, 2.40)), last=((14.65, 1.12), (13.89, 2.72)),
            avg=((14.56, 1.00), (14.01, 1.98)), stddev=((0.45, 1.01), (0.83, 1.53))),
        "sofa": DynamicSpec(
            max=((3.66, 2.83), (6.92, 4.18)), min=((1.42, 1.91), (2.71, 2.87)),
            first=((1.47, 1.95), (2.77, 2.92)), last=((3.56, 2.80), (6.78, 4.16)),
            avg=((3.05, 2.51), (5.63, 3.57)), stddev=((0.70, 0.63), (1.28, 1.01))),
    },
    severity_scale=1.7,  # test AUROC of a default LightGBM ~0.89 (paper: ALFIA 0.89)
    stay_id_offset=30_000_000,  # MIMIC-IV stay_ids are 8-digit numbers starting with 3
)

# --- eICU: cw24-eicu-variables.txt, Table 1 -----------------------------------------------------

EICU_CALIBRATION = Calibration(
    variant="eicu",
    mortality_rate=0.0877,
    continuous={
        "age": ContinuousSpec(((62.43, 17.25), (69.76, 15.06)), (18, 90), 1),
        "height": ContinuousSpec(((169.35, 13.74), (168.42, 14.47)), (120, 220), 1, 0.7),
        "weight": ContinuousSpec(((84.19, 26.84), (80.90, 28.18)), (30, 300), 1, 0.6),
        "apacheiv": ContinuousSpec(((51.02, 22.63), (87.23, 33.34)), (0, 250), 0),
        "sapsii": ContinuousSpec(((28.90, 13.05), (49.58, 17.89)), (0, 130), 0),
        "oasis": ContinuousSpec(((24.65, 8.91), (35.76, 11.34)), (0, 80), 0),
    },
    categorical={
        "region": _pct(("Midwest", 34.62, 29.82), ("Northeast", 7.08, 9.50),
                       ("South", 31.14, 34.26), ("West", 20.70, 20.53), ("Unknown", 6.46, 5.88)),
        "ethnicity": _pct(("African American", 11.19, 10.28), ("Asian", 1.67, 1.81),
                          ("Caucasian", 76.59, 77.50), ("Hispanic", 3.82, 3.97),
                          ("Native American", 0.74, 0.68), ("Other/Unknown", 4.75, 4.52),
                          ("Unknown", 1.23, 1.24)),
        "unittype": _pct(("CCU-CTICU", 8.48, 7.78), ("CSICU", 3.69, 2.39), ("CTICU", 3.33, 2.12),
                         ("Cardiac ICU", 6.96, 8.17), ("MICU", 8.17, 11.61),
                         ("Med-Surg ICU", 55.53, 55.13), ("Neuro ICU", 7.55, 6.91),
                         ("SICU", 6.28, 5.88)),
        "gender": _pct(("Female", 45.94, 46.58), ("Male", 54.02, 53.30), ("Unknown", 0.03, 0.12)),
        "smoker": _pct(("No", 8.43, 8.21), ("Yes", 10.05, 9.13), ("Unknown", 81.52, 82.66)),
        "alcohol_abuse": _pct(("No", 97.91, 98.37), ("Yes", 2.09, 1.63)),
        "drug_abuse": _pct(("No", 99.88, 99.96), ("Yes", 0.12, 0.04)),
        "obesity": _pct(("No", 98.96, 98.74), ("Yes", 1.04, 1.26)),
    },
    unpublished={},
    ordinal={},
    dynamic={
        "gcs": DynamicSpec(
            max=((14.28, 1.88), (11.03, 4.38)), min=((12.72, 3.55), (8.47, 4.73)),
            first=((13.28, 3.20), (10.19, 4.75)), last=((13.93, 2.33), (9.40, 4.64)),
            avg=((13.63, 2.39), (9.76, 4.35)), stddev=((0.72, 1.24), (1.27, 1.57))),
        "sofa": DynamicSpec(
            max=((4.58, 3.01), (7.83, 3.95)), min=((1.84, 2.13), (3.42, 2.91)),
            first=((2.00, 2.25), (3.56, 2.99)), last=((4.30, 2.95), (7.55, 3.98)),
            avg=((3.92, 2.74), (6.67, 3.49)), stddev=((0.86, 0.70), (1.39, 1.03))),
    },
    severity_scale=1.2,  # the GCS block separates more in eICU; default LightGBM AUROC ~0.90
    stay_id_offset=100_000,  # eICU patientunitstayids are 6-7 digit numbers
)

CALIBRATIONS = {c.variant: c for c in (MIMIC_CALIBRATION, EICU_CALIBRATION)}

# How scattered first/last/avg/SD positions are around their means (Beta concentration).
_POSITION_CONCENTRATION = 6.0
_STD_CONCENTRATION = 20.0


# --- marginals ------------------------------------------------------------------------------------

def _beta_params(mean: float, sd: float, lo: float, hi: float) -> tuple[float, float]:
    """Method of moments for a Beta on [lo, hi]."""
    m = (mean - lo) / (hi - lo)
    v = (sd / (hi - lo)) ** 2
    common = m * (1 - m) / v - 1
    if not 0 < m < 1 or common <= 0:
        raise ValueError(f"no Beta on [{lo}, {hi}] has mean {mean} and SD {sd}")
    return m * common, (1 - m) * common


@lru_cache(maxsize=None)
def _maxent_pmf(mean: float, sd: float, top: int) -> tuple[float, ...]:
    """Integer distribution on 0..top with the given mean and SD and maximum entropy.

    p_k ∝ exp(a k + b k²): the exponential family on a finite support reaches every feasible
    (mean, variance), so this fits U-shaped GCS tails (sedated patients at 3) as well as bell shapes.
    """
    k = np.arange(top + 1) / top  # scaled for conditioning
    target = np.array([mean / top, (sd**2 + mean**2) / top**2])
    feats = np.stack([k, k**2])

    def dual(lam):
        return special.logsumexp(lam @ feats) - lam @ target

    def grad(lam):
        p = special.softmax(lam @ feats)
        return feats @ p - target

    res = optimize.minimize(dual, np.zeros(2), jac=grad, method="BFGS",
                            options={"gtol": 1e-10, "maxiter": 1000})
    return tuple(special.softmax(res.x @ feats))


def _discrete_ppf(pmf: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Inverse CDF of an integer distribution on 0..len(pmf)-1."""
    cdf = np.cumsum(pmf)
    cdf[-1] = 1.0
    return np.minimum(np.searchsorted(cdf, u, side="left"), len(pmf) - 1)


def _beta_position(rng: np.random.Generator, mean: float, concentration: float, n: int) -> np.ndarray:
    mean = float(np.clip(mean, 1e-3, 1 - 1e-3))
    return rng.beta(mean * concentration, (1 - mean) * concentration, size=n)


def _rank_uniform(g: np.ndarray) -> np.ndarray:
    """Mid-rank quantiles of ``g`` in (0, 1): the copula's uniforms, spread exactly evenly, so the
    drawn marginal matches its target distribution without sampling noise."""
    ranks = np.empty(len(g), dtype=float)
    ranks[np.argsort(g, kind="stable")] = np.arange(len(g))
    return (ranks + 0.5) / len(g)


def _copula_uniform(z: np.ndarray, loading: float, rng: np.random.Generator,
                    body: np.ndarray | None = None, body_loading: float = 0.0) -> np.ndarray:
    loading = float(np.clip(loading, -0.95, 0.95))
    resid = max(0.02, 1.0 - loading**2 - body_loading**2)
    g = loading * z + np.sqrt(resid) * rng.standard_normal(len(z))
    if body is not None:
        g = g + body_loading * body
    return _rank_uniform(g)


def _exact_choice(rng: np.random.Generator, categories: list[str], p: np.ndarray,
                  n: int) -> np.ndarray:
    """``n`` draws whose category counts are n * p rounded (largest remainder), in random order."""
    p = p / p.sum()
    raw = n * p
    counts = np.floor(raw).astype(int)
    counts[np.argsort(-(raw - counts), kind="stable")[: n - counts.sum()]] += 1
    values = np.repeat(np.array(categories, dtype=object), counts)
    return values[rng.permutation(n)]


def _standardized_difference(moments: Moments) -> float:
    """(mean died - mean survived) / pooled SD: how far apart the published groups are."""
    (ms, ss), (md, sd) = moments
    return (md - ms) / np.sqrt((ss**2 + sd**2) / 2)


# --- the generator -----------------------------------------------------------------------------

def _dynamic_block(score: str, spec: DynamicSpec, group: int, z: np.ndarray, loading: float,
                   rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Six consistent window aggregates of GCS or SOFA for one outcome group."""
    n = len(z)
    top = 12 if score == "gcs" else 24
    to_bad = (lambda v: 15.0 - v) if score == "gcs" else (lambda v: v)
    # Best and worst values of the window, on the badness scale.
    best_name, worst_name = ("max", "min") if score == "gcs" else ("min", "max")
    best_m, best_sd = getattr(spec, best_name)[group]
    worst_m, worst_sd = getattr(spec, worst_name)[group]
    best_mean, worst_mean = to_bad(best_m), to_bad(worst_m)
    u = _copula_uniform(z, loading, rng)
    worst = _discrete_ppf(np.array(_maxent_pmf(worst_mean, worst_sd, top)), u)
    # The best value keeps each point of the worst one's badness with probability best/worst
    # (binomial thinning): exact mean, best <= worst always, and a noisy, not fixed, gap.
    best = rng.binomial(worst, np.clip(best_mean / worst_mean, 0, 1))
    gap = worst - best
    mean_gap = worst_mean - best_mean

    def position(name: str) -> float:  # where the aggregate's mean lies between best and worst
        return (to_bad(getattr(spec, name)[group][0]) - best_mean) / mean_gap

    first = best + rng.binomial(gap, np.clip(position("first"), 0, 1))
    last = best + rng.binomial(gap, np.clip(position("last"), 0, 1))
    avg = best + gap * _beta_position(rng, position("avg"), _POSITION_CONCENTRATION, n)
    std = gap * _beta_position(rng, spec.stddev[group][0] / mean_gap, _STD_CONCENTRATION, n)
    from_bad = (lambda b: 15.0 - b) if score == "gcs" else (lambda b: b.astype(float))
    out = {
        "max": from_bad(best if score == "gcs" else worst),
        "min": from_bad(worst if score == "gcs" else best),
        "first": from_bad(first), "last": from_bad(last),
        "avg": np.round(from_bad(avg), 2), "stddev": np.round(std, 2),
    }
    return {f"{score}_dynamic_{k}": np.asarray(v, dtype=float) for k, v in out.items()}


def _loading(cal: Calibration, moments: Moments) -> float:
    """A variable's weight on the severity factor: its published standardized mortality difference
    over the calibration's scale. Proportional loadings put the gap between the outcome groups along
    the severity axis, which caps how separable they are (Mahalanobis distance <= scale)."""
    return _standardized_difference(moments) / cal.severity_scale


def _group_frame(cal: Calibration, schema: CohortSchema, group: int, n: int,
                 rng: np.random.Generator) -> dict[str, np.ndarray]:
    z = rng.standard_normal(n)  # latent severity within the outcome group
    body = rng.standard_normal(n)  # latent body size (height and weight)
    cols: dict[str, np.ndarray] = {}
    for name, spec in cal.continuous.items():
        mean, sd = spec.moments[group]
        a, b = _beta_params(mean, sd, *spec.support)
        u = _copula_uniform(z, _loading(cal, spec.moments), rng, body, spec.body_loading)
        lo, hi = spec.support
        cols[name] = np.round(lo + (hi - lo) * stats.beta.ppf(u, a, b), spec.decimals)
    for name, shares in cal.ordinal.items():
        levels = np.array(sorted(shares))
        pmfs = [np.array([shares[k][g] for k in levels]) for g in (0, 1)]
        moments = tuple((float(levels @ p / p.sum()),
                         float(np.sqrt(levels**2 @ p / p.sum() - (levels @ p / p.sum()) ** 2)))
                        for p in pmfs)
        u = _copula_uniform(z, _loading(cal, moments), rng)
        cols[name] = levels[_discrete_ppf(pmfs[group] / pmfs[group].sum(), u)].astype(float)
    for score, spec in cal.dynamic.items():
        # GCS is read on its badness scale (15 - GCS), so its loading is the negated difference.
        worst = spec.min if score == "gcs" else spec.max
        sign = -1.0 if score == "gcs" else 1.0
        loading = sign * _standardized_difference(worst) / cal.severity_scale
        cols.update(_dynamic_block(score, spec, group, z, loading, rng))
    for name, shares in cal.categorical.items():
        cats = list(shares)
        cols[name] = _exact_choice(rng, cats, np.array([shares[c][group] for c in cats]), n)
    for name, counts in cal.unpublished.items():
        cats = list(schema[name].categories)
        p = np.array([counts.get(c, 0) + _PSEUDO_COUNT for c in cats])
        cols[name] = _exact_choice(rng, cats, p, n)
    return cols


def generate_synthetic(variant: str, n: int, seed: int = DEFAULT_SEED) -> pd.DataFrame:
    """A synthetic CW-24 cohort of ``n`` stays: stay_id, predictors, outcome and split columns."""
    if variant not in CALIBRATIONS:
        raise AlfiaError(f"synthetic cohorts exist for variants {', '.join(CALIBRATIONS)}, "
                         f"not {variant!r}")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise AlfiaError(f"n (--n) must be an integer number of stays, got {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise AlfiaError(f"seed must be an integer, got {seed!r}")
    if n < 16:
        raise AlfiaError(f"--n must be at least 16 to fill three stratified splits, got {n}")
    cal = CALIBRATIONS[variant]
    schema = get_schema(variant)
    rng = np.random.default_rng(seed)
    deaths = int(round(n * cal.mortality_rate))
    label = np.zeros(n, dtype=np.int64)
    label[rng.permutation(n)[:deaths]] = 1
    frame = pd.DataFrame(index=np.arange(n))
    for group in (0, 1):
        rows = np.flatnonzero(label == group)
        for name, values in _group_frame(cal, schema, group, len(rows), rng).items():
            if name not in frame:
                frame[name] = pd.Series(np.nan if not values.dtype == object else None,
                                        index=frame.index, dtype=values.dtype)
            frame.loc[rows, name] = values
    frame.insert(0, ID_COLUMN, np.arange(n, dtype=np.int64) + cal.stay_id_offset + 1)
    frame[OUTCOME_COLUMN] = label
    frame[SPLIT_COLUMN] = assign_splits(frame, seed=seed)
    for v in schema.predictors:
        if v.is_categorical:
            frame[v.name] = frame[v.name].astype(object)
        else:
            frame[v.name] = frame[v.name].astype(float)
    return frame[schema.columns]
