"""scikit-learn's estimator checks (``parametrize_with_checks``) on the zoo's ``TabularClassifier`` families.

Each family runs with a tiny configuration and ``spec=None`` (every column numeric, any 2-D array), the way
the checks fit: ``fit(X, y)`` with no validation split holds out a stratified 20% of ``X`` for the selection.
One family of each kind of code path is checked: a scikit-learn model behind the dense preprocessing and a
grid (``GridSelected``), a GBDT early-stopped on its own library (``LightGBMModel``; XGBoost and CatBoost share
``EarlyStoppedBoosting``), and the epoch-by-epoch MLP (``MLPModel``; the FT-Transformer shares its surface and
costs seconds per fit). The whole check list applies to them, but for what ``NOT_APPLICABLE`` names:

- ``check_classifiers_train`` / ``check_classifiers_classes`` on a *multiclass* target are not failures but
  a refusal: the zoo predicts in-hospital death, binary by design, and says so with scikit-learn's own
  message ("Only binary classification is supported"); ``check_classifier_not_supporting_multiclass`` checks it.

``ALFIAClassifier`` is not run through ``check_estimator``: its ``fit`` takes a text table (a file with the
split and label columns) and trains a transformer, where the checks pass numeric arrays and labels.
``tests/api/test_api.py`` runs the checks that need no fit on it and checks the rest of its contract itself
(clone-and-fit, parameters unchanged by fit and save, the temporary run, threads and seeds).
"""

from __future__ import annotations

from sklearn.linear_model import LogisticRegression
from sklearn.utils.estimator_checks import parametrize_with_checks

from alfia.baselines.estimators import GridSelected, LightGBMModel, MLPModel

ESTIMATORS = [
    GridSelected(None, LogisticRegression(max_iter=200), {"C": [0.1, 1.0]}),
    LightGBMModel(None, params={"num_leaves": 4, "min_child_samples": 2}, n_estimators=10, early_stopping_rounds=3,
                  n_jobs=1),
    MLPModel(None, hidden_layer_sizes=(4,), max_epochs=3, patience=1),
]
NOT_APPLICABLE: dict[str, str] = {}


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=lambda est: NOT_APPLICABLE)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)
