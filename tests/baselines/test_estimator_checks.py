"""scikit-learn's estimator checks (``parametrize_with_checks``) on the zoo's ``TabularClassifier`` families.

Each family runs with a tiny configuration and ``spec=None`` (every column numeric, any 2-D array), the way
the checks fit: ``fit(X, y)`` with no validation split holds out a stratified 20% of ``X`` for the selection.
Two families stand for the rest: a scikit-learn model behind the dense preprocessing and a grid
(``GridSelected``: kNN, logistic regression, the forests), and a GBDT early-stopped by its library
(``LightGBMModel``; XGBoost and CatBoost share ``EarlyStoppedBoosting``). The MLP and the FT-Transformer share
the same ``TabularClassifier`` surface (input checks, labels, hold-out, not-fitted error); their epoch loops
need tens of epochs to reach the checks' training accuracy, which would add minutes to the suite (the MLP
passes them all: 54 checks with ``hidden_layer_sizes=(8,), learning_rate_init=0.02, max_epochs=40``).
Every check of the list applies and passes, with these qualifications:

- the multiclass checks run as ``check_classifier_not_supporting_multiclass``: the zoo predicts in-hospital
  death, binary by design (tag ``multi_class=False``), and refuses more classes with scikit-learn's message;
- ``check_array_api_input`` is skipped by scikit-learn itself (``SCIPY_ARRAY_API`` unset); it would not apply
  anyway: the families compute on pandas/NumPy through their libraries, not on array-API namespaces;
- ``check_estimators_nan_inf`` passes because every family takes NaN (tag ``allow_nan``: imputers, native
  missing values) and the array path rejects inf.

``ALFIAClassifier`` is not run through ``check_estimator``: its ``fit`` takes a text table (a file with the
split and label columns) and trains a transformer, where the checks pass numeric arrays and labels.
``tests/api/test_api.py`` runs the checks that need no fit on it and checks the rest of its contract itself
(clone-and-fit, parameters unchanged by fit and save, the temporary run, threads and seeds).
"""

from __future__ import annotations

from sklearn.linear_model import LogisticRegression
from sklearn.utils.estimator_checks import parametrize_with_checks

from alfia.baselines.estimators import GridSelected, LightGBMModel

ESTIMATORS = [
    GridSelected(None, LogisticRegression(max_iter=200), {"C": [0.1, 1.0]}),
    LightGBMModel(None, params={"num_leaves": 4, "min_child_samples": 2}, n_estimators=10, early_stopping_rounds=3,
                  n_jobs=1),
]


@parametrize_with_checks(ESTIMATORS)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)
