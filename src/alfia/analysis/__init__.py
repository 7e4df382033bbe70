"""Look inside a model (issue 23): the paper's latent-space analysis (Fig. 6) and perturbation robustness (LAPD).

- ``latent.analyze`` (``alfia analyze``): layer weights, ALF against CLS/mean/max pooling and the tabular matrix
  (an MLP on each, UMAP, the five measures of ``geometry``), from one encoder pass per run (``states``);
- ``robustness.robustness`` (``alfia robustness``): clinically meaningful edits of the stays (``perturb``), made on
  the cohort row and re-rendered by the run's template, scored by ALFIA and zoo runs alike (``scorers``).

It sits above inference and baselines: it loads ALFIA runs (``alfia.inference``) and trains and loads the zoo's
models (``alfia.baselines``).
"""

from alfia.analysis.geometry import HIGHER_IS_BETTER, MEASURES, LatentProbe, latent_flip_rate, separation_measures
from alfia.analysis.latent import analyze
from alfia.analysis.perturb import PERTURBATIONS, items_of, perturb_rows, render_rows
from alfia.analysis.robustness import robustness, run_robustness
from alfia.analysis.scorers import AlfiaScorer, RunScorer, Scores, ZooScorer, load_scorer

__all__ = ["HIGHER_IS_BETTER", "MEASURES", "PERTURBATIONS", "AlfiaScorer", "LatentProbe", "RunScorer", "Scores",
           "ZooScorer", "analyze", "items_of", "latent_flip_rate", "load_scorer", "perturb_rows", "render_rows",
           "robustness", "run_robustness", "separation_measures"]
