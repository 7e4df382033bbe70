"""ALFIA-boost and ALFIA-nn: fused ALF embeddings joined with the original predictors, fed to a GBDT
(LightGBM or CatBoost: ALFIA-boost) or to the MLP (ALFIA-nn), replacing ALFIA's attentional head.

The embeddings are the ``alf_*`` columns that ``alfia embed RUN_DIR`` writes (one row per stay). They
must come from an ALFIA run trained on the cohort's training split (its early stopping saw val labels;
test labels are never seen). This module joins them to the cohort by ``stay_id`` and never reads
the label or split columns of the embeddings file as features: the feature matrix of a stay depends
only on its own predictors and its own text (``tests/baselines/test_boost.py`` checks this by
permuting validation and test labels).

The training rows' embeddings are another matter: an ALFIA run embeds its own training rows after
fitting their labels, so those embeddings carry the labels and the learner over-trusts them.
``alfia embed RUN_DIR --cross-fit K`` (``alfia.api.crossfit``) embeds every training row with a model
refitted without it and marks each row in ``embedding_source``; :func:`run_boost` warns
(:class:`InSampleEmbeddingsWarning`) when training rows come without that mark.
"""

from __future__ import annotations

import os
import re
import warnings

import numpy as np
import pandas as pd

from alfia.baselines.preprocessing import FeatureSpec
from alfia.baselines.registry import MODELS, Profile, build_model
from alfia.baselines.runner import BaselineRunConfig, ExternalInput, run_models
from alfia.cohorts.schema import ID_COLUMN, SPLIT_COLUMN
from alfia.errors import AlfiaError
from alfia.machine import resolve_jobs

EMBEDDING_PATTERN = re.compile(r"^alf_\d+$")
# Where each row's embedding came from (written by ``alfia embed --cross-fit``): a model refitted without
# the row (OUT_OF_FOLD, every training row) or the trained run itself (FULL_RUN, val/test/external rows).
EMBEDDING_SOURCE_COLUMN = "embedding_source"
OUT_OF_FOLD = "out_of_fold"
FULL_RUN = "full_run"
CROSS_FIT_HINT = "alfia embed RUN_DIR --input TEXT.parquet --out EMB.parquet --cross-fit 5"


class InSampleEmbeddingsWarning(UserWarning):
    """Training rows whose embeddings come from a model trained on their own labels."""
LAYER_WEIGHT_PATTERN = re.compile(r"^layer_weight_\d+$")

# learner -> (run name, model family, registry model it uses)
LEARNERS: dict[str, tuple[str, str, str]] = {
    "lightgbm": ("ALFIA-boost-LightGBM", "alfia-boost", "LightGBM"),
    "catboost": ("ALFIA-boost-CatBoost", "alfia-boost", "CatBoost"),
    "mlp": ("ALFIA-nn", "alfia-nn", "NeuralNetMLP"),
}


def resolve_learners(learners) -> list[str]:
    if not learners:
        return list(LEARNERS)
    out, unknown = [], []
    for raw in learners:
        key = str(raw).strip().lower()
        (out if key in LEARNERS else unknown).append(key)
    if unknown:
        raise AlfiaError(f"unknown learner(s): {', '.join(unknown)}; known learners: "
                         f"{', '.join(LEARNERS)}")
    return list(dict.fromkeys(out))


def embedding_columns(embeddings: pd.DataFrame, *, include_layer_weights: bool = False,
                      source: str = "embeddings") -> list[str]:
    """The feature columns of an ``alfia embed`` file, in index order (``alf_0``, ``alf_1``, ...)."""
    def index(c: str) -> int:
        return int(c.rsplit("_", 1)[1])

    cols = sorted((c for c in embeddings.columns if EMBEDDING_PATTERN.match(str(c))), key=index)
    if not cols:
        raise AlfiaError(f"{source}: no embedding columns (alf_0, alf_1, ...); write them with "
                         f"`alfia embed RUN_DIR --input FILE --out EMB.parquet`")
    if include_layer_weights:
        cols += sorted((c for c in embeddings.columns if LAYER_WEIGHT_PATTERN.match(str(c))),
                       key=index)
    return cols


