""""Score these cohort rows with this run": one interface over ALFIA runs and the tabular zoo's runs.

``robustness`` edits cohort rows (``perturb.py``) and needs every model, text or tabular, to score the same edited
rows. A :class:`RunScorer` does exactly that:

- :class:`AlfiaScorer` (an ALFIA run, or its export folder) scores the rows' texts, rendered by the run's template,
  and also returns the embeddings the latent flip rate needs;
- :class:`ZooScorer` (a run of ``alfia baselines``) scores the rows themselves with the run's saved model. It is a
  thin adapter over the saved-model loader of ``alfia.baselines.saved`` (``load_run(run_dir) -> SavedRun`` with
  ``model.predict_proba``, ``spec``, ``variant``, ``threshold``; ``cohort_features(run, rows, variant, source)``),
  imported when a zoo run is scored, so this package works, for ALFIA runs, where that loader is absent.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd

from alfia.errors import AlfiaError
from alfia.runs import RunLayout, read_config


@dataclass
class Scores:
    prob: np.ndarray  # (n,) probability of death
    embedding: np.ndarray | None = None  # (n, d), unit rows (alfia embed's), for text models


class RunScorer(Protocol):
    name: str
    run_dir: Path
    kind: str  # "text" or "tabular"
    variant: str  # the cohort variant whose rows it scores
    threshold: float  # the run's operating threshold (thresholds.json, max F1 on val)

    def score(self, rows: pd.DataFrame, texts: list[str] | None) -> Scores: ...


class AlfiaScorer:
    kind = "text"

    def __init__(self, run, *, batch_size: int = 64):
        from alfia.text.encode import get_template

        self.run = run
        self.run_dir = Path(run.run_dir)
        self.name = str(run.config.get("model_name") or self.run_dir.name)
        if not run.template:
            raise AlfiaError(f"{self.run_dir}: config.json records no text template (data.template); robustness "
                             f"renders edited rows with the run's template")
        self.variant = get_template(run.template, source=str(self.run_dir)).variant
        self.threshold = float(run.threshold)
        self.batch_size = batch_size

    def score(self, rows: pd.DataFrame, texts: list[str] | None) -> Scores:
        from alfia.analysis.states import encode_stays, unit_rows
        from alfia.inference.predict import InferenceInput

        if texts is None:
            raise AlfiaError(f"{self.run_dir}: an ALFIA run scores texts; none were rendered")
        inputs = InferenceInput(list(texts), np.arange(len(texts)), source="perturbed rows")
        states = encode_stays(self.run, inputs, batch_size=self.batch_size, poolings=False) \
            if self.run.backend == "torch" else None
        if states is None:  # an export folder: its predict/embed path (ONNX graph)
            from alfia.inference.predict import embed, predict

            prob = predict(self.run, inputs, batch_size=self.batch_size)[0]["prob"].to_numpy()
            emb = embed(self.run, inputs, batch_size=self.batch_size)[0]
            return Scores(prob, emb[[c for c in emb.columns if c.startswith("alf_")]].to_numpy())
        return Scores(states.prob, unit_rows(states.embedding))


class ZooScorer:
    kind = "tabular"

    def __init__(self, saved, saved_module):
        self.saved = saved
        self._module = saved_module
        self.run_dir = Path(saved.run_dir)
        self.name = str(saved.config.get("model_name") or self.run_dir.name)
        self.variant = str(saved.variant)
        self.threshold = float(saved.threshold)
        if getattr(saved, "embeddings", None):
            raise AlfiaError(f"{self.run_dir}: an ALFIA-boost/-nn run reads ALF embeddings beside the row; robustness "
                             f"scores plain zoo runs (the edited texts' embeddings would have to come from its ALFIA run)")

    def score(self, rows: pd.DataFrame, texts: list[str] | None) -> Scores:
        from alfia.baselines.estimators import frame_rows

        features = self._module.cohort_features(self.saved, rows.reset_index(drop=True), self.variant,
                                                f"{self.run_dir} (edited rows)")
        return Scores(np.asarray(self.saved.model.predict_proba(frame_rows(features, self.saved.spec))[:, 1], float))


def load_scorer(run_dir: str | os.PathLike, *, device: str = "auto", batch_size: int = 64) -> RunScorer:
    """The scorer of an ALFIA run (or export folder) or of a zoo run, by what its config.json says it is."""
    layout = RunLayout.of(run_dir).require()
    config = read_config(layout.root)
    if config.get("model_type") == "alfia" or layout.is_export:
        from alfia.inference import load_run

        return AlfiaScorer(load_run(layout.root, device=device), batch_size=batch_size)
    from alfia.baselines import scoring  # a baseline run's saved model scores new rows (alfia predict's loader)

    return ZooScorer(scoring.load_run(layout.root), scoring)
