"""The Python API: the same steps as the CLI, in a few lines, writing the same files.

    import alfia
    cohort = alfia.cohort.synthetic(n=3000, out="cohort.parquet")      # or physionet2012 / mimic_iv / eicu
    texts = alfia.encode(cohort)                                       # cohort.text.parquet
    model = alfia.ALFIAClassifier(epochs=2).fit(texts)                  # a run directory, as `alfia train`
    report = alfia.evaluate(model, split="test")                        # metrics.json + figures, as `alfia evaluate`

Every function here wraps the function the CLI command calls (``alfia.training.train_run``,
``alfia.evaluation.evaluate_run``, ``alfia.baselines.runner.run_baselines``, ...), so a notebook and a
shell produce the same files. The API sits above every stage and below ``cli/``.
"""

from alfia.api import cohort
from alfia.api.classifier import ALFIAClassifier, configs_from_params
from alfia.api.data import CohortTable, TextTable, encode, load
from alfia.api.evaluate import Report, evaluate

__all__ = ["ALFIAClassifier", "CohortTable", "Report", "TextTable", "cohort", "configs_from_params", "encode",
           "evaluate", "load"]