def build_boost_frame(cohort: pd.DataFrame, embeddings: pd.DataFrame, *,
                      include_layer_weights: bool = False, cohort_source: str = "cohort",
                      embeddings_source: str = "embeddings") -> tuple[pd.DataFrame, list[str]]:
    """The cohort with the embedding columns joined by ``stay_id`` (cohort row order kept).

    Only ``stay_id`` and the embedding columns of ``embeddings`` are read; its label column never is.
    Every cohort stay needs exactly one embedding row, and where the embeddings carry a split it must
    agree with the cohort's (embeddings of another split assignment would leak).
    """
    if ID_COLUMN not in embeddings.columns:
        raise AlfiaError(f"{embeddings_source}: no {ID_COLUMN!r} column to join on")
    cols = embedding_columns(embeddings, include_layer_weights=include_layer_weights,
                             source=embeddings_source)
    clash = [c for c in cols if c in cohort.columns]
    if clash:
        raise AlfiaError(f"{cohort_source}: already has column(s) {', '.join(clash)}")
    if embeddings[ID_COLUMN].duplicated().any():
        dup = embeddings.loc[embeddings[ID_COLUMN].duplicated(), ID_COLUMN].iloc[0]
        raise AlfiaError(f"{embeddings_source}: stay {dup} has more than one embedding row")
    values = embeddings[cols].to_numpy(dtype=float)
    bad = ~np.isfinite(values)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise AlfiaError(f"{embeddings_source}: row {r}, column {cols[c]!r} is not a finite number")
    # One concat, not column-by-column inserts: hundreds of alf_* columns would fragment the frame.
    emb = pd.concat([embeddings[[ID_COLUMN]].reset_index(drop=True),
                     pd.DataFrame(values, columns=cols)], axis=1)
    if SPLIT_COLUMN in embeddings.columns and SPLIT_COLUMN in cohort.columns:
        merged = cohort[[ID_COLUMN, SPLIT_COLUMN]].merge(
            embeddings[[ID_COLUMN, SPLIT_COLUMN]], on=ID_COLUMN, how="inner", suffixes=("", "_emb"))
        differ = merged[merged[SPLIT_COLUMN].astype(str) != merged[f"{SPLIT_COLUMN}_emb"].astype(str)]
        if len(differ):
            r = differ.iloc[0]
            raise AlfiaError(
                f"{embeddings_source}: stay {r[ID_COLUMN]} is in split {r[f'{SPLIT_COLUMN}_emb']!r} "
                f"there but {r[SPLIT_COLUMN]!r} in {cohort_source} ({len(differ)} stays differ); "
                f"embeddings must come from an ALFIA run trained on this cohort's training split")
    joined = cohort.merge(emb, on=ID_COLUMN, how="left", validate="one_to_one")
    missing = joined[cols[0]].isna()
    if missing.any():
        first = joined.loc[missing, ID_COLUMN].iloc[0]
        raise AlfiaError(f"{embeddings_source}: {int(missing.sum())} stay(s) of {cohort_source} have "
                         f"no embedding (first: {ID_COLUMN} {first})")
    joined.index = cohort.index
    return joined, cols


def in_sample_training_rows(cohort: pd.DataFrame, embeddings: pd.DataFrame) -> tuple[int, int]:
    """(training rows of ``cohort`` whose embedding is not out-of-fold, training rows): an embeddings file
    without an ``embedding_source`` column (plain ``alfia embed``) counts every training row."""
    if SPLIT_COLUMN not in cohort.columns:
        return 0, 0
    train_ids = cohort.loc[cohort[SPLIT_COLUMN].astype(str) == "train", ID_COLUMN]
    if EMBEDDING_SOURCE_COLUMN not in embeddings.columns:
        return len(train_ids), len(train_ids)
    source = embeddings.set_index(ID_COLUMN)[EMBEDDING_SOURCE_COLUMN].astype(str)
    return int((source.reindex(train_ids.to_numpy()) != OUT_OF_FOLD).sum()), len(train_ids)


