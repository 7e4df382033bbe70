"""Evaluation: one module scores every model of the project, ALFIA or baseline.

- :func:`evaluate_predictions` / :func:`evaluate_run`: AUPRC, AUROC, best F1/F2, threshold metrics at
  thresholds chosen on val, calibration; each with a stratified-bootstrap 95% CI.
- :func:`paired_bootstrap` / :func:`paired_compare`: AUPRC and AUROC differences of two models on the
  same rows, with CI and p-value.
- :func:`compare_runs`: the comparison report of many run directories (``alfia compare``).
"""

from alfia.evaluation.bootstrap import paired_bootstrap, paired_compare
from alfia.evaluation.compare import compare_runs, find_run_dirs
from alfia.evaluation.report import evaluate_predictions, evaluate_run
from alfia.runs import validate_predictions

__all__ = ["compare_runs", "evaluate_predictions", "evaluate_run", "find_run_dirs", "paired_bootstrap",
           "paired_compare", "validate_predictions"]
