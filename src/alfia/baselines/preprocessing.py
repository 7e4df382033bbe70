"""Per-family preprocessing, always fitted on the training split only.

- GBDTs get native categoricals: :class:`NativeCategoricals` turns each categorical column into a pandas
  ``category`` with the categories seen in training (LightGBM, XGBoost ``enable_categorical``), or into
  strings for CatBoost's ``cat_features``. A value never seen in training becomes missing (NaN) for
  LightGBM/XGBoost and the token ``"__unknown__"`` for CatBoost, instead of an error.
- kNN, logistic regression, the MLP and the random forests / extra trees get a dense matrix from
  :func:`make_dense_preprocessor`: median imputation (+ missingness indicators), optional scaling, and
  one-hot encoding with ``handle_unknown="ignore"`` (an unseen category is an all-zero row).
- FT-Transformer gets :class:`TokenizerInputs`: scaled numeric features, and categorical codes in
  ``0..k`` with 0 reserved for "missing or unseen", plus the cardinalities its tokenizer needs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from alfia.cohorts.schema import get_schema
from alfia.errors import AlfiaError

MISSING_TOKEN = "__missing__"
UNKNOWN_TOKEN = "__unknown__"


@dataclass(frozen=True)
class FeatureSpec:
    """Which columns a model sees, split into categorical and numeric."""

    categorical: tuple[str, ...]
    numeric: tuple[str, ...]

    @property
    def columns(self) -> list[str]:
        return [*self.categorical, *self.numeric]

    @classmethod
    def from_schema(cls, variant: str, df: pd.DataFrame, *, source: str = "cohort",
                    extra_numeric: tuple[str, ...] = ()) -> "FeatureSpec":
        """The variant's predictors (categorical/numeric split from the schema) plus extra columns.

        Every predictor of the schema must be present: a cohort that silently lost a column would
        otherwise train a weaker model without anyone noticing.
        """
        try:
            schema = get_schema(variant)
        except ValueError as e:
            raise AlfiaError(f"{source}: {e}") from None
        missing = [c for c in schema.predictor_names if c not in df.columns]
        if missing:
            shown = ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else "")
            raise AlfiaError(f"{source}: missing predictor column(s) of the {variant} schema: {shown}")
        return cls(tuple(schema.categorical), tuple(schema.numeric) + tuple(extra_numeric))


def categorical_as_object(s: pd.Series) -> pd.Series:
    """Categorical column as Python strings with ``np.nan`` for missing (one representation for all)."""
    return s.astype(object).map(lambda v: np.nan if pd.isna(v) else str(v))


def numeric_frame(df: pd.DataFrame, columns, source: str = "cohort") -> pd.DataFrame:
    out = {}
    for c in columns:
        try:
            out[c] = pd.to_numeric(df[c], errors="raise").astype(float)
        except (ValueError, TypeError):
            bad = df[c][pd.to_numeric(df[c], errors="coerce").isna() & df[c].notna()]
            raise AlfiaError(f"{source}: column {c!r} must be numeric; row {bad.index[0]} holds "
                             f"{bad.iloc[0]!r}") from None
    return pd.DataFrame(out, index=df.index)


class NativeCategoricals(BaseEstimator, TransformerMixin):
    """Numeric columns as float, categorical columns in the form a GBDT library reads natively.

    ``mode="pandas"``: ``category`` dtype with the training categories (LightGBM / XGBoost);
    ``mode="catboost"``: strings, missing -> ``"__missing__"``, unseen -> ``"__unknown__"``.
    """

    def __init__(self, categorical=(), numeric=(), mode: str = "pandas"):
        self.categorical = categorical
        self.numeric = numeric
        self.mode = mode

    def fit(self, X: pd.DataFrame, y=None):
        if self.mode not in ("pandas", "catboost"):
            raise ValueError(f"mode must be 'pandas' or 'catboost', not {self.mode!r}")
        self.categories_ = {c: sorted(categorical_as_object(X[c]).dropna().unique())
                            for c in self.categorical}
        self.feature_names_in_ = np.asarray([*self.categorical, *self.numeric], dtype=object)
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        out = numeric_frame(X, self.numeric)
        for c in self.categorical:
            values = categorical_as_object(X[c])
            known = self.categories_[c]
            if self.mode == "pandas":
                # Unseen values fall outside the fixed categories and become NaN (treated as missing).
                out[c] = pd.Categorical(values, categories=known)
            else:
                seen = values.isin(known)
                out[c] = values.where(seen, UNKNOWN_TOKEN).where(values.notna(), MISSING_TOKEN)
        return out[[*self.categorical, *self.numeric]]


class _ObjectCategoricals(OneToOneFeatureMixin, BaseEstimator, TransformerMixin):
    """Casts categorical columns to object strings so sklearn encoders see one consistent type."""

    def fit(self, X, y=None):
        self.feature_names_in_ = np.asarray(list(X.columns), dtype=object)
        self.n_features_in_ = len(X.columns)
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({c: categorical_as_object(X[c]) for c in X.columns}, index=X.index)


class _FloatNumerics(OneToOneFeatureMixin, BaseEstimator, TransformerMixin):
    """Numeric columns as float, with an error naming the column and row of a non-numeric value."""

    def fit(self, X, y=None):
        self.feature_names_in_ = np.asarray(list(X.columns), dtype=object)
        self.n_features_in_ = len(X.columns)
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        return numeric_frame(X, X.columns)


def make_dense_preprocessor(spec: FeatureSpec, *, scale: bool = True) -> ColumnTransformer:
    """One-hot + median imputation (+ missingness indicators) + optional standard scaling."""
    numeric_steps = [("float", _FloatNumerics()),
                     ("impute", SimpleImputer(strategy="median", add_indicator=True,
                                              keep_empty_features=True))]
    if scale:
        numeric_steps.append(("scale", StandardScaler()))
    categorical_steps = [
        ("as_object", _ObjectCategoricals()),
        ("impute", SimpleImputer(strategy="constant", fill_value=MISSING_TOKEN)),
        ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
    ]
    transformers = []
    if spec.numeric:
        transformers.append(("numeric", Pipeline(numeric_steps), list(spec.numeric)))
    if spec.categorical:
        transformers.append(("categorical", Pipeline(categorical_steps), list(spec.categorical)))
    return ColumnTransformer(transformers, remainder="drop", verbose_feature_names_out=False)


class TokenizerInputs(BaseEstimator, TransformerMixin):
    """Inputs of FT-Transformer's feature tokenizer: ``(x_numeric, x_categorical_codes)``.

    Numeric: median-imputed and standardised (missingness indicators added as numeric features).
    Categorical: ordinal codes shifted by one so that 0 means "missing or unseen in training";
    ``cardinalities_`` counts that extra level.
    """

    def __init__(self, categorical=(), numeric=()):
        self.categorical = categorical
        self.numeric = numeric

    def fit(self, X: pd.DataFrame, y=None):
        self.numeric_ = Pipeline([
            ("float", _FloatNumerics()),
            ("impute", SimpleImputer(strategy="median", add_indicator=True,
                                     keep_empty_features=True)),
            ("scale", StandardScaler()),
        ]).fit(X[list(self.numeric)]) if self.numeric else None
        if self.categorical:
            self.ordinal_ = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1,
                                           encoded_missing_value=-1, dtype=np.int64)
            self.ordinal_.fit(_ObjectCategoricals().transform(X[list(self.categorical)]))
            self.cardinalities_ = [len(c) + 1 for c in self.ordinal_.categories_]
        else:
            self.ordinal_, self.cardinalities_ = None, []
        self.n_numeric_ = 0 if self.numeric_ is None else int(
            self.numeric_.transform(X[list(self.numeric)].iloc[:1]).shape[1])
        return self

    def transform(self, X: pd.DataFrame) -> tuple[np.ndarray | None, np.ndarray | None]:
        x_num = (self.numeric_.transform(X[list(self.numeric)]).astype(np.float32)
                 if self.numeric_ is not None else None)
        x_cat = (self.ordinal_.transform(_ObjectCategoricals().transform(
            X[list(self.categorical)])) + 1 if self.ordinal_ is not None else None)
        return x_num, x_cat