def warn_if_in_sample(cohort: pd.DataFrame, embeddings: pd.DataFrame,
                      embeddings_source: str = "embeddings") -> bool:
    """Warn (:class:`InSampleEmbeddingsWarning`) when training rows were not cross-fitted; True if it warned."""
    n_in_sample, n_train = in_sample_training_rows(cohort, embeddings)
    if not n_in_sample:
        return False
    if EMBEDDING_SOURCE_COLUMN not in embeddings.columns:
        what = f"has no {EMBEDDING_SOURCE_COLUMN!r} column: its {n_train} training rows were not cross-fitted"
    else:
        what = (f"{n_in_sample} of its {n_train} training rows are not {OUT_OF_FOLD!r} in column "
                f"{EMBEDDING_SOURCE_COLUMN!r}")
    warnings.warn(f"{embeddings_source}: {what}. In-sample embeddings come from the ALFIA run trained on those "
                  f"rows' labels, so they leak the training labels and the learner over-trusts them; embed "
                  f"them cross-fitted instead: `{CROSS_FIT_HINT}`", InSampleEmbeddingsWarning, stacklevel=3)
    return True


def run_boost(cohort: pd.DataFrame, embeddings: pd.DataFrame, variant: str,
              out_dir: str | os.PathLike, learners=None, seed: int = 42, *,
              profile: Profile = "full", n_boot: int = 1000, include_layer_weights: bool = False,
              callback=None, cohort_source: str = "cohort",
              embeddings_source: str = "embeddings",
              externals: list[ExternalInput] = (), n_jobs: int | None = None,
              overwrite: bool = False) -> pd.DataFrame:
    """Train ALFIA-boost (LightGBM, CatBoost) and/or ALFIA-nn (MLP); one run directory each.

    Each external cohort needs its own embeddings (``ExternalInput.embeddings``), written by
    ``alfia embed`` from the same ALFIA run, which maps a cohort of another variant first.
    Warns (:class:`InSampleEmbeddingsWarning`) when the training rows' embeddings are not cross-fitted.
    """
    keys = resolve_learners(learners)
    joined, emb_cols = build_boost_frame(cohort, embeddings,
                                         include_layer_weights=include_layer_weights,
                                         cohort_source=cohort_source,
                                         embeddings_source=embeddings_source)
    warn_if_in_sample(cohort, embeddings, embeddings_source)
    spec = FeatureSpec.from_schema(variant, joined, source=cohort_source,
                                   extra_numeric=tuple(emb_cols))
    run = BaselineRunConfig(variant=variant, models=[LEARNERS[k][0] for k in keys], seed=seed,
                            profile=profile, n_boot=n_boot, cohort=cohort_source,
                            embeddings=embeddings_source, externals=[e.source for e in externals],
                            n_jobs=resolve_jobs(n_jobs))

    def external_features(ext: ExternalInput, features: pd.DataFrame) -> pd.DataFrame:
        if ext.embeddings is None:
            raise AlfiaError(f"{ext.source}: ALFIA-boost scores an external cohort only with its ALF "
                             f"embeddings (alfia embed RUN_DIR --input {ext.source} --out EMB.parquet)")
        return build_boost_frame(features, ext.embeddings, include_layer_weights=include_layer_weights,
                                 cohort_source=ext.source, embeddings_source=f"embeddings of {ext.name}")[0]

    jobs = []
    for key in keys:
        name, family, model = LEARNERS[key]
        jobs.append((name, (lambda model=model: build_model(model, spec, seed, profile, run.n_jobs)), family,
                     MODELS[model].library,
                     f"{MODELS[model].description}, on {len(emb_cols)} ALF embedding dimensions + "
                     f"the original predictors"))
    return run_models(joined, jobs=jobs, spec=spec, run=run, out_dir=out_dir, callback=callback,
                      source=cohort_source, externals=externals, external_features=external_features,
                      overwrite=overwrite)
