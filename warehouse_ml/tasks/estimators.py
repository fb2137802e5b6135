"""The scikit-learn pipeline behind each ``algorithm := name`` of ml_train, one registered builder per algorithm.

Adding an algorithm is one ``@estimator('name')`` function here; ``ALGORITHMS`` (what ml_train accepts) and the
error for an unknown name come from the registry. Pure scikit-learn: nothing here knows about DuckDB.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor, VotingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.svm import LinearSVC, LinearSVR
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from ..errors import InvalidArgument

SEED = 0  # every estimator's random_state, so a retrain on the same rows gives the same model


class MedianImputer(SimpleImputer):
    """``SimpleImputer(strategy="median")`` whose medians come from a partial sort of each column's present values
    (``np.median``) instead of scikit-learn's masked sort of the whole matrix: the same medians (a test pins
    them), 2.2 s -> 0.3 s on 1.6 million rows x 9 columns. Everything else is SimpleImputer's own."""

    def _dense_fit(self, X, strategy, missing_values, fill_value):
        if strategy != "median" or X.dtype.kind != "f" or not _is_nan(missing_values):
            return super()._dense_fit(X, strategy, missing_values, fill_value)
        self._fit_indicator(np.isnan(X))
        medians = np.full(X.shape[1], 0.0 if self.keep_empty_features else np.nan)
        for j in range(X.shape[1]):
            column = np.ascontiguousarray(X[:, j])
            present = column[~np.isnan(column)]
            if len(present):
                medians[j] = np.median(present)
        return medians


def _is_nan(value) -> bool:
    return isinstance(value, float) and value != value


ESTIMATORS: dict[str, Callable] = {}  # algorithm := name -> builder(algorithm, task, categorical, class_weight)


def estimator(*names: str):
    """Register a builder ``(algorithm, task, categorical, class_weight) -> estimator`` as ``algorithm := 'name'``:
    adding an algorithm is one decorated function."""

    def wrap(builder):
        for name in names:
            ESTIMATORS[name] = builder
        return builder

    return wrap


@estimator("logistic", "linear", "svm")
def _linear(algorithm: str, task: str, categorical: np.ndarray, class_weight):
    """Imputed, scaled numbers and one-hot categories before a linear model."""
    clf = task == "classification"
    if algorithm == "logistic" and not clf:
        raise InvalidArgument("algorithm", "'logistic' is for classification labels", "Use algorithm := 'linear' for a numeric label")
    if algorithm == "linear" and clf:
        algorithm = "logistic"
    num, cat = np.flatnonzero(~categorical).tolist(), np.flatnonzero(categorical).tolist()
    parts = []
    if num:
        parts.append(("num", Pipeline([("impute", MedianImputer(strategy="median", add_indicator=True)),
                                       ("scale", StandardScaler())]), num))
    if cat:
        parts.append(("cat", Pipeline([("impute", SimpleImputer(strategy="constant", fill_value=-1)),
                                       ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False))]), cat))
    prep = ColumnTransformer(parts)
    if algorithm == "logistic":
        model = LogisticRegression(max_iter=2000, class_weight=class_weight)
    elif algorithm == "linear":
        model = Ridge(alpha=1.0)
    elif clf:
        model = CalibratedClassifierCV(LinearSVC(class_weight=class_weight), method="sigmoid", cv=3)
    else:
        model = LinearSVR(max_iter=5000)
    return Pipeline([("prep", prep), ("model", model)])


@estimator("decision_tree")
def _decision_tree(algorithm: str, task: str, categorical: np.ndarray, class_weight):
    if task == "classification":
        return DecisionTreeClassifier(max_depth=8, min_samples_leaf=20, class_weight=class_weight, random_state=SEED)
    return DecisionTreeRegressor(max_depth=8, min_samples_leaf=20, random_state=SEED)


@estimator("random_forest")
def _random_forest(algorithm: str, task: str, categorical: np.ndarray, class_weight):
    if task == "classification":
        return RandomForestClassifier(n_estimators=100, min_samples_leaf=3, n_jobs=-1, class_weight=class_weight,
                                      random_state=SEED)
    return RandomForestRegressor(n_estimators=100, min_samples_leaf=3, n_jobs=-1, random_state=SEED)


@estimator("gbm")
def _gbm(algorithm: str, task: str, categorical: np.ndarray, class_weight):
    cats = categorical if categorical.any() else None
    # scikit-learn's defaults (100 trees; from 10,000 rows early stopping on an internal 10% split keeps the
    # number of trees as small as the data needs): on small tables a 10% split is too noisy to stop on
    common = dict(max_iter=100, learning_rate=0.1, categorical_features=cats, early_stopping="auto",
                  random_state=SEED)
    if task == "classification":
        return HistGradientBoostingClassifier(class_weight=class_weight, **common)
    return HistGradientBoostingRegressor(**common)


@estimator("blend")
def _blend(algorithm: str, task: str, categorical: np.ndarray, class_weight):
    if task != "classification":
        raise InvalidArgument("algorithm", "'blend' is for classification labels", "Use algorithm := 'gbm'")
    # the mean of the two probabilities: hedges between a smooth and a tree model when neither clearly wins
    return VotingClassifier([("logistic", make_estimator("logistic", task, categorical, {}, class_weight)),
                             ("gbm", make_estimator("gbm", task, categorical, {}, class_weight))], voting="soft")


@estimator("mlp")
def _mlp(algorithm: str, task: str, categorical: np.ndarray, class_weight):
    from .deep import make_mlp  # TensorFlow is imported only here (MissingDependency when it is absent)

    return make_mlp(task, categorical, class_weight)


ALGORITHMS = ("auto", *ESTIMATORS)


def make_estimator(algorithm: str, task: str, categorical: np.ndarray, params: dict, class_weight):
    """The scikit-learn pipeline for an algorithm, over a float matrix with NaN for missing values and
    category codes in the ``categorical`` columns."""
    if algorithm not in ESTIMATORS:
        raise InvalidArgument("algorithm", f"unknown algorithm '{algorithm}'", f"Use one of {', '.join(ALGORITHMS)}")
    est = ESTIMATORS[algorithm](algorithm, task, categorical, class_weight)
    if params:
        target = est.steps[-1][1] if isinstance(est, Pipeline) else est
        valid = target.get_params(deep=False)
        unknown = [k for k in params if k not in valid]
        if unknown:
            raise InvalidArgument("params", f"{algorithm} has no parameter(s) {unknown}",
                                  f"Use any of: {', '.join(sorted(valid))}")
        try:
            target.set_params(**params)
        except (ValueError, TypeError) as e:
            raise InvalidArgument("params", str(e), "Check the value's type and range") from None
    return est
